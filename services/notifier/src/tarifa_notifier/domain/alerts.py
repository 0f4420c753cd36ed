"""Alerts the way Prometheus Alertmanager treats them: one per fingerprint, silenced, inhibited, grouped, routed.

Why Alertmanager's model: it is the model operators already know, and it answers the issue's
questions (one outage, one message; repeat while firing; say when it ends) with three timers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tarifa_common.alerts import Severity, SourceKind
from tarifa_common.errors import InvalidInput


class AlertStatus(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"  # still firing, someone is on it: no more repeats, the resolution is still told
    RESOLVED = "resolved"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


SEVERITY_RANK = {Severity.STANDARD: 0, Severity.IMPORTANT: 1, Severity.URGENT: 2}
# SOL24's three tiers: standard is the inbox only; important also e-mails; urgent also texts.
CHANNELS_BY_SEVERITY: Mapping[Severity, tuple[Channel, ...]] = {
    Severity.STANDARD: (),
    Severity.IMPORTANT: (Channel.EMAIL,),
    Severity.URGENT: (Channel.EMAIL, Channel.SMS),
}


def channels_for(severity: Severity) -> tuple[Channel, ...]:
    return CHANNELS_BY_SEVERITY[severity]


def condition_of(fingerprint: str, details: Mapping[str, Any]) -> str:
    """The condition label: `details["condition"]`, else the middle of `service/condition/object`."""
    explicit = details.get("condition")
    if isinstance(explicit, str) and explicit:
        return explicit
    parts = fingerprint.split("/")
    return parts[1] if len(parts) >= 3 else ""


def group_key_of(object_kind: str, object_id: str) -> str:
    """Alerts about one object form one group: one outage of a source is one message."""
    return f"{object_kind}:{object_id}"


@dataclass(slots=True)
class Alert:
    """One alert: every raise with the same fingerprint updates it instead of adding another."""

    tenant: str
    fingerprint: str
    severity: Severity
    source_kind: SourceKind
    object_kind: str
    object_id: str
    summary: str
    starts_at: datetime
    updated_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    status: AlertStatus = AlertStatus.FIRING
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    raised_count: int = 1
    repeat_seconds: int | None = None  # overrides the policy's repeat interval (the rating watchdog's X minutes)
    extra_emails: tuple[str, ...] = ()  # addresses told besides the responsible people (the watchdog's list)

    @property
    def group_key(self) -> str:
        return group_key_of(self.object_kind, self.object_id)

    @property
    def firing(self) -> bool:
        return self.status is not AlertStatus.RESOLVED

    def labels(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "severity": self.severity.value,
            "source_kind": self.source_kind.value,
            "object_kind": self.object_kind,
            "object_id": self.object_id,
            "condition": condition_of(self.fingerprint, self.details),
        }

    def raise_again(self, severity: Severity, summary: str, details: dict[str, Any], now: datetime) -> bool:
        """Fold a repeated raise into this alert; True when it starts a new firing episode."""
        reopened = self.status is AlertStatus.RESOLVED
        if reopened:
            self.status = AlertStatus.FIRING
            self.starts_at = now
            self.resolved_at = None
            self.acknowledged_by = None
            self.acknowledged_at = None
        self.severity = severity
        self.summary = summary
        self.details = details
        self.updated_at = now
        self.raised_count += 1
        return reopened

    def resolve(self, now: datetime) -> bool:
        """End the alert; False when it had already ended (a repeated resolution)."""
        if self.status is AlertStatus.RESOLVED:
            return False
        self.status = AlertStatus.RESOLVED
        self.resolved_at = now
        self.updated_at = now
        return True

    def acknowledge(self, who: str, now: datetime) -> None:
        if self.status is AlertStatus.RESOLVED:
            raise AlertAlreadyResolved(f"alert {self.fingerprint} is already resolved; nothing to acknowledge")
        self.status = AlertStatus.ACKNOWLEDGED
        self.acknowledged_by = who
        self.acknowledged_at = now
        self.updated_at = now


class AlertAlreadyResolved(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__("status", message)


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


LABELS = ("fingerprint", "severity", "source_kind", "object_kind", "object_id", "condition")


@dataclass(frozen=True, slots=True)
class Matcher:
    """An Alertmanager matcher: `label op value`; regular expressions match the whole value."""

    label: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise InvalidInput("matchers.label", f"{self.label!r} is not a label; use one of {', '.join(LABELS)}")
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                re.compile(self.value)
            except re.error as error:
                raise InvalidInput("matchers.value", f"{self.value!r} is not a regular expression: {error}") from error

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op is MatchOp.REGEX else not found


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes the alerts its matchers select between `starts_at` and `ends_at` (the inbox still shows them)."""

    id: str
    tenant: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str = ""
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise InvalidInput("matchers", "a silence needs at least one matcher, or it would mute everything")
        if self.ends_at <= self.starts_at:
            raise InvalidInput("ends_at", "must be after starts_at")

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, alert: Alert, now: datetime) -> bool:
        return self.tenant == alert.tenant and self.active(now) and all_match(self.matchers, alert.labels())


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """While an alert matching `source` fires, alerts matching `target` with the same `equal` labels are muted."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]
    id: str = ""
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            raise InvalidInput("source_matchers", "give at least one matcher for the alert that inhibits")
        if not self.target:
            raise InvalidInput("target_matchers", "give at least one matcher, or the rule would mute every alert")
        unknown = [label for label in self.equal if label not in LABELS]
        if unknown:
            raise InvalidInput("equal", f"{', '.join(unknown)} not labels; use some of {', '.join(LABELS)}")

    def inhibits(self, alert: Alert, firing: Iterable[Alert]) -> bool:
        labels = alert.labels()
        if not all_match(self.target, labels):
            return False
        for other in firing:
            if other.tenant != alert.tenant or other.fingerprint == alert.fingerprint or not other.firing:
                continue
            other_labels = other.labels()
            if all_match(self.source, other_labels) and all(other_labels[e] == labels[e] for e in self.equal):
                return True
        return False


# A source that is down explains why its calls are not rated: tell people about the cause only.
DEFAULT_INHIBIT_RULES = (
    InhibitRule(
        source=(Matcher("condition", MatchOp.REGEX, "source-(silent|down|disconnected)"),),
        target=(Matcher("condition", MatchOp.REGEX, "no-rating|rating-stopped"),),
        equal=("object_kind", "object_id"),
        id="default-source-down",
        comment="a source that is down explains why its calls are not rated",
    ),
)


def muted(
    alert: Alert,
    silences: Sequence[Silence],
    firing: Sequence[Alert],
    now: datetime,
    rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> bool:
    return any(s.mutes(alert, now) for s in silences) or any(r.inhibits(alert, firing) for r in rules)


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """Alertmanager's three timers."""

    group_wait: timedelta = timedelta(seconds=30)  # gather an outage's alerts before the first message
    group_interval: timedelta = timedelta(minutes=5)  # wait at least this before telling a change
    repeat_interval: timedelta = timedelta(hours=4)  # re-send while it keeps firing


@dataclass(slots=True)
class AlertGroup:
    """The notification state of one object's alerts: what was last told, and when."""

    tenant: str
    key: str
    first_at: datetime | None = None
    last_flush_at: datetime | None = None
    notified: dict[str, str] = field(default_factory=dict)  # fingerprint -> "firing" as last told

    def touch(self, now: datetime) -> None:
        """An alert of the group fires: start the group wait unless an episode is under way."""
        if self.first_at is None:
            self.first_at = now


@dataclass(frozen=True, slots=True)
class Flush:
    """One message's worth of a group: the alerts firing and those that ended since the last message."""

    tenant: str
    group_key: str
    at: datetime
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]

    @property
    def severity(self) -> Severity:
        alerts = self.firing or self.resolved
        return max((a.severity for a in alerts), key=SEVERITY_RANK.__getitem__)

    @property
    def kind(self) -> str:
        return "firing" if self.firing else "resolved"


def plan_flush(
    group: AlertGroup,
    alerts: Sequence[Alert],
    silences: Sequence[Silence],
    firing_in_tenant: Sequence[Alert],
    policy: GroupPolicy,
    now: datetime,
    rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
) -> Flush | None:
    """Decide whether the group sends a message now, and update its state if it does.

    Firing, unmuted alerts are told after the group wait, then again after the group interval
    when something changed, or after the repeat interval while any unacknowledged one fires.
    An alert told as firing that has ended is told once as resolved. Muted alerts are left out.
    """
    if group.first_at is None:
        return None
    firing = tuple(a for a in alerts if a.firing and not muted(a, silences, firing_in_tenant, now, rules))
    resolved = tuple(a for a in alerts if not a.firing and group.notified.get(a.fingerprint) == "firing")
    if not firing and not resolved:
        if not any(a.firing for a in alerts):
            group.first_at, group.last_flush_at, group.notified = None, None, {}
        return None
    if group.last_flush_at is None:
        due = now >= group.first_at + policy.group_wait
    else:
        changed = bool(resolved) or any(group.notified.get(a.fingerprint) != "firing" for a in firing)
        repeating = [a for a in firing if a.status is AlertStatus.FIRING]
        repeat = min(
            (timedelta(seconds=a.repeat_seconds) for a in repeating if a.repeat_seconds),
            default=policy.repeat_interval,
        )
        due = (changed and now >= group.last_flush_at + policy.group_interval) or (
            bool(repeating) and now >= group.last_flush_at + repeat
        )
    if not due:
        return None
    group.last_flush_at = now
    group.notified = {a.fingerprint: "firing" for a in firing}
    if not firing:
        group.first_at, group.last_flush_at = None, None
    return Flush(group.tenant, group.key, now, firing, resolved)


@dataclass(frozen=True, slots=True)
class Recipient:
    id: str
    tenant: str
    name: str
    email: str | None = None
    phone: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Responsibility:
    """A recipient answers for an object (`source/pbx-hq`), every object of a kind (`source/*`) or a group."""

    recipient_id: str
    object_kind: str
    object_id: str


GROUP_KIND = "group"


def responsible_for(
    object_kind: str,
    object_id: str,
    responsibilities: Iterable[Responsibility],
    memberships: Mapping[str, set[tuple[str, str]]],
) -> set[str]:
    """The ids of the recipients who answer for an object, directly, by kind or through a group."""
    found: set[str] = set()
    for r in responsibilities:
        direct = r.object_kind == object_kind and r.object_id in (object_id, "*")
        via_group = r.object_kind == GROUP_KIND and (object_kind, object_id) in memberships.get(r.object_id, set())
        if direct or via_group:
            found.add(r.recipient_id)
    return found


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one address on one channel."""

    channel: Channel
    address: str
    recipient_id: str | None


def deliveries_for(
    severity: Severity, recipients: Iterable[Recipient], extra_emails: Iterable[str] = ()
) -> list[Delivery]:
    """The severity decides the channels; each active recipient gets each channel it has an address for."""
    channels = channels_for(severity)
    out: dict[tuple[Channel, str], Delivery] = {}
    for recipient in recipients:
        if not recipient.active:
            continue
        if Channel.EMAIL in channels and recipient.email:
            out.setdefault((Channel.EMAIL, recipient.email), Delivery(Channel.EMAIL, recipient.email, recipient.id))
        if Channel.SMS in channels and recipient.phone:
            out.setdefault((Channel.SMS, recipient.phone), Delivery(Channel.SMS, recipient.phone, recipient.id))
    if Channel.EMAIL in channels:
        for address in extra_emails:
            out.setdefault((Channel.EMAIL, address), Delivery(Channel.EMAIL, address, None))
    return list(out.values())


def render(flush: Flush, channel: Channel) -> tuple[str, str]:
    """Subject and body of a flush's message; an SMS is one short line."""
    first = (flush.firing or flush.resolved)[0]
    obj = f"{first.object_kind} {first.object_id}"
    if flush.firing:
        subject = f"[{flush.severity.value.upper()}] {len(flush.firing)} alert(s) firing on {obj}: {first.summary}"
    else:
        subject = f"[RESOLVED] {obj}: {first.summary}"
    if channel is Channel.SMS:
        return subject, subject[:160]
    lines = [f"Tenant {flush.tenant}, {obj}, at {flush.at.isoformat()}", ""]
    for a in flush.firing:
        lines.append(f"FIRING since {a.starts_at.isoformat()}: {a.summary} ({a.fingerprint}, {a.severity.value})")
    for a in flush.resolved:
        ended = a.resolved_at.isoformat() if a.resolved_at else flush.at.isoformat()
        lines.append(f"RESOLVED at {ended}: {a.summary} ({a.fingerprint})")
    return subject, "\n".join(lines) + "\n"
