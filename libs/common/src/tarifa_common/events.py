"""The event envelope: CloudEvents 1.0 over Kafka in binary mode, JSON data, a tenant on every event.

Attributes travel as `ce_*` headers through the CloudEvents SDK's Kafka binding, so a consumer
in any language reads them without our code. Two additions:
- `ce_tenant`, the CloudEvents extension naming the tenant the event belongs to;
- `traceparent` / `tracestate`, the W3C trace context as plain headers, which is where the
  OpenTelemetry Kafka conventions (and every Kafka tracing library) look for it.

Data is JSON. Money (`Decimal`) is written as a string so that no consumer ever sees a float;
datetimes as ISO 8601 with their offset.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
TENANT_HEADER = "ce_tenant"
TRACE_HEADERS = ("traceparent", "tracestate")
# Types read `tarifa.<entity>.<what happened>.v<version>`; a breaking change is a new version.
TYPE_PATTERN = re.compile(r"^tarifa(\.[a-z][a-z0-9_]*)+\.v[0-9]+$")
# Deterministic ids are UUIDv5 in this namespace, so a re-sent record is the same event.
TARIFA_NAMESPACE = uuid.UUID("3f6d0c2e-8e57-5a43-9b1f-7a1e2c9d4b10")
_NAMESPACE_BYTES = TARIFA_NAMESPACE.bytes
# Event types already checked against TYPE_PATTERN: a service knows a handful, so the regex runs
# once per type, not once per event (bounded, in case a producer invents types without end).
_CHECKED_TYPES: set[str] = set()
_CHECKED_TYPES_MAX = 1024
_JSON_FORMAT = JSONFormat()
_SPECVERSION_BYTES = SPECVERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()


class EventDecodeError(ValueError):
    """A Kafka message that is not a valid Tarifa event; the reason names what is wrong."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def deterministic_id(*parts: str) -> str:
    """An event id derived from what identifies the fact (tenant, source, record, ...).

    `uuid.uuid5(TARIFA_NAMESPACE, "\x1f".join(parts))` written out (RFC 4122 §4.3: SHA-1 of
    namespace and name, version 5, variant 10), without building a `uuid.UUID`: a third of the
    cost, on every record the collector reads. A test holds the two equal.
    """
    name = _NAMESPACE_BYTES + "\x1f".join(parts).encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])  # UUIDv5 is SHA-1 by definition
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True, slots=True)
class Event:
    """One fact, as every service sees it."""

    type: str
    source: str
    tenant: str
    data: dict[str, Any]
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=utcnow)
    traceparent: str | None = None
    tracestate: str | None = None

    def __post_init__(self) -> None:
        if self.type not in _CHECKED_TYPES:
            if not TYPE_PATTERN.match(self.type):
                raise ValueError(f"event type {self.type!r} must read tarifa.<entity>.<event>.v<N>")
            if len(_CHECKED_TYPES) < _CHECKED_TYPES_MAX:
                _CHECKED_TYPES.add(self.type)
        if not self.tenant:
            raise ValueError("event tenant is required")
        if self.time.tzinfo is None:
            raise ValueError("event time must be timezone-aware")

    def with_trace(self, traceparent: str | None, tracestate: str | None = None) -> Event:
        return replace(self, traceparent=traceparent, tracestate=tracestate)


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What goes on the wire: key, value and headers as aiokafka takes them."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in event data")


def dumps(data: Any) -> bytes:
    """JSON for event data: Decimal as string, datetimes ISO 8601, compact."""
    return json.dumps(data, default=_default, separators=(",", ":"), ensure_ascii=False).encode()


def encode(event: Event, key: str | None) -> KafkaRecord:
    """The Kafka record of `event`: the CloudEvents Kafka binding, binary mode.

    The reference form of a record: the headers are written directly, in the order and form of
    the SDK's `to_binary` (a test holds the two byte for byte; building and validating an SDK
    `CloudEvent` for each took a third of the time). The outbox builds the same record from
    `binary_headers` (`messaging.outbox_message`, held equal to this by a property test).
    """
    return encode_serialised(event, key, dumps(event.data))


def encode_with_sdk(event: Event, key: str | None) -> KafkaRecord:
    """`encode` through the CloudEvents SDK: the reference `encode` is tested against."""
    attributes: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "specversion": SPECVERSION,
        "time": event.time,
        "datacontenttype": CONTENT_TYPE,
        "tenant": event.tenant,
    }
    if event.subject is not None:
        attributes["subject"] = event.subject
    message = ce_kafka.to_binary(CloudEvent(attributes, dumps(event.data)), _JSON_FORMAT, key_mapper=lambda _: key)
    headers = list(message.headers.items())
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    if event.tracestate:
        headers.append(("tracestate", event.tracestate.encode()))
    return KafkaRecord(key=key.encode() if key is not None else None, value=message.value, headers=headers)


def encode_serialised(event: Event, key: str | None, data: bytes) -> KafkaRecord:
    """`encode` for an event whose data is already serialised (`dumps(event.data)`), for hot paths.

    The binding's mapping written out (`encode_with_sdk` is the reference a test holds it to):
    the collector serialises a CDR's data once for the outbox and the archive.
    """
    return KafkaRecord(key.encode() if key is not None else None, data, binary_headers(event, ce_time(event.time)))


def ce_time(time: datetime) -> str:
    """`time` as the `ce_time` header writes it: RFC 3339, UTC as `Z` (what the SDK's binding writes)."""
    text = time.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# The headers that are the same for every event of one (source, type, tenant), encoded once: a
# service emits a handful of these, so only id, time, subject and trace are encoded per event
# (bounded, like _CHECKED_TYPES, in case a producer invents sources without end).
_HeaderPair = tuple[str, bytes]
_ATTRIBUTE_HEADERS: dict[tuple[str, str, str], tuple[_HeaderPair, _HeaderPair, _HeaderPair]] = {}
_ATTRIBUTE_HEADERS_MAX = 4096
_SPECVERSION_HEADER = ("ce_specversion", _SPECVERSION_BYTES)
_CONTENT_TYPE_HEADER = ("content-type", _CONTENT_TYPE_BYTES)


def binary_headers(event: Event, time: str) -> list[tuple[str, bytes]]:
    """The Kafka headers of `event` in binary mode, its time already written by `ce_time`.

    In the order and form of the SDK's `to_binary`, then the trace context (a test holds the two
    byte for byte). `messaging.outbox_message` writes the outbox's header text in this same order
    from its own template: change both together (a property test holds them equal).
    """
    constant = (event.source, event.type, event.tenant)
    attributes = _ATTRIBUTE_HEADERS.get(constant)
    if attributes is None:
        attributes = (
            ("ce_source", event.source.encode()),
            ("ce_type", event.type.encode()),
            (TENANT_HEADER, event.tenant.encode()),
        )
        if len(_ATTRIBUTE_HEADERS) < _ATTRIBUTE_HEADERS_MAX:
            _ATTRIBUTE_HEADERS[constant] = attributes
    source, type_, tenant = attributes
    headers = [
        ("ce_id", event.id.encode()),
        source,
        type_,
        _SPECVERSION_HEADER,
        ("ce_time", time.encode()),
        _CONTENT_TYPE_HEADER,
        tenant,
    ]
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    if event.traceparent:
        headers.append(("traceparent", event.traceparent.encode()))
    if event.tracestate:
        headers.append(("tracestate", event.tracestate.encode()))
    return headers


def _loads(value: bytes) -> Any:
    """JSON data of a message: orjson (several times faster than `json` on a CDR), and `json` for
    whatever orjson refuses (integers beyond 64 bits, NaN), so what is accepted, and the error
    that names what is wrong, stay those of the standard library."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            return json.loads(value)
        except (ValueError, UnicodeDecodeError) as error:
            raise EventDecodeError(f"data is not JSON: {error}") from error


# The headers as `encode` names them, and the attribute each carries: most messages are read
# with one dictionary look-up a header (a trace header names itself).
_ATTRIBUTE_OF_HEADER = {
    "ce_id": "id",
    "ce_source": "source",
    "ce_type": "type",
    "ce_specversion": "specversion",
    "ce_time": "time",
    "ce_subject": "subject",
    TENANT_HEADER: "tenant",
    "traceparent": "traceparent",
    "tracestate": "tracestate",
}


def decode(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], key: bytes | None, value: bytes | None
) -> Event:
    """Read a Kafka message back into an Event, or say precisely why it is not one.

    This is the consumers' hot path, so it reads the binary-mode headers itself instead of
    going through the SDK's `from_binary` (which validates through a generic attribute model
    and parses times with dateutil: about four times slower). The header names and rules are
    the binding's; `encode` still uses the SDK, and a test round-trips the two.
    """
    attributes: dict[str, str] = {}
    trace: dict[str, str] = {}
    for name, raw in headers or ():
        attribute = _ATTRIBUTE_OF_HEADER.get(name)
        if attribute is None:  # not spelled as we write it: the binding's rules, case-insensitively
            lowered = name.lower()
            if lowered.startswith("ce_"):
                attribute = lowered[3:]
            elif lowered in TRACE_HEADERS:
                attribute = lowered
            else:
                continue
            is_trace = not lowered.startswith("ce_")
        else:
            is_trace = attribute in TRACE_HEADERS
        try:
            text = (raw or b"").decode()
        except UnicodeDecodeError as error:
            raise EventDecodeError(f"header {name.lower()} is not UTF-8") from error
        if is_trace:
            trace[attribute] = text
        else:
            attributes[attribute] = text
    for required in ("specversion", "id", "source", "type", "tenant"):
        if not attributes.get(required):
            raise EventDecodeError(f"header ce_{required} is missing")
    if attributes["specversion"] != SPECVERSION:
        raise EventDecodeError(f"header ce_specversion is {attributes['specversion']!r}, expected 1.0")
    if value is None:
        raise EventDecodeError("message value is empty; event data must be a JSON object")
    data = _loads(value)
    if not isinstance(data, dict):
        raise EventDecodeError(f"data must be a JSON object, got {type(data).__name__}")
    if "time" in attributes:
        try:
            time = datetime.fromisoformat(attributes["time"])
        except ValueError as error:
            raise EventDecodeError(f"header ce_time is not an RFC 3339 time: {attributes['time']!r}") from error
        if time.tzinfo is None:
            raise EventDecodeError("header ce_time has no time zone")
    else:
        time = utcnow()
    try:
        return Event(
            type=attributes["type"],
            source=attributes["source"],
            tenant=attributes["tenant"],
            subject=attributes.get("subject"),
            id=attributes["id"],
            time=time,
            data=data,
            traceparent=trace.get("traceparent"),
            tracestate=trace.get("tracestate"),
        )
    except ValueError as error:
        raise EventDecodeError(str(error)) from error
