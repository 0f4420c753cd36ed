"""Storage helpers shared by the services' plain-SQL hot paths, on the real databases."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tarifa_common.db import StagedCopy, is_sqlite, make_engine, sqlite_datetime

BIND = sqlite.DATETIME().bind_processor(sqlite.dialect())


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_datetime_is_written_as_sqlalchemy_binds_it_so_orm_reads_and_range_queries_agree(value: datetime) -> None:
    assert BIND is not None
    assert sqlite_datetime(value) == BIND(value)


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30)))
def test_an_instant_in_another_zone_is_written_as_the_same_instant_in_utc(local: datetime) -> None:
    assert BIND is not None
    sao_paulo = local.replace(tzinfo=timezone(timedelta(hours=-3)))
    assert sqlite_datetime(sao_paulo) == BIND(sao_paulo.astimezone(UTC))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_datetime(datetime(2026, 12, 2, 10, 0))


@pytest_asyncio.fixture
async def items(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A PostgreSQL table with a unique key, a default-less timestamp and a sequence."""
    if is_sqlite(database_url):
        pytest.skip("StagedCopy is PostgreSQL's bulk insert (SQLite takes multi-row VALUES)")
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(
            "CREATE TABLE item (id bigserial PRIMARY KEY, name varchar NOT NULL UNIQUE, price numeric(12, 2),"
            " seen_at timestamptz NOT NULL)"
        )
    yield engine
    await engine.dispose()


NOW = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)


async def test_staged_copy_skips_duplicates_and_answers_only_the_rows_it_inserted(items: AsyncEngine) -> None:
    copy = StagedCopy(
        "item", ("name", "price"), extra=(("seen_at", "$1"),), tail=" ON CONFLICT (name) DO NOTHING RETURNING name"
    )
    async with items.begin() as connection:
        first = await copy.run(connection, [("a", Decimal("1.10")), ("b", None)], (NOW,))
        second = await copy.run(connection, [("b", Decimal("9.99")), ("c", Decimal("0.01"))], (NOW,))
    assert sorted(name for (name,) in first) == ["a", "b"]
    assert [name for (name,) in second] == ["c"]  # "b" was kept by the first insert; the stage held only these two
    async with items.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT name, price, seen_at FROM item ORDER BY name")).all()
    assert [tuple(row) for row in stored] == [
        ("a", Decimal("1.10"), NOW),
        ("b", None, NOW),
        ("c", Decimal("0.01"), NOW),
    ]


async def test_staged_copy_inserts_in_the_given_order_so_ids_follow_it(items: AsyncEngine) -> None:
    copy = StagedCopy("item", ("name", "seen_at"), ordered=True, tail=" RETURNING id, name")
    names = [f"n{i:04d}" for i in range(2000, 0, -1)]  # not the order a sort or a hash would give
    async with items.begin() as connection:
        answered = await copy.run(connection, [(name, NOW) for name in names])
        again = await copy.run(connection, [("last", NOW)])  # the same transaction: the stage starts empty again
    assert [name for _, name in sorted(answered)] == names
    assert [name for _, name in again] == ["last"]


async def test_staged_copy_rolls_back_with_its_transaction(items: AsyncEngine) -> None:
    copy = StagedCopy("item", ("name", "seen_at"))

    async def fail() -> None:
        async with items.begin() as connection:
            await copy.run(connection, [("x", NOW), ("y", NOW)])
            raise RuntimeError("the unit of work fails after its insert")

    with pytest.raises(RuntimeError):
        await fail()
    async with items.begin() as connection:
        await copy.run(connection, [("z", NOW)])
    async with items.connect() as connection:
        assert (await connection.exec_driver_sql("SELECT name FROM item")).scalars().all() == ["z"]
