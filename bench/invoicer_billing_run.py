"""Benchmark: a billing run over N contracts and M rated calls, issuing every invoice with UBL and EDIFACT.

Target (issue 6): 10,000 contracts and 1,000,000 calls in <= 60 s. Run at a smaller scale with
`--contracts` and `--calls`; the figure printed is invoices per second and the extrapolated time
for the target, which is only honest if per-invoice cost stays flat (it is one indexed UPDATE and
one GROUP BY per contract, so it should). Setup (bulk inserts) is not timed.

    .venv/bin/python bench/invoicer_billing_run.py --contracts 1000 --calls 100000
    .venv/bin/python bench/invoicer_billing_run.py --database-url postgresql+asyncpg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters.accounts import new_id
from tarifa_invoicer.adapters.store import store_factory
from tarifa_invoicer.adapters.tables import (
    BillingProfile,
    ChargeRow,
    ContractLine,
    ContractRow,
    Customer,
    UsageCall,
)
from tarifa_invoicer.bootstrap import MIGRATIONS
from tarifa_invoicer.domain.invoice import Period

TENANT = "bench"
CLASSES = ["local", "mobile", "long_distance", "international"]


async def setup(units: UnitOfWorkFactory, contracts: int, calls: int) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with units() as uow:
        uow.session.add(
            BillingProfile(
                tenant=TENANT,
                seller_name="Tarifa Telecom SAS",
                seller_vat_id="FR40123456789",
                seller_street="1 rue du Port",
                seller_city="Marseille",
                seller_postcode="13002",
                seller_country="FR",
                seller_endpoint="0009:12345678900011",
                seller_gln="5790000435975",
                default_tax_rate=Decimal("20"),
                currency="EUR",
                series="F",
                credit_series="CN",
                time_zone="UTC",
            )
        )
    customers = [str(uuid.uuid4()) for _ in range(max(1, contracts // 10))]
    contract_ids = [str(uuid.uuid4()) for _ in range(contracts)]
    async with units() as uow:
        connection = await uow.session.connection()
        await connection.execute(
            sa.insert(Customer),
            [
                {
                    "id": c,
                    "tenant": TENANT,
                    "name": f"Customer {i}",
                    "tax_id": "FR83404833048",
                    "street": "5 quai Ouest",
                    "city": "Annecy",
                    "postcode": "74000",
                    "country": "FR",
                    "emails": json.dumps([f"c{i}@example.com"]),
                    "billable": True,
                    "tax_treatment": "exempt" if i % 7 == 0 else "default",
                    "tax_rate": None,
                    "language": "fr",
                    "edi_format": "ubl",
                    "gln": "3012345000017",
                    "peppol_id": None,
                    "delivery_endpoint": None,
                    "created_at": now,
                }
                for i, c in enumerate(customers)
            ],
        )
        await connection.execute(
            sa.insert(ContractRow),
            [
                {
                    "id": c,
                    "tenant": TENANT,
                    "customer_id": customers[i % len(customers)],
                    "cycle": "monthly",
                    "due_day": 10,
                    "status": "active",
                    "starts_on": date(2026, 1, 1),
                    "ends_on": None,
                    "usage_allowance": "5",
                    "created_at": now,
                }
                for i, c in enumerate(contract_ids)
            ],
        )
        await connection.execute(
            sa.insert(ContractLine),
            [
                {
                    "tenant": TENANT,
                    "contract_id": c,
                    "line_id": f"line-{i}",
                    "assigned_on": date(2026, 1, 1),
                    "ended_on": None,
                }
                for i, c in enumerate(contract_ids)
            ],
        )
        await connection.execute(
            sa.insert(ChargeRow),
            [
                {
                    "id": new_id(),
                    "tenant": TENANT,
                    "contract_id": c,
                    "line_id": None,
                    "description": description,
                    "amount": amount,
                    "recurring": True,
                    "starts_on": date(2026, 1, 1),
                    "ends_on": None,
                    "tax_rate": rate,
                }
                for c in contract_ids
                for description, amount, rate in (("Subscription", "29.99", None), ("Router rental", "5.00", "10"))
            ],
        )
    rng = random.Random(7)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    batch: list[dict[str, object]] = []
    for index in range(calls):
        contract = rng.randrange(contracts)
        batch.append(
            {
                "tenant": TENANT,
                "record_id": f"r{index}",
                "version": 1,
                "contract_id": contract_ids[contract],
                "line_id": f"line-{contract}",
                "call_class": rng.choice(CLASSES),
                "started_at": start + timedelta(seconds=rng.randrange(31 * 86400)),
                "calls": 1,
                "seconds": rng.randrange(30, 900),
                "amount_micros": rng.randrange(1000, 2_000_000),
                "invoice_id": None,
            }
        )
        if len(batch) == 20_000:
            async with units() as uow:
                await (await uow.session.connection()).execute(sa.insert(UsageCall), batch)
            batch = []
    if batch:
        async with units() as uow:
            await (await uow.session.connection()).execute(sa.insert(UsageCall), batch)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--profile", default=None, help="write a cProfile of the run (not the setup) to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        engine = make_engine(url)
        await migrate(engine, MIGRATIONS, "invoicer")
        units = UnitOfWorkFactory(session_factory(engine))
        began = time.perf_counter()
        await setup(units, args.contracts, args.calls)
        print(
            f"setup: {args.contracts} contracts, {args.calls} calls in {time.perf_counter() - began:.1f}s (not timed)"
        )
        profiler = cProfile.Profile() if args.profile else None
        began, cpu_began = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        chunks: list[float] = []

        async def progress(_: handlers.RunReport) -> None:
            chunks.append(time.perf_counter())

        report = await handlers.bill_period(
            store_factory(units),
            TENANT,
            Period.month("2026-10"),
            issue_date=date(2026, 11, 1),
            new_id=new_id,
            progress=progress,
        )
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        await engine.dispose()
    rate = len(report.issued) / elapsed
    target = 10_000 / rate
    print(f"billing run: {len(report.issued)} invoices (UBL + EDIFACT each), net {report.net}, in {elapsed:.1f}s")
    print(
        f"  CPU time of the process (both threads): {cpu:.1f}s, less sensitive to other processes than the wall clock"
    )
    print(f"  {rate:.0f} invoices/s; extrapolated 10,000 contracts: {target:.0f}s (target <= 60s)")
    if len(chunks) > 1:
        per_chunk = (chunks[-1] - chunks[0]) / (len(chunks) - 1)
        print(f"  pre-checks and first chunk {chunks[0] - began:.1f}s, then {per_chunk:.2f}s per chunk of contracts")


if __name__ == "__main__":
    asyncio.run(main())
