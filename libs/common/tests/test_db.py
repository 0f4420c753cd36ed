"""Storage helpers shared by the services' plain-SQL hot paths."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from tarifa_common.db import sqlite_datetime

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
