"""Operator CSV through a per-source column mapping: fields by column, local dates, reasons that name the column."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tarifa_collector.domain.operator_csv import ColumnMapping, parse_operator_line
from tarifa_collector.domain.records import Rejection, SourceContext
from tarifa_common.contracts import CollectedCdr, Direction, Disposition
from tarifa_common.errors import InvalidInput

SOURCE = SourceContext(tenant="acme", source_id="telco", source_kind="operator_csv", time_zone="America/Sao_Paulo")
MAPPING = ColumnMapping(
    columns={"started_at": 1, "caller": 2, "dialled": 3, "duration_seconds": 4, "call_id": 5, "direction": 6},
    delimiter=";",
    date_format="%d/%m/%Y %H:%M:%S",
)


def test_a_mapped_row_is_a_call_in_utc() -> None:
    call = parse_operator_line(b"02/11/2026 09:00:00;1133334444;1144445555;125;op-77;out", SOURCE, MAPPING)
    assert isinstance(call, CollectedCdr)
    assert call.started_at == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert (call.call_id, call.caller, call.dialled) == ("op-77", "1133334444", "1144445555")
    assert (call.duration_seconds, call.billable_seconds) == (125, 125)  # no billable column: all of it
    assert call.direction is Direction.OUTBOUND
    assert call.disposition is Disposition.ANSWERED


def test_a_row_that_misses_the_date_format_names_the_column() -> None:
    rejected = parse_operator_line(b"2026-11-02 09:00;1;2;3;x;out", SOURCE, MAPPING)
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "column 1 (started_at): '2026-11-02 09:00' does not match %d/%m/%Y %H:%M:%S"


def test_a_mapping_without_the_required_fields_is_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        ColumnMapping(columns={"caller": 2}).validate()
    assert error.value.problems[0].field == "column_mapping.columns"
    assert "started_at, duration_seconds" in error.value.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_a_call_or_a_rejection(raw: bytes) -> None:
    assert isinstance(parse_operator_line(raw, SOURCE, MAPPING), CollectedCdr | Rejection)
