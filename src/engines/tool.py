"""The tool engine: a sequence classifier in-process, requests micro-batched off the event loop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src import metrics

log = logging.getLogger("src.engines.tool")


class ToolModelError(RuntimeError):
    """The tool model cannot be loaded from its directory."""


@dataclass
class _Item:
    """One text waiting for a forward pass, the future its result goes to, the call it is from."""

    text: str
    future: asyncio.Future[dict[str, Any]] = field(repr=False)
    call: int = 0


class ToolEngine:
    """AutoTokenizer + AutoModelForSequenceClassification behind an asyncio micro-batcher."""

    def __init__(
        self,
        model_dir: str,
        max_batch: int,
        wait_ms: float,
        gpu_frac: float | None = None,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        """Remember the model directory and the batching limits; load() does the work.

        in_flight: how many requests the server has in flight; a batch stops collecting as
        soon as all of them are in it (no one else can join). None: always wait up to wait_ms.
        """
        self.model_dir = model_dir
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self.gpu_frac = gpu_frac
        self.in_flight = in_flight
        self.forward_passes = 0
        self._calls = itertools.count(1)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._max_len = 512

    def load(self) -> None:
        """Load tokenizer and model (blocking; call it in a thread), on CUDA when available."""
        # OpenMP workers spin while idle by default; beside the event loop on a small CPU box
        # they take the core the loop needs (tool benchmark, 2 cores: 4.5 -> 1.5 ms of CPU per
        # lone request). Read when torch is first imported, which in the served app is here.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not Path(self.model_dir, "config.json").is_file():
            raise ToolModelError(
                f"TOOL_MODEL_PATH={self.model_dir!r} holds no config.json; "
                "point it at a saved sequence-classification model directory"
            )
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            model = AutoModelForSequenceClassification.from_pretrained(self.model_dir)
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ToolModelError(
                f"tool model in {self.model_dir!r} cannot be loaded: {first}"
            ) from None
        if torch.cuda.is_available():
            self._device = "cuda"
            if self.gpu_frac is not None:
                torch.cuda.set_per_process_memory_fraction(self.gpu_frac)
        self._model = model.to(self._device).eval()
        limits = [getattr(model.config, "max_position_embeddings", 512), 512]
        if 0 < int(self._tokenizer.model_max_length) < 1_000_000:
            limits.append(int(self._tokenizer.model_max_length))
        self._max_len = min(limits)
        log.info("tool model loaded on %s (%d labels)", self._device, len(self.labels))

    @property
    def labels(self) -> list[str]:
        """The label names, in logit order."""
        id2label = self._model.config.id2label
        return [str(id2label[i]) for i in range(len(id2label))]

    def start(self) -> None:
        """Start the batching task on the running loop, and the one thread forward passes use.

        One thread for every pass: torch keeps its intra-op thread pool per calling thread, so
        a pool of callers would each bring their own.
        """
        self._queue = asyncio.Queue()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tool-forward")
        self._worker = asyncio.create_task(self._run(), name="tool-batcher")

    async def stop(self) -> None:
        """Stop the batching task and its thread; requests still queued fail."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(RuntimeError("tool engine stopped"))

    async def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """Classify texts; they join whatever batch is being collected."""
        loop = asyncio.get_running_loop()
        call = next(self._calls)
        items = [_Item(text, loop.create_future(), call) for text in texts]
        for item in items:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(i.future for i in items)))

    async def _collect(self) -> list[_Item]:
        """Wait for one item, then gather more for at most wait_s, up to max_batch.

        Stops early when every request in flight is already in the batch.
        """
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            if self.in_flight is not None and self.in_flight() <= len({i.call for i in batch}):
                break
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        """Forever: collect a batch, run it in a thread, hand each result to its future."""
        while True:
            batch = [i for i in await self._collect() if not i.future.done()]
            if not batch:
                continue
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._forward, [i.text for i in batch])
            except Exception as exc:  # a failed pass fails its requests, not the batcher
                log.error("tool forward pass failed: %s", exc)
                results = [exc] * len(batch)
            for item, result in zip(batch, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, Exception):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

    def _forward(self, texts: list[str]) -> list[dict[str, Any]]:
        """One forward pass over a batch of texts (blocking)."""
        import torch

        self.forward_passes += 1
        metrics.TOOL_BATCH.observe(len(texts))
        started = time.perf_counter()
        enc = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_len, return_tensors="pt"
        ).to(self._device)
        with torch.inference_mode():
            probs = torch.softmax(self._model(**enc).logits.float(), dim=-1).cpu().tolist()
        metrics.TOOL_FORWARD_SECONDS.observe(time.perf_counter() - started)
        labels = self.labels
        out = []
        for row in probs:
            best = max(range(len(row)), key=row.__getitem__)
            out.append(
                {
                    "label": labels[best],
                    "score": row[best],
                    "scores": {label: p for label, p in zip(labels, row, strict=True)},
                }
            )
        return out
