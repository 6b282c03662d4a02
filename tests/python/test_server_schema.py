"""schemathesis over /openapi.json of the real app (chat + tool): no 500s, no schema violations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import TEST_KEY, AppProcess, start_app_process
from hypothesis import HealthCheck, given, settings
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
    app = start_app_process(log, "--chunks 2", DEPLOY_MODE="both",
                            TOOL_MODEL_PATH=str(tiny_model_dir), TOOL_MAX_BATCH="4",
                            TOOL_MAX_CHARS="200", MAX_CONCURRENT_CONNECTIONS="1000")
    try:
        app.wait_ready(timeout=60)
        yield app
    finally:
        leftovers = app.stop()
    assert not leftovers, f"chat engine processes left behind: {leftovers}"
    assert "Traceback" not in app.output()


OPERATIONS = {"GET /livez", "GET /healthz", "GET /v1/models", "POST /v1/chat/completions",
              "POST /v1/completions", "POST /v1/classify"}


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
