"""src/engines/tool.py: the real tool engine on a tiny random-weight classifier, on CPU."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path

import pytest

from src.engines.tool import ToolEngine, ToolModelError

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> ToolEngine:
    """The tool engine with the tiny model loaded (batches up to 32, 20 ms collection window)."""
    tool = ToolEngine(str(tiny_model_dir), max_batch=32, wait_ms=20)
    tool.load()
    return tool


async def _classify(engine: ToolEngine, batches: list[list[str]]) -> list[list[dict]]:
    """Run concurrent classify calls with a started batcher, then stop it."""
    engine.start()
    try:
        return await asyncio.gather(*(engine.classify(b) for b in batches))
    finally:
        await engine.stop()


def test_labels_and_probabilities(engine: ToolEngine) -> None:
    [results] = asyncio.run(_classify(engine, [["a good movie", "bad weather", "ok"]]))
    assert engine.labels == LABELS
    assert len(results) == 3
    for r in results:
        assert set(r["scores"]) == set(LABELS)
        assert math.isclose(sum(r["scores"].values()), 1.0, rel_tol=1e-5)
        assert r["label"] == max(r["scores"], key=r["scores"].get)
        assert r["score"] == r["scores"][r["label"]]


def test_concurrent_requests_share_forward_passes(engine: ToolEngine) -> None:
    texts = [f"the movie was {'very ' * (i % 5)}good" for i in range(32)]
    alone = [asyncio.run(_classify(engine, [[t]]))[0][0] for t in texts[:3]]
    before = engine.forward_passes
    together = asyncio.run(_classify(engine, [[t] for t in texts]))
    passes = engine.forward_passes - before
    assert 1 <= passes < 32, f"{passes} forward passes for 32 concurrent requests"
    # Batching (with padding) gives each text the answer it gets alone.
    for single, batched in zip(alone, together[:3], strict=True):
        assert single["label"] == batched[0]["label"]
        assert math.isclose(single["score"], batched[0]["score"], rel_tol=1e-4)


def test_batches_never_exceed_max_batch(tiny_model_dir: Path) -> None:
    tool = ToolEngine(str(tiny_model_dir), max_batch=4, wait_ms=50)
    tool.load()
    sizes: list[int] = []
    forward = tool._forward

    def counted(texts: list[str]) -> list[dict]:
        sizes.append(len(texts))
        return forward(texts)

    tool._forward = counted  # type: ignore[method-assign]
    results = asyncio.run(_classify(tool, [["good"]] * 10))
    assert len(results) == 10
    assert sum(sizes) == 10 and max(sizes) <= 4, sizes  # every text once, at most 4 per pass
    assert max(sizes) > 1, sizes  # and they were batched


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ToolModelError, match=r"TOOL_MODEL_PATH='.*' holds no config.json"):
        ToolEngine(str(tmp_path), max_batch=1, wait_ms=0).load()


def test_broken_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ToolModelError, match="cannot be loaded"):
        ToolEngine(str(tmp_path), max_batch=1, wait_ms=0).load()


def test_a_lone_request_does_not_wait_for_the_batch_window(tiny_model_dir: Path) -> None:
    # A 5 s window, but the server reports one request in flight: the one already in the batch.
    tool = ToolEngine(str(tiny_model_dir), max_batch=32, wait_ms=5000, in_flight=lambda: 1)
    tool.load()

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await _classify(tool, [["a good movie"]])
        return loop.time() - start

    assert asyncio.run(timed()) < 2.5, "a lone request waited for the batch window"
    assert tool.forward_passes == 1


def test_the_batch_waits_for_requests_still_in_flight(tiny_model_dir: Path) -> None:
    # Two requests in flight, the second arrives 50 ms after the first: one pass serves both.
    tool = ToolEngine(str(tiny_model_dir), max_batch=32, wait_ms=5000, in_flight=lambda: 2)
    tool.load()

    async def late() -> list[dict]:
        await asyncio.sleep(0.05)
        return await tool.classify(["bad weather"])

    async def both() -> list[list[dict]]:
        tool.start()
        try:
            return await asyncio.gather(tool.classify(["a good movie"]), late())
        finally:
            await tool.stop()

    assert [len(r) for r in asyncio.run(both())] == [1, 1]
    assert tool.forward_passes == 1


def test_forward_passes_run_on_one_dedicated_thread(engine: ToolEngine) -> None:
    threads: set[tuple[str, int]] = set()
    forward = engine._forward

    def spy(texts: list[str]) -> list[dict]:
        threads.add((threading.current_thread().name, threading.get_ident()))
        return forward(texts)

    async def one_at_a_time() -> None:
        engine.start()
        try:
            for text in ("good", "bad", "ok"):
                await engine.classify([text])
        finally:
            await engine.stop()

    engine._forward = spy  # type: ignore[method-assign]
    try:
        asyncio.run(one_at_a_time())
    finally:
        del engine._forward
    assert len(threads) == 1, threads
    assert next(iter(threads))[0].startswith("tool-forward"), threads
