"""Benchmark: the rater's pricing function on one core against a plan of 50,000 destination prefixes.

Run: .venv/bin/python bench/rater_pricing.py [--calls 200000] [--prefixes 50000] [--repeat 3]
Prints calls per second for `price_call` alone and for the full `rate_call` (normalise the
dialled number, classify, longest-prefix lookup, time band, price).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tarifa_rater.domain.numbering import CallClass, NumberingPlan
from tarifa_rater.domain.pricing import Band, PriceMemo, Rate, price_call
from tarifa_rater.domain.rating import CallToRate, DirectoryEntry, Rating, rate_call
from tarifa_rater.domain.tariffs import PlanBook, RateEntry, TariffPlan


def build_book(prefixes: int, rng: random.Random) -> PlanBook:
    entries: list[RateEntry] = []
    seen: set[str] = set()
    while len(seen) < prefixes:
        country = rng.choice(["1", "44", "351", "34", "49", "54", "598", "595", "56", "86", "81", "33", "39"])
        prefix = country + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))
        if prefix in seen:
            continue
        seen.add(prefix)
        price = Decimal(rng.randint(10, 500)) / 100
        entries.append(
            RateEntry(f"dest-{prefix}", Rate(f"dest-{prefix}", price, connect_fee=Decimal("0.10")), (prefix,))
        )
    for call_class, price in (
        ("local", "0.12"),
        ("vc1", "0.60"),
        ("vc2", "0.80"),
        ("vc3", "0.95"),
        ("long_distance", "0.30"),
    ):
        entries.append(
            RateEntry(
                call_class, Rate(call_class, Decimal(price), connect_fee=Decimal("0.05")), (), CallClass(call_class)
            )
        )
    book = PlanBook()
    book.add(TariffPlan("bench", datetime(2026, 1, 1, tzinfo=UTC), entries))
    book.assign("tenant", "*", "bench")
    return book


def dialled_numbers(count: int, rng: random.Random) -> list[str]:
    kinds = [
        lambda: "3" + "".join(rng.choice("0123456789") for _ in range(7)),  # local
        lambda: "9" + "".join(rng.choice("0123456789") for _ in range(8)),  # VC1
        lambda: (
            "015" + rng.choice(["19", "21", "31", "41"]) + "9" + "".join(rng.choice("0123456789") for _ in range(8))
        ),
        lambda: (
            "0021"
            + rng.choice(["1", "44", "351", "34", "49", "54"])
            + "".join(rng.choice("0123456789") for _ in range(9))
        ),
    ]
    return [rng.choice(kinds)() for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--prefixes", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    book = build_book(args.prefixes, rng)
    numbering = NumberingPlan(home_area_code="11")
    entry = DirectoryEntry("2001", line_id="line-1")
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    calls = [
        CallToRate(
            f"r{i}",
            start + timedelta(seconds=i),
            (start + timedelta(seconds=i)).replace(tzinfo=None),
            "outbound",
            True,
            rng.randint(0, 900),
            dialled,
            "2001",
        )
        for i, dialled in enumerate(dialled_numbers(args.calls, rng))
    ]
    rate = Rate("local", Decimal("0.12"), reduced_price_per_minute=Decimal("0.06"), connect_fee=Decimal("0.05"))
    durations = [c.billable_seconds for c in calls]

    def price_alone() -> None:
        for seconds in durations:
            price_call(seconds, True, Band.NORMAL, rate)

    memo: PriceMemo = {}

    def price_with_memo() -> None:
        for seconds in durations:
            price_call(seconds, True, Band.NORMAL, rate, memo)

    outcomes: list[object] = []

    def rate_all() -> None:
        outcomes[:] = [rate_call(call, entry, book, numbering) for call in calls]

    print(f"prefixes in plan: {sum(len(p.entries) for v in book.versions.values() for p in v)}")
    print(f"best of {args.repeat} runs; calls per second of CPU time (one core), and of wall-clock time")
    for name, run in (
        ("price_call alone", price_alone),
        ("price_call with the plan's price memo", price_with_memo),
        ("rate_call (normalise + classify + longest prefix + band + price)", rate_all),
    ):
        cpu, wall = measure(run, args.repeat)
        print(f"{name}: {args.calls / cpu:,.0f} calls/s CPU, {args.calls / wall:,.0f} calls/s wall")
    rated = sum(1 for outcome in outcomes if isinstance(outcome, Rating))
    print(f"({rated} of {len(calls)} calls rated)")


def measure(run: Callable[[], None], repeat: int) -> tuple[float, float]:
    """The shortest CPU time and the shortest wall-clock time of `repeat` runs (others share the machine)."""
    cpu, wall = float("inf"), float("inf")
    for _ in range(repeat):
        began_cpu, began_wall = time.process_time(), time.perf_counter()
        run()
        cpu = min(cpu, time.process_time() - began_cpu)
        wall = min(wall, time.perf_counter() - began_wall)
    return cpu, wall


if __name__ == "__main__":
    main()
