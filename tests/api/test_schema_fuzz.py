"""Schemathesis against the app's own OpenAPI schema, over HTTP to the live uvicorn of conftest.py: no
5xx, and every response conforms to the schema (status code, content type, body), with a tenant's key
and without one. Bounded and derandomised, so CI runs the same cases each time.

The schema is the app's `openapi()` taken at collection time (parametrisation needs it before any
fixture runs; schemathesis' `from_fixture` does not work with pytest 9), and a test checks that the live
server's /openapi.json is that very schema."""

from __future__ import annotations

import tempfile
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api_server import Served
from costlake.api.app import create_app
from costlake.settings import Settings

CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _openapi() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        return create_app(Settings(warehouse=folder + "/wh")).openapi()


OPENAPI = _openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_fuzzed_schema_is_the_servers(served: Served) -> None:
    assert served.get("/openapi.json").json() == OPENAPI


@schema.parametrize()
@FUZZ
def test_with_a_tenant_key(case: schemathesis.Case, served: Served) -> None:
    key = served.keys["team-a"]
    case.call_and_validate(base_url=served.url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)


@schema.parametrize()
@settings(FUZZ, max_examples=5)
def test_without_a_key(case: schemathesis.Case, served: Served) -> None:
    case.call_and_validate(base_url=served.url, checks=CHECKS)
