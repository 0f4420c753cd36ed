"""IP Office SMDR lines: every release's field count, dates with or without seconds, legs into one billable call."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tarifa_collector.domain.records import MAX_LINE_BYTES, Rejection, SourceContext, record_id
from tarifa_collector.domain.smdr import SmdrLeg, assemble_call, call_data, parse_line
from tarifa_common.contracts import CollectedCdr, Direction, Disposition
from tarifa_common.events import deterministic_id

SOURCE = SourceContext(tenant="acme", source_id="pbx-hq", source_kind="avaya_smdr", time_zone="America/Sao_Paulo")
OUT_17 = (
    b"2026/11/02 09:28:41,00:01:04,7,203,O,901133334444,901133334444,,0,"
    b"1000014160,0,E203,Extn203,T9001,Line 1.1,0,0\r\n"
)
TAIL_30 = ",n/a,,,,,,,,,,,,"  # fields 18-30
TAIL_34 = TAIL_30 + ",10.0.0.5,1234,,"  # fields 31-34


def leg(raw: bytes) -> SmdrLeg:
    parsed = parse_line(raw, SOURCE)
    assert isinstance(parsed, SmdrLeg), parsed
    return parsed


def test_a_17_field_outbound_record_is_read_field_by_field() -> None:
    parsed = leg(OUT_17)
    assert parsed.call_start == datetime(2026, 11, 2, 9, 28, 41)
    assert parsed.connected_seconds == 64
    assert parsed.ring_seconds == 7
    assert parsed.caller == "203"
    assert not parsed.inbound
    assert parsed.dialled == "901133334444"
    assert parsed.call_id == "1000014160"
    assert not parsed.continuation
    assert parsed.extension == "203"
    assert parsed.trunk == "9001"


def test_records_of_30_31_34_and_37_fields_are_accepted() -> None:
    base = OUT_17.rstrip(b"\r\n").decode()
    for tail in (TAIL_30, TAIL_30 + ",", TAIL_34, TAIL_34 + ",,,"):
        line = (base + tail).encode() + b"\r\n"
        assert len(line.decode().rstrip().split(",")) in (30, 31, 34, 37)
        assert leg(line).call_id == "1000014160"


def test_call_start_without_seconds_is_accepted() -> None:
    parsed = leg(OUT_17.replace(b"09:28:41", b"09:28"))
    assert parsed.call_start == datetime(2026, 11, 2, 9, 28)


def test_a_sip_caller_loses_its_address() -> None:
    inbound = (
        b"2026/11/02 10:00:00,00:00:30,5,1133334444@10.0.0.9,I,203,203,,0,1000020000,0,E203,Extn203,T9001,Line 1.1,0,0"
    )
    parsed = leg(inbound)
    assert parsed.caller == "1133334444"
    assert parsed.inbound


def test_a_record_names_the_field_it_rejects() -> None:
    rejected = parse_line(OUT_17.replace(b"2026/11/02", b"2026/13/02"), SOURCE)
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "field 1 (Call Start): '2026/13/02 09:28:41' is not a date YYYY/MM/DD HH:MM[:SS]"
    wrong_direction = parse_line(OUT_17.replace(b",O,", b",X,"), SOURCE)
    assert isinstance(wrong_direction, Rejection)
    assert wrong_direction.reason == "field 5 (Direction): 'X' is not I or O"


def test_a_half_line_is_rejected_for_its_field_count() -> None:
    rejected = parse_line(OUT_17[:60], SOURCE)
    assert isinstance(rejected, Rejection)
    assert rejected.reason.startswith("record has 7 fields; IP Office SMDR has 17 to 37")


def test_latin1_names_from_older_pbxs_are_read() -> None:
    parsed = leg(OUT_17.replace(b"Extn203", "Jos\xe9".encode("latin-1")))
    assert parsed.party1_name == "José"


def test_an_outbound_call_becomes_a_call_in_utc_with_its_local_start() -> None:
    call = assemble_call([leg(OUT_17)], SOURCE)
    assert call.started_at == datetime(2026, 11, 2, 12, 28, 41, tzinfo=UTC)  # Sao Paulo is UTC-3
    assert call.local_start == "2026-11-02T09:28:41"
    assert call.answered_at == datetime(2026, 11, 2, 12, 28, 48, tzinfo=UTC)
    assert call.billable_seconds == 64
    assert call.duration_seconds == 71
    assert call.direction is Direction.OUTBOUND
    assert call.disposition is Disposition.ANSWERED
    assert call.extension == "203"
    assert call.trunk == "9001"
    assert not call.transferred


def test_an_internal_call_shows_o_but_is_internal() -> None:
    internal = b"2026/11/02 09:00:00,00:00:10,2,203,O,204,204,,1,1000000001,0,E203,Extn203,E204,Extn204,0,0"
    call = assemble_call([leg(internal)], SOURCE)
    assert call.direction is Direction.INTERNAL


def test_an_unanswered_call_has_no_billable_time() -> None:
    lost = b"2026/11/02 09:00:00,00:00:00,25,1133334444,I,203,203,,0,1000000002,0,E203,Extn203,T9001,Line 1.1,0,0"
    call = assemble_call([leg(lost)], SOURCE)
    assert call.disposition is Disposition.NO_ANSWER
    assert call.billable_seconds == 0
    assert call.answered_at is None


TRANSFER_FIRST = (
    b"2026/11/02 11:00:00,00:00:40,5,203,O,901133334444,901133334444,,0,1000000050,1,E203,Extn203,T9001,Line 1.1,3,0"
)
TRANSFER_SECOND = (
    b"2026/11/02 11:00:00,00:02:00,48,204,O,901133334444,901133334444,,0,1000000050,0,E204,Extn204,T9001,Line 1.1,0,0"
)


def test_a_transferred_call_is_one_call_billed_for_the_talk_of_every_leg() -> None:
    in_order = assemble_call([leg(TRANSFER_FIRST), leg(TRANSFER_SECOND)], SOURCE)
    out_of_order = assemble_call([leg(TRANSFER_SECOND), leg(TRANSFER_FIRST)], SOURCE)
    assert in_order == out_of_order
    assert in_order.billable_seconds == 160
    assert in_order.transferred
    assert in_order.extension == "203"
    assert in_order.answered_by == "204"
    assert [leg.talk_seconds for leg in in_order.legs] == [40, 120]
    assert len(in_order.leg_record_ids) == 2
    # from the first ring to the end of the second leg: 48 s of ring + 120 s of talk on leg 2
    assert in_order.duration_seconds == 168


def test_the_same_record_has_the_same_id_and_another_source_another() -> None:
    other = SourceContext(tenant="acme", source_id="pbx-branch", source_kind="avaya_smdr")
    assert leg(OUT_17).record_id == leg(OUT_17.rstrip(b"\r\n")).record_id
    parsed_elsewhere = parse_line(OUT_17, other)
    assert isinstance(parsed_elsewhere, SmdrLeg)
    assert parsed_elsewhere.record_id != leg(OUT_17).record_id


def test_an_over_long_line_is_rejected() -> None:
    rejected = parse_line(b"1" * (MAX_LINE_BYTES + 1), SOURCE)
    assert isinstance(rejected, Rejection)
    assert "at most" in rejected.reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=MAX_LINE_BYTES + 100))
def test_any_bytes_are_accepted_or_rejected_with_a_reason(raw: bytes) -> None:
    parsed = parse_line(raw, SOURCE)
    assert isinstance(parsed, SmdrLeg | Rejection)
    if isinstance(parsed, Rejection):
        assert parsed.reason


field_values = st.text(alphabet=st.characters(codec="latin-1", exclude_characters=",\r\n"), max_size=25)


@settings(max_examples=200, deadline=None)
@given(st.lists(field_values, min_size=1, max_size=45), st.sampled_from(["latin-1", "utf-8"]))
def test_any_comma_separated_fields_are_accepted_or_rejected_with_a_reason(fields: list[str], codec: str) -> None:
    parsed = parse_line((",".join(fields) + "\r\n").encode(codec), SOURCE)
    assert isinstance(parsed, SmdrLeg | Rejection)
    if isinstance(parsed, Rejection):
        assert parsed.reason


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(OUT_17)),
    st.integers(min_value=0, max_value=16),
    st.text(max_size=12),
)
def test_a_real_record_with_one_field_mangled_or_cut_never_raises(cut: int, field: int, value: str) -> None:
    fields = OUT_17.rstrip(b"\r\n").decode().split(",")
    fields[field] = value.replace(",", "")
    mangled = ",".join(fields).encode("utf-8", "surrogatepass")
    for candidate in (mangled, OUT_17[:cut]):
        parsed = parse_line(candidate, SOURCE)
        assert isinstance(parsed, SmdrLeg | Rejection)
        if isinstance(parsed, SmdrLeg):
            assert assemble_call([parsed], SOURCE).record_id


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.text(min_size=1, max_size=20))
def test_the_fast_record_id_is_the_deterministic_event_id(raw: str, source_id: str) -> None:
    source = SourceContext(tenant="acme", source_id=source_id, source_kind="avaya_smdr")
    assert record_id(source, raw) == deterministic_id("acme", source_id, raw)


def test_a_calls_id_is_the_deterministic_id_of_its_legs() -> None:
    first, second = leg(TRANSFER_FIRST), leg(TRANSFER_SECOND)
    call = assemble_call([second, first], SOURCE)
    expected = deterministic_id(
        "acme", "pbx-hq", "smdr-call", "1000000050", *sorted([first.record_id, second.record_id])
    )
    assert call.record_id == expected


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["America/Sao_Paulo", "Europe/Paris", "UTC", "Asia/Kolkata"]),
    st.integers(min_value=0, max_value=3600),
    st.integers(min_value=0, max_value=300),
    st.booleans(),
)
def test_the_call_data_is_exactly_what_the_contract_model_writes(
    zone: str, talk: int, ring: int, transferred: bool
) -> None:
    """The hot path builds JSON values by hand: pydantic must read them and write back the same."""
    source = SourceContext(tenant="acme", source_id="pbx-hq", source_kind="avaya_smdr", time_zone=zone)
    connected = f"{talk // 3600:02d}:{talk % 3600 // 60:02d}:{talk % 60:02d}"
    record = OUT_17.replace(b"00:01:04,7,", f"{connected},{ring},".encode())
    legs = [leg(record)]
    if transferred:
        legs = [leg(TRANSFER_FIRST), leg(TRANSFER_SECOND)]
    data = call_data(legs, source)
    assert CollectedCdr.model_validate(data).model_dump(mode="json") == data
    call = CollectedCdr.model_validate(data)
    first = legs[0] if not transferred else leg(TRANSFER_FIRST)
    assert call.started_at == first.call_start.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert call.ended_at == call.started_at + timedelta(seconds=call.duration_seconds)
