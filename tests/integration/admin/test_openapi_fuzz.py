"""schemathesis against the registry's own /openapi.json, over real HTTP to a real
registry: every answer must be declared (status, content type, schema) and none a 5xx.

Bounded: a fixed number of examples per operation (fewer in CI), derandomized under
CI=true (tests/conftest.py's profile), writes sent with the token so they reach the
handlers; schemathesis also sends cases that break the schema, which must be refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.admin.harness import AUTH, TOKEN
from tests.integration.admin.registry_thread import registry_in_thread

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = 20 if CI else 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with registry_in_thread(tmp, TOKEN) as (_lt, rp):
        yield f"http://127.0.0.1:{rp.http_port}"


def _operations(url: str) -> list[schemathesis.APIOperation]:
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in api.get_all_operations()]


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_declared_and_none_is_a_5xx(base_url: str, mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = _operations(base_url)
    assert len(operations) >= 20

    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            if case.operation.path.endswith("/drain") and isinstance(case.body, dict):
                case.body["timeout"] = 0  # no node is connected: keep each drain instant
            case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=30)

        try:
            run()
        except Unsatisfiable:  # nothing in this operation can be made to break the schema
            assert mode is GenerationMode.NEGATIVE, op.label
        except Exception as exc:  # one line per failing operation, then fail once
            failures.append(f"{op.label}: {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
