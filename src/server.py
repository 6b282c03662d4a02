"""The served application `src.server:app`: health, the tool model, the chat proxy."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from starlette.exceptions import HTTPException
from starlette.responses import Response

from src import metrics, request_id
from src.auth import encoded_keys, key_is_valid, presented_key
from src.config.settings import Settings, SettingsError, load_settings
from src.edge import EdgeMiddleware, EdgeRoute
from src.errors import RETRY_AFTER_S, ApiError, error_response, key_error, validation_error
from src.health import EngineState
from src.jsonbody import StrictJSONRoute
from src.observe import ObserveMiddleware
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

# OpenAI's `type` for the statuses Starlette raises itself (unknown route, wrong method).
HTTP_TYPES = {404: "not_found_error", 405: "method_not_allowed"}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "X-API-Key: <key>"},
}


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
    app.router.route_class = StrictJSONRoute
    app.state.runtime = runtime
    install_error_handlers(app)
    # The key, deployment, sizes and the in-flight bound are checked at the edge, from the
    # headers, before the body is read; the routes' `security` only documents the key.
    chat_edge = EdgeRoute("chat", settings.chat_max_body_bytes, "CHAT_MAX_BODY_BYTES")
    app.add_middleware(EdgeMiddleware, runtime=runtime, routes={
        "/v1/chat/completions": chat_edge,
        "/v1/completions": chat_edge,
        "/v1/classify": EdgeRoute("tool", settings.tool_max_body_bytes,
                                  "from TOOL_MAX_BATCH and TOOL_MAX_CHARS"),
    })
    keyed = {"security": [{"bearer": []}, {"apiKey": []}]}
    authed: dict[str, Any] = {"responses": ERROR_RESPONSES, "openapi_extra": keyed}
    chat_route: dict[str, Any] = {"responses": {**ERROR_RESPONSES, **PROXIED_RESPONSES},
                                  "openapi_extra": keyed}

    def openapi() -> dict[str, Any]:
        """FastAPI's document (made once) plus the two key schemes the routes name."""
        schema = FastAPI.openapi(app)
        schema.setdefault("components", {}).setdefault("securitySchemes", SECURITY_SCHEMES)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    def engine_ready(name: str) -> None:
        state = runtime.health.states[name]
        if state is not EngineState.READY:
            raise ApiError(503, f"the {name} engine is {state.value}", "engine_unavailable",
                           {"Retry-After": RETRY_AFTER_S})

    @app.api_route("/livez", methods=["GET", "HEAD"], tags=["health"])
    async def livez() -> dict[str, str]:
        """200 while the process runs."""
        return {"status": "alive"}

    @app.api_route("/healthz", methods=["GET", "HEAD"], tags=["health"],
                   response_model=HealthReport,
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
        if runtime.chat is None:  # deployed but not created: only before the lifespan ran
            raise ApiError(503, "the chat engine is not started", "engine_unavailable")
        forward = with_model(await request.body(), body, settings.served_model_name)
        try:
            return await runtime.chat.proxy(path, forward, body.stream, request.receive,
                                            request_id.current.get() or "")
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

    @app.post("/v1/classify", response_model=ClassifyResponse, **authed)
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

    metrics_keys = encoded_keys(settings.api_keys) if settings.metrics_require_key else ()

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        """The app's metrics in Prometheus text format, then the chat engine's own (its names
        unchanged). No key unless METRICS_REQUIRE_KEY=1."""
        if metrics_keys and not key_is_valid(presented_key(request.scope["headers"]),
                                             metrics_keys):
            raise key_error()
        text = metrics.exposition(settings.metrics_multiproc_dir)
        if runtime.chat is not None:
            text += metrics.engine_part(await runtime.chat.own_metrics() or b"")
        return Response(text, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    # Outermost, added last: it sees every answer, the edge's refusals included. No route has
    # path parameters, so a path the app serves is its own route template.
    app.add_middleware(ObserveMiddleware,
                       routes=frozenset(route.path for route in app.routes))  # type: ignore[attr-defined]
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, validation errors, Starlette's 404/405 and any crash in OpenAI's shape."""

    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc.errors()))

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = "no such route; /docs and /openapi.json list the routes"
        elif exc.status_code == 405:
            allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
            message = f"method {request.method} is not allowed on this route; allowed: {allowed}"
        else:
            message = str(exc.detail)
        kind = HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        return error_response(ApiError(exc.status_code, message, kind, exc.headers))

    async def crash(_: Request, exc: Exception) -> JSONResponse:
        # The exception goes on to uvicorn, which logs its traceback.
        return error_response(ApiError(500, "internal server error", "server_error"))

    # Starlette types a handler as taking any Exception; each of these gets only its own class.
    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_body)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, crash)


def with_model(raw: bytes, body: ChatCompletionRequest | CompletionRequest, default: str) -> bytes:
    """The body to forward: the client's own bytes, with `model` set when it named none.

    A body that names its model goes on untouched; one without gets the default written in
    front of its first key (no re-serialising of a large body).
    """
    if body.model:
        return raw
    if "model" not in body.model_fields_set:
        start = raw.index(b"{") + 1
        return b'{"model": ' + json.dumps(default).encode() + b", " + raw[start:]
    payload = body.model_dump(mode="json", exclude_unset=True)  # "model": null or ""
    payload["model"] = default
    return json.dumps(payload).encode()


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
        logging.getLogger("src.server").error("%s", exc)
        raise SystemExit(1) from None
    return create_app(settings)


def __getattr__(name: str) -> FastAPI:
    """Build `app` on first access (uvicorn's `src.server:app`), so importing reads no env."""
    if name != "app":
        raise AttributeError(f"module 'src.server' has no attribute {name!r}")
    app = app_from_env()
    globals()["app"] = app
    return app
