"""Summit Networks CDR files, in the format we defined (docs/collector.md): the sample file row by row."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa_collector.domain.csv_formats import SUMMIT_HEADER, parse_summit
from tarifa_collector.domain.records import Rejection, SourceContext
from tarifa_common.contracts import CollectedCdr, Direction, Disposition

SOURCE = SourceContext(tenant="isp", source_id="summit", source_kind="summit_csv", time_zone="America/Sao_Paulo")
SAMPLE = Path(__file__).parent.parent / "samples" / "summit-cdr-20261102.csv"


def sample_calls() -> list[CollectedCdr]:
    header, *rows = SAMPLE.read_bytes().splitlines()
    assert header == SUMMIT_HEADER
    calls = [parse_summit(row, SOURCE) for row in rows]
    assert all(isinstance(call, CollectedCdr) for call in calls), calls
    return [call for call in calls if isinstance(call, CollectedCdr)]


def test_every_row_of_the_sample_file_is_a_call() -> None:
    calls = sample_calls()
    assert [call.call_id for call in calls] == [f"sn-7f3a000{n}" for n in range(1, 7)]
    first = calls[0]
    assert first.started_at == datetime(2026, 11, 2, 12, 28, 41, tzinfo=UTC)
    assert (first.duration_seconds, first.billable_seconds) == (71, 64)
    assert first.direction is Direction.OUTBOUND
    assert first.extension == "4830001"  # the line's SIP credential
    assert (first.caller_e164, first.called_e164) == ("+551140040001", "+5511987654321")
    assert first.trunk == "summit-gw1"


def test_unanswered_inbound_and_internal_rows_read_as_such() -> None:
    _, no_answer, inbound, internal, quoted, busy = sample_calls()
    assert (no_answer.disposition, no_answer.billable_seconds, no_answer.answered_at) == (
        Disposition.NO_ANSWER,
        0,
        None,
    )
    assert inbound.direction is Direction.INBOUND
    assert inbound.extension == "4830002"
    assert internal.direction is Direction.INTERNAL
    assert internal.caller_e164 is None
    assert quoted.called_e164 == "+351213456789"
    assert "Diretoria; RJ" in quoted.raw
    assert busy.disposition is Disposition.BUSY


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("2026-11-02 09:28:41", "02/11/2026 09:28"), "column 2 (start): '02/11/2026 09:28' is not a date"),
        ((";71;64;", ";71;99;"), "column 6 (billsec): 99 is longer than the duration (71)"),
        ((";outbound;", ";sideways;"), "column 7 (direction): 'sideways' is not one of outbound, inbound, internal"),
        ((";ANSWERED;", ";HUNG;"), "column 12 (disposition): 'HUNG' is not one of"),
        (("sn-7f3a0001;", ";"), "column 1 (call_id): empty"),
    ],
)
def test_a_bad_row_is_rejected_naming_the_column(change: tuple[str, str], reason: str) -> None:
    row = SAMPLE.read_bytes().splitlines()[1].decode().replace(*change).encode()
    rejected = parse_summit(row, SOURCE)
    assert isinstance(rejected, Rejection)
    assert rejected.reason.startswith(reason)


def test_a_short_row_is_rejected_for_its_column_count() -> None:
    rejected = parse_summit(b"sn-1;2026-11-02 09:28:41", SOURCE)
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "row has 2 columns; a Summit CDR row has at least 15"


@given(st.binary(max_size=400))
def test_any_bytes_are_a_call_or_a_rejection(raw: bytes) -> None:
    assert isinstance(parse_summit(raw, SOURCE), CollectedCdr | Rejection)
