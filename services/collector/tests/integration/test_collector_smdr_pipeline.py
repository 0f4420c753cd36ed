"""A link prepares its next SMDR batch while the previous one is stored: what that overlap must not break.

Each test holds the source's batch lock (what orders a source's transactions), so the batch the
link read first stays in flight, not committed, while the link reads and prepares the next.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC

import pytest
import pytest_asyncio
from collector_harness import Collector
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_collector.adapters.intake import Intake, batch_lock
from tarifa_collector.adapters.links import PIPELINE_DEPTH, READ_SIZE, STREAM_LIMIT, SmdrStream
from tarifa_collector.adapters.prepare_worker import PrepareWorker
from tarifa_collector.adapters.tables import CallRow
from tarifa_collector.domain.sources import RecordFormat, SourceKind, SourceSettings
from tarifa_collector.fake_ipoffice import smdr_line
from tarifa_collector.handlers import PREPARE_STEP
from tarifa_common import topics
from tarifa_common.contracts import CDR_COLLECTED, CollectedCdr
from tarifa_common.messaging import OutboxEntry
from tarifa_common.testing import eventually

pytestmark = pytest.mark.broker


@dataclass
class Link:
    """A real TCP connection into an `SmdrStream` of the collector under test."""

    stream: SmdrStream
    writer: asyncio.StreamWriter
    received: asyncio.Future[int]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_up_to(self, offset: int, *, waiting: int) -> None:
        """Wait until the link has read `offset` bytes and `waiting` prepared batches wait in its queue."""

        async def read() -> None:
            assert (self.stream.bytes_read, self.stream.queue.qsize()) == (offset, waiting)

        await eventually(read, timeout=10)

    async def close(self) -> int:
        self.writer.close()
        await self.writer.wait_closed()
        return await asyncio.wait_for(self.received, timeout=30)


@asynccontextmanager
async def smdr_link(
    collector: Collector,
    source_id: str,
    *,
    read_size: int = READ_SIZE,
    depth: int = PIPELINE_DEPTH,
    worker: PrepareWorker | None = None,
) -> AsyncIterator[Link]:
    await collector.add_source(id=source_id, kind="http", format="avaya_smdr")
    source = SourceSettings(id=source_id, kind=SourceKind.HTTP, format=RecordFormat.AVAYA_SMDR)
    stream = SmdrStream(
        Intake(collector.runtime.units, worker), collector.tenant, source, "tcp test", depth=depth, read_size=read_size
    )
    received: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.set_result(await stream.run(reader))
        except Exception as error:
            received.set_exception(error)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=STREAM_LIMIT)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield Link(stream, writer, received)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


@pytest_asyncio.fixture(params=["prepared in the service", "prepared in a worker"])
async def worker(request: pytest.FixtureRequest) -> AsyncIterator[PrepareWorker | None]:
    """Each pipeline test runs with the batches prepared on the event loop and in a worker process."""
    if request.param == "prepared in the service":
        yield None
        return
    prepare = PrepareWorker(gc_young_threshold=10_000)
    try:
        yield prepare
    finally:
        prepare.close()


def assert_prepared_by(worker: PrepareWorker | None, batches: int) -> None:
    """With a worker, it prepared at least `batches` batches (the test ran through it, not around it)."""
    if worker is not None:
        assert worker.prepared >= batches
        assert worker.fallbacks == 0


async def published_calls(collector: Collector) -> list[CollectedCdr]:
    """Every call on cdr.raw once the outbox is empty (so none is still on its way)."""

    async def drained() -> None:
        async with AsyncSession(collector.runtime.engine) as session:
            assert (await session.exec(select(func.count()).select_from(OutboxEntry))).one() == 0

    await eventually(drained)
    events = [e for e in await collector.events(topics.CDR_RAW.name) if e.type == CDR_COLLECTED]
    return [CollectedCdr.model_validate(e.data) for e in events]


async def test_a_last_record_read_while_its_first_leg_is_still_being_stored_joins_it_in_one_call(
    collector: Collector, worker: PrepareWorker | None
) -> None:
    first_batch = smdr_line(5000, connected="00:00:40", continuation=1) + smdr_line(5001, start="2026/11/02 09:20:00")
    second_batch = smdr_line(5000, connected="00:02:00", ring=48, party1="E204", caller="204")
    async with smdr_link(collector, "pbx-pipe", worker=worker) as link:
        async with batch_lock(collector.tenant, "pbx-pipe"):
            await link.send(first_batch)
            await link.read_up_to(len(first_batch), waiting=0)  # taken by the store step, not committed
            await link.send(second_batch)
            # prepared (assembled from its own batch's leg only) while the first batch is in flight
            await link.read_up_to(len(first_batch) + len(second_batch), waiting=1)
        assert await link.close() == 3

    calls = {c.call_id: c for c in await published_calls(collector)}
    assert sorted(calls) == ["5000", "5001"]
    transferred = calls["5000"]
    assert transferred.billable_seconds == 160  # both legs' talk: the earlier leg was found once it committed
    assert len(transferred.legs) == 2
    assert (transferred.extension, transferred.answered_by) == ("203", "204")
    assert transferred.complete
    assert_prepared_by(worker, 2)


async def test_a_buffer_resent_while_its_first_copy_is_in_flight_publishes_each_call_once(
    collector: Collector, worker: PrepareWorker | None
) -> None:
    buffer = b"".join(
        [smdr_line(6000 + n) for n in range(5)]
        + [smdr_line(6010, connected="00:00:40", continuation=1), smdr_line(6010, connected="00:01:00", ring=30)]
    )
    async with smdr_link(collector, "pbx-resend", worker=worker) as link:
        async with batch_lock(collector.tenant, "pbx-resend"):
            await link.send(buffer)
            await link.read_up_to(len(buffer), waiting=0)
            await link.send(buffer)  # IP Office re-sends its buffer: the same records, the same final ones
            await link.read_up_to(2 * len(buffer), waiting=1)
        assert await link.close() == 14  # 7 accepted, then 7 duplicates

    calls = await published_calls(collector)
    assert sorted(c.call_id for c in calls) == ["6000", "6001", "6002", "6003", "6004", "6010"]
    assert len({c.record_id for c in calls}) == len(calls) == 6
    assert next(c for c in calls if c.call_id == "6010").billable_seconds == 100
    health = (await collector.source("pbx-resend"))["health"]
    assert (health["records_today"], health["rejects_today"]) == (7, 0)
    assert_prepared_by(worker, 2)


async def test_a_slow_store_stops_the_reader_at_the_queue_bound_and_loses_nothing(
    collector: Collector, worker: PrepareWorker | None
) -> None:
    records = 3000
    payload = b"".join(smdr_line(7000 + n, fields=(17, 30, 31, 34)[n % 4]) for n in range(records))
    read_size = 16 * 1024
    async with smdr_link(collector, "pbx-slow", read_size=read_size, depth=1, worker=worker) as link:
        async with batch_lock(collector.tenant, "pbx-slow"):  # the database "takes forever"
            sending = asyncio.ensure_future(link.send(payload))

            async def held_back() -> None:
                assert link.stream.held_back

            await eventually(held_back, timeout=10)
            # One batch in the store step, `depth` waiting, one in the reader's hand: then it reads no more.
            assert link.stream.queue.qsize() == 1
            assert link.stream.bytes_read <= 3 * read_size < len(payload)
        await sending
        assert await link.close() == records

    calls = await published_calls(collector)
    assert sorted(int(c.call_id) for c in calls) == list(range(7000, 7000 + records))
    assert_prepared_by(worker, 3)


async def test_a_batch_prepared_in_steps_publishes_every_call_once_at_its_collection_time(
    collector: Collector, worker: PrepareWorker | None
) -> None:
    # More records than one prepare step, a duplicate and a transfer whose legs fall in different steps.
    lines = [smdr_line(7000 + n) for n in range(2 * PREPARE_STEP + 100)]
    # Line PREPARE_STEP - 1 is parsed before the first yield, line PREPARE_STEP + 51 after it (when the
    # link reads them in one batch: loopback may hand them over in smaller reads; the unit test of
    # `prepare_steps` holds the split itself).
    lines.insert(PREPARE_STEP - 2, smdr_line(9000, connected="00:00:40", continuation=1))
    lines.insert(PREPARE_STEP + 50, smdr_line(9000, connected="00:01:00", ring=30, party1="E204"))
    lines.append(lines[10])
    async with smdr_link(collector, "pbx-steps", worker=worker) as link:
        await link.send(b"".join(lines))
        assert await link.close() == len(lines)

    calls = {c.call_id: c for c in await published_calls(collector)}
    assert len(calls) == 2 * PREPARE_STEP + 101  # every call once, the duplicate line not again
    assert calls["9000"].billable_seconds == 100
    assert len(calls["9000"].legs) == 2
    events = [e for e in await collector.events(topics.CDR_RAW.name) if e.type == CDR_COLLECTED]
    async with AsyncSession(collector.runtime.engine) as session:
        collected = {row.record_id: row.collected_at for row in (await session.exec(select(CallRow))).all()}
    assert len(collected) == len(events) == len(calls)
    for event in events:  # an event's time is its batch's collection time, the one its call row keeps
        stored = collected[event.id]
        assert event.time == (stored if stored.tzinfo else stored.replace(tzinfo=UTC))
    assert_prepared_by(worker, 1)


async def test_a_prepare_worker_that_dies_costs_no_record_and_the_next_batch_starts_a_new_one(
    collector: Collector,
) -> None:
    worker = PrepareWorker()
    try:
        async with smdr_link(collector, "pbx-killed", worker=worker) as link:
            first = smdr_line(8000)
            await link.send(first)
            await link.read_up_to(len(first), waiting=0)
            pid = await worker.pid()
            os.kill(pid, signal.SIGKILL)  # the worker is killed (out of memory, an operator) between batches
            second = smdr_line(8001) + smdr_line(8002, connected="00:00:40", continuation=1)
            await link.send(second)
            await link.read_up_to(len(first) + len(second), waiting=0)
            third = smdr_line(8002, connected="00:01:00", ring=30)
            await link.send(third)
            assert await link.close() == 4
        calls = {c.call_id: c for c in await published_calls(collector)}
        assert sorted(calls) == ["8000", "8001", "8002"]
        assert calls["8002"].billable_seconds == 100  # its legs in two batches, across the restart
        assert worker.fallbacks == 1  # the batch the dead worker had was prepared in the service
        assert worker.prepared == 2  # the first batch, and the last one by a new worker
        assert await worker.pid() != pid
    finally:
        worker.close()
