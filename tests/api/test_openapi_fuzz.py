"""Schemathesis against /api/v1/openapi.json: generated requests (valid and invalid,
a few per operation) find no 5xx and no response outside the documented schema.

The events stream is left out: for a study that never finishes it never ends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from schemathesis import checks

from api.app import create_app
from hpo.config import Settings
from hpo.storage.repository import Repository
from tests.api.support import live_server, seed_study

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/hpo.db"


@pytest.fixture(scope="module")
def api_schema(fuzz_db: str) -> Iterator[schemathesis.BaseSchema]:
    url = fuzz_db
    with Repository(url) as repo:
        seed_study(repo)  # study 1, trials 1-3: some generated ids hit real rows
    app = create_app(url, settings=Settings(allowed_modules=("hpo.examples",)))
    with live_server(app) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
        schema.config.update(base_url=base_url)
        yield schema.exclude(path_regex=r".*/events$")


def test_no_server_errors_and_schema_conformance(api_schema: schemathesis.BaseSchema) -> None:
    # Hypothesis driven directly, one operation at a time: schemathesis's pytest plugin
    # does not support pytest 9 yet.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    statuses: Counter[int] = Counter()
    for operation in operations:
        for mode in schemathesis.GenerationMode:
            # Negative cases of an operation without inputs cannot be generated.
            if mode is schemathesis.GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue

            @given(case=operation.as_strategy(mode))
            @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                response = case.call_and_validate(checks=CHECKS)
                statuses[response.status_code] += 1

            check()
    print(f"\nstateless calls by status over {len(operations)} operations: {dict(statuses)}")
    # The run reached past validation, into the routes and the database.
    assert statuses[422] and statuses[404] and statuses[200], statuses


def test_stateful_links_reach_studies_and_trials_that_exist(
    api_schema: schemathesis.BaseSchema, fuzz_db: str
) -> None:
    """Sequences that follow the schema's links (a page of studies → one study and its
    reads, its trials → one trial): ids that exist, so the routes run past their 404s,
    and every answer still conforms."""
    with Repository(fuzz_db) as repo:
        seed_study(repo)  # the newest study (first of the list), whatever the fuzzing did
    reached: Counter[tuple[str, str, int]] = Counter()
    # Reads only: Hypothesis replays sequences and needs the same answers each time, which
    # deleting, cancelling and creating studies between sequences would change.
    reads = api_schema.include(method="GET")

    class Machine(reads.as_state_machine()):  # type: ignore[misc]
        def validate_response(  # type: ignore[override]
            self, response: Any, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            reached[(case.method, case.operation.path, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)

    Machine.run(
        settings=settings(
            # The schema's links now fan out to weights, selections and the Pareto set
            # too: enough sequences, drawn the same way each run, to reach every read.
            max_examples=100,
            stateful_step_count=6,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    print("\nstateful calls (method, path, status): count")
    for key, count in sorted(reached.items()):
        print(f"  {key}: {count}")
    found = {(method, path) for (method, path, status), _ in reached.items() if status == 200}
    assert ("GET", "/api/v1/studies/{study_id}") in found, reached
    assert ("GET", "/api/v1/studies/{study_id}/trials/{number}") in found, reached


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    return bool(operation.path_parameters or operation.query or operation.headers or operation.body)


@pytest.mark.parametrize(
    ("trainable", "valid"),
    [
        ({}, False),
        ({"model": "mlp"}, False),
        ({"function": None}, False),
        ({"function": "hpo.examples.functions:branin"}, True),
        ({"function": " os:system"}, False),
        ({"function": "os.:system"}, False),
        ({"function": "a:b", "dataset": "digits"}, False),
        ({"dataset": "digits"}, True),
        ({"dataset": "digits", "model": "cnn"}, True),
    ],
)
def test_schema_says_which_trainables_the_server_takes(
    api_schema: schemathesis.BaseSchema, trainable: dict[str, object], valid: bool
) -> None:
    """The schema refuses `trainable: {}` (schemathesis found it accepted there and
    refused by the server): a function alone, in the reference grammar, or a dataset."""
    document = api_schema.raw_schema
    validator = Draft202012Validator({**document, "$ref": "#/components/schemas/StudyCreate"})
    body = {"name": "t", "objective": {"metric": "value", "mode": "min"}, "trainable": trainable}
    assert validator.is_valid(body) is valid
