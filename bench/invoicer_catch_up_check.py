"""Benchmark: what the `rated_calls_caught_up` pre-check costs a billing run on the embedded broker.

Publishes `--events` rated-call events on `cdr.rated`, commits a group's offsets at the end (as the
invoicer's consumer does once it has stored them), then times the check `--runs` times: caught up,
which every run pays, and behind with no wait (reading the ends and the offsets, then the finding).

    .venv/bin/python bench/invoicer_catch_up_check.py --events 100000 --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from tarifa_common import contracts, topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.events import Event, KafkaRecord, encode
from tarifa_common.kafka import Publisher, ensure_topics
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters.backlog import KafkaRatedCallBacklog


async def publish(bootstrap: str, count: int) -> None:
    publisher = Publisher(bootstrap, "bench-rater")
    await publisher.start()
    try:
        batch: list[tuple[str, KafkaRecord]] = []
        for index in range(count):
            event = Event(type=contracts.CDR_RATED, source="bench", tenant="bench", data={"i": index})
            batch.append((topics.CDR_RATED.name, encode(event, key=f"line-{index % 500}")))
            if len(batch) == 5000:
                await publisher.send_many(batch)
                batch = []
        if batch:
            await publisher.send_many(batch)
    finally:
        await publisher.stop()


async def commit_at_ends(bootstrap: str, group: str) -> None:
    backlog = KafkaRatedCallBacklog(bootstrap, group=group)
    try:
        ends = await backlog.ends()
    finally:
        await backlog.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = {TopicPartition(topics.CDR_RATED.name, p): end for p, end in ends.items()}
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def timed(bootstrap: str, group: str, runs: int, wait_seconds: float) -> tuple[list[float], int]:
    seconds, findings = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        found = await handlers.rated_calls_caught_up(
            KafkaRatedCallBacklog(bootstrap, group=group, wait_seconds=wait_seconds)
        )
        seconds.append(time.perf_counter() - started)
        findings += len(found)
    return seconds, findings


def summary(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):.0f} ms, min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms"


async def main(events: int, runs: int) -> None:
    logging.getLogger("tarifa_invoicer").setLevel(logging.ERROR)  # the "still behind" warning of every timed run
    broker = EmbeddedBroker(free_port())
    await broker.start()
    try:
        await ensure_topics(broker.bootstrap_servers)
        started = time.perf_counter()
        await publish(broker.bootstrap_servers, events)
        print(f"published {events} events in {time.perf_counter() - started:.1f} s (not part of the check)")
        await commit_at_ends(broker.bootstrap_servers, "bench-invoicer")
        caught_up, found = await timed(broker.bootstrap_servers, "bench-invoicer", runs, wait_seconds=60)
        print(f"caught up ({runs} runs, {found} findings): {summary(caught_up)}")
        behind, found = await timed(broker.bootstrap_servers, "bench-nobody", runs, wait_seconds=0)
        print(f"behind by {events}, no wait ({runs} runs, {found} findings): {summary(behind)}")
    finally:
        await broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.runs))
