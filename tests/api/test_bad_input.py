"""Every class of bad input gets a 4xx with an `ErrorPublic` body naming the field —
never a 500, never a traceback — and code named in a spec is never imported."""

from __future__ import annotations

import copy
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from hpo.config import Settings
from tests.api.support import BRANIN_SPEC, live_server

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def base_url(backend_url: str) -> Iterator[str]:
    # A generous validation budget: these tests are about what is refused, not how fast
    # (tests/api/test_hostile_sizes.py holds the budget's own tests), and a loaded CI
    # machine may take more than the default second for a small spec.
    settings = Settings(
        allowed_modules=("hpo.examples",), max_body_bytes=LIMIT, validation_budget_s=30
    )
    with live_server(create_app(backend_url, settings=settings)) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url + "/api/v1", timeout=10) as client:
        yield client


def _spec(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BRANIN_SPEC)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = spec
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec


def _problems(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    return {d["field"]: d["message"] for d in detail}


def _post_json_text(http: httpx.Client, text: str) -> httpx.Response:
    return http.post("/studies", content=text, headers={"Content-Type": "application/json"})


def test_malformed_json(http: httpx.Client) -> None:
    problems = _problems(_post_json_text(http, '{"name": "x",'), 422)
    assert "not valid JSON" in problems["body"]
    assert "must be an object" in _problems(_post_json_text(http, "[1, 2]"), 422)["body"]
    deep = _post_json_text(http, "[" * 20000 + "]" * 20000)
    assert "nested too deeply" in _problems(deep, 422)["body"]
    binary = http.post(
        "/studies", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert "UTF-8" in _problems(binary, 422)["body"]


def test_bad_yaml(http: httpx.Client) -> None:
    response = http.post(
        "/studies", content="name: [unclosed", headers={"Content-Type": "application/yaml"}
    )
    assert "not valid YAML" in _problems(response, 422)[""]


def test_wrong_or_missing_content_type(http: httpx.Client) -> None:
    missing = http.post("/studies", content=b"name: x")
    assert "unsupported content type" in _problems(missing, 415)["header.Content-Type"]
    # This server has no tokens: a body no web form could send is required (see
    # test_local_mode.py), so a wrong type is a 403 here and a 415 with a token.
    wrong = http.post("/studies", content=b"name: x", headers={"Content-Type": "text/plain"})
    assert "JSON or YAML" in _problems(wrong, 403)["header.Content-Type"]


def test_unknown_field_and_missing_fields(http: httpx.Client) -> None:
    problems = _problems(http.post("/studies", json=_spec(budget__forever=True)), 422)
    assert problems["budget.forever"] == "unknown field"
    missing = _problems(http.post("/studies", json={"name": "x"}), 422)
    assert {"objective", "trainable"} <= missing.keys()


def test_out_of_range_budget_and_long_name(http: httpx.Client) -> None:
    problems = _problems(
        http.post("/studies", json=_spec(budget__trials=0, budget__concurrency=10**6)), 422
    )
    assert {"budget.trials", "budget.concurrency"} <= problems.keys()
    assert "name" in _problems(http.post("/studies", json=_spec(name="n" * 201)), 422)
    override = http.post("/studies", json=BRANIN_SPEC, params={"trials": 0})
    assert "query.trials" in _problems(override, 422)
    unknown = http.post("/studies", json=BRANIN_SPEC, params={"strategy": "magic"})
    assert "unknown strategy" in next(iter(_problems(unknown, 422).values()))


def test_non_finite_numbers(http: httpx.Client) -> None:
    text = '{"name": "nan", "objective": {"metric": "value", "mode": "min"}, '
    text += '"trainable": {"function": "hpo.examples.functions:branin"}, '
    text += '"budget": {"time_limit_s": Infinity}, "space": {"x1": {"uniform": [NaN, 1]}}}'
    problems = _problems(_post_json_text(http, text), 422)
    assert problems["budget.time_limit_s"] == "must be a finite number"
    assert any(field.startswith("space.x1") for field in problems)
    yaml_text = "name: nan\nobjective: {metric: value, mode: min}\n"
    yaml_text += (
        "trainable: {function: 'hpo.examples.functions:branin'}\nbudget: {time_limit_s: .inf}\n"
    )
    response = http.post(
        "/studies", content=yaml_text, headers={"Content-Type": "application/yaml"}
    )
    assert _problems(response, 422)["budget.time_limit_s"] == "must be a finite number"


# Hostile sizes and YAML types (issue 12, item 7): each was a 500.
def _post_yaml(http: httpx.Client, text: str) -> httpx.Response:
    return http.post("/studies", content=text, headers={"Content-Type": "application/yaml"})


_BRANIN_YAML_HEAD = (
    "objective: {metric: value, mode: min}\n"
    "trainable: {function: 'hpo.examples.functions:branin'}\n"
    "space: {x1: {uniform: [-5, 10]}}\n"
)


def test_json_integer_beyond_pythons_digit_limit(http: httpx.Client) -> None:
    text = json.dumps(_spec(budget__trials=0)).replace('"trials": 0', '"trials": ' + "9" * 4301)
    assert "too large" in _problems(_post_json_text(http, text), 422)["budget.trials"]
    # A huge negative number and a huge float are refused by field too.
    text = json.dumps(_spec(budget__trials=0)).replace('"trials": 0', '"trials": -' + "9" * 5000)
    assert "budget.trials" in _problems(_post_json_text(http, text), 422)
    text = json.dumps(_spec(budget__time_limit_s=1.5)).replace("1.5", "9" * 5000 + ".5")
    assert "budget.time_limit_s" in _problems(_post_json_text(http, text), 422)


def test_yaml_integer_beyond_pythons_digit_limit(http: httpx.Client) -> None:
    text = f"name: big\n{_BRANIN_YAML_HEAD}budget: {{trials: {'1' * 5000}}}\n"
    assert "too large" in _problems(_post_yaml(http, text), 422)["budget.trials"]
    hexa = f"name: big\n{_BRANIN_YAML_HEAD}budget: {{trials: 0x{'f' * 5000}}}\n"
    assert "budget.trials" in _problems(_post_yaml(http, hexa), 422)


@pytest.mark.parametrize(
    "value", ["2024-13-45", "2024-01-02", "2024-01-02 10:00:00", "2024-02-30T25:61:00Z"]
)
def test_yaml_dates_and_timestamps_are_text(http: httpx.Client, value: str) -> None:
    """YAML would read these as dates (or fail to); a spec has no dates, so they stay the
    text the user wrote: a valid name, a string where a number was wanted."""
    response = _post_yaml(http, f"name: {value}\n{_BRANIN_YAML_HEAD}")
    assert response.status_code == 201, response.text
    assert response.json()["name"] == value
    wrong = _post_yaml(http, f"name: n\n{_BRANIN_YAML_HEAD}budget: {{trials: {value}}}\n")
    assert "budget.trials" in _problems(wrong, 422)


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "\\udfff\\ud800"])
def test_text_no_database_can_store_is_refused_by_field(http: httpx.Client, bad: str) -> None:
    """NUL (PostgreSQL text cannot hold it) and lone surrogates (not UTF-8) were a 503 or a
    500 from the database driver; they are refused at the edge, naming the field."""
    text = json.dumps(_spec(name="n", description="d"))
    named = _post_json_text(http, text.replace('"name": "n"', f'"name": "n{bad}"'))
    assert "name" in _problems(named, 422)
    keyed = _post_json_text(http, text.replace('"x1"', f'"x{bad}"'))
    assert any(field.startswith("space.x") for field in _problems(keyed, 422))
    yaml_text = f'name: "a{bad.replace(chr(92) * 2, chr(92))}"\n{_BRANIN_YAML_HEAD}'
    assert "name" in _problems(_post_yaml(http, yaml_text), 422)


def test_huge_grid(http: httpx.Client) -> None:
    space = {f"x{i}": {"choice": list(range(10))} for i in range(6)}
    response = http.post("/studies", json=_spec(strategy={"name": "grid"}, space=space))
    assert "more than" in _problems(response, 422)["space"]


def test_disallowed_function_module_is_never_imported(http: httpx.Client) -> None:
    spec = _spec(trainable={"function": "tests.api.explosive:fit"})
    problems = _problems(http.post("/studies", json=spec), 422)
    assert "not allowed" in problems["trainable.function"]
    assert "tests.api.explosive" not in sys.modules
    # A user dataset function is code too.
    builtin = {
        "name": "ds",
        "objective": {"metric": "val_accuracy", "mode": "max"},
        "trainable": {"dataset": "tests.api.explosive:load"},
    }
    problems = _problems(http.post("/studies", json=builtin), 422)
    assert "not allowed" in problems["trainable.dataset"]
    assert "tests.api.explosive" not in sys.modules
    # A module merely starting with an allowed name is not inside it.
    lookalike = _spec(trainable={"function": "hpo.examples_evil:fit"})
    assert "trainable.function" in _problems(http.post("/studies", json=lookalike), 422)


# Allow-list forms (issue 12, item 1): strings that an earlier, looser reading let through.
BYPASSES = ["revmarker.-:f", "os.:system", " os:system", "os:system\n", "hpo.examples.:f"]
_BUILTIN = {
    "name": "ds",
    "objective": {"metric": "val_accuracy", "mode": "max"},
    "trainable": {"dataset": "digits"},
    "budget": {"trials": 2, "max_epochs": 1},
}


def _reference_in(field: str, value: str) -> tuple[dict[str, Any], str]:
    """A spec carrying `value` in `field`, and the field path the 422 must name."""
    if field == "trainable.function":
        return _spec(trainable={"function": value}), field
    spec = copy.deepcopy(_BUILTIN)
    if field == "trainable.dataset":
        spec["trainable"] = {"dataset": value}
        return spec, field
    if field == "fixed.dataset":
        spec["fixed"] = {"dataset": value}
        return spec, field
    kind = field.rpartition(".")[2]
    spec["space"] = {"dataset": {kind: ["digits", value]}}
    return spec, f"space.dataset.{kind}[1]"


@pytest.mark.parametrize(
    "field",
    [
        "trainable.function",
        "trainable.dataset",
        "fixed.dataset",
        "space.dataset.choice",
        "space.dataset.grid",
    ],
)
@pytest.mark.parametrize("value", BYPASSES)
def test_malformed_references_are_refused_in_every_field(
    http: httpx.Client, field: str, value: str
) -> None:
    spec, path = _reference_in(field, value)
    problems = _problems(http.post("/studies", json=spec), 422)
    # The spec's own model names `trainable` for a malformed function (hpo/spec.py).
    assert path in problems or (field == "trainable.function" and "trainable" in problems)
    assert "revmarker" not in sys.modules


@pytest.mark.parametrize("field", ["fixed.dataset", "space.dataset.choice"])
def test_well_formed_but_unlisted_dataset_modules_are_refused(
    http: httpx.Client, field: str
) -> None:
    spec, path = _reference_in(field, "tests.api.explosive:load")
    assert "not allowed" in _problems(http.post("/studies", json=spec), 422)[path]
    assert "tests.api.explosive" not in sys.modules
    allowed, _ = _reference_in(field, "hpo.examples.datasets:load")
    assert http.post("/studies", json=allowed).status_code == 201


def test_body_over_limit_is_413(http: httpx.Client, base_url: str) -> None:
    big = _spec(description="d" * (LIMIT + 1))
    assert "larger than" in _problems(http.post("/studies", json=big), 413)["body"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes are counted
        for _ in range(LIMIT // 1024 + 2):
            yield b" " * 1024

    streamed = http.post("/studies", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_declared_length_refused_before_the_body_is_sent(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            b"POST /api/v1/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_bad_query_and_path_values(http: httpx.Client) -> None:
    problems = _problems(http.get("/studies", params={"limit": 0, "offset": -1}), 422)
    assert {"query.limit", "query.offset"} <= problems.keys()
    assert "path.study_id" in _problems(http.get("/studies/99999999999999999999"), 422)
    events = http.get("/studies/1/events", headers={"Last-Event-ID": "soon"})
    assert "header.Last-Event-ID" in _problems(events, 422)
    sort = http.get("/studies/1/trials", params={"sort": "s" * 101})
    assert sort.status_code in (404, 422)


def test_nul_in_query_values_is_a_422(http: httpx.Client) -> None:
    """NUL reached PostgreSQL from query parameters (owner, sort) as a 503."""
    problems = _problems(http.get("/studies", params={"owner": "a\x00b"}), 422)
    assert "query.owner" in problems
    seeded = http.post("/studies", json=BRANIN_SPEC).json()["id"]
    sort = http.get(f"/studies/{seeded}/trials", params={"sort": "param:x\x00"})
    assert "query.sort" in _problems(sort, 422)


def test_yaml_alias_bomb_with_escapes_is_refused_quickly(http: httpx.Client) -> None:
    """700 bytes of YAML aliases stand for 2**23 strings (one with an escape, so the NUL
    and surrogate walk runs): every shared node is visited once."""
    levels = ['  - &a ["x\\\\y", 1]']
    for i in range(1, 24):
        previous = "a" if i == 1 else f"l{i - 1}"
        levels.append(f"  - &l{i} [*{previous}, *{previous}]")
    text = "\n".join(["name: bomb", *_BRANIN_YAML_HEAD.splitlines(), "fixed:", "  x: *l23"])
    text = "bomb:\n" + "\n".join(levels) + "\n" + text + "\n"
    # Refused for what it is, within the API's validation budget (a walk of 2**23 nodes
    # would instead answer "too large … in the time allowed", or hang).
    problems = _problems(_post_yaml(http, text), 422)
    assert "bomb" in problems and any(field.startswith("fixed.x") for field in problems)


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("trainable", "trainable.model"),
        ("fixed", "fixed.model"),
        ("space", "space.model.choice[1]"),
    ],
)
def test_user_models_pass_the_allow_list_like_any_code(
    http: httpx.Client, field: str, where: str
) -> None:
    """A user model (`model: pkg.module:build`) is code the trial imports: the API checks
    it against HPO_ALLOWED_MODULES like a function or a dataset, and imports nothing."""

    def spec_with(model: str) -> dict[str, Any]:
        spec = copy.deepcopy(_BUILTIN)
        if field == "trainable":
            spec["trainable"] = {"dataset": "digits", "model": model}
        elif field == "fixed":
            spec["fixed"] = {"model": model}
        else:
            spec["space"] = {"model": {"choice": ["mlp", model]}}
        return spec

    problems = _problems(http.post("/studies", json=spec_with("tests.api.explosive:load")), 422)
    assert "not allowed" in problems[where]
    assert "tests.api.explosive" not in sys.modules
    assert where in _problems(http.post("/studies", json=spec_with("os.:system")), 422)
    assert http.post("/studies", json=spec_with("hpo.examples.models:build")).status_code == 201
