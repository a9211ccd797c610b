"""Property-based requests from the OpenAPI schema: no 5xx, no response off the schema.

Schemathesis generates valid and invalid requests for every operation of the published
schema and checks each response: never a server error, status codes and bodies as
documented, problem+json for errors. Runs on in-process moto with a published day and a
session whose id the generated requests may hit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from functions.app.application import create_app
from tests.conftest import module_bucket
from tests.streaming import build_services, publish_tiny_day

if TYPE_CHECKING:
    from schemathesis import Case


@pytest.fixture(scope="module")
def api_schema() -> Iterator[Any]:
    with module_bucket() as s3:
        publish_tiny_day(s3)
        app = create_app(build_services(s3))
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_api_never_fails_and_follows_its_schema(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 24
    history = "/api/replay/airports/{airport}"
    assert {
        f"{history}/days/{{date}}/turnarounds",
        f"{history}/days/{{date}}/turnarounds/{{turnaround}}",
        f"{history}/kpis",
        f"{history}/days/{{date}}/events",
        f"{history}/days/{{date}}/vehicles/{{vehicle_id}}/day",
        f"{history}/export/{{kind}}",
        f"{history}/tasks",
    } <= {operation.path for operation in operations}, "the analyst's queries are covered"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "30")),
            deadline=None,
            database=None,
            derandomize="SCHEMATHESIS_EXAMPLES" not in os.environ,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Case) -> None:
            if case.path.endswith("/stream"):
                # A valid stream never ends by itself; its framing is tested elsewhere.
                case.query = {**(case.query or {}), "token": "not-a-token"}
            # Rules a JSON Schema cannot state (a range's end after its start, a published
            # day) rightly reject some schema-valid requests with 422/404.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
