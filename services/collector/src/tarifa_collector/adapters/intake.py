"""Where records enter: one transaction per batch through the handlers, on the service's database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator, Sequence
from datetime import timedelta

from tarifa_collector import handlers
from tarifa_collector.adapters.prepare_worker import PrepareWorker
from tarifa_collector.adapters.repository import SqlCollectorStore, SqlSourceRepository, settings_of
from tarifa_collector.adapters.tables import SourceRow
from tarifa_collector.domain.records import SourceContext
from tarifa_collector.domain.sources import Connection, Health, RecordFormat, SourceKind, SourceSettings
from tarifa_common import telemetry
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)
# One batch at a time per source in this process (two connections of one PBX, a file and a
# re-send): the database would serialise them anyway, this just avoids the lock waits.
_LOCKS: dict[tuple[str, str], asyncio.Lock] = {}


def batch_lock(tenant: str, source_id: str) -> asyncio.Lock:
    """The lock a source's batches are stored under, one after the other, in this process."""
    return _LOCKS.setdefault((tenant, source_id), asyncio.Lock())


def context_of(tenant: str, source: SourceSettings) -> SourceContext:
    return SourceContext(
        tenant=tenant,
        source_id=source.id,
        source_kind=source.format.value,
        time_zone=source.time_zone,
        numbering=source.numbering,
    )


class Intake:
    """Runs the collector's handlers, each in its own unit of work."""

    def __init__(self, units: UnitOfWorkFactory, worker: PrepareWorker | None = None) -> None:
        self.units = units
        self.worker = worker  # SMDR batches are prepared there when given

    async def ingest(
        self,
        tenant: str,
        source: SourceSettings,
        lines: Sequence[bytes],
        *,
        location: str,
        incomplete: Sequence[bytes] = (),
    ) -> handlers.IngestOutcome:
        """Prepare and store one batch of lines in one transaction."""
        return await self.store(tenant, source, self.prepare(tenant, source, lines, incomplete), location=location)

    def prepare(
        self, tenant: str, source: SourceSettings, lines: Sequence[bytes], incomplete: Sequence[bytes] = ()
    ) -> handlers.PreparedBatch:
        """The work of a batch that needs no database (a link does it while the previous batch is stored)."""
        return handlers.prepare_lines(
            context_of(tenant, source), source.format, lines, incomplete=incomplete, mapping=source.column_mapping
        )

    def prepare_steps(
        self, tenant: str, source: SourceSettings, lines: Sequence[bytes], incomplete: Sequence[bytes] = ()
    ) -> Generator[None, None, handlers.PreparedBatch]:
        """`prepare` in steps, for a link that lets the event loop run between them (`handlers.prepare_steps`)."""
        return handlers.prepare_steps(
            context_of(tenant, source), source.format, lines, incomplete=incomplete, mapping=source.column_mapping
        )

    async def prepare_batch(
        self, tenant: str, source: SourceSettings, lines: Sequence[bytes]
    ) -> handlers.PreparedBatch:
        """`prepare` for a link: in the worker process for SMDR when there is one, else in steps that let
        the event loop run every few hundred records (the previous batch's store and the outbox
        relay need it; done in one go, the ~130 ms of a 1 MiB batch held both back)."""
        if self.worker is not None and source.format is RecordFormat.AVAYA_SMDR:
            batch = await self.worker.prepare(context_of(tenant, source), source.format, lines)
            if batch is not None:
                return batch
        steps = self.prepare_steps(tenant, source, lines)
        while (prepared := handlers.next_step(steps)) is None:
            await asyncio.sleep(0)
        return prepared

    async def store(
        self, tenant: str, source: SourceSettings, batch: handlers.PreparedBatch, *, location: str
    ) -> handlers.IngestOutcome:
        """Store a prepared batch in its own transaction, after the source's previous batch (`batch_lock`)."""
        # One span per batch: every event of the batch carries its trace, and the link's work shows in traces.
        with telemetry.tracer().start_as_current_span(
            "collector ingest", attributes={"tarifa.source": source.id, "tarifa.records": len(batch.lines)}
        ):
            async with batch_lock(tenant, source.id), self.units() as uow:
                outcome = await handlers.store_batch(
                    uow,
                    SqlCollectorStore(uow.session),
                    context_of(tenant, source),
                    batch,
                    location=location,
                    now=utcnow(),
                )
        if outcome.rejected:
            log.info("source %s/%s: %d record(s) rejected at %s", tenant, source.id, outcome.rejected, location)
        return outcome

    async def connection(
        self, tenant: str, source_id: str, connection: Connection, peer: str | None = None, error: str | None = None
    ) -> None:
        async with self.units() as uow:
            if await uow.session.get(SourceRow, (tenant, source_id)) is None:
                return  # deleted meanwhile: its link is stopping, no health to keep
            await handlers.record_connection(
                SqlCollectorStore(uow.session),
                tenant,
                source_id,
                connection,
                peer,
                utcnow(),
                error[:500] if error else None,
            )

    async def delete_source(self, tenant: str, source_id: str) -> int:
        """Delete a source's configuration (its archive stays); return how many waiting calls went out first."""
        async with self.units() as uow:
            repository = SqlSourceRepository(uow.session)
            source = settings_of(await repository.get(tenant, source_id))
            store = SqlCollectorStore(uow.session)
            calls = await handlers.retire_source(
                uow,
                store,
                context_of(tenant, source),
                smdr_link=source.kind in (SourceKind.SMDR_LISTENER, SourceKind.SMDR_CLIENT),
                now=utcnow(),
            )
            await repository.delete(tenant, source_id)
        log.info("source %s/%s deleted (%d waiting calls published first)", tenant, source_id, len(calls))
        return len(calls)

    async def sources(self) -> list[SourceRow]:
        async with self.units() as uow:
            return await SqlSourceRepository(uow.session).list()

    async def watch(self, row: SourceRow, *, link_grace: timedelta, leg_timeout: timedelta) -> None:
        """One watchdog round for one source: alerts for silence or a dropped link, stale legs flushed."""
        source = settings_of(row)
        now = utcnow()
        async with self.units() as uow:
            store = SqlCollectorStore(uow.session)
            health = Health(
                kind=source.kind,
                quiet_minutes=source.quiet_minutes,
                created_at=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=now.tzinfo),
                last_record_at=None,
                connection=Connection.IDLE,
                connection_changed_at=None,
            )
            await handlers.check_health(uow, store, health, row.tenant, row.id, now=now, link_grace=link_grace)
            if source.kind in (SourceKind.SMDR_LISTENER, SourceKind.SMDR_CLIENT):
                await handlers.flush_stale_legs(
                    uow, store, context_of(row.tenant, source), received_before=now - leg_timeout, now=now
                )
