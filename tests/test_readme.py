"""The README stays true: its Quick start is two commands, every hyperparameter is documented."""

from __future__ import annotations

import re
from pathlib import Path

from hpo.training.config import VOCABULARY

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_hyperparameter_is_documented() -> None:
    text = README.read_text()
    missing = sorted(name for name in VOCABULARY if f"| `{name}` |" not in text)
    assert not missing, f"README lacks rows for {missing}"


def test_quick_start_is_two_commands_that_exist_in_the_makefile() -> None:
    text = README.read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", text, re.S)
    assert block is not None
    commands = [
        line.split("#")[0].strip()
        for line in block.group(1).splitlines()
        if line.split("#")[0].strip()
    ]
    assert commands == ["make run", "make test"]
    makefile = (README.parent / "Makefile").read_text()
    assert re.search(r"^run: install$", makefile, re.M) and re.search(
        r"^test: install$", makefile, re.M
    )
    assert "bash .ci/run" in makefile
