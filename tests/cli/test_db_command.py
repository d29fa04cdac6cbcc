"""`hpo db upgrade`, and the refusal of an old schema with that command in the message."""

from __future__ import annotations

from typer.testing import CliRunner

from hpo.cli import app
from hpo.storage.database import current_revision, downgrade, head_revision

runner = CliRunner()


def test_upgrade_creates_and_old_schema_is_refused(empty_db_url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--db", empty_db_url])
    assert result.exit_code == 0, result.output
    assert current_revision(empty_db_url) == head_revision()
    downgrade(empty_db_url, "base")
    refused = runner.invoke(app, ["studies", "--db", empty_db_url])
    assert refused.exit_code == 2
    assert "hpo db upgrade --db" in refused.stderr
    assert runner.invoke(app, ["db", "upgrade", "--db", empty_db_url]).exit_code == 0
    assert runner.invoke(app, ["studies", "--db", empty_db_url]).exit_code == 0
