"""The served application `src.server:app`: health, auth, the tool model, the chat proxy."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from src.auth import key_is_valid, presented_key
from src.config.settings import Settings, SettingsError, load_settings
from src.health import EngineState
from src.runtime import Runtime, setup_logging
from src.schemas import (
    ERROR_RESPONSES,
    PROXIED_RESPONSES,
    ChatCompletionRequest,
    ClassifyRequest,
    ClassifyResponse,
    CompletionRequest,
    HealthReport,
    ModelList,
)

RETRY_AFTER_S = "5"


class ApiError(Exception):
    """An error answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None):
        """Status, message and OpenAI error type (e.g. `invalid_request_error`)."""
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers


def error_response(exc: ApiError) -> JSONResponse:
    """The JSON response for an ApiError."""
    body = {"error": {"message": exc.message, "type": exc.kind, "param": None, "code": exc.status}}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


class GateMiddleware:
    """Bounds /v1 requests in flight (429 past MAX_CONCURRENT_CONNECTIONS); 503 while draining."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        """Wrap the app."""
        self.app, self.runtime = app, runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request in and out around the whole response, streaming included."""
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        health = self.runtime.health
        if health.draining:
            err = ApiError(503, "the server is shutting down; retry on another replica",
                           "server_shutting_down", {"Retry-After": RETRY_AFTER_S})
        elif not health.try_enter():
            limit = health.max_in_flight
            err = ApiError(429, f"too many requests in flight (MAX_CONCURRENT_CONNECTIONS={limit})",
                           "rate_limit_exceeded", {"Retry-After": "1"})
        else:
            try:
                await self.app(scope, receive, send)
            finally:
                health.leave()
            return
        await error_response(err)(scope, receive, send)


def create_app(settings: Settings, handle_signals: bool = True) -> FastAPI:
    """Build the app for the given settings (handle_signals: install the SIGTERM drain)."""
    runtime = Runtime(settings, handle_signals)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="text inference server", version="1.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.add_middleware(GateMiddleware, runtime=runtime)
    app.add_exception_handler(ApiError, lambda _r, e: error_response(e))  # type: ignore[arg-type]

    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <TEXT_API_KEY>")
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="a TEXT_API_KEY key")

    # The two Security() parameters only document the schemes in /openapi.json; the check reads
    # the headers itself so that either one is accepted. `async def`: a plain `def` dependency
    # costs every request a hop to the thread pool and back.
    async def require_key(
        request: Request,
        _b: Any = Security(bearer),  # noqa: B008 (FastAPI's dependency idiom)
        _k: Any = Security(api_key),  # noqa: B008 (as above)
    ) -> None:
        if not key_is_valid(presented_key(request.headers), settings.api_keys):
            raise ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>' "
                           "or 'X-API-Key: <key>'", "invalid_api_key")

    def deployed(name: str) -> Any:
        """A route dependency: 404 when the engine is not deployed, before the body is read."""

        async def check() -> None:
            if name not in runtime.health.states:
                raise ApiError(404, f"the {name} model is not deployed (DEPLOY_MODE="
                               f"{settings.deploy_mode}); DEPLOY_MODE={name} or both serves "
                               "this route", "not_found_error")

        return Depends(check)

    def engine_ready(name: str) -> None:
        state = runtime.health.states[name]
        if state is not EngineState.READY:
            raise ApiError(503, f"the {name} engine is {state.value}", "engine_unavailable",
                           {"Retry-After": RETRY_AFTER_S})

    authed: dict[str, Any] = {"dependencies": [Depends(require_key)], "responses": ERROR_RESPONSES}
    # FastAPI runs route dependencies before it validates the body: auth, then deployment.
    chat_route: dict[str, Any] = {"dependencies": [Depends(require_key), deployed("chat")],
                                  "responses": {**ERROR_RESPONSES, **PROXIED_RESPONSES}}
    tool_route: dict[str, Any] = {"dependencies": [Depends(require_key), deployed("tool")],
                                  "responses": ERROR_RESPONSES}

    @app.get("/livez", tags=["health"])
    async def livez() -> dict[str, str]:
        """200 while the process runs."""
        return {"status": "alive"}

    @app.get("/healthz", tags=["health"], response_model=HealthReport,
             responses={503: {"model": HealthReport, "description": "not ready"}})
    async def healthz() -> JSONResponse:
        """200 when every deployed engine is ready; 503 with each engine's state otherwise."""
        ready = runtime.health.ready and not runtime.health.draining
        headers = None if ready else {"Retry-After": RETRY_AFTER_S}
        return JSONResponse(runtime.health.report(), 200 if ready else 503, headers)

    @app.get("/v1/models", response_model=ModelList, **authed)
    async def models() -> dict[str, Any]:
        """The models this server deploys."""
        names = []
        if settings.serves_chat:
            names.append((settings.served_model_name, "chat"))
        if settings.serves_tool:
            names.append((settings.tool_model_name, "tool"))
        data = [{"id": n, "object": "model", "owned_by": kind} for n, kind in names]
        return {"object": "list", "data": data}

    async def to_chat(path: str, body: ChatCompletionRequest | CompletionRequest,
                      request: Request) -> Response:
        engine_ready("chat")
        payload = body.model_dump(mode="json", exclude_unset=True)
        payload["model"] = body.model or settings.served_model_name
        if runtime.chat is None:  # deployed but not created: only before the lifespan ran
            raise ApiError(503, "the chat engine is not started", "engine_unavailable")
        try:
            return await runtime.chat.proxy(path, json.dumps(payload).encode(), body.stream,
                                           request.receive)
        except httpx.HTTPError:
            raise ApiError(503, "the chat engine is not answering", "engine_unavailable",
                           {"Retry-After": RETRY_AFTER_S}) from None

    @app.post("/v1/chat/completions", **chat_route)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """OpenAI chat completions, proxied to the chat engine (SSE when stream=true)."""
        return await to_chat("/v1/chat/completions", body, request)

    @app.post("/v1/completions", **chat_route)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        """OpenAI completions, proxied to the chat engine (SSE when stream=true)."""
        return await to_chat("/v1/completions", body, request)

    @app.post("/v1/classify", response_model=ClassifyResponse, **tool_route)
    async def classify(body: ClassifyRequest) -> dict[str, Any]:
        """Classify one text or a list of texts with the tool model."""
        engine_ready("tool")
        texts = [body.input] if isinstance(body.input, str) else body.input
        problem = check_texts(texts, settings)
        if problem:
            raise ApiError(400, problem, "invalid_request_error")
        if runtime.tool is None:  # deployed but not created: only before the lifespan ran
            raise ApiError(503, "the tool engine is not started", "engine_unavailable")
        results = await runtime.tool.classify(texts)
        data = [{"index": i, **r} for i, r in enumerate(results)]
        return {"object": "list", "model": settings.tool_model_name, "data": data}

    return app


def check_texts(texts: list[str], settings: Settings) -> str | None:
    """What is wrong with a classify input (empty, too long, not text); None when fine."""
    if not texts:
        return "input must hold at least one text"
    if len(texts) > settings.tool_max_batch:
        return f"input holds {len(texts)} texts; at most TOOL_MAX_BATCH={settings.tool_max_batch}"
    for i, text in enumerate(texts):
        if not text.strip():
            return f"input[{i}] is empty; every text needs at least one non-blank character"
        if len(text) > settings.tool_max_chars:
            return (f"input[{i}] has {len(text)} characters; at most "
                    f"TOOL_MAX_CHARS={settings.tool_max_chars}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"input[{i}] is not valid Unicode text: a lone surrogate at character "
                    f"{exc.start} (JSON escapes like \\ud800 must come in pairs)")
    return None


def app_from_env() -> FastAPI:
    """The app for this process's environment; one line on stderr and exit 1 when it is invalid."""
    setup_logging()
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"[server] ✗ {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    return create_app(settings)


def __getattr__(name: str) -> FastAPI:
    """Build `app` on first access (uvicorn's `src.server:app`), so importing reads no env."""
    if name != "app":
        raise AttributeError(f"module 'src.server' has no attribute {name!r}")
    app = app_from_env()
    globals()["app"] = app
    return app
