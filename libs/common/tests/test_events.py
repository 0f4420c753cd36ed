"""The CloudEvents envelope: what goes on the wire and what is refused."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa_common.events import (
    TARIFA_NAMESPACE,
    Event,
    EventDecodeError,
    decode,
    deterministic_id,
    dumps,
    encode,
    encode_serialised,
    encode_with_sdk,
)


def sample_event(**overrides: object) -> Event:
    values: dict[str, object] = {
        "type": "tarifa.cdr.rated.v1",
        "source": "tarifa/rater",
        "tenant": "acme",
        "subject": "line-42",
        "id": "6a1b7a38-9f3c-4e0c-8a51-d5b1f3d3c9b0",
        "time": datetime(2026, 11, 22, 10, 30, tzinfo=UTC),
        "data": {"amount": Decimal("0.123456"), "seconds": 36, "when": datetime(2026, 11, 1, tzinfo=UTC)},
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    values.update(overrides)
    return Event(**values)  # type: ignore[arg-type]


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_value() -> None:
    record = encode(sample_event(), key="line-42")
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == b"6a1b7a38-9f3c-4e0c-8a51-d5b1f3d3c9b0"
    assert headers["ce_type"] == b"tarifa.cdr.rated.v1"
    assert headers["ce_source"] == b"tarifa/rater"
    assert headers["ce_subject"] == b"line-42"
    assert headers["ce_tenant"] == b"acme"
    assert headers["ce_time"] == b"2026-11-22T10:30:00Z"
    assert headers["content-type"] == b"application/json"
    assert headers["traceparent"] == b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert record.key == b"line-42"
    assert record.value == b'{"amount":"0.123456","seconds":36,"when":"2026-11-01T00:00:00+00:00"}'


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"subject": None},
        {"traceparent": None},
        {"tracestate": "vendor=1"},
        {"time": datetime(2026, 1, 1, 5, 0, 1, 7, tzinfo=UTC)},
    ],
)
def test_the_encoder_for_serialised_data_writes_what_the_sdk_writes(overrides: dict[str, object]) -> None:
    event = sample_event(**overrides)
    fast = encode_serialised(event, "line-42", dumps(event.data))
    sdk = encode(event, "line-42")
    assert sorted(fast.headers) == sorted(sdk.headers)
    assert (fast.key, fast.value) == (sdk.key, sdk.value)
    assert encode_serialised(event, None, dumps(event.data)).key is None


def test_decode_reads_back_what_encode_wrote() -> None:
    event = sample_event()
    record = encode(event, key="line-42")
    decoded = decode(record.headers, record.key, record.value)
    assert decoded.id == event.id
    assert decoded.type == event.type
    assert decoded.tenant == "acme"
    assert decoded.subject == "line-42"
    assert decoded.time == event.time
    assert decoded.traceparent == event.traceparent
    # Money never becomes a float on the wire.
    assert decoded.data["amount"] == "0.123456"


def test_deterministic_id_is_the_same_for_the_same_record_and_differs_otherwise() -> None:
    first = deterministic_id("acme", "pbx-hq", "2026/11/22 10:00:00,00:01:05,...")
    assert first == deterministic_id("acme", "pbx-hq", "2026/11/22 10:00:00,00:01:05,...")
    assert first != deterministic_id("acme", "pbx-branch", "2026/11/22 10:00:00,00:01:05,...")
    assert first != deterministic_id("globex", "pbx-hq", "2026/11/22 10:00:00,00:01:05,...")


@given(parts=st.lists(st.text(max_size=60), min_size=1, max_size=4))
def test_deterministic_id_is_the_uuid5_of_its_parts(parts: list[str]) -> None:
    assert deterministic_id(*parts) == str(uuid.uuid5(TARIFA_NAMESPACE, "\x1f".join(parts)))


def test_decode_reads_what_the_fast_parser_refuses_as_the_standard_library_does() -> None:
    record = encode(sample_event(), key=None)
    # orjson refuses integers beyond 64 bits and NaN; json reads them: so does decode.
    decoded = decode(record.headers, None, b'{"n": 123456789012345678901234567890, "x": NaN}')
    assert decoded.data["n"] == 123456789012345678901234567890
    assert decoded.data["x"] != decoded.data["x"]  # NaN
    with pytest.raises(EventDecodeError, match="data is not JSON: Expecting"):
        decode(record.headers, None, b'{"n": ')


def test_a_type_refused_once_is_refused_again_after_valid_ones_were_seen() -> None:
    sample_event()  # a valid type, now known
    for _ in range(2):
        with pytest.raises(ValueError, match=r"tarifa\.<entity>\.<event>\.v<N>"):
            sample_event(type="tarifa.cdr.rated")


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_tenant"])
def test_decode_names_the_missing_header(missing: str) -> None:
    record = encode(sample_event(), key=None)
    headers = [(name, value) for name, value in record.headers if name != missing]
    with pytest.raises(EventDecodeError, match=f"header {missing} is missing"):
        decode(headers, None, record.value)


def test_decode_refuses_data_that_is_not_a_json_object() -> None:
    record = encode(sample_event(), key=None)
    with pytest.raises(EventDecodeError, match="JSON"):
        decode(record.headers, None, b"\xff\xfe not json")
    with pytest.raises(EventDecodeError, match="JSON object"):
        decode(record.headers, None, b"[1, 2]")


def test_event_types_must_be_versioned() -> None:
    with pytest.raises(ValueError, match=r"tarifa\.<entity>\.<event>\.v<N>"):
        sample_event(type="cdr.rated")


def test_event_time_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample_event(time=datetime(2026, 11, 22, 10, 30))


header_names = st.sampled_from(["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_tenant", "ce_time", "x"])


@given(
    headers=st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=8),
    key=st.one_of(st.none(), st.binary(max_size=20)),
    value=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_any_message_either_decodes_or_is_refused_with_a_reason(
    headers: list[tuple[str, bytes]], key: bytes | None, value: bytes | None
) -> None:
    try:
        event = decode(headers, key, value)
    except EventDecodeError as error:
        assert str(error)
    else:
        assert event.tenant and event.id and event.type


def test_the_cloudevents_sdk_reads_what_we_write_and_we_read_what_it_writes() -> None:
    from cloudevents.core.bindings import kafka as ce_kafka
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    record = encode(sample_event(), key="line-42")
    theirs = ce_kafka.from_binary(
        ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value), JSONFormat()
    )
    assert theirs.get_id() == "6a1b7a38-9f3c-4e0c-8a51-d5b1f3d3c9b0"
    assert theirs.get_extension("tenant") == "acme"
    assert theirs.get_data() == {"amount": "0.123456", "seconds": 36, "when": "2026-11-01T00:00:00+00:00"}

    written = ce_kafka.to_binary(
        CloudEvent(
            {
                "id": "x-1",
                "source": "/pbx",
                "type": "tarifa.cdr.collected.v1",
                "tenant": "acme",
                "datacontenttype": "application/json",
                "time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            },
            {"a": 1},
        ),
        JSONFormat(),
    )
    ours = decode(list(written.headers.items()), None, written.value)
    assert (ours.id, ours.tenant, ours.data, ours.time) == (
        "x-1",
        "acme",
        {"a": 1},
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"subject": None, "traceparent": None},
        {"time": datetime(2026, 11, 22, 7, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-3)))},
        {"tracestate": "vendor=1", "data": {"text": "São Paulo ☎", "nested": {"a": [1, 2]}}},
    ],
)
@pytest.mark.parametrize("key", ["line-42", None])
def test_encode_writes_what_the_cloudevents_sdk_writes_byte_for_byte(
    overrides: dict[str, object], key: str | None
) -> None:
    event = sample_event(**overrides)
    assert encode(event, key) == encode_with_sdk(event, key)
