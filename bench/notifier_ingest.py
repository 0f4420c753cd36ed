"""Benchmark: alerts ingested per second through the real broker and consumer, with dedup by fingerprint.

Publishes N `tarifa.alert.raised.v1` events over F fingerprints (so most are duplicates) to an
embedded broker, starts the notifier's runtime (consumer only, no loops) on SQLite or on the
PostgreSQL URL given, and times from the first processed event to the last.

    .venv/bin/python bench/notifier_ingest.py [--events 20000] [--fingerprints 2000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlmodel import func, select

from tarifa_common import alerts, topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.events import decode, encode
from tarifa_common.kafka import Publisher
from tarifa_notifier.adapters.tables import AlertRow
from tarifa_notifier.bootstrap import build
from tarifa_notifier.config import NotifierSettings


async def main(events: int, fingerprints: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), log_file=Path(tmp) / "broker.log")
        await broker.start()
        try:
            url = database_url or f"sqlite+aiosqlite:///{tmp}/notifier.db"
            settings = NotifierSettings(
                database_url=url,
                kafka_bootstrap_servers=broker.bootstrap_servers,
                consumer_session_timeout_ms=3000,
                consumer_rebalance_timeout_ms=3000,
            )
            runtime, notifier = build(settings, loops=False)
            publisher = Publisher(broker.bootstrap_servers, "bench")
            await publisher.start()
            from tarifa_common.kafka import ensure_topics

            await ensure_topics(broker.bootstrap_servers, topics.ALL, dead_letter_groups=["notifier"])
            batch = []
            for n in range(events):
                fp = f"bench/source-silent/pbx-{n % fingerprints}"
                alert = alerts.AlertRaised(
                    fingerprint=fp,
                    severity=alerts.Severity.IMPORTANT,
                    object=alerts.AlertObject(kind="source", id=f"pbx-{n % fingerprints}"),
                    summary="No call records",
                )
                batch.append((topics.ALERT_EVENTS.name, encode(alerts.raised("acme", "bench", alert), fp)))
            started = time.perf_counter()
            for i in range(0, len(batch), 1000):
                await publisher.send_many(batch[i : i + 1000])
            print(f"published {events} events in {time.perf_counter() - started:.1f} s")
            await publisher.stop()
            await runtime.start()
            consumer = runtime.consumers[0]
            first = None
            last_report = time.perf_counter()
            while consumer.stats.processed + consumer.stats.duplicates < events:
                await asyncio.sleep(0.05)
                if first is None and consumer.stats.processed:
                    first = time.perf_counter()
                if time.perf_counter() - last_report > 5:
                    print(f"  {consumer.stats.processed}/{events} processed")
                    last_report = time.perf_counter()
            elapsed = time.perf_counter() - (first or time.perf_counter())
            async with runtime.units() as uow:
                alerts_count = (await uow.session.exec(select(func.count()).select_from(AlertRow))).one()
            kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
            print(
                f"{kind}: {events} alerts ingested in {elapsed:.2f} s = {events / elapsed:,.0f} alerts/s "
                f"through broker + consumer (inbox insert per event); {alerts_count} alerts kept"
            )
            # The notifier's own share: the same events through the handler, 500 per transaction, no inbox.
            decoded = [decode(record.headers, record.key, record.value) for _, record in batch]
            started = time.perf_counter()
            for i in range(0, len(decoded), 500):
                async with runtime.units() as uow:
                    for event in decoded[i : i + 500]:
                        await notifier.on_alert_raised(event, uow)
            handler_seconds = time.perf_counter() - started
            print(f"{kind}: handler alone (dedup, 500 per transaction): {events / handler_seconds:,.0f} alerts/s")
            await runtime.stop()
        finally:
            await broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--fingerprints", type=int, default=2_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.fingerprints, args.database_url))
