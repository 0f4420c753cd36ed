"""Properties of the grouping rules over any sequence of raises and resolutions (hypothesis)."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tarifa_common.alerts import Severity, SourceKind
from tarifa_notifier.domain.alerts import Alert, AlertGroup, GroupPolicy, plan_flush

T0 = datetime(2026, 11, 22, tzinfo=UTC)
POLICY = GroupPolicy(timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=1))
FINGERPRINTS = ["c/source-silent/pbx", "c/parse-errors/pbx", "c/link-down/pbx"]

steps = st.lists(
    st.tuples(st.integers(min_value=1, max_value=900), st.sampled_from(FINGERPRINTS), st.booleans()),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_messages_keep_their_intervals_and_every_told_alert_is_told_resolved_once(
    events: list[tuple[int, str, bool]],
) -> None:
    alerts: dict[str, Alert] = {}
    group = AlertGroup("acme", "source:pbx")
    now = T0
    flushes = []
    told_firing: set[str] = set()
    resolved_told: list[str] = []

    def tick(until: datetime) -> None:
        nonlocal now
        while now < until:
            now += timedelta(seconds=10)
            current = list(alerts.values())
            flush = plan_flush(group, current, [], [a for a in current if a.firing], POLICY, now)
            if flush is not None:
                flushes.append(flush)
                told_firing.update(a.fingerprint for a in flush.firing)
                resolved_told.extend(a.fingerprint for a in flush.resolved)

    for gap, fingerprint, raise_it in events:
        tick(now + timedelta(seconds=gap))
        alert = alerts.get(fingerprint)
        if raise_it:
            if alert is None:
                alerts[fingerprint] = Alert(
                    "acme", fingerprint, Severity.IMPORTANT, SourceKind.AUTOMATION, "source", "pbx", "down", now, now
                )
                group.touch(now)
            elif alert.raise_again(Severity.IMPORTANT, "down", {}, now):
                group.touch(now)
        elif alert is not None:
            alert.resolve(now)
    for alert in alerts.values():
        alert.resolve(now)
    tick(now + timedelta(hours=3))

    for earlier, later in pairwise(flushes):
        if earlier.firing:  # within one episode, messages keep at least the group interval apart
            assert later.at - earlier.at >= POLICY.group_interval
    # every alert told as firing and then ended was told as resolved, and nothing else was
    assert set(resolved_told) <= told_firing
    assert group.first_at is None and group.notified == {}
