"""Throughput of the shared delivery path on the embedded broker: what every service builds on.

    .venv/bin/python bench/delivery.py [--events 50000] [--postgres] [--outbox-only]

1. publish: events/s through `Publisher.send_many` (CloudEvents encoding included);
2. outbox: events/s written by units of work and published by the relay, each part with the
   CPU time of this process per event (the broker is another process and not counted): the
   figure to compare on a shared machine, where wall-clock rates are noisy;
3. consume: events/s through `EventConsumer` (decode, one transaction per batch, inbox claim,
   a handler that inserts one row, offset commit) on SQLite, and on PostgreSQL with --postgres,
   with the CPU time of this process per event.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "libs/common/tests/processes"))

import sqlalchemy as sa
from tally import Tally, count, create_tables, record

from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.db import make_engine, session_factory
from tarifa_common.events import Event, encode
from tarifa_common.kafka import EventConsumer, OutboxRelay, Publisher, Subscription, ensure_topics
from tarifa_common.topics import Topic
from tarifa_common.unit_of_work import UnitOfWork, UnitOfWorkFactory

TYPE = "tarifa.bench.happened.v1"


def events(n: int) -> list[Event]:
    return [
        Event(
            type=TYPE,
            source="tarifa/bench",
            tenant="acme",
            subject=f"s-{i % 64}",
            data={"n": i, "caller": "5511987654321", "dialled": "01155213456789", "seconds": 36},
        )
        for i in range(n)
    ]


async def bench(n: int, database_url: str, label: str, broker: EmbeddedBroker, outbox_only: bool) -> None:
    topic = f"bench-{uuid.uuid4().hex[:6]}"
    await ensure_topics(broker.bootstrap_servers, [Topic(topic, "s", 6, 1, (TYPE,), "bench")])
    publisher = Publisher(broker.bootstrap_servers, "bench")
    await publisher.start()
    batch = events(n)

    started = time.perf_counter()
    for i in range(0, n, 5000):
        await publisher.send_many([(topic, encode(e, e.subject)) for e in batch[i : i + 5000]])
    print(f"publish            {n / (time.perf_counter() - started):>9,.0f} events/s")

    engine = make_engine(database_url)
    await create_tables(engine)
    units = UnitOfWorkFactory(session_factory(engine))
    out_topic = f"{topic}-out"
    # A backlog: rows written by units of work with no relay in the process, then drained by a
    # fresh relay, which reads every row from the table (a restart, or another process's rows).
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, n, 500):
        async with units() as uow:
            for e in batch[i : i + 500]:
                uow.emit(e, out_topic, e.subject)
    written, cpu_written = time.perf_counter() - started, time.process_time() - cpu_started
    relay = OutboxRelay(UnitOfWorkFactory(session_factory(engine)), publisher, batch_size=2000)
    relay_started, cpu_relay_started = time.perf_counter(), time.process_time()
    await relay.drain()
    relayed, cpu_relayed = time.perf_counter() - relay_started, time.process_time() - cpu_relay_started
    print(
        f"outbox [{label:<8}] {n / (written + relayed):>9,.0f} events/s, "
        f"{(cpu_written + cpu_relayed) / n * 1e6:.1f} us CPU per event "
        f"(write {n / written:,.0f}/s {cpu_written / n * 1e6:.1f} us; "
        f"relay of a backlog {n / relayed:,.0f}/s {cpu_relayed / n * 1e6:.1f} us)"
    )
    # The same rows written through the relay's own units of work: it takes the records from the
    # hand-off (as many as it holds: 20,000 by default) instead of reading them back.
    held = OutboxRelay(held_units := UnitOfWorkFactory(session_factory(engine)), publisher, batch_size=2000)
    part = batch[: held.handoff.limit] if hasattr(held, "handoff") else []  # previous code: no hand-off
    for i in range(0, len(part), 500):
        async with held_units() as uow:
            for e in part[i : i + 500]:
                uow.emit(e, out_topic, e.subject)
    relay_started, cpu_relay_started = time.perf_counter(), time.process_time()
    await held.drain()
    relayed, cpu_relayed = time.perf_counter() - relay_started, time.process_time() - cpu_relay_started
    if part:
        print(
            f"outbox [{label:<8}] relay from the hand-off {len(part) / relayed:,.0f}/s "
            f"{cpu_relayed / len(part) * 1e6:.1f} us CPU per event ({held.read_back} read back)"
        )
    # Live, as in a service: the relay runs beside the units of work and is woken by each commit.
    live_units = UnitOfWorkFactory(session_factory(engine), on_emitted=lambda: live.wake())
    live = OutboxRelay(live_units, publisher, poll_seconds=0.05)
    task = asyncio.create_task(live.run())
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, n, 500):
        async with live_units() as uow:
            for e in batch[i : i + 500]:
                uow.emit(e, out_topic, e.subject)
        await asyncio.sleep(0)  # let the relay take its turn, as a service's other tasks do
    while live.published < n:
        await asyncio.sleep(0.005)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    live.stop()
    await task
    print(
        f"outbox [{label:<8}] {n / elapsed:>9,.0f} events/s, {cpu / n * 1e6:.1f} us CPU per event "
        "(live: write and relay together, relay woken by each commit)"
    )

    if outbox_only:
        await publisher.stop()
        await engine.dispose()
        return

    async def record_all(batch_events: list[Event], uow: UnitOfWork) -> None:
        connection = await uow.session.connection()
        await connection.execute(sa.insert(Tally), [{"event_id": e.id, "note": ""} for e in batch_events])

    for kind, subscription in (
        ("per-event", Subscription(f"bench-{uuid.uuid4().hex[:6]}", (topic,), handlers={TYPE: record})),
        ("batch", Subscription(f"bench-{uuid.uuid4().hex[:6]}", (topic,), batch_handlers={TYPE: record_all})),
    ):
        async with engine.begin() as connection:
            await connection.execute(sa.delete(Tally))
        consumer = EventConsumer(
            subscription,
            units,
            publisher,
            bootstrap_servers=broker.bootstrap_servers,
            client_id="bench",
            batch_size=2000,
            session_timeout_ms=3000,
            rebalance_timeout_ms=3000,
        )
        await consumer.start()
        task = asyncio.create_task(consumer.run())
        while consumer.stats.processed == 0:
            await asyncio.sleep(0.01)
        started, cpu_started, first = time.perf_counter(), time.process_time(), consumer.stats.processed
        while consumer.stats.processed < n:
            await asyncio.sleep(0.05)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        consumer.stop()
        await task
        assert await count(engine) == n
        print(
            f"consume [{label:<8}] {(n - first) / elapsed:>9,.0f} events/s, "
            f"{cpu / (n - first) * 1e6:.1f} us CPU per event ({kind} handler; inbox + 1 row each)"
        )
    await publisher.stop()
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--outbox-only", action="store_true", help="measure publish and outbox, not consume")
    args = parser.parse_args()
    broker = EmbeddedBroker(free_port())
    await broker.start()
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            await bench(args.events, f"sqlite+aiosqlite:///{tmp}/bench.db", "sqlite", broker, args.outbox_only)
        if args.postgres:
            import asyncpg

            name = f"tarifa_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                await bench(args.events, url, "postgres", broker, args.outbox_only)
            finally:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                await admin.close()
    finally:
        await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
