"""Benchmark: a tariff for a tenant whose calls all wait for one — the settings transaction, then the retry.

Run: .venv/bin/python bench/rater_retry.py [--calls 20000] [--rerate]
Stores `--calls` collected calls on a fresh SQLite file with no tariff (all wait, `no_tariff`;
not timed), then times the transaction that loads the tariff and assigns it (what the API
request holds SQLite's write lock for), and the retry that rates the waiting calls: with queued
retries, batch after batch through `Rater.work_retry` (each its own transaction); with code
that still rates inside the request (`Rater.retry_unrated`), that time is the request's own.
Reports wall seconds, CPU µs per call and calls/s for each part, and checks every call is rated
once. `--rerate` then loads a dearer price list and re-rates the month (`Rater.rerate`, chunks
of its own transaction each), the way a tariff correction does: every call gets version 2, its
rating row the previous amount; timed the same way, and checked.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import col, func, select

from tarifa_common import contracts
from tarifa_common.db import migrate
from tarifa_common.events import Event, deterministic_id
from tarifa_rater import handlers
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import CallRow, RatingRow
from tarifa_rater.bootstrap import MIGRATIONS, Rater, build
from tarifa_rater.config import RaterSettings
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import parse_rates_csv

PRICE_LIST = """destination,call_class,price_per_minute,reduced_price_per_minute,connect_fee
Local,local,0.12,0.06,0.05
Mobile VC1,vc1,0.60,0.40,0.05
"""
DEARER = """destination,call_class,price_per_minute,reduced_price_per_minute,connect_fee
Local,local,0.15,0.08,0.05
Mobile VC1,vc1,0.70,0.50,0.05
"""
TENANT = "bench"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cdr_event(index: int) -> Event:
    started = datetime(2026, 11, 23, 15, 0, tzinfo=UTC) + timedelta(seconds=index)
    cdr = contracts.CollectedCdr(
        tenant=TENANT,
        source_id="pbx-hq",
        source_kind="avaya_smdr",
        record_id=f"r{index}",
        call_id=f"c{index}",
        started_at=started,
        local_start=(started - timedelta(hours=3)).replace(tzinfo=None).isoformat(),
        time_zone="America/Sao_Paulo",
        answered_at=started,
        ended_at=started + timedelta(seconds=60),
        duration_seconds=60,
        billable_seconds=60,
        direction=contracts.Direction.OUTBOUND,
        disposition=contracts.Disposition.ANSWERED,
        caller="2001",
        dialled="33334444",
        extension="2001",
        raw="smdr line",
    )
    return Event(
        type=contracts.CDR_COLLECTED,
        source="tarifa/collector",
        tenant=TENANT,
        subject=cdr.record_id,
        id=deterministic_id(TENANT, "pbx-hq", cdr.record_id),
        data=cdr.model_dump(mode="json"),
    )


async def store_waiting_calls(rater: Rater, count: int) -> None:
    async with rater.runtime.units() as uow:
        await sql.save_extension(uow.session, TENANT, DirectoryEntry("2001", line_id="line-1"))
    for start in range(0, count, 1000):
        events = [cdr_event(n) for n in range(start, min(start + 1000, count))]
        async with rater.runtime.units() as uow:
            await handlers.rate_collected_cdrs(events, uow, rater.store(uow), rater.numbering)


async def rerate_month(rater: Rater, calls: int) -> str:
    """A dearer price list from 2 November, then the month re-rated: every call's version 2 (the report's line)."""
    async with rater.runtime.units() as uow:
        await sql.save_plan_version(
            uow.session, TENANT, "standard", datetime(2026, 11, 2, tzinfo=UTC), parse_rates_csv(DEARER)
        )
    scope = handlers.RerateScope(TENANT, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    cpu0, wall0 = cpu(), time.perf_counter()
    progress = await rater.rerate(scope)
    rerate_cpu, rerate_wall = cpu() - cpu0, time.perf_counter() - wall0
    async with rater.runtime.units() as uow:
        second = (
            await uow.session.exec(
                select(func.count())
                .select_from(RatingRow)
                .where(RatingRow.version == 2, col(RatingRow.previous_amount).is_not(None))
            )
        ).one()
    assert progress.changed == second == calls, (progress.changed, second, calls)
    return (
        f"  re-rate of the month ({calls} calls to version 2, difference {progress.difference}): "
        f"{rerate_wall:.3f} s wall, {calls / rerate_wall:,.0f} calls/s, {rerate_cpu / calls * 1e6:.0f} µs CPU per call"
    )


async def main(calls: int, rerate: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = RaterSettings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'rater.db'}",
            kafka_bootstrap_servers="127.0.0.1:1",
            jwt_secret="b" * 48,
        )
        rater = build(settings, consume=False)
        await migrate(rater.runtime.engine, MIGRATIONS, "rater")
        await store_waiting_calls(rater, calls)
        queued = hasattr(rater, "work_retry")

        cpu0, wall0 = cpu(), time.perf_counter()
        async with rater.runtime.units() as uow:  # the API request's transaction
            await sql.save_plan_version(
                uow.session, TENANT, "standard", datetime(2026, 11, 1, tzinfo=UTC), parse_rates_csv(PRICE_LIST)
            )
            await sql.assign_plan(uow.session, TENANT, "tenant", "*", "standard")
            if queued:
                await rater.request_retry(uow, TENANT, handlers.FOR_TARIFF)
            else:
                await rater.retry_unrated(uow, TENANT, handlers.FOR_TARIFF)  # type: ignore[attr-defined]
        request_cpu, request_wall = cpu() - cpu0, time.perf_counter() - wall0

        cpu0, wall0 = cpu(), time.perf_counter()
        batches = 0
        if queued:
            while (row := await rater.work_retry(TENANT)) is not None:
                batches += 1
                if row.state == "done":
                    break
        retry_cpu, retry_wall = cpu() - cpu0, time.perf_counter() - wall0
        rerated = await rerate_month(rater, calls) if rerate else ""

        async with rater.runtime.units() as uow:
            rated = (
                await uow.session.exec(
                    select(func.count()).select_from(CallRow).where(CallRow.tenant == TENANT, CallRow.status == "rated")
                )
            ).one()
            ratings = (
                await uow.session.exec(select(func.count()).select_from(RatingRow).where(RatingRow.version == 1))
            ).one()
        await rater.runtime.engine.dispose()
    assert rated == ratings == calls, (rated, ratings, calls)
    print(f"{'queued retry' if queued else 'retry inside the request'}: {calls} waiting calls, all rated once")
    print(f"  settings transaction (the request): {request_wall:.3f} s wall, {request_cpu:.3f} s CPU")
    if queued:
        print(
            f"  retry, {batches} batches of {rater.retry_chunk_size}: {retry_wall:.3f} s wall, "
            f"{calls / retry_wall:,.0f} calls/s, {retry_cpu / calls * 1e6:.0f} µs CPU per call"
        )
    else:
        print(
            f"  (the retry ran inside it: {calls / request_wall:,.0f} calls/s, "
            f"{request_cpu / calls * 1e6:.0f} µs CPU per call)"
        )
    if rerated:
        print(rerated)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rerate", action="store_true", help="then re-rate the month after a price change")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rerate))
