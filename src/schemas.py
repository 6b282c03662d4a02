"""Request and response bodies of the served app (they make its OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Lists stop at their first bad item: a body of a million bad items gets one error, not a
# million (each costs time and memory, and was once answered in full).
Texts = Annotated[list[str], Field(fail_fast=True)]
TokenIds = Annotated[list[int], Field(fail_fast=True)]


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: int | str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape: {"error": {...}}."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "invalid input (not JSON, limits, empty text)"},
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    404: {"model": ErrorBody, "description": "the route's engine is not deployed"},
    408: {"model": ErrorBody, "description": "the body did not arrive within BODY_TIMEOUT_S"},
    413: {"model": ErrorBody, "description": "the body is larger than the route takes"},
    415: {"model": ErrorBody, "description": "the body is not sent as application/json"},
    422: {"model": ErrorBody, "description": "the body does not fit the schema"},
    429: {"model": ErrorBody, "description": "too many requests in flight (Retry-After)"},
    503: {"model": ErrorBody, "description": "engine not ready or server draining (Retry-After)"},
}


PROXIED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the engine's answer: JSON, or server-sent events when stream=true",
        "content": {"application/json": {}, "text/event-stream": {"schema": {
            "type": "object", "description": "one server-sent event per chunk",
            "properties": {"data": {"type": "string"}}, "required": ["data"],
        }}},
    },
}


class HealthReport(BaseModel):
    """The /healthz body."""

    status: str = Field(description="ready, loading, failed or draining")
    engines: dict[str, str] = Field(description="each deployed engine's state")


class ModelCard(BaseModel):
    """One served model."""

    id: str
    object: str = "model"
    owned_by: str


class ModelList(BaseModel):
    """The /v1/models body."""

    object: str = "list"
    data: list[ModelCard]


class ChatMessage(BaseModel):
    """One chat message; extra OpenAI fields pass through."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | Annotated[list[dict[str, Any]], Field(fail_fast=True)] | None = None


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat completion request; fields not listed pass through to the engine."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, fail_fast=True)
    stream: bool = False


class CompletionRequest(BaseModel):
    """An OpenAI completion request; fields not listed pass through to the engine."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: str | Texts | TokenIds | Annotated[list[TokenIds], Field(fail_fast=True)] = Field(
        description="text, texts, token ids, or lists of token ids")
    stream: bool = False


class ClassifyRequest(BaseModel):
    """Text(s) for the tool model."""

    model_config = ConfigDict(extra="forbid")
    input: str | Texts = Field(description="one text or a list of texts")


class Classification(BaseModel):
    """The tool model's answer for one input."""

    index: int
    label: str
    score: float = Field(description="probability of the chosen label")
    scores: dict[str, float] = Field(description="probability of every label")


class ClassifyResponse(BaseModel):
    """The /v1/classify body."""

    object: str = "list"
    model: str
    data: list[Classification]
