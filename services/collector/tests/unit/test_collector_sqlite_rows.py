"""Rows the SQLite hot path writes with plain SQL hold exactly what SQLAlchemy would have bound."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from tarifa_collector.adapters.repository import sqlite_datetime

BIND = sqlite.DATETIME().bind_processor(sqlite.dialect())


@given(st.datetimes(timezones=st.none() | st.just(UTC)))
def test_a_datetime_is_written_as_sqlalchemy_binds_it_so_orm_reads_and_range_queries_agree(value: datetime) -> None:
    assert BIND is not None
    assert sqlite_datetime(value) == BIND(value)
