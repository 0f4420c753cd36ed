"""Watchdogs that fire when nothing arrives at all: rating stopped, heartbeats stopped, lag, dead letters.

Each check is a pure function of what the notifier last heard (heartbeats, dead-letter offsets)
and of the time, so tests drive it with a clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tarifa_common.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ConsumerSample:
    processed: int
    lag: int
    dead_lettered: int = 0


@dataclass(frozen=True, slots=True)
class ServiceBeat:
    """The last heartbeat of one service instance."""

    service: str
    instance: str
    seen_at: datetime
    interval_seconds: float
    consumers: Mapping[str, ConsumerSample] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check concluded about one condition: firing (with why) or not."""

    fingerprint: str
    object_kind: str
    object_id: str
    firing: bool
    summary: str


@dataclass(frozen=True, slots=True)
class TenantWatchdog:
    """A tenant's own rating watchdog (CmTel's settings per business): check every `every`, tell `emails`."""

    tenant: str
    every: timedelta
    emails: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.every < timedelta(minutes=1):
            raise InvalidInput("rating_check_minutes", "check at most once a minute (give 1 or more)")
        if any("@" not in e for e in self.emails):
            raise InvalidInput("emails", "each address needs an @")


@dataclass(slots=True)
class RatingWatch:
    """CmTel's watchdog: every X minutes, check that calls are being rated.

    The rule: rating has stopped when no rater instance has sent a heartbeat within X minutes,
    or when calls wait (consumer lag > 0) and no instance's processed count grew since the
    previous check. Per instance, because each one's counter restarts at 0 when it restarts.
    Rating that is idle because nothing arrives (lag 0) is not stopped.

    "No heartbeat for X minutes" is only claimed over a window the notifier was listening to:
    a notifier that started (`listening_since`) less than X minutes ago has not heard the
    rater yet because it only just joined the heartbeat topic, not because the rater is silent.
    """

    every: timedelta
    group: str = "rater"
    last_check_at: datetime | None = None
    processed: dict[str, int] = field(default_factory=dict)
    listening_since: datetime | None = None

    def check(self, beats: Sequence[ServiceBeat], now: datetime) -> Verdict | None:
        """None when it is not yet time to check again, or too early to tell."""
        if self.last_check_at is not None and now < self.last_check_at + self.every:
            return None
        fresh = [b for b in beats if self.group in b.consumers and b.seen_at >= now - self.every]
        if not fresh and self.listening_since is not None and now < self.listening_since + self.every:
            return None
        first_check = self.last_check_at is None
        self.last_check_at = now
        minutes = self.every.total_seconds() / 60
        if not fresh:
            self.processed = {}
            return self._verdict(True, f"Rating stopped: no heartbeat from the {self.group} for {minutes:g} minutes")
        lag = sum(b.consumers[self.group].lag for b in fresh)
        current = {b.instance: b.consumers[self.group].processed for b in fresh}
        progressed = any(n > self.processed.get(i, 0 if not first_check else n) for i, n in current.items())
        self.processed = current
        if lag > 0 and not progressed and not first_check:
            return self._verdict(
                True, f"Rating stopped: {lag} call(s) waiting and none rated in the last {minutes:g} minutes"
            )
        return self._verdict(False, "Rating resumed: calls are being rated again")

    def _verdict(self, firing: bool, summary: str) -> Verdict:
        return Verdict(f"notifier/rating-stopped/{self.group}", "service", self.group, firing, summary)


def heartbeat_verdicts(beats: Sequence[ServiceBeat], now: datetime, misses: int = 3) -> list[Verdict]:
    """A service whose instances have all been silent for `misses` heartbeat intervals has stopped."""
    latest: dict[str, ServiceBeat] = {}
    for beat in beats:
        if beat.service not in latest or beat.seen_at > latest[beat.service].seen_at:
            latest[beat.service] = beat
    verdicts = []
    for service, beat in sorted(latest.items()):
        silent_for = now - beat.seen_at
        stopped = silent_for > timedelta(seconds=beat.interval_seconds * misses)
        summary = (
            f"Service {service} stopped: no heartbeat for {int(silent_for.total_seconds())} s"
            if stopped
            else f"Service {service} is alive again"
        )
        verdicts.append(Verdict(f"notifier/heartbeat-stopped/{service}", "service", service, stopped, summary))
    return verdicts


def lag_verdicts(beats: Sequence[ServiceBeat], now: datetime, threshold: int, fresh_within: timedelta) -> list[Verdict]:
    """A consumer group whose summed lag over fresh heartbeats exceeds the threshold is behind."""
    lags: dict[str, int] = {}
    for beat in beats:
        if beat.seen_at < now - fresh_within:
            continue
        for group, sample in beat.consumers.items():
            lags[group] = lags.get(group, 0) + sample.lag
    return [
        Verdict(
            f"notifier/consumer-lag/{group}",
            "consumer",
            group,
            lag > threshold,
            f"Consumer {group} is {lag} message(s) behind (threshold {threshold})"
            if lag > threshold
            else f"Consumer {group} caught up ({lag} behind)",
        )
        for group, lag in sorted(lags.items())
    ]


@dataclass(slots=True)
class DeadLetterWatch:
    """A dead-letter topic whose end offset grew since the previous check has new poison messages.

    Checked every `every` (the watchdog's X minutes), not every tick: a verdict then holds for X
    minutes, longer than the group wait, so a burst of dead letters is told, not lost in a flap.
    """

    every: timedelta
    last_check_at: datetime | None = None
    ends: dict[str, int] = field(default_factory=dict)

    def check(self, ends: Mapping[str, int], now: datetime) -> list[Verdict] | None:
        if self.last_check_at is not None and now < self.last_check_at + self.every:
            return None
        self.last_check_at = now
        verdicts = []
        for topic, end in sorted(ends.items()):
            before = self.ends.get(topic)
            grew = before is not None and end > before
            summary = (
                f"Dead-letter topic {topic} grew by {end - (before or 0)} message(s) to {end}"
                if grew
                else f"Dead-letter topic {topic} stopped growing ({end} message(s))"
            )
            verdicts.append(Verdict(f"notifier/dead-letters/{topic}", "topic", topic, grew, summary))
        self.ends = dict(ends)
        return verdicts
