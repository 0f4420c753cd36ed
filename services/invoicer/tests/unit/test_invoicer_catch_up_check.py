"""The `rated_calls_caught_up` pre-check's rules, with a fake backlog (the real broker: integration tests)."""

from __future__ import annotations

from tarifa_invoicer import handlers
from tarifa_invoicer.domain.checks import BacklogUnavailable, behind


class FakeBacklog:
    """Ends fixed when asked; the group's committed offsets advance one answer at a time."""

    where = "broker.test:9092"

    def __init__(self, ends: dict[int, int], stored: list[dict[int, int]], wait_seconds: float = 5.0) -> None:
        self._ends, self._stored, self.wait_seconds = ends, stored, wait_seconds
        self.asked = 0
        self.closed = False

    async def ends(self) -> dict[int, int]:
        return self._ends

    async def stored(self) -> dict[int, int]:
        answer = self._stored[min(self.asked, len(self._stored) - 1)]
        self.asked += 1
        return answer

    async def close(self) -> None:
        self.closed = True


class DownBacklog(FakeBacklog):
    async def ends(self) -> dict[int, int]:
        raise BacklogUnavailable("could not connect: KafkaConnectionError")


def test_only_partitions_behind_their_end_count_and_by_how_much() -> None:
    assert behind({0: 10, 1: 4, 2: 0}, {0: 7, 1: 4}) == {0: 3}
    assert behind({0: 10}, {0: 12}) == {}  # read past the snapshot: caught up


async def test_the_check_waits_while_the_group_advances_and_finds_nothing_once_at_the_ends() -> None:
    backlog = FakeBacklog({0: 5, 1: 3}, [{0: 1, 1: 3}, {0: 4, 1: 3}, {0: 5, 1: 3}])
    assert await handlers.rated_calls_caught_up(backlog, poll_seconds=0) == []
    assert (backlog.asked, backlog.closed) == (3, True)


async def test_a_group_still_behind_after_the_wait_is_one_finding_with_the_count_by_partition() -> None:
    backlog = FakeBacklog({0: 5, 3: 9}, [{0: 2, 3: 8}], wait_seconds=0)
    (finding,) = await handlers.rated_calls_caught_up(backlog, poll_seconds=0)
    assert (finding.check, finding.object_id) == ("rated_calls_caught_up", "cdr.rated")
    assert "still not stored 4 rated call event(s)" in finding.detail
    assert "(by partition 0: 3, 3: 1)" in finding.detail
    assert backlog.closed


async def test_a_broker_that_cannot_say_is_a_finding_naming_where_it_was_asked() -> None:
    backlog = DownBacklog({}, [{}])
    (finding,) = await handlers.rated_calls_caught_up(backlog, poll_seconds=0)
    assert (finding.check, finding.object_id) == ("rated_calls_caught_up", "broker")
    assert "could not ask the broker at broker.test:9092" in finding.detail
    assert "KafkaConnectionError" in finding.detail
    assert backlog.closed
