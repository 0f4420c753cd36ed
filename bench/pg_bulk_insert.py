"""Benchmark: PostgreSQL bulk inserts from asyncpg, `unnest` arrays against `StagedCopy` (COPY, then INSERT … SELECT).

Run: .venv/bin/python bench/pg_bulk_insert.py [--rows 300] [--batches 100]
Makes a table of 34 columns shaped like the rater's calls (strings, integers, instants, money,
flags, a unique key) in a fresh database at 127.0.0.1:5432, and inserts `--batches` batches of
`--rows` new rows each, one transaction a batch, `ON CONFLICT DO NOTHING RETURNING` the key,
the two ways the platform has done it, alternately. Prints, per row, the wall time and this
process's CPU (asyncpg's encoding; the server's work is the difference). It is what decided
`tarifa_common.db.StagedCopy`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from tarifa_common.db import StagedCopy, make_engine

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = (
    [(f"s{i}", "varchar") for i in range(20)]
    + [(f"i{i}", "integer") for i in range(5)]
    + [(f"t{i}", "timestamptz") for i in range(4)]
    + [(f"m{i}", "numeric(18, 6)") for i in range(3)]
    + [("b0", "boolean"), ("b1", "boolean")]
)
NAMES = [name for name, _ in COLUMNS]


def batch(size: int) -> list[tuple[Any, ...]]:
    """`size` new rows: a unique key, repeated strings, some NULLs, as calls are."""
    now = datetime.now(UTC)
    fixed = ["abc"] * 15 + [None] * 4 + [1, 2, 3, None, 5] + [now, now, None, now]
    fixed += [Decimal("1.23"), None, Decimal("0.5"), True, False]
    return [(uuid.uuid4().hex, *fixed) for _ in range(size)]


class Unnest:
    """The way replaced: one array per column, `INSERT … SELECT * FROM unnest(…)`."""

    def __init__(self) -> None:
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(COLUMNS, 1))
        self.sql = (
            f"INSERT INTO bulk ({', '.join(NAMES)}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (s0) DO NOTHING RETURNING s0"
        )

    async def run(self, connection: AsyncConnection, rows: list[tuple[Any, ...]]) -> list[Any]:
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        return list((await connection.exec_driver_sql(self.sql, columns)).all())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300, help="rows a batch (the rater's batches hold 200 to 2,000)")
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    name = f"bench_bulk_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    try:
        async with engine.begin() as connection:
            columns = ", ".join(f"{column} {kind}" for column, kind in COLUMNS)
            await connection.exec_driver_sql(f"CREATE TABLE bulk (id bigserial PRIMARY KEY, {columns}, UNIQUE (s0))")
        ways = {
            "unnest arrays": Unnest(),
            "StagedCopy": StagedCopy("bulk", NAMES, tail=" ON CONFLICT (s0) DO NOTHING RETURNING s0"),
        }
        spent = {label: [0.0, 0.0] for label in ways}
        for number in range(args.batches):
            for label, way in ways.items():
                rows = batch(args.rows)
                wall, cpu = time.perf_counter(), time.process_time()
                async with engine.begin() as connection:
                    inserted = await way.run(connection, rows)
                spent[label][0] += time.perf_counter() - wall
                spent[label][1] += time.process_time() - cpu
                assert len(inserted) == args.rows, f"{label} inserted {len(inserted)} of {args.rows}"
            print(f"\r{number + 1}/{args.batches} batches", end="", flush=True)
        print()
        total = args.rows * args.batches
        for label, (wall, cpu) in spent.items():
            print(f"{label:>14}: {wall / total * 1e6:5.1f} µs a row wall, {cpu / total * 1e6:5.1f} µs a row client CPU")
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
