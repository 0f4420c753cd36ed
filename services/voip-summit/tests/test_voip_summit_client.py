"""The Summit client against the simulator on a real socket: retries, Retry-After, lost answers, refusals."""

import pytest
from voip_summit_support import SUMMIT_PASSWORD, SUMMIT_USER, Summit

from tarifa_voip_summit.adapters.summit import SummitAddress, SummitClient, SummitRefused, SummitUnavailable


def client_of(summit: Summit, *, attempts: int = 5, timeout: float = 1.0) -> SummitClient:
    address = SummitAddress(summit.url, SUMMIT_USER, SUMMIT_PASSWORD)
    return SummitClient(address, timeout_seconds=timeout, attempts=attempts, backoff_seconds=0.01)


def terminal(line_id: str, number: str = "551130000001") -> dict[str, object]:
    return {
        "external_id": line_id,
        "bid_type": "terminal",
        "number": number,
        "partition": "SP-CAPITAL",
        "category": "LIVRE",
        "plan": "FIXO-100",
        "cost_centre": "Default",
        "call_limit": 2,
        "due_day": 10,
    }


async def test_a_create_survives_503s_and_a_429_and_makes_one_terminal(summit: Summit) -> None:
    summit.inject(fail_next=2, throttle_next=1, retry_after_seconds=0)
    async with client_of(summit) as client:
        created = await client.create_terminal(terminal("line-1"), idempotency_key="t:line-1")
    assert created["number"] == "551130000001"
    assert created["credential"]["username"] == "sip551130000001"
    assert len(summit.state.terminals) == 1
    assert summit.state.requests == 5  # 2 x 503, 1 x 429, the look-up, the create


async def test_a_hung_request_times_out_and_is_retried(summit: Summit) -> None:
    summit.inject(timeout_next=1, hang_seconds=1)
    async with client_of(summit, timeout=0.3) as client:
        partitions = await client.fetch("partitions")
    assert {p["code"] for p in partitions} == {"SP-CAPITAL", "RJ"}


async def test_a_create_whose_answer_is_lost_is_not_created_twice_even_without_idempotency_keys(
    summit: Summit,
) -> None:
    summit.inject(lose_answer_next=1, ignore_idempotency_key=True)
    async with client_of(summit) as client:
        created = await client.create_terminal(terminal("line-2"), idempotency_key="t:line-2")
        again = await client.create_terminal(terminal("line-2"), idempotency_key="t:line-2")
    assert created["terminal_id"] == again["terminal_id"]
    assert summit.state.creates_applied == 1
    assert [t.external_id for t in summit.state.terminals.values()] == ["line-2"]


async def test_summit_failing_every_attempt_is_reported_unavailable(summit: Summit) -> None:
    summit.inject(fail_next=10)
    async with client_of(summit, attempts=3) as client:
        with pytest.raises(SummitUnavailable, match="after 3 attempts"):
            await client.fetch("plans")
    assert summit.state.requests == 3


async def test_a_refusal_is_not_retried_and_names_summits_reason(summit: Summit) -> None:
    async with client_of(summit) as client:
        with pytest.raises(SummitRefused, match="not allowed in partition SP-CAPITAL"):
            await client.create_terminal({**terminal("line-3"), "category": "LOCAL"}, idempotency_key="k")
    assert summit.state.requests == 2  # the look-up and one create


async def test_wrong_credentials_are_refused(summit: Summit) -> None:
    address = SummitAddress(summit.url, SUMMIT_USER, "wrong")
    async with SummitClient(address, attempts=2, backoff_seconds=0.01) as client:
        with pytest.raises(SummitRefused, match="401"):
            await client.fetch("plans")
