"""The SMDR prepare step in a process of its own: parse, drop duplicates, assemble and serialise calls.

Preparing a 1 MiB batch (about 8,700 records) is ~30 µs of Python a record, a third of the
collector's CPU per record, all of it on the event loop that also stores the previous batch and
runs the outbox relay (docs/collector.md, "Speed"). A worker process does it on the other core
and hands the batch back in a compact form (`handlers.handback`: tuples, strings and bytes) that
costs the service a few µs a record to take in; the `PreparedBatch` itself, pickled, would cost
it ~20 (`bench/collector_prepare_handback.py`).

One worker for every SMDR link of the process: the batches of several links take turns, and a
collector has few links, each far below what one worker prepares. If the worker dies (killed,
out of memory), the batch it had is prepared in the service, as without a worker, and the next
one starts a new worker: a link never stops for it. Other formats arrive in files and over
HTTP, where the prepare is not on a live link's critical path, and stay in the service.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tarifa_collector import handlers
from tarifa_collector.domain.records import SourceContext
from tarifa_collector.domain.sources import RecordFormat

log = logging.getLogger(__name__)


def _start(gc_young_threshold: int) -> None:
    """In the worker: the service's garbage-collector threshold (a batch allocates tens of thousands of objects)."""
    if gc_young_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(gc_young_threshold, middle, old)


def _ready() -> int:
    return multiprocessing.current_process().pid or 0


class PrepareWorker:
    """A worker process that prepares SMDR batches (`handlers.prepare_handback`), started on first use."""

    def __init__(self, gc_young_threshold: int = 0) -> None:
        self._gc_young_threshold = gc_young_threshold
        self._pool: ProcessPoolExecutor | None = None
        self.prepared = 0  # batches the worker prepared
        self.fallbacks = 0  # batches prepared in the service because the worker had died

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: a clean process forked from a small server, not from this one with its
            # threads (aiosqlite's, the broker client's) and event loop.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["tarifa_collector.handlers"])
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_start, initargs=(self._gc_young_threshold,)
            )
        return self._pool

    async def pid(self) -> int:
        """The worker's process id, starting it if needed (a link calls it to have it ready before data comes)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor(), _ready)

    async def prepare(
        self, source: SourceContext, record_format: RecordFormat, lines: Sequence[bytes]
    ) -> handlers.PreparedBatch | None:
        """The batch of `lines`, prepared by the worker; None if the worker died meanwhile (prepare it here)."""
        try:
            handed = await asyncio.get_running_loop().run_in_executor(
                self._executor(), handlers.prepare_handback, source, record_format, lines
            )
        except BrokenProcessPool as error:
            self.close()
            self.fallbacks += 1
            log.warning(
                "the SMDR prepare worker stopped: this batch is prepared in the service, the next starts a new worker",
                extra={"error": str(error) or type(error).__name__, "source": source.source_id},
            )
            return None
        self.prepared += 1
        return handlers.from_handback(handed, source, record_format, lines)

    def close(self) -> None:
        """Stop the worker (when the service stops, or after it died); the next `prepare` starts another."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
