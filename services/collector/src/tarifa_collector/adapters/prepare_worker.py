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
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tarifa_collector import handlers
from tarifa_collector.domain.records import SourceContext
from tarifa_collector.domain.sources import RecordFormat
from tarifa_common.config import collect_young_every

log = logging.getLogger(__name__)


# What a worker that died, or could not be started (the forkserver refused, no memory for a process), raises.
UNAVAILABLE = (BrokenProcessPool, OSError, EOFError)


def _ready() -> int:
    return multiprocessing.current_process().pid or 0


def _started(warming: asyncio.Future[int]) -> None:
    if not warming.cancelled() and warming.exception() is not None:
        log.warning(
            "the SMDR prepare worker did not start; each batch tries it again and is prepared in the service meanwhile",
            extra={"error": repr(warming.exception())},
        )


class PrepareWorker:
    """A worker process that prepares SMDR batches (`handlers.prepare_handback`), started by `start` or on first use."""

    def __init__(self, gc_young_threshold: int = 0) -> None:
        self._gc_young_threshold = gc_young_threshold
        self._pool: ProcessPoolExecutor | None = None
        self._warming: asyncio.Future[int] | None = None
        self.prepared = 0  # batches the worker prepared
        self.fallbacks = 0  # batches prepared in the service because the worker had died or would not start

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: a clean process forked from a small server, not from this one with its
            # threads (aiosqlite's, the broker client's) and event loop.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["tarifa_collector.handlers"])
            self._pool = ProcessPoolExecutor(
                # the service's garbage-collector threshold: a batch allocates tens of thousands of objects
                max_workers=1,
                mp_context=context,
                initializer=collect_young_every,
                initargs=(self._gc_young_threshold,),
            )
        return self._pool

    def start(self) -> None:
        """Start the worker now, in the background, so that a link's first batch does not wait for its imports."""
        self._warming = asyncio.ensure_future(self.pid())
        self._warming.add_done_callback(_started)

    async def pid(self) -> int:
        """The worker's process id, starting it if needed."""
        return await asyncio.get_running_loop().run_in_executor(self._executor(), _ready)

    async def prepare(
        self, source: SourceContext, record_format: RecordFormat, lines: Sequence[bytes]
    ) -> handlers.PreparedBatch | None:
        """The batch of `lines`, prepared by the worker; None if it died or would not start (prepare it here)."""
        try:
            handed = await asyncio.get_running_loop().run_in_executor(
                self._executor(), handlers.prepare_handback, source, record_format, lines
            )
        except UNAVAILABLE as error:
            self._discard()
            self.fallbacks += 1
            log.warning(
                "the SMDR prepare worker is gone: this batch is prepared in the service, the next starts a new worker",
                extra={"error": str(error) or type(error).__name__, "source": source.source_id},
            )
            return None
        self.prepared += 1
        return handlers.from_handback(handed, source, record_format, lines)

    def close(self) -> None:
        """Stop the worker when the service stops."""
        if self._warming is not None:
            self._warming.cancel()
        self._discard()

    def _discard(self) -> None:
        """Let the worker go (stopped, or dead); the next `prepare` starts another."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
