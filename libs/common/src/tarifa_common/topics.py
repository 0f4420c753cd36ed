"""The topic registry: every topic Tarifa uses, what its key is, and which event types travel on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key: str
    partitions: int
    retention_hours: int
    types: tuple[str, ...]
    description: str


CDR_RAW = Topic(
    "cdr.raw", "source", 6, 168, ("tarifa.cdr.collected.v1",), "Every call record the collector accepted, normalised."
)
CDR_REJECTED = Topic(
    "cdr.rejected",
    "source",
    3,
    720,
    ("tarifa.cdr.rejected.v1",),
    "Records the collector could not parse, with the reason and the raw bytes.",
)
CDR_RATED = Topic(
    "cdr.rated",
    "line",
    6,
    168,
    ("tarifa.cdr.rated.v1",),
    "Priced and attributed calls; a re-rate publishes a new version.",
)
CDR_UNRATED = Topic(
    "cdr.unrated",
    "source",
    3,
    720,
    ("tarifa.cdr.unrated.v1",),
    "Calls waiting for a tariff or an extension, with the reason.",
)
LINE_USAGE = Topic(
    "line.usage",
    "line",
    3,
    168,
    ("tarifa.line.usage_threshold.v1", "tarifa.line.credit_exceeded.v1"),
    "Allowance thresholds and credit-limit breaches per line.",
)
LINE_EVENTS = Topic(
    "line.events",
    "line",
    3,
    720,
    (
        "tarifa.line.created.v1",
        "tarifa.line.activated.v1",
        "tarifa.line.category_changed.v1",
        "tarifa.line.blocked.v1",
        "tarifa.line.released.v1",
        "tarifa.line.cancelled.v1",
        "tarifa.line.did_added.v1",
        "tarifa.line.did_removed.v1",
    ),
    "SIP line life cycle from voip-summit.",
)
CONTRACT_STATUS = Topic(
    "contract.status",
    "contract",
    3,
    720,
    ("tarifa.contract.status_changed.v1",),
    "Every change of a contract's status; voip-summit blocks and releases lines on it.",
)
INVOICE_ISSUED = Topic(
    "invoice.issued",
    "customer",
    3,
    720,
    ("tarifa.invoice.issued.v1", "tarifa.invoice.credited.v1"),
    "Issued invoices and credit notes, with summary and links, for ERPs.",
)
# Raised and resolved share one topic keyed by fingerprint: a resolution can never overtake its alert.
ALERT_EVENTS = Topic(
    "alert.events",
    "fingerprint",
    3,
    168,
    ("tarifa.alert.raised.v1", "tarifa.alert.resolved.v1"),
    "Alerts raised and resolved by every service and by clients' systems.",
)
HEARTBEAT = Topic(
    "service.heartbeat",
    "service",
    1,
    24,
    ("tarifa.service.heartbeat.v1",),
    "Every service instance says it is alive every few seconds.",
)

ALL: tuple[Topic, ...] = (
    CDR_RAW,
    CDR_REJECTED,
    CDR_RATED,
    CDR_UNRATED,
    LINE_USAGE,
    LINE_EVENTS,
    CONTRACT_STATUS,
    INVOICE_ISSUED,
    ALERT_EVENTS,
    HEARTBEAT,
)
DEAD_LETTER_PARTITIONS = 1
DEAD_LETTER_RETENTION_HOURS = 24 * 30


def dead_letter_topic(group: str) -> str:
    """Each consumer group has its own dead-letter topic, replayable after a fix."""
    return f"dlq.{group}"


def by_name(name: str) -> Topic:
    for topic in ALL:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in ALL)}")
