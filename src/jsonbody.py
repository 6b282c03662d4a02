"""Request bodies parsed as strict JSON: no NaN, no Infinity, no number beyond the float range.

Python's json module takes NaN, Infinity and -Infinity, and reads 1e400 as inf; none of them
is JSON, and none could be answered or passed on. StrictJSONRoute makes FastAPI parse bodies
with parse() below; a refusal is a JSON error, answered 400 with what is wrong. A large body is
parsed off the event loop, so that one request does not stall every other.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

SHOWN_CHARS = 20  # of a refused number, in the message
# Bodies up to this size are parsed on the event loop (at most a few ms); larger ones on one
# thread of their own, one at a time, so that the loop goes on serving meanwhile.
INLINE_BYTES = 64 << 10
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="json-parse")


class _NotJson(ValueError):
    """A value Python's parser takes that JSON does not have."""


def _constant(name: str) -> Any:
    """parse_constant: NaN, Infinity and -Infinity are refused."""
    raise _NotJson(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def _finite(text: str) -> float:
    """parse_float: a float, refused when it is beyond the float range (1e400)."""
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
        raise _NotJson(f"the number {shown} is beyond the float range (about ±1.8e308)")
    return value


def _int(text: str) -> int:
    """parse_int for large bodies: a Python call, where the parsing thread lets go of the GIL."""
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook for large bodies: as _int."""
    return dict(pairs)


def loads(body: bytes, yielding: bool = False) -> Any:
    """The JSON value of a body; json.JSONDecodeError saying what is wrong (never the body).

    yielding: numbers and objects go through Python calls, so that a thread parsing a large
    body lets the event loop's thread run between them (C code alone keeps the GIL).
    The garbage collector waits meanwhile: a body of many small lists would otherwise set off
    a collection every few hundred of them, each walking all made so far (1.5 MiB of `[],`:
    about 550 ms with it, 80 ms without, on the project's 2-core machine).
    """
    hooks: dict[str, Any] = {"parse_int": _int, "object_pairs_hook": _object} if yielding else {}
    collecting = gc.isenabled()
    gc.disable()
    try:
        # UTF-8 only (RFC 8259), not json's guess among UTF-8, -16 and -32.
        return json.loads(body.decode("utf-8"), parse_constant=_constant, parse_float=_finite,
                          **hooks)
    except json.JSONDecodeError as exc:
        reason = str(exc)  # the message with its line, column and character
    except _NotJson as exc:
        reason = str(exc)
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    except RecursionError:
        reason = "it is nested too deeply"
    except ValueError:  # the only other: an integer past Python's digit limit
        reason = "an integer has too many digits (at most 4300)"
    finally:
        if collecting:
            gc.enable()
    # The document is left out: FastAPI keeps it in the error, and the body is not repeated.
    raise json.JSONDecodeError(reason, "", 0) from None


async def parse(body: bytes) -> Any:
    """loads(body): on the event loop when small, else on the one parsing thread."""
    if len(body) <= INLINE_BYTES:
        return loads(body)
    return await asyncio.get_running_loop().run_in_executor(_PARSER, loads, body, True)


class StrictJSONRequest(Request):
    """A Request whose json() is loads()."""

    async def json(self) -> Any:
        """The body parsed by loads(), once."""
        if not hasattr(self, "_json"):
            self._json = await parse(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose handler gets a StrictJSONRequest (FastAPI's custom route idiom)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given the strict request."""
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
