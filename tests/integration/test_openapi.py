"""The OpenAPI document tells the truth: schemathesis sends every operation inputs made from
the document (valid ones and edge cases) and checks that no answer is a server error and every
answer matches what the document declares (status, content type, body schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_system

pytestmark = pytest.mark.integration

#: Streams never end, so they cannot be answered in one response.
STREAMS = r"^/api/events"

#: Every check but "schema-valid data is accepted": the document cannot say which class names
#: the catalog knows or which task ids exist, so a valid-looking request may rightly get a 4xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_every_operation_answers_without_server_errors_and_as_documented(tmp_path: Path) -> None:
    system = make_system(tmp_path / "data", "controller.allowed_hosts=*").start()
    try:
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", system.app).exclude(path_regex=STREAMS)
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1

            @given(case=operation.as_strategy())
            @settings(
                max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
            )
            def check(case) -> None:  # type: ignore[no-untyped-def]
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except Exception as exc:  # one line per operation that failed
                failures.append(f"{operation.label}: {str(exc).strip().splitlines()[0:6]}")
        assert operations >= 30
        assert not failures, "\n".join(failures)
    finally:
        system.stop()
