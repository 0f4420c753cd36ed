"""Asterisk Master.csv, FreeSWITCH mod_cdr_csv and posted JSON records, and the line splitter of streams."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tarifa_collector.adapters.lines import LineSplitter
from tarifa_collector.domain.csv_formats import parse_asterisk, parse_freeswitch
from tarifa_collector.domain.json_records import canonical_line, parse_json_line
from tarifa_collector.domain.records import MAX_LINE_BYTES, Rejection, SourceContext
from tarifa_common.contracts import CollectedCdr, Direction, Disposition

SOURCE = SourceContext(tenant="acme", source_id="ast", source_kind="asterisk_csv", time_zone="America/Sao_Paulo")
ASTERISK = (
    b'"","2001","01133334444","from-internal","""Ana"" <2001>","SIP/2001-0000001a","SIP/trunk-0000001b",'
    b'"Dial","SIP/trunk/01133334444,60","2026-11-02 10:00:00","2026-11-02 10:00:12","2026-11-02 10:01:42",'
    b'102,90,"ANSWERED","DOCUMENTATION","1762088400.26",""\n'
)
FREESWITCH = (
    b'"Ana","2001","01133334444","default","2026-11-02 10:00:00","2026-11-02 10:00:12","2026-11-02 10:01:42",'
    b'"102","90","NORMAL_CLEARING","4f1c1e0e-6b7c-4a7e-9d43-2c1e1f0a9b11","","","PCMA","PCMA"\n'
)


def test_an_answered_asterisk_row_is_a_call_billed_for_billsec() -> None:
    call = parse_asterisk(ASTERISK, SOURCE)
    assert isinstance(call, CollectedCdr)
    assert call.started_at == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    assert call.answered_at == datetime(2026, 11, 2, 13, 0, 12, tzinfo=UTC)
    assert (call.duration_seconds, call.billable_seconds) == (102, 90)
    assert call.direction is Direction.OUTBOUND
    assert call.disposition is Disposition.ANSWERED
    assert (call.extension, call.dialled, call.call_id) == ("2001", "01133334444", "1762088400.26")


def test_an_unanswered_asterisk_row_has_an_empty_answer_and_no_billable_time() -> None:
    row = ASTERISK.replace(b'"2026-11-02 10:00:12"', b'""').replace(b",102,90,", b",20,0,")
    call = parse_asterisk(row.replace(b'"ANSWERED"', b'"NO ANSWER"'), SOURCE)
    assert isinstance(call, CollectedCdr)
    assert call.answered_at is None
    assert call.disposition is Disposition.NO_ANSWER
    assert call.billable_seconds == 0


def test_an_asterisk_row_with_an_unknown_disposition_is_rejected_naming_it() -> None:
    rejected = parse_asterisk(ASTERISK.replace(b'"ANSWERED"', b'"MAYBE"'), SOURCE)
    assert isinstance(rejected, Rejection)
    assert rejected.reason.startswith("column 15 (disposition): 'MAYBE' is not one of ANSWERED")


def test_a_freeswitch_default_template_row_is_a_call() -> None:
    call = parse_freeswitch(FREESWITCH, SOURCE)
    assert isinstance(call, CollectedCdr)
    assert call.call_id == "4f1c1e0e-6b7c-4a7e-9d43-2c1e1f0a9b11"
    assert (call.billable_seconds, call.disposition, call.extension) == (90, Disposition.ANSWERED, "2001")


def test_bad_times_and_counts_are_rejected_naming_the_column_in_both_formats() -> None:
    cases = [
        (
            parse_asterisk,
            ASTERISK.replace(b'"2026-11-02 10:00:00"', b'"02/11/2026"'),
            "column 10 (start): '02/11/2026'",
        ),
        (parse_asterisk, ASTERISK.replace(b",102,90,", b",102,x,"), "column 14 (billsec): 'x' is not a number"),
        (parse_freeswitch, FREESWITCH.replace(b'"2026-11-02 10:00:12"', b'"soon"'), "column 6 (answer_stamp): 'soon'"),
        (parse_freeswitch, FREESWITCH.replace(b'"102"', b'"-1"'), "column 8 (duration): '-1' is not a number"),
    ]
    for parse, row, reason in cases:
        rejected = parse(row, SOURCE)
        assert isinstance(rejected, Rejection), row
        assert rejected.reason.startswith(reason), rejected.reason


def test_a_posted_object_without_offset_is_local_time_of_the_source() -> None:
    line = canonical_line(
        {"call_id": "x1", "started_at": "2026-11-02T09:00:00", "duration_seconds": 70, "billable_seconds": 60,
         "direction": "outbound", "dialled": "01133334444", "extension": "203"}
    )  # fmt: skip
    call = parse_json_line(line, SOURCE)
    assert isinstance(call, CollectedCdr)
    assert call.started_at == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert call.answered_at == datetime(2026, 11, 2, 12, 0, 10, tzinfo=UTC)


def test_a_posted_object_names_its_bad_field() -> None:
    rejected = parse_json_line(canonical_line({"call_id": "x1", "started_at": "soon"}), SOURCE)
    assert isinstance(rejected, Rejection)
    assert "started_at:" in rejected.reason
    assert "duration_seconds: Field required" in rejected.reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_are_a_call_or_a_rejection_in_every_row_format(raw: bytes) -> None:
    for parse in (parse_asterisk, parse_freeswitch, parse_json_line):
        assert isinstance(parse(raw, SOURCE), CollectedCdr | Rejection)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=8))
def test_the_splitter_returns_each_line_once_and_never_more_than_the_bound(chunks: list[bytes]) -> None:
    splitter = LineSplitter()
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert all(len(line) <= MAX_LINE_BYTES + 1 for line in lines)
    assert all(b"\n" not in line for line in lines)
    assert len(splitter.rest()) <= MAX_LINE_BYTES


def test_the_splitter_joins_a_line_split_across_reads_and_keeps_the_half_line() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"first,line\r\nsec") == [b"first,line"]
    assert splitter.feed(b"ond\r\nthi") == [b"second"]
    assert splitter.rest() == b"thi"


def test_the_splitter_cuts_an_endless_line_and_drops_its_rest() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"x" * 25) == [b"x" * 11]
    assert splitter.feed(b"yyy\r\nok\r\n") == [b"ok"]
