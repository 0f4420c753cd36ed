"""Benchmark: an urgent alert fanned out to 10,000 recipients, while alert ingestion goes on beside it.

Seeds R recipients (e-mail and phone) answering for one source, raises an urgent alert, and
times the decision and the fan-out that writes the 2 x R notification-log rows; meanwhile a second task ingests
alerts in consumer-sized transactions and reports the slowest one (a stalled consumer would
show here). Nothing is sent: delivery runs later, in batches of its own transactions.

    .venv/bin/python bench/notifier_fanout.py [--recipients 10000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlmodel import func, select

from tarifa_common import alerts
from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.tables import NotificationRow, RecipientRow, ResponsibilityRow
from tarifa_notifier.bootstrap import MIGRATIONS
from tarifa_notifier.domain.alerts import GroupPolicy


def raised(fingerprint: str, object_id: str, severity: alerts.Severity) -> alerts.AlertRaised:
    return alerts.AlertRaised(
        fingerprint=fingerprint,
        severity=severity,
        object=alerts.AlertObject(kind="source", id=object_id),
        summary="No call records",
    )


async def main(recipients: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/notifier.db"
        engine = make_engine(url)
        await migrate(engine, MIGRATIONS, "notifier")
        units = UnitOfWorkFactory(session_factory(engine))
        async with units() as uow:
            for n in range(recipients):
                uow.session.add(
                    RecipientRow(
                        id=f"r{n}", tenant="acme", name=f"R{n}", email=f"r{n}@acme.test", phone=f"+55119{n:08d}"
                    )
                )
                uow.session.add(
                    ResponsibilityRow(tenant="acme", recipient_id=f"r{n}", object_kind="source", object_id="pbx-hq")
                )
        now = utcnow()
        async with units() as uow:
            await handlers.raise_alert(
                SqlNotifierStore(uow.session),
                "acme",
                raised("c/source-silent/pbx-hq", "pbx-hq", alerts.Severity.URGENT),
                now,
            )
        policy = GroupPolicy(group_wait=timedelta(0))
        latencies: list[float] = []
        done = asyncio.Event()

        async def ingest() -> None:
            n = 0
            while not done.is_set():
                started = time.perf_counter()
                async with units() as uow:
                    store = SqlNotifierStore(uow.session)
                    for _ in range(100):
                        n += 1
                        await handlers.raise_alert(
                            store, "beta", raised(f"c/x/p{n % 500}", f"p{n % 500}", alerts.Severity.STANDARD), utcnow()
                        )
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0)

        ingesting = asyncio.ensure_future(ingest())
        await asyncio.sleep(1.0)
        before = list(latencies)

        @asynccontextmanager
        async def open_store() -> AsyncIterator[SqlNotifierStore]:
            async with units() as uow:
                yield SqlNotifierStore(uow.session)

        started = time.perf_counter()
        async with units() as uow:
            await handlers.flush_groups(SqlNotifierStore(uow.session), policy, now + timedelta(seconds=1))
        decide_seconds = time.perf_counter() - started
        await handlers.fan_out(open_store)
        flush_seconds = time.perf_counter() - started
        await asyncio.sleep(1.0)
        done.set()
        await ingesting
        async with units() as uow:
            rows = (await uow.session.exec(select(func.count()).select_from(NotificationRow))).one()
        during = latencies[len(before) :]
        kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        print(
            f"{kind}: fan-out to {recipients} recipients: decided in {decide_seconds:.2f} s, "
            f"{rows} log rows written in {flush_seconds:.2f} s (250 recipients per transaction)"
        )
        print(
            f"ingest transactions of 100 alerts: median before {sorted(before)[len(before) // 2] * 1000:.0f} ms, "
            f"slowest during/after the fan-out {max(during) * 1000:.0f} ms ({len(during)} transactions)"
        )
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.recipients, args.database_url))
