"""Alerts to messages on real servers: the severity x channel matrix, SMTP down then up, restarts, SMS providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
import uvicorn
from sqlmodel import select

from tarifa_common.alerts import AlertObject, AlertRaised, AlertResolved, Severity
from tarifa_common.broker import free_port
from tarifa_common.testing import eventually
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_notifier import handlers
from tarifa_notifier.adapters.channels import (
    HttpSmsConfig,
    HttpSmsSender,
    Sender,
    SmppConfig,
    SmppSmsSender,
    SmtpConfig,
    SmtpEmailSender,
)
from tarifa_notifier.adapters.dispatch import Dispatcher, RetryPolicy, set_sms_provider
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.adapters.sms_gateway_simulator import GatewaySimulator
from tarifa_notifier.adapters.tables import GroupMemberRow, NotificationRow, RecipientRow, ResponsibilityRow
from tarifa_notifier.domain.alerts import GroupPolicy

POLICY = GroupPolicy(timedelta(seconds=30), timedelta(minutes=1), timedelta(hours=4))
RETRY = RetryPolicy(attempts_per_round=2, wait_seconds=0, rounds=5, round_backoff=timedelta(seconds=30))


async def seed(units: UnitOfWorkFactory, tenant: str = "acme") -> None:
    """Ana answers for pbx-hq directly (e-mail and phone); Bo through the group `critical` (e-mail only)."""
    async with units() as uow:
        uow.session.add(
            RecipientRow(
                id=f"{tenant}-ana", tenant=tenant, name="Ana", email=f"ana@{tenant}.test", phone="+5511999990001"
            )
        )
        uow.session.add(RecipientRow(id=f"{tenant}-bo", tenant=tenant, name="Bo", email=f"bo@{tenant}.test"))
        uow.session.add(
            ResponsibilityRow(tenant=tenant, recipient_id=f"{tenant}-ana", object_kind="source", object_id="pbx-hq")
        )
        uow.session.add(
            ResponsibilityRow(tenant=tenant, recipient_id=f"{tenant}-bo", object_kind="group", object_id="critical")
        )
        uow.session.add(GroupMemberRow(tenant=tenant, group_name="critical", object_kind="source", object_id="pbx-hq"))


def raised(severity: Severity, fingerprint: str = "collector/source-silent/pbx-hq") -> AlertRaised:
    return AlertRaised(
        fingerprint=fingerprint,
        severity=severity,
        object=AlertObject(kind="source", id="pbx-hq"),
        summary="No call records from pbx-hq for 20 minutes",
    )


def smtp(port: int) -> SmtpEmailSender:
    return SmtpEmailSender(SmtpConfig("127.0.0.1", port, "alerts@tarifa.test", timeout=5))


def smpp(port: int) -> SmppSmsSender:
    return SmppSmsSender(SmppConfig("127.0.0.1", port, "tarifa", "secret", timeout=5))


async def raise_and_flush(units: UnitOfWorkFactory, clock, tenant: str, alert: AlertRaised) -> None:  # type: ignore[no-untyped-def]
    async with units() as uow:
        await handlers.raise_alert(SqlNotifierStore(uow.session), tenant, alert, clock())


def opener(units: UnitOfWorkFactory):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def open_store() -> AsyncIterator[SqlNotifierStore]:
        async with units() as uow:
            yield SqlNotifierStore(uow.session)

    return open_store


async def flush(units: UnitOfWorkFactory, clock) -> int:  # type: ignore[no-untyped-def]
    """Decide due messages, then fan them out to the log in small chunks (2 recipients per transaction)."""
    async with units() as uow:
        decided = len(await handlers.flush_groups(SqlNotifierStore(uow.session), POLICY, clock()))
    await handlers.fan_out(opener(units), chunk=2)
    return decided


async def log_rows(units: UnitOfWorkFactory) -> list[NotificationRow]:
    async with units() as uow:
        return list((await uow.session.exec(select(NotificationRow).order_by(NotificationRow.id))).all())


@pytest.mark.parametrize(
    ("severity", "emails", "sms"),
    [
        (Severity.STANDARD, [], []),
        (Severity.IMPORTANT, ["ana@acme.test", "bo@acme.test"], []),
        (Severity.URGENT, ["ana@acme.test", "bo@acme.test"], ["5511999990001"]),
    ],
)
async def test_severity_decides_who_is_told_on_which_channel_once_per_outage(
    units: UnitOfWorkFactory, clock, smtp_server, smsc, severity: Severity, emails: list[str], sms: list[str]
) -> None:
    await seed(units)
    for _ in range(3):  # one outage raised three times is one alert
        await raise_and_flush(units, clock, "acme", raised(severity))
        clock.advance(seconds=5)
    assert await flush(units, clock) == 0  # 15 s into the group wait
    clock.advance(seconds=15)
    assert await flush(units, clock) == 1
    dispatcher = Dispatcher(units, smtp(smtp_server.port), {"smpp": smpp(smsc.port)}, "smpp", RETRY)
    await dispatcher.dispatch_once(clock())
    assert sorted(a for m in smtp_server.box.messages for a in m.to) == emails
    assert [s.destination for s in smsc.received] == sms
    assert all(
        m.subject.startswith(f"[{severity.value.upper()}] 1 alert(s) firing on source pbx-hq")
        for m in smtp_server.box.messages
    )
    assert {r.status for r in await log_rows(units)} <= {"sent"}


async def test_smtp_down_then_up_delivers_exactly_once_and_a_restart_sends_nothing_again(
    units: UnitOfWorkFactory, clock, smtp_server_down
) -> None:
    await seed(units)
    server = smtp_server_down
    await raise_and_flush(units, clock, "acme", raised(Severity.IMPORTANT))
    clock.advance(seconds=30)
    await flush(units, clock)
    first = Dispatcher(units, smtp(server.port), {}, "smpp", RETRY)
    assert await first.dispatch_once(clock()) == 2
    rows = await log_rows(units)
    assert [(r.status, r.attempts) for r in rows] == [("pending", 2), ("pending", 2)]
    assert all("Connection refused" in (r.last_error or "") or "connect" in (r.last_error or "").lower() for r in rows)
    assert await first.dispatch_once(clock.advance(seconds=10)) == 0  # the next round waits its backoff
    server.start()
    try:
        assert await first.dispatch_once(clock.advance(seconds=20)) == 2
        assert sorted(a for m in server.box.messages for a in m.to) == ["ana@acme.test", "bo@acme.test"]
        restarted = Dispatcher(units, smtp(server.port), {}, "smpp", RETRY)
        assert await restarted.recover() == 0
        assert await restarted.dispatch_once(clock.advance(hours=1)) == 0
        assert await flush(units, clock) == 0  # the decision was recorded: no second message
        assert len(server.box.messages) == 2
        assert [(r.status, r.attempts) for r in await log_rows(units)] == [("sent", 3), ("sent", 3)]
    finally:
        server.stop()


async def test_a_send_interrupted_by_a_crash_is_sent_again_with_the_same_message_id(
    units: UnitOfWorkFactory, clock, smtp_server
) -> None:
    await seed(units)
    await raise_and_flush(units, clock, "acme", raised(Severity.IMPORTANT))
    clock.advance(seconds=30)
    await flush(units, clock)
    async with units() as uow:  # what a crash between "sending" and "sent" leaves behind
        for row in (await uow.session.exec(select(NotificationRow))).all():
            row.status = "sending"
    restarted = Dispatcher(units, smtp(smtp_server.port), {}, "smpp", RETRY)
    assert await restarted.recover() == 2
    await restarted.dispatch_once(clock())
    ids = sorted(m.message_id for m in smtp_server.box.messages)
    rows = await log_rows(units)
    assert ids == sorted(f"<tarifa-notification-{r.id}@tarifa.test>" for r in rows)


async def test_the_resolution_is_told_once_to_the_people_told_of_the_alert(
    units: UnitOfWorkFactory, clock, smtp_server
) -> None:
    await seed(units)
    await raise_and_flush(units, clock, "acme", raised(Severity.IMPORTANT))
    clock.advance(seconds=30)
    await flush(units, clock)
    async with units() as uow:
        await handlers.resolve_alert(
            SqlNotifierStore(uow.session),
            "acme",
            AlertResolved(fingerprint="collector/source-silent/pbx-hq", object=AlertObject(kind="source", id="pbx-hq")),
            clock.advance(seconds=10),
        )
    assert await flush(units, clock) == 0  # the group interval (1 min) is not over
    clock.advance(minutes=1)
    assert await flush(units, clock) == 1
    clock.advance(hours=5)
    assert await flush(units, clock) == 0
    await Dispatcher(units, smtp(smtp_server.port), {}, "smpp", RETRY).dispatch_once(clock())
    subjects = sorted((m.to[0], m.subject.split(" ")[0]) for m in smtp_server.box.messages)
    assert subjects == [
        ("ana@acme.test", "[IMPORTANT]"),
        ("ana@acme.test", "[RESOLVED]"),
        ("bo@acme.test", "[IMPORTANT]"),
        ("bo@acme.test", "[RESOLVED]"),
    ]


async def test_each_tenant_texts_through_its_own_provider_and_the_gateway_outage_is_retried(
    units: UnitOfWorkFactory, clock, smsc
) -> None:
    gateway = GatewaySimulator(fail_next=1)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(gateway.app(), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    try:
        await eventually(lambda: _started(server))
        await seed(units, "acme")
        await seed(units, "beta")
        async with units() as uow:
            await set_sms_provider(uow.session, "acme", "http")
        await raise_and_flush(units, clock, "acme", raised(Severity.URGENT))
        await raise_and_flush(units, clock, "beta", raised(Severity.URGENT))
        clock.advance(seconds=30)
        await flush(units, clock)
        http = HttpSmsSender(HttpSmsConfig(f"http://127.0.0.1:{port}", gateway.account, gateway.token, timeout=5))
        senders: dict[str, Sender] = {"smpp": smpp(smsc.port), "http": http}
        await Dispatcher(units, None, senders, "smpp", RETRY).dispatch_once(clock())
        assert [s.to for s in gateway.sent] == ["+5511999990001"]
        assert [s.destination for s in smsc.received] == ["5511999990001"]
        sms_rows = {(r.tenant, r.provider, r.status, r.attempts) for r in await log_rows(units) if r.channel == "sms"}
        assert sms_rows == {("acme", "http", "sent", 2), ("beta", "smpp", "sent", 1)}
    finally:
        server.should_exit = True
        await serving


async def _started(server: uvicorn.Server) -> None:
    assert server.started


async def test_a_fan_out_interrupted_by_a_crash_resumes_and_logs_each_recipient_once(
    units: UnitOfWorkFactory, clock
) -> None:
    async with units() as uow:
        for n in range(5):
            uow.session.add(RecipientRow(id=f"r{n}", tenant="acme", name=f"R{n}", email=f"r{n}@acme.test"))
            uow.session.add(ResponsibilityRow(tenant="acme", recipient_id=f"r{n}", object_kind="source", object_id="*"))
    await raise_and_flush(units, clock, "acme", raised(Severity.IMPORTANT))
    clock.advance(seconds=30)
    async with units() as uow:
        assert len(await handlers.flush_groups(SqlNotifierStore(uow.session), POLICY, clock())) == 1
    opened = 0

    @asynccontextmanager
    async def crashing_after_two_chunks() -> AsyncIterator[SqlNotifierStore]:
        nonlocal opened
        opened += 1
        if opened > 3:  # the look-up, then two chunks of 2 recipients: then the process dies
            raise RuntimeError("killed")
        async with units() as uow:
            yield SqlNotifierStore(uow.session)

    with pytest.raises(RuntimeError, match="killed"):
        await handlers.fan_out(crashing_after_two_chunks, chunk=2)
    assert len(await log_rows(units)) == 4
    assert await handlers.fan_out(opener(units), chunk=2) == 1
    assert await handlers.fan_out(opener(units), chunk=2) == 0
    assert sorted(r.address for r in await log_rows(units)) == [f"r{n}@acme.test" for n in range(5)]
