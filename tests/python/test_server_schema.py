"""schemathesis over /openapi.json of the real app (chat + tool): no 500s, no schema violations,
also for bodies poisoned with what JSON has not (NaN, Infinity, 1e400) and with huge arrays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import TEST_KEY, AppProcess, served_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def running_app(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    """The app in DEPLOY_MODE=both: fake chat engine, tiny tool model, small limits."""
    log = tmp_path_factory.mktemp("schema") / "server.log"
    with served_app(log, "--chunks 2", DEPLOY_MODE="both", TOOL_MODEL_PATH=str(tiny_model_dir),
                    TOOL_MAX_BATCH="4", TOOL_MAX_CHARS="200",
                    MAX_CONCURRENT_CONNECTIONS="1000") as app:
        yield app


OPERATIONS = {"GET /livez", "HEAD /livez", "GET /healthz", "HEAD /healthz", "GET /v1/models",
              "POST /v1/chat/completions", "POST /v1/completions", "POST /v1/classify"}


@pytest.mark.slow
def test_api_conforms_to_its_schema(running_app: AppProcess) -> None:
    schema = schemathesis.openapi.from_url(running_app.url + "/openapi.json")
    tested = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.add(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {TEST_KEY}"},
                                   checks=CHECKS, timeout=10)

        check()
    assert tested == OPERATIONS


POISON = "\x00poison\x00"  # where the non-JSON number goes in the serialised body
NOT_JSON_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400", "-2.5e999")
ITEMS = st.sampled_from([1, 1.5, "x", None, True, [], {}, {"role": "user"}, [1, 2]])


def poisoned(body: object, spoil: str, item: object, count: int) -> bytes:
    """body serialised with a non-JSON number at a place of spoil, or its first list (or a new
    key) holding count copies of item."""
    data = dict(body) if isinstance(body, dict) else {"input": body}
    if spoil == "huge array":
        key = next((k for k, v in data.items() if isinstance(v, list)), "input")
        data[key] = [item] * count
        return json.dumps(data).encode()
    lists = [k for k, v in data.items() if isinstance(v, list)]
    if lists:
        data[lists[0]] = [*data[lists[0]], POISON]
    else:
        data["extra"] = POISON
    return json.dumps(data).replace(json.dumps(POISON), spoil).encode()


@pytest.mark.slow
def test_poisoned_bodies_get_client_errors_in_schema(running_app: AppProcess) -> None:
    schema = schemathesis.openapi.from_url(running_app.url + "/openapi.json")
    posts = [r.ok() for r in schema.get_all_operations() if r.ok().method.upper() == "POST"]
    assert len(posts) == 3
    for operation in posts:

        @given(case=operation.as_strategy(), spoil=st.sampled_from(
                   [*NOT_JSON_NUMBERS, "huge array"]), item=ITEMS,
               count=st.integers(min_value=10_000, max_value=400_000))
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, spoil: str, item: object, count: int) -> None:
            raw = poisoned(case.body, spoil, item, count)
            headers = {"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"}
            response = case.call(headers=headers, data=raw, timeout=30)
            case.validate_response(response, checks=CHECKS)
            if spoil != "huge array":
                assert response.status_code == 400, response.text
                assert "JSON" in response.json()["error"]["message"] or "float range" in \
                    response.json()["error"]["message"]
            elif response.status_code >= 400:
                assert response.status_code in (400, 413, 422) and len(response.content) < 2000

        check()
