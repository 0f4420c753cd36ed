"""What every parser shares: the source a record came from, a rejection with its reason, deterministic ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

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
    prefix = _PREFIXES.get((source.tenant, source.source_id))
    if prefix is None:
        prefix = hashlib.sha1(TARIFA_NAMESPACE.bytes, usedforsecurity=False)
        prefix.update(f"{source.tenant}\x1f{source.source_id}\x1f".encode())
        _PREFIXES[(source.tenant, source.source_id)] = prefix
    digest = prefix.copy()
    digest.update(raw.encode())
    value = bytearray(digest.digest()[:16])
    value[6] = (value[6] & 0x0F) | 0x50  # version 5
    value[8] = (value[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = value.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_PREFIXES: dict[tuple[str, str], hashlib._Hash] = {}


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
