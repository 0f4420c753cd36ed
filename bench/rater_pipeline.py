"""Benchmark: cdr.raw -> rated, stored and published on cdr.rated, through the real rater service runtime.

Run: .venv/bin/python bench/rater_pipeline.py [--calls 20000] [--postgres]
Starts the embedded broker on a free port, publishes `--calls` collected CDRs to cdr.raw (the
collector's part, not timed), then starts the rater (consumer, outbox relay) on a fresh SQLite
file, or on a fresh PostgreSQL database at 127.0.0.1:5432 with --postgres, and measures from
the moment its consumer holds its partitions until every call is stored and its cdr.rated
event acknowledged by the broker (checked afterwards: every call stored, outbox empty): the rater draining a backlog, as
after an outage. `--profile FILE` writes a cProfile of the timed part.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import func, select

from tarifa_common import contracts, topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.config import tune_garbage_collector
from tarifa_common.db import migrate
from tarifa_common.events import Event, deterministic_id, encode
from tarifa_common.kafka import Publisher, ensure_topics
from tarifa_common.messaging import OutboxEntry
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import CallRow
from tarifa_rater.bootstrap import MIGRATIONS, build
from tarifa_rater.config import RaterSettings
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import parse_rates_csv

PRICE_LIST = """destination,call_class,price_per_minute,reduced_price_per_minute,connect_fee
Local,local,0.12,0.06,0.05
Mobile VC1,vc1,0.60,0.40,0.05
Long distance,long_distance,0.30,,0.05
"""
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cdr_event(tenant: str, index: int) -> Event:
    started = datetime(2026, 11, 23, 15, 0, tzinfo=UTC) + timedelta(seconds=index)
    cdr = contracts.CollectedCdr(
        tenant=tenant,
        source_id="pbx-hq",
        source_kind="avaya_smdr",
        record_id=f"r{index}",
        call_id=f"c{index}",
        started_at=started,
        local_start=(started - timedelta(hours=3)).replace(tzinfo=None).isoformat(),
        time_zone="America/Sao_Paulo",
        duration_seconds=30 + index % 600,
        billable_seconds=index % 600,
        direction=contracts.Direction.OUTBOUND,
        disposition=contracts.Disposition.ANSWERED,
        caller=str(2000 + index % 50),
        dialled=("33334444", "987654321", "0 21 21 33334444")[index % 3],
        extension=str(2000 + index % 50),
        raw="bench",
    )
    return Event(
        type=contracts.CDR_COLLECTED,
        source="tarifa/collector",
        tenant=tenant,
        id=deterministic_id(tenant, "pbx-hq", f"r{index}"),
        data=cdr.model_dump(mode="json"),
    )


async def postgres_database() -> tuple[str, str]:
    import asyncpg

    name = f"tarifa_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def drop_postgres(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def run(calls: int, postgres: bool, batch: int, profile: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="rater-bench-"))
    broker = EmbeddedBroker(free_port(), log_file=work / "broker.log")
    await broker.start()
    pg_name = None
    if postgres:
        url, pg_name = await postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{work / 'rater.db'}"
    settings = RaterSettings(
        database_url=url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        jwt_secret="b" * 48,
        consumer_batch_size=batch,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=3000,
        outbox_poll_seconds=0.05,
        heartbeat_interval_seconds=30,
        log_level="WARNING",
    )
    tune_garbage_collector(settings)  # what `tarifa serve rater` does for its process
    rater = build(settings)
    tenant = "bench"
    publisher = Publisher(broker.bootstrap_servers, "bench-collector")
    profiler = cProfile.Profile() if profile else None
    try:
        await ensure_topics(broker.bootstrap_servers, topics.ALL, dead_letter_groups=["rater"])
        await publisher.start()
        began = time.perf_counter()
        for start in range(0, calls, 5000):  # in chunks, so that the bench's own memory stays small
            chunk = range(start, min(start + 5000, calls))
            await publisher.send_many([("cdr.raw", encode(cdr_event(tenant, i), "pbx-hq")) for i in chunk])
        published = time.perf_counter() - began
        await migrate(rater.runtime.engine, MIGRATIONS, "rater")
        async with rater.runtime.units() as uow:
            await sql.save_plan_version(
                uow.session, tenant, "std", datetime(2026, 1, 1, tzinfo=UTC), parse_rates_csv(PRICE_LIST)
            )
            await sql.assign_plan(uow.session, tenant, "tenant", "*", "std")
            for n in range(50):
                await sql.save_extension(uow.session, tenant, DirectoryEntry(str(2000 + n), line_id=f"line-{n}"))
        await rater.runtime.start()
        while not all(c.assigned.is_set() for c in rater.runtime.consumers):
            await asyncio.sleep(0.01)
        began = time.perf_counter()
        cpu_began = _cpu_seconds()
        if profiler is not None:
            profiler.enable()
        # Watch the consumer's and the relay's counters, not the database: a query every few
        # milliseconds would compete with the rater for SQLite's one connection.
        [consumer] = rater.runtime.consumers
        while consumer.stats.processed < calls:
            await asyncio.sleep(0.01)
        rated = time.perf_counter() - began
        while rater.runtime.relay.published < calls:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        cpu = _cpu_seconds() - cpu_began
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        async with rater.runtime.units() as uow:
            stored = (await uow.session.exec(select(func.count()).select_from(CallRow))).one()
            waiting = (await uow.session.exec(select(func.count()).select_from(OutboxEntry))).one()
        assert (stored, waiting) == (calls, 0), f"{stored} calls stored, {waiting} events still in the outbox"
        kind = "PostgreSQL" if postgres else "SQLite"
        print(f"{kind}: {calls} calls in {elapsed:.1f}s = {calls / elapsed:,.0f} calls/s cdr.raw -> stored + cdr.rated")
        print(
            f"  CPU of this process meanwhile: {cpu:.1f}s = {cpu / calls * 1e6:,.0f} µs per call "
            f"(all threads; steadier than the wall clock on a loaded machine)"
        )
        print(f"  every call stored after {rated:.1f}s, every cdr.rated event acknowledged after {elapsed:.1f}s")
        print(f"  (publishing the {calls} CDRs to cdr.raw beforehand took {published:.1f}s; batch size {batch})")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  max RSS of this process (rater + bench client; the broker is another process): {rss:.0f} MiB")
    finally:
        await publisher.stop()
        await rater.runtime.stop()
        await broker.stop()
        if pg_name:
            await drop_postgres(pg_name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--profile", help="write a cProfile of the timed part to this file")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.postgres, args.batch, args.profile))


if __name__ == "__main__":
    main()
