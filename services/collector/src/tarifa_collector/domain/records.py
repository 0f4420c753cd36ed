"""What every parser shares: the source a record came from, a rejection with its reason, deterministic ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tarifa_collector.domain.numbering import NumberingPlan
from tarifa_common.contracts import CollectedCdr
from tarifa_common.events import TARIFA_NAMESPACE

# A CDR line longer than this is not a CDR (the longest IP Office SMDR record is about 600
# bytes; an Asterisk row with long lastdata about 1 KiB). Longer input is garbage or a missing
# line end, and is rejected rather than buffered without bound.
MAX_LINE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class SourceContext:
    """Who a record belongs to and how to read its local times."""

    tenant: str
    source_id: str
    source_kind: str
    time_zone: str = "UTC"
    numbering: NumberingPlan | None = None  # where the PBX is, for E.164 numbers (none: digits only)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A PBX's naive wall-clock time in its zone, as an aware UTC datetime.

    In the autumn fold the first occurrence is taken (`fold=0`): a PBX gives no way to tell
    the two apart, and the choice only moves a call by the one ambiguous hour.
    """
    return local.replace(tzinfo=zone).astimezone(UTC)


@dataclass(slots=True)
class PublishableCall:
    """A call ready for `cdr.raw`: what storage and the envelope need, and the event data as JSON values.

    Not frozen: one is built per call on the SMDR hot path, and a frozen init costs twice as much
    (its `data` dict made it unhashable anyway).

    `data` is exactly `CollectedCdr.model_dump(mode="json")` (a test holds the SMDR fast path to
    that); the SMDR hot path builds it without pydantic, which cost more than the rest of the
    path (docs/collector.md, "Speed").
    """

    record_id: str
    tenant: str
    source_id: str
    call_id: str
    started_at: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, call: CollectedCdr) -> PublishableCall:
        return cls(
            record_id=call.record_id,
            tenant=call.tenant,
            source_id=call.source_id,
            call_id=call.call_id,
            started_at=call.started_at,
            data=call.model_dump(mode="json"),
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record we could not accept, and why (the reason names the field and the problem)."""

    reason: str
    raw: bytes


def record_id(source: SourceContext, raw: str) -> str:
    """The id of one source record: the same bytes re-sent by the same source have the same id.

    Equal to `deterministic_id(tenant, source_id, raw)` (UUIDv5), computed from a SHA-1 state
    that has already hashed the namespace and the source's prefix: building a `uuid.UUID` per
    record was a quarter of the SMDR parsing time.
    """
    return source_scoped_id(source, raw)


def source_scoped_id(source: SourceContext, *parts: str) -> str:
    """`deterministic_id(tenant, source_id, *parts)` without building a `uuid.UUID` (hot paths)."""
    prefix = _PREFIXES.get((source.tenant, source.source_id))
    if prefix is None:
        prefix = hashlib.sha1(TARIFA_NAMESPACE.bytes, usedforsecurity=False)
        prefix.update(f"{source.tenant}\x1f{source.source_id}\x1f".encode())
        _PREFIXES[(source.tenant, source.source_id)] = prefix
    digest = prefix.copy()
    digest.update((parts[0] if len(parts) == 1 else "\x1f".join(parts)).encode())
    text = digest.hexdigest()
    # Version 5 in the 13th digit, the RFC 4122 variant in the two top bits of the 17th.
    return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:32]}"


_PREFIXES: dict[tuple[str, str], hashlib._Hash] = {}
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def decode_line(raw: bytes) -> str | Rejection:
    """Text of one line: UTF-8, or Latin-1 for older PBXs; control bytes mean it is not a CDR."""
    if len(raw) > MAX_LINE_BYTES:
        return Rejection(f"line is {len(raw)} bytes long; a record is at most {MAX_LINE_BYTES}", raw[:MAX_LINE_BYTES])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.rstrip("\r\n")
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        return Rejection(f"line holds the control character {bad!r}; it is not a call record", raw)
    return text
