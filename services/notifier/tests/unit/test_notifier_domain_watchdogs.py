"""Watchdogs, pure: CmTel's rating check every X minutes, heartbeats, lag and dead letters."""

from datetime import UTC, datetime, timedelta

from tarifa_notifier.domain.watchdogs import (
    ConsumerSample,
    DeadLetterWatch,
    RatingWatch,
    ServiceBeat,
    heartbeat_verdicts,
    lag_verdicts,
)

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
X = timedelta(minutes=5)


def rater(at: datetime, processed: int, lag: int, instance: str = "r-1") -> ServiceBeat:
    return ServiceBeat("rater", instance, at, 10.0, {"rater": ConsumerSample(processed, lag)})


def test_rating_is_stopped_when_calls_wait_and_none_was_rated_since_the_last_check() -> None:
    watch = RatingWatch(every=X)
    first = watch.check([rater(T0, 100, 5)], T0)
    assert first is not None and not first.firing
    assert watch.check([rater(T0 + X / 2, 100, 5)], T0 + X / 2) is None  # not yet time to look
    stopped = watch.check([rater(T0 + X, 100, 7)], T0 + X)
    assert stopped is not None and stopped.firing
    assert stopped.summary == "Rating stopped: 7 call(s) waiting and none rated in the last 5 minutes"
    resumed = watch.check([rater(T0 + 2 * X, 130, 0)], T0 + 2 * X)
    assert resumed is not None and not resumed.firing


def test_an_idle_rater_with_nothing_waiting_is_not_stopped() -> None:
    watch = RatingWatch(every=X)
    watch.check([rater(T0, 100, 0)], T0)
    verdict = watch.check([rater(T0 + X, 100, 0)], T0 + X)
    assert verdict is not None and not verdict.firing


def test_no_heartbeat_from_the_rater_within_x_minutes_means_rating_stopped() -> None:
    watch = RatingWatch(every=X)
    verdict = watch.check([rater(T0, 100, 0)], T0 + X + timedelta(seconds=1))
    assert verdict is not None and verdict.firing
    assert verdict.summary == "Rating stopped: no heartbeat from the rater for 5 minutes"


def test_a_restarted_rater_instance_that_rates_counts_as_progress() -> None:
    watch = RatingWatch(every=X)
    watch.check([rater(T0, 5000, 3, "old")], T0)
    verdict = watch.check([rater(T0 + X, 12, 3, "new")], T0 + X)
    assert verdict is not None and not verdict.firing


def test_a_service_silent_for_three_intervals_has_stopped() -> None:
    beats = [
        ServiceBeat("collector", "c-1", T0, 10.0),
        ServiceBeat("invoicer", "i-1", T0 + timedelta(seconds=25), 10.0),
    ]
    verdicts = {v.object_id: v.firing for v in heartbeat_verdicts(beats, T0 + timedelta(seconds=31))}
    assert verdicts == {"collector": True, "invoicer": False}


def test_lag_above_the_threshold_fires_per_group() -> None:
    beats = [rater(T0, 1, 600, "a"), rater(T0, 1, 500, "b")]
    [verdict] = lag_verdicts(beats, T0, threshold=1000, fresh_within=X)
    assert verdict.firing and verdict.summary == "Consumer rater is 1100 message(s) behind (threshold 1000)"


def test_a_dead_letter_topic_that_grows_fires_for_x_minutes_and_one_that_stays_resolves() -> None:
    watch = DeadLetterWatch(every=X)
    first = watch.check({"dlq.rater": 3}, T0)
    assert first is not None and not any(v.firing for v in first)
    assert watch.check({"dlq.rater": 5}, T0 + timedelta(minutes=1)) is None  # held until X has passed
    grown = watch.check({"dlq.rater": 5}, T0 + X)
    assert grown is not None and grown[0].firing
    assert grown[0].summary == "Dead-letter topic dlq.rater grew by 2 message(s) to 5"
    calm = watch.check({"dlq.rater": 5}, T0 + 2 * X)
    assert calm is not None and not calm[0].firing


def test_a_notifier_that_just_started_does_not_claim_the_rater_was_silent_for_x_minutes() -> None:
    watch = RatingWatch(every=X, listening_since=T0)
    assert watch.check([], T0 + timedelta(seconds=5)) is None  # it has not heard anyone yet
    assert watch.check([], T0 + X - timedelta(seconds=1)) is None
    silent = watch.check([], T0 + X)
    assert silent is not None and silent.firing
    assert silent.summary == "Rating stopped: no heartbeat from the rater for 5 minutes"


def test_a_notifier_that_just_started_and_hears_the_rater_checks_at_once() -> None:
    watch = RatingWatch(every=X, listening_since=T0)
    verdict = watch.check([rater(T0 + timedelta(seconds=5), 100, 0)], T0 + timedelta(seconds=5))
    assert verdict is not None and not verdict.firing
