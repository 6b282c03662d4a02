"""src/jsonbody.py: strict JSON, the same answer on the loop and on the parsing thread."""

from __future__ import annotations

import asyncio
import gc
import json
import threading

import pytest

from src import jsonbody
from src.jsonbody import INLINE_BYTES, loads, parse

DOC = {"a": [1, -2.5, 1e300, "x\u00e9\U0001f600", None, True, {"b": []}], "c": {}}


@pytest.mark.parametrize("yielding", [False, True])
def test_json_reads_as_python_json_does(yielding: bool) -> None:
    assert loads(json.dumps(DOC).encode(), yielding) == DOC


@pytest.mark.parametrize("yielding", [False, True])
@pytest.mark.parametrize(("raw", "reason"), [
    (b"[NaN]", "NaN is not a JSON number"),
    (b'{"x": -Infinity}', "-Infinity is not a JSON number"),
    (b"[1e400]", "the number 1e400 is beyond the float range"),
    (b"[-" + b"9" * 400 + b".0]", "the number -" + "9" * 19 + "… is beyond"),
    (b"[" + b"1" * 5000 + b"]", "an integer has too many digits"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b'"\xff"', "it is not UTF-8 text"),
    (b"\xef\xbb\xbf{}", "Unexpected UTF-8 BOM"),
    (b'{"a": 1,}', "Expecting property name enclosed in double quotes: line 1 column 9"),
])
def test_what_json_has_not_is_an_error_naming_it(raw: bytes, reason: str, yielding: bool) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        loads(raw, yielding)
    assert reason in caught.value.msg and caught.value.doc == ""  # the body is not kept
    assert gc.isenabled()


def test_large_bodies_are_parsed_on_the_parsing_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real = jsonbody.loads

    def recording(body: bytes, yielding: bool = False) -> object:
        threads.append(threading.current_thread().name)
        return real(body, yielding)

    monkeypatch.setattr(jsonbody, "loads", recording)
    small = json.dumps({"p": [1] * 10}).encode()
    large = json.dumps({"p": [1] * INLINE_BYTES}).encode()
    assert asyncio.run(parse(small)) == {"p": [1] * 10}
    assert asyncio.run(parse(large)) == {"p": [1] * INLINE_BYTES}
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("json-parse")
