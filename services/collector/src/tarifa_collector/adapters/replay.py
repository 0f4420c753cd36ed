"""Replay: re-publish a source's calls for a time range, page by page, reporting progress."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tarifa_collector import handlers
from tarifa_collector.adapters.repository import SqlCollectorStore, SqlSourceRepository
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)
PAGE = 500


@dataclass
class ReplayJob:
    """A replay's progress; kept in the process (a restart forgets it, the replay is safe to run again)."""

    id: str
    tenant: str
    source_id: str
    start: datetime
    end: datetime
    total: int = 0
    published: int = 0
    state: str = "running"
    error: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None


async def replay(
    units: UnitOfWorkFactory,
    tenant: str,
    source_id: str,
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Re-publish every call of the source that started in [start, end): same ids, so consumers dedupe.

    Each page is its own transaction, so a large replay never holds one long transaction open.
    """
    async with units() as uow:
        await SqlSourceRepository(uow.session).get(tenant, source_id)
        total = await SqlCollectorStore(uow.session).count_calls(tenant, source_id, start, end)
    progress(0, total)
    done = 0
    after: tuple[datetime, str] | None = None
    while True:
        async with units() as uow:
            count, after = await handlers.replay_calls(
                uow, SqlCollectorStore(uow.session), tenant, source_id, start, end, after=after, limit=PAGE
            )
        done += count
        progress(done, max(total, done))
        if after is None:
            return done


async def republish_recent(units: UnitOfWorkFactory, sources: list[tuple[str, str]], hours: float) -> int:
    """Re-publish every source's calls that started in the last `hours` (and any dated ahead)."""
    now = utcnow()
    total = 0
    for tenant, source_id in sources:
        total += await replay(units, tenant, source_id, now - timedelta(hours=hours), now + timedelta(days=366))
    log.info("re-published %d calls of the last %.0f hours", total, hours)
    return total


class ReplayJobs:
    """Replays started through the API, run as tasks of the service process."""

    def __init__(self, units: UnitOfWorkFactory) -> None:
        self.units = units
        self.jobs: dict[str, ReplayJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, tenant: str, source_id: str, start: datetime, end: datetime) -> ReplayJob:
        async with self.units() as uow:
            await SqlSourceRepository(uow.session).get(tenant, source_id)
        job = ReplayJob(id=str(uuid.uuid4()), tenant=tenant, source_id=source_id, start=start, end=end)
        self.jobs[job.id] = job
        task = asyncio.ensure_future(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: ReplayJob) -> None:
        def progress(done: int, total: int) -> None:
            job.published, job.total = done, total

        try:
            await replay(self.units, job.tenant, job.source_id, job.start, job.end, progress)
            job.state = "done"
        except Exception as error:
            log.exception("replay %s failed", job.id)
            job.state, job.error = "failed", f"{type(error).__name__}: {error}"
        job.finished_at = utcnow()
