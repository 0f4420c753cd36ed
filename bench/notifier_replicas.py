"""Benchmark: the send queue drained by one notifier replica, then by two sharing it, into a real SMTP server.

Seeds M pending e-mails in the notification log, drains them with one dispatcher into aiosmtpd
on loopback, then seeds M more and drains them with two dispatchers (two engines, as two
replicas would have) running side by side. Reports messages per second and how many each
replica sent, and checks that no message arrived twice.

    .venv/bin/python bench/notifier_replicas.py [--messages 2000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from typing import Any

from aiosmtpd.controller import Controller

from tarifa_common.broker import free_port
from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier.adapters.channels import SmtpConfig, SmtpEmailSender
from tarifa_notifier.adapters.dispatch import Dispatcher, RetryPolicy
from tarifa_notifier.adapters.tables import NotificationRow
from tarifa_notifier.bootstrap import MIGRATIONS


class Counting:
    """aiosmtpd handler: counts each recipient address it accepts."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.received.update(envelope.rcpt_tos)
        return "250 OK"


async def seed(units: UnitOfWorkFactory, run: str, messages: int) -> None:
    now = utcnow()
    async with units() as uow:
        for n in range(messages):
            uow.session.add(
                NotificationRow(
                    tenant="acme",
                    dedup_key=f"bench|{run}|{n}",
                    group_key="source:pbx-hq",
                    kind="alert.firing",
                    channel="email",
                    address=f"{run}-{n}@acme.test",
                    subject="[IMPORTANT] pbx-hq",
                    body="No call records",
                    status="pending",
                    created_at=now,
                    next_attempt_at=now,
                )
            )


async def drain(dispatcher: Dispatcher) -> int:
    sent = 0
    while handled := await dispatcher.dispatch_once(utcnow()):
        sent += handled
    return sent


async def main(messages: int, database_url: str | None) -> None:
    box = Counting()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    email = SmtpEmailSender(SmtpConfig("127.0.0.1", port, "bench@tarifa.test"))
    policy = RetryPolicy(attempts_per_round=1, wait_seconds=0)
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/notifier.db"
        engines = [make_engine(url), make_engine(url)]
        await migrate(engines[0], MIGRATIONS, "notifier")
        replicas = [
            Dispatcher(UnitOfWorkFactory(session_factory(e)), email, {}, "smpp", policy, instance=f"replica-{i}")
            for i, e in enumerate(engines)
        ]
        try:
            await seed(replicas[0].units, "one", messages)
            started = time.perf_counter()
            alone = await drain(replicas[0])
            one = time.perf_counter() - started
            await seed(replicas[0].units, "two", messages)
            started = time.perf_counter()
            shares = await asyncio.gather(*(drain(r) for r in replicas))
            two = time.perf_counter() - started
        finally:
            for engine in engines:
                await engine.dispose()
            controller.stop()
    doubled = sum(1 for count in box.received.values() if count > 1)
    print(f"database: {url.split(':')[0]}; {messages} e-mails per run, batches of 200, 20 concurrent sends")
    print(f"one replica:  {alone} sent in {one:.2f} s = {alone / one:,.0f} e-mails/s")
    print(f"two replicas: {sum(shares)} sent in {two:.2f} s = {sum(shares) / two:,.0f} e-mails/s (shares {shares})")
    print(f"received twice: {doubled}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.database_url))
