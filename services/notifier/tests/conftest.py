"""Fixtures of the notifier's tests: a migrated database, a clock the test drives, a real SMTP server and SMSC."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import smpp34
from aiosmtpd.controller import Controller

from tarifa_common.broker import free_port
from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier.bootstrap import MIGRATIONS


@dataclass
class FakeClock:
    """The time as the test says; `advance` moves it. Nothing in the notifier sleeps on it."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 3, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def units(database_url: str) -> AsyncIterator[UnitOfWorkFactory]:
    engine = make_engine(database_url)
    await migrate(engine, MIGRATIONS, "notifier")
    yield UnitOfWorkFactory(session_factory(engine))
    await engine.dispose()


@dataclass
class ReceivedMail:
    to: list[str]
    subject: str
    message_id: str
    body: str


class MailBox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        self.messages.append(
            ReceivedMail(
                list(envelope.rcpt_tos),
                str(parsed["Subject"]),
                str(parsed["Message-ID"]),
                body.get_content() if body is not None else "",
            )
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int
    box: MailBox
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (started; `stop()`/`start()` to simulate an outage)."""
    server = SmtpServer(free_port(), MailBox())
    server.start()
    yield server
    server.stop()


@dataclass
class ReceivedSms:
    destination: str
    text: str


@dataclass
class Smsc:
    port: int
    received: list[ReceivedSms] = field(default_factory=list)


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Smsc]:
    """A real SMSC (smpp34's server) on loopback that accepts every bind and message."""
    state = Smsc(free_port())
    server = smpp34.Server("127.0.0.1", state.port, system_id="TestSMSC")
    await server.start()

    async def serve() -> None:
        count = 0
        while True:
            event = await server.next()
            if isinstance(event, smpp34.SubmitSmEvent):
                count += 1
                state.received.append(ReceivedSms(event.destination_addr, event.short_message.decode()))
                event.accept(message_id=f"m{count}")

    task = asyncio.ensure_future(serve())
    yield state
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await server.stop()


@pytest.fixture
def smtp_server_down() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that is not listening yet: the test starts it."""
    server = SmtpServer(free_port(), MailBox())
    yield server
    server.stop()
