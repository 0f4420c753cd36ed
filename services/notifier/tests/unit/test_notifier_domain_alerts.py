"""Alertmanager's rules, pure: grouping wait, repeat, resolved once, silences, inhibition, severity routing."""

from datetime import UTC, datetime, timedelta

import pytest

from tarifa_common.alerts import Severity, SourceKind
from tarifa_common.errors import InvalidInput
from tarifa_notifier.domain.alerts import (
    Alert,
    AlertGroup,
    Channel,
    GroupPolicy,
    Matcher,
    MatchOp,
    Recipient,
    Responsibility,
    Silence,
    deliveries_for,
    plan_flush,
    render,
    responsible_for,
)

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
POLICY = GroupPolicy(
    group_wait=timedelta(seconds=30), group_interval=timedelta(minutes=5), repeat_interval=timedelta(hours=4)
)


def alert(fingerprint: str = "collector/source-silent/pbx-hq", object_id: str = "pbx-hq", **kw: object) -> Alert:
    values: dict[str, object] = {
        "tenant": "acme",
        "fingerprint": fingerprint,
        "severity": Severity.IMPORTANT,
        "source_kind": SourceKind.AUTOMATION,
        "object_kind": "source",
        "object_id": object_id,
        "summary": "No call records from pbx-hq",
        "starts_at": T0,
        "updated_at": T0,
    }
    values.update(kw)
    return Alert(**values)  # type: ignore[arg-type]


def started_group(at: datetime = T0) -> AlertGroup:
    group = AlertGroup("acme", "source:pbx-hq")
    group.touch(at)
    return group


def test_nothing_is_sent_before_the_group_wait_and_one_message_after_it() -> None:
    group, alerts = started_group(), [alert(), alert("collector/parse-errors/pbx-hq", severity=Severity.URGENT)]
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=29)) is None
    flush = plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=30))
    assert flush is not None
    assert len(flush.firing) == 2 and flush.severity is Severity.URGENT
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=31)) is None


def test_a_firing_group_repeats_after_the_repeat_interval_only() -> None:
    group, alerts = started_group(), [alert()]
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=30)) is not None
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(hours=4, seconds=29)) is None
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(hours=4, seconds=30)) is not None


def test_an_alert_repeat_override_wins_over_the_policy() -> None:
    group, alerts = started_group(), [alert(repeat_seconds=300)]
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=30)) is not None
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=329)) is None
    assert plan_flush(group, alerts, [], alerts, POLICY, T0 + timedelta(seconds=330)) is not None


def test_an_acknowledged_alert_stops_repeating_but_its_end_is_told() -> None:
    group, a = started_group(), alert()
    assert plan_flush(group, [a], [], [a], POLICY, T0 + timedelta(seconds=30)) is not None
    a.acknowledge("ana", T0 + timedelta(minutes=1))
    assert plan_flush(group, [a], [], [a], POLICY, T0 + timedelta(hours=5)) is None
    a.resolve(T0 + timedelta(hours=6))
    flush = plan_flush(group, [a], [], [], POLICY, T0 + timedelta(hours=6))
    assert flush is not None and flush.kind == "resolved"


def test_a_resolved_alert_is_told_once_and_the_group_then_rests() -> None:
    group, a = started_group(), alert()
    plan_flush(group, [a], [], [a], POLICY, T0 + timedelta(seconds=30))
    a.resolve(T0 + timedelta(minutes=2))
    assert plan_flush(group, [a], [], [], POLICY, T0 + timedelta(minutes=4)) is None  # group interval not over
    flush = plan_flush(group, [a], [], [], POLICY, T0 + timedelta(minutes=5, seconds=30))
    assert flush is not None and flush.kind == "resolved" and [x.fingerprint for x in flush.resolved] == [a.fingerprint]
    assert group.first_at is None
    assert plan_flush(group, [a], [], [], POLICY, T0 + timedelta(hours=9)) is None


def test_an_alert_that_ends_within_the_group_wait_sends_nothing() -> None:
    group, a = started_group(), alert()
    a.resolve(T0 + timedelta(seconds=10))
    assert plan_flush(group, [a], [], [], POLICY, T0 + timedelta(seconds=30)) is None
    assert group.first_at is None


def test_raising_a_resolved_alert_again_starts_a_new_episode() -> None:
    a = alert()
    a.resolve(T0 + timedelta(minutes=1))
    assert a.raise_again(Severity.IMPORTANT, "again", {}, T0 + timedelta(minutes=2)) is True
    assert a.starts_at == T0 + timedelta(minutes=2) and a.raised_count == 2
    assert a.raise_again(Severity.IMPORTANT, "again", {}, T0 + timedelta(minutes=3)) is False


def test_a_silence_mutes_matching_alerts_only_within_its_time_range() -> None:
    a, other = alert(), alert("collector/source-silent/pbx-b", object_id="pbx-b")
    silence = Silence(
        "s1",
        "acme",
        (Matcher("object_id", MatchOp.EQUAL, "pbx-hq"),),
        T0,
        T0 + timedelta(hours=1),
        "ana",
        "maintenance",
    )
    assert silence.mutes(a, T0 + timedelta(minutes=1))
    assert not silence.mutes(other, T0 + timedelta(minutes=1))
    assert not silence.mutes(a, T0 + timedelta(hours=1))
    group = started_group()
    assert plan_flush(group, [a], [silence], [a], POLICY, T0 + timedelta(seconds=30)) is None
    assert plan_flush(group, [a], [silence], [a], POLICY, T0 + timedelta(hours=1)) is not None


def test_a_silence_in_another_tenant_mutes_nothing() -> None:
    silence = Silence("s1", "other", (Matcher("object_id", MatchOp.REGEX, ".*"),), T0, T0 + timedelta(hours=1))
    assert not silence.mutes(alert(), T0 + timedelta(minutes=1))


@pytest.mark.parametrize(
    ("matcher", "field"),
    [
        (lambda: Matcher("colour", MatchOp.EQUAL, "x"), "matchers.label"),
        (lambda: Matcher("object_id", MatchOp.REGEX, "("), "matchers.value"),
        (lambda: Silence("s", "acme", (), T0, T0 + timedelta(hours=1)), "matchers"),
        (lambda: Silence("s", "acme", (Matcher("object_id", MatchOp.EQUAL, "x"),), T0, T0), "ends_at"),
    ],
)
def test_a_bad_silence_names_the_field(matcher: object, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        matcher()  # type: ignore[operator]
    assert raised.value.problems[0].field == field


def test_a_source_that_is_down_inhibits_no_rating_for_that_source_only() -> None:
    down = alert("collector/source-silent/pbx-hq")
    no_rating = alert("rater/no-rating/pbx-hq")
    other_no_rating = alert("rater/no-rating/pbx-b", object_id="pbx-b")
    firing = [down, no_rating, other_no_rating]
    group = started_group()
    flush = plan_flush(group, [down, no_rating], [], firing, POLICY, T0 + timedelta(seconds=30))
    assert flush is not None and [a.fingerprint for a in flush.firing] == [down.fingerprint]
    group_b = AlertGroup("acme", "source:pbx-b")
    group_b.touch(T0)
    flush_b = plan_flush(group_b, [other_no_rating], [], firing, POLICY, T0 + timedelta(seconds=30))
    assert flush_b is not None and [a.fingerprint for a in flush_b.firing] == [other_no_rating.fingerprint]


def test_no_rating_is_told_once_the_source_is_back_up() -> None:
    down, no_rating = alert("collector/source-silent/pbx-hq"), alert("rater/no-rating/pbx-hq")
    group = started_group()
    plan_flush(group, [down, no_rating], [], [down, no_rating], POLICY, T0 + timedelta(seconds=30))
    down.resolve(T0 + timedelta(minutes=1))
    flush = plan_flush(group, [down, no_rating], [], [no_rating], POLICY, T0 + timedelta(minutes=6))
    assert flush is not None
    assert [a.fingerprint for a in flush.firing] == [no_rating.fingerprint]
    assert [a.fingerprint for a in flush.resolved] == [down.fingerprint]


ANA = Recipient("r1", "acme", "Ana", email="ana@acme.test", phone="+5511999990001")
BO = Recipient("r2", "acme", "Bo", email="bo@acme.test")


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.STANDARD, set()),
        (Severity.IMPORTANT, {(Channel.EMAIL, "ana@acme.test"), (Channel.EMAIL, "bo@acme.test")}),
        (
            Severity.URGENT,
            {(Channel.EMAIL, "ana@acme.test"), (Channel.EMAIL, "bo@acme.test"), (Channel.SMS, "+5511999990001")},
        ),
    ],
)
def test_severity_decides_the_channels(severity: Severity, expected: set[tuple[Channel, str]]) -> None:
    assert {(d.channel, d.address) for d in deliveries_for(severity, [ANA, BO])} == expected


def test_inactive_recipients_are_not_told_and_the_watch_list_gets_email_only() -> None:
    inactive = Recipient("r3", "acme", "Cy", email="cy@acme.test", active=False)
    got = deliveries_for(Severity.URGENT, [inactive], ["ops@acme.test"])
    assert [(d.channel, d.address) for d in got] == [(Channel.EMAIL, "ops@acme.test")]


def test_responsibility_by_object_by_kind_and_by_group() -> None:
    responsibilities = [
        Responsibility("direct", "source", "pbx-hq"),
        Responsibility("all-sources", "source", "*"),
        Responsibility("via-group", "group", "critical"),
        Responsibility("other", "line", "l-1"),
    ]
    memberships = {"critical": {("source", "pbx-hq")}}
    assert responsible_for("source", "pbx-hq", responsibilities, memberships) == {"direct", "all-sources", "via-group"}
    assert responsible_for("source", "pbx-b", responsibilities, memberships) == {"all-sources"}


def test_an_sms_is_one_line_of_at_most_160_characters() -> None:
    group, a = started_group(), alert(summary="x" * 400, severity=Severity.URGENT)
    flush = plan_flush(group, [a], [], [a], POLICY, T0 + timedelta(seconds=30))
    assert flush is not None
    subject, body = render(flush, Channel.SMS)
    assert len(body) == 160 and "\n" not in body and subject.startswith("[URGENT] 1 alert(s) firing on source pbx-hq")
