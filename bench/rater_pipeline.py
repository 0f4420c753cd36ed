"""Benchmark: cdr.raw -> rated, stored and published on cdr.rated, through the real rater service runtime.

Run: .venv/bin/python bench/rater_pipeline.py [--calls 20000] [--postgres] [--processes N] [--sources K]
Starts the embedded broker on a free port, publishes `--calls` collected CDRs to cdr.raw (the
collector's part, not timed), then starts the rater (consumer, outbox relay) on a fresh SQLite
file, or on a fresh PostgreSQL database at 127.0.0.1:5432 with --postgres, and measures from
the moment its consumer holds its partitions until every call is stored and its cdr.rated
event acknowledged by the broker (checked afterwards: every call stored, outbox empty): the rater draining a backlog, as
after an outage. `--profile FILE` writes a cProfile of the timed part.

cdr.raw is keyed by source (6 partitions): one source's calls are one partition, which one
consumer works in order. `--sources K` spreads the calls over K sources chosen to fill the
partitions evenly; `--processes N` runs N rater processes (one consumer group, the production
scaling story: replicas) against the same database, each with its own consumer and relay, and
times from the moment every one of them holds its partitions (calls a first member rated before
the others joined are left out of the figure and counted separately).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from aiokafka.partitioner import DefaultPartitioner
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
from tarifa_rater.bootstrap import MIGRATIONS, Rater, build
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


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core: is it saturated?"""
    times = psutil.cpu_times()
    total = sum(times)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def busy_cores(began: tuple[float, float]) -> float:
    """How many cores, on average, the whole machine kept busy since `began` (every process)."""
    busy, total = machine_busy()
    cores = multiprocessing.cpu_count()
    return (busy - began[0]) / max(total - began[1], 1e-9) * cores


def spread_sources(count: int, partitions: int) -> list[str]:
    """`count` source ids whose keys fill the topic's partitions evenly (murmur2, as the publisher)."""
    if count == 1:
        return ["pbx-hq"]
    per_partition = -(-count // partitions)
    chosen: list[str] = []
    filled = dict.fromkeys(range(partitions), 0)
    index = 0
    while len(chosen) < count:
        name = f"pbx-{index}"
        partition = partition_of(name, partitions)
        if filled[partition] < per_partition:
            filled[partition] += 1
            chosen.append(name)
        index += 1
    return chosen


def cdr_event(tenant: str, index: int, source_id: str = "pbx-hq") -> Event:
    started = datetime(2026, 11, 23, 15, 0, tzinfo=UTC) + timedelta(seconds=index)
    cdr = contracts.CollectedCdr(
        tenant=tenant,
        source_id=source_id,
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
        id=deterministic_id(tenant, source_id, f"r{index}"),
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


def bench_settings(url: str, bootstrap_servers: str, batch: int) -> RaterSettings:
    return RaterSettings(
        database_url=url,
        kafka_bootstrap_servers=bootstrap_servers,
        jwt_secret="b" * 48,
        consumer_batch_size=batch,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=3000,
        outbox_poll_seconds=0.05,
        heartbeat_interval_seconds=30,
        log_level="WARNING",
    )


async def seed(rater: Rater, tenant: str) -> None:
    await migrate(rater.runtime.engine, MIGRATIONS, "rater")
    async with rater.runtime.units() as uow:
        await sql.save_plan_version(
            uow.session, tenant, "std", datetime(2026, 1, 1, tzinfo=UTC), parse_rates_csv(PRICE_LIST)
        )
        await sql.assign_plan(uow.session, tenant, "tenant", "*", "std")
        for n in range(50):
            await sql.save_extension(uow.session, tenant, DirectoryEntry(str(2000 + n), line_id=f"line-{n}"))


async def check_stored(rater: Rater, calls: int, *, wait: float = 0.0, poll: float = 0.1) -> None:
    """Every call stored and the outbox empty (waiting up to `wait` seconds for the last relay deletes)."""
    deadline = time.perf_counter() + wait
    while True:
        async with rater.runtime.units() as uow:
            stored = (await uow.session.exec(select(func.count()).select_from(CallRow))).one()
            waiting = (await uow.session.exec(select(func.count()).select_from(OutboxEntry))).one()
        if (stored, waiting) == (calls, 0) or time.perf_counter() >= deadline:
            break
        await asyncio.sleep(poll)
    assert (stored, waiting) == (calls, 0), f"{stored} calls stored, {waiting} events still in the outbox"


async def publish_backlog(bootstrap_servers: str, tenant: str, calls: int, sources: list[str]) -> float:
    publisher = Publisher(bootstrap_servers, "bench-collector")
    await publisher.start()
    try:
        began = time.perf_counter()
        for start in range(0, calls, 5000):  # in chunks, so that the bench's own memory stays small
            chunk = range(start, min(start + 5000, calls))
            records = [
                ("cdr.raw", encode(cdr_event(tenant, i, sources[i % len(sources)]), sources[i % len(sources)]))
                for i in chunk
            ]
            await publisher.send_many(records)
        return time.perf_counter() - began
    finally:
        await publisher.stop()


async def run(
    calls: int, postgres: bool, batch: int, profile: str | None, processes: int = 1, source_count: int = 1
) -> None:
    work = Path(tempfile.mkdtemp(prefix="rater-bench-"))
    broker = EmbeddedBroker(free_port(), log_file=work / "broker.log")
    await broker.start()
    pg_name = None
    if postgres:
        url, pg_name = await postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{work / 'rater.db'}"
    settings = bench_settings(url, broker.bootstrap_servers, batch)
    tune_garbage_collector(settings)  # what `tarifa serve rater` does for its process
    rater = build(settings, consume=processes == 1)
    tenant = "bench"
    sources = spread_sources(source_count, topics.CDR_RAW.partitions)
    kind = "PostgreSQL" if postgres else "SQLite"
    try:
        await ensure_topics(broker.bootstrap_servers, topics.ALL, dead_letter_groups=["rater"])
        published = await publish_backlog(broker.bootstrap_servers, tenant, calls, sources)
        await seed(rater, tenant)
        if processes == 1:
            await run_here(rater, calls, kind, profile)
        else:
            await run_processes(rater, settings, calls, processes, kind)
        print(
            f"  (publishing the {calls} CDRs to cdr.raw beforehand took {published:.1f}s; batch size {batch}; "
            f"{len(sources)} source(s) as keys, {len(set(map(partition_of, sources)))} of "
            f"{topics.CDR_RAW.partitions} partitions)"
        )
    finally:
        await rater.runtime.stop()
        await broker.stop()
        if pg_name:
            await drop_postgres(pg_name)


def partition_of(source: str, partitions: int = topics.CDR_RAW.partitions) -> int:
    """The partition of cdr.raw a source's calls go to: murmur2 of the key, as the publisher's producer."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(source.encode(), every, every))


async def run_here(rater: Rater, calls: int, kind: str, profile: str | None) -> None:
    """One rater, in this process (the figures of docs/rater.md)."""
    profiler = cProfile.Profile() if profile else None
    await rater.runtime.start()
    while not all(c.assigned.is_set() for c in rater.runtime.consumers):
        await asyncio.sleep(0.01)
    began = time.perf_counter()
    cpu_began = _cpu_seconds()
    machine = machine_busy()
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
    cores = busy_cores(machine)
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    await check_stored(rater, calls)
    print(f"{kind}: {calls} calls in {elapsed:.1f}s = {calls / elapsed:,.0f} calls/s cdr.raw -> stored + cdr.rated")
    print(
        f"  CPU of this process meanwhile: {cpu:.1f}s = {cpu / calls * 1e6:,.0f} µs per call "
        f"(all threads; steadier than the wall clock on a loaded machine)"
    )
    print(f"  every call stored after {rated:.1f}s, every cdr.rated event acknowledged after {elapsed:.1f}s")
    print(
        f"  the whole machine meanwhile (broker, database, everyone): {cores:.2f} of "
        f"{multiprocessing.cpu_count()} cores busy"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  max RSS of this process (rater + bench client; the broker is another process): {rss:.0f} MiB")


# What each rater process reports in its slots of the shared array.
ASSIGNED, PROCESSED, PUBLISHED, CPU, RSS = range(5)
SLOTS = 5


def rater_process(
    url: str, bootstrap_servers: str, batch: int, index: int, go: Any, done: Any, shared: Any
) -> None:  # pragma: no cover - a child process of the bench
    asyncio.run(rater_child(url, bootstrap_servers, batch, index, go, done, shared))


async def rater_child(
    url: str, bootstrap_servers: str, batch: int, index: int, go: Any, done: Any, shared: Any
) -> None:
    settings = bench_settings(url, bootstrap_servers, batch)
    tune_garbage_collector(settings)
    rater = build(settings)
    while not go.is_set():
        await asyncio.sleep(0.01)
    await rater.runtime.start()
    [consumer] = rater.runtime.consumers
    base = index * SLOTS
    cpu_began = _cpu_seconds()
    try:
        while not done.is_set():
            shared[base + ASSIGNED] = float(bool(consumer.assigned.is_set()))
            shared[base + PROCESSED] = consumer.stats.processed
            shared[base + PUBLISHED] = rater.runtime.relay.published
            shared[base + CPU] = _cpu_seconds() - cpu_began
            await asyncio.sleep(0.01)
        shared[base + RSS] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        await rater.runtime.stop()


async def run_processes(rater: Rater, settings: RaterSettings, calls: int, processes: int, kind: str) -> None:
    """N rater processes, one consumer group: timed from the moment every member holds its partitions."""
    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Event()
    shared = context.Array("d", processes * SLOTS, lock=False)
    children = [
        context.Process(
            target=rater_process,
            args=(
                settings.database_url,
                settings.kafka_bootstrap_servers,
                settings.consumer_batch_size,
                i,
                go,
                done,
                shared,
            ),
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    await asyncio.sleep(3)  # let every child import and build its rater before any joins the group
    go.set()

    def column(slot: int) -> list[float]:
        return [shared[i * SLOTS + slot] for i in range(processes)]

    try:
        while not all(column(ASSIGNED)):
            await asyncio.sleep(0.005)
        began = time.perf_counter()
        machine = machine_busy()
        before = int(sum(column(PROCESSED)))
        cpu_before = column(CPU)
        while sum(column(PUBLISHED)) < calls:
            await asyncio.sleep(0.01)
        # Relays of several processes may send a row twice (SQLite): the counters alone do not say
        # that every row went out, the outbox does (queried only now, at the tail).
        await check_stored(rater, calls, wait=30, poll=0.01)
        elapsed = time.perf_counter() - began
        cores = busy_cores(machine)
        cpu = [after - start for after, start in zip(column(CPU), cpu_before, strict=True)]
        await asyncio.sleep(0.1)  # the children's last counters
        processed = [int(n) for n in column(PROCESSED)]
        published = [int(n) for n in column(PUBLISHED)]
    finally:
        done.set()
        for child in children:
            await asyncio.to_thread(child.join, 30)
    timed = calls - before
    print(
        f"{kind}, {processes} rater processes: {timed} calls in {elapsed:.1f}s = {timed / elapsed:,.0f} calls/s "
        f"cdr.raw -> stored + cdr.rated ({before} rated before every member held its partitions, left out)"
    )
    print(
        f"  CPU of the rater processes meanwhile: {sum(cpu):.1f}s = {sum(cpu) / timed * 1e6:,.0f} µs per call "
        f"(per process: {', '.join(f'{c:.1f}s' for c in cpu)})"
    )
    print(
        f"  the whole machine meanwhile (broker, database, everyone): {cores:.2f} of "
        f"{multiprocessing.cpu_count()} cores busy"
    )
    print(f"  records handled per process: {processed} (a record handled twice is a redelivery, a no-op)")
    doubled = sum(published) - calls
    note = f"{doubled} sent twice: two relays read the same outbox rows" if doubled > 0 else "none sent twice"
    print(f"  events published per process: {published} ({note})")
    print(f"  max RSS per rater process: {[round(r) for r in column(RSS)]} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--profile", help="write a cProfile of the timed part to this file (one process only)")
    parser.add_argument("--processes", type=int, default=1, help="rater processes in the consumer group")
    parser.add_argument("--sources", type=int, default=1, help="sources (cdr.raw keys) the calls come from")
    args = parser.parse_args()
    if args.processes > 1 and args.profile:
        parser.error("--profile profiles this process: use it with one rater process")
    asyncio.run(run(args.calls, args.postgres, args.batch, args.profile, args.processes, args.sources))


if __name__ == "__main__":
    main()
