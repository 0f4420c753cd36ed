"""The one place that wires the notifier: its runtime, its subscriptions, its loops, its channels."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common import alerts, contracts, topics
from tarifa_common.events import Event, utcnow
from tarifa_common.kafka import Subscription
from tarifa_common.runtime import HEARTBEAT_TYPE, ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWork
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
from tarifa_notifier.adapters.dispatch import Dispatcher, RetryPolicy
from tarifa_notifier.adapters.lease import SqlLease
from tarifa_notifier.adapters.offsets import dead_letter_ends
from tarifa_notifier.adapters.report_sources import HttpReportSource, ReportSourceConfig
from tarifa_notifier.adapters.repository import SqlNotifierStore
from tarifa_notifier.config import NotifierSettings
from tarifa_notifier.domain.alerts import GroupPolicy

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
GROUP = "notifier"
Clock = Callable[[], datetime]


@dataclass
class Notifier:
    """What the API, the CLI and the tests reach: settings, clock, store per session, the loops' steps."""

    settings: NotifierSettings
    clock: Clock
    policy: GroupPolicy
    watchdog: handlers.WatchdogSettings
    report_source: handlers.ReportSource | None = None
    report_retry: handlers.ReportRetry = field(default_factory=handlers.ReportRetry)
    dispatcher: Dispatcher = field(init=False)
    lease: SqlLease = field(init=False)
    # When this process began listening to heartbeats: the rating watchdog claims no silence before.
    listening_since: datetime = field(init=False)
    _stores: weakref.WeakKeyDictionary[AsyncSession, SqlNotifierStore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        self.listening_since = self.clock()

    def store(self, session: AsyncSession) -> SqlNotifierStore:
        """One store per transaction, so a batch's repeated fingerprints hit its cache."""
        store = self._stores.get(session)
        if store is None:
            store = self._stores[session] = SqlNotifierStore(session)
        return store

    # --- consumer handlers ---

    async def on_alert_raised(self, event: Event, uow: UnitOfWork) -> None:
        raised = alerts.AlertRaised.model_validate(event.data)
        await handlers.raise_alert(self.store(uow.session), event.tenant, raised, self.clock())

    async def on_alert_resolved(self, event: Event, uow: UnitOfWork) -> None:
        resolved = alerts.AlertResolved.model_validate(event.data)
        await handlers.resolve_alert(self.store(uow.session), event.tenant, resolved, self.clock())

    async def on_heartbeat(self, event: Event, uow: UnitOfWork) -> None:
        # The sender's time (a backlog read after a restart is old news), never later than ours.
        await handlers.record_heartbeat(self.store(uow.session), event.data, min(event.time, self.clock()))

    async def on_invoice_issued(self, event: Event, uow: UnitOfWork) -> None:
        invoice = contracts.InvoiceIssued.model_validate(event.data)
        await handlers.tell_invoice_issued(self.store(uow.session), invoice, self.clock())

    async def on_usage_threshold(self, event: Event, uow: UnitOfWork) -> None:
        usage = contracts.UsageThresholdReached.model_validate(event.data)
        await handlers.raise_usage_alert(self.store(uow.session), usage, self.clock())

    async def on_credit_exceeded(self, event: Event, uow: UnitOfWork) -> None:
        usage = contracts.CreditLimitExceeded.model_validate(event.data)
        await handlers.raise_usage_alert(self.store(uow.session), usage, self.clock())

    def subscription(self) -> Subscription:
        return Subscription(
            group=GROUP,
            topics=(
                topics.ALERT_EVENTS.name,
                topics.HEARTBEAT.name,
                topics.INVOICE_ISSUED.name,
                topics.LINE_USAGE.name,
            ),
            handlers={
                alerts.RAISED: self.on_alert_raised,
                alerts.RESOLVED: self.on_alert_resolved,
                HEARTBEAT_TYPE: self.on_heartbeat,
                contracts.INVOICE_ISSUED: self.on_invoice_issued,
                contracts.INVOICE_CREDITED: self.on_invoice_issued,
                contracts.LINE_USAGE_THRESHOLD: self.on_usage_threshold,
                contracts.LINE_CREDIT_EXCEEDED: self.on_credit_exceeded,
            },
        )

    # --- one step of each loop (tests call these with their own clock) ---

    async def leads(self, runtime: ServiceRuntime) -> bool:
        """Whether this replica holds the lease (taking or renewing it in a transaction of its own)."""
        async with runtime.units() as uow:
            return await self.lease.hold(uow.session, self.clock())

    async def flush(self, runtime: ServiceRuntime) -> int:
        """Decide due group messages (one transaction), then fan them out (a transaction per chunk).

        Only the lease holder decides, and it renews the lease in the deciding transaction: a
        replica whose lease lapsed to another cannot commit a second decision for a group.
        """
        async with runtime.units() as uow:
            if not await self.lease.hold(uow.session, self.clock()):
                return 0
            decided = len(await handlers.flush_groups(self.store(uow.session), self.policy, self.clock()))

        @asynccontextmanager
        async def open_store() -> AsyncIterator[handlers.NotifierStore]:
            async with runtime.units() as uow:
                yield self.store(uow.session)

        await handlers.fan_out(open_store)
        return decided

    async def watch(self, runtime: ServiceRuntime) -> bool:
        """Run the watchdogs and the due reports, if this replica holds the lease; True if it did."""
        if not await self.leads(runtime):
            return False
        ends = None
        if self.settings.watch_dead_letters and runtime.publisher.ready.is_set():
            try:
                ends = await asyncio.wait_for(dead_letter_ends(self.settings.kafka_bootstrap_servers), timeout=10)
            except Exception as error:
                log.warning("dead-letter offsets not read: %s", error)
        async with runtime.units() as uow:
            if not await self.lease.hold(uow.session, self.clock()):
                return False  # lost while reading the dead-letter offsets
            await handlers.run_watchdogs(
                self.store(uow.session), self.watchdog, self.clock(), ends, listening_since=self.listening_since
            )
        await self.reports(runtime)
        return True

    async def reports(self, runtime: ServiceRuntime) -> int:
        """Log every due report; reading another service's report happens outside any transaction."""

        @asynccontextmanager
        async def open_store() -> AsyncIterator[handlers.NotifierStore]:
            async with runtime.units() as uow:
                yield self.store(uow.session)

        return await handlers.run_due_reports(open_store, self.clock(), self.report_source, self.report_retry)

    # --- background loops ---

    async def flush_loop(self, runtime: ServiceRuntime) -> None:
        await self._loop(runtime, self.flush, self.settings.flush_tick_seconds, "flush")

    async def watchdog_loop(self, runtime: ServiceRuntime) -> None:
        await self._loop(runtime, self.watch, self.settings.watchdog_tick_seconds, "watchdog")

    async def dispatch_loop(self, runtime: ServiceRuntime) -> None:
        await self.dispatcher.recover(self.clock())

        async def step(_: ServiceRuntime) -> int:
            return await self.dispatcher.dispatch_once(self.clock())

        await self._loop(runtime, step, self.settings.dispatch_tick_seconds, "dispatch")

    async def _loop(
        self, runtime: ServiceRuntime, step: Callable[[ServiceRuntime], object], every: float, name: str
    ) -> None:
        while True:
            busy = False
            try:
                result = step(runtime)
                busy = bool(await result) if asyncio.iscoroutine(result) else False
                busy = busy and name == "dispatch"
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifier %s step failed; trying again in %.1fs", name, every)
            if not busy:
                await asyncio.sleep(every)


def senders(settings: NotifierSettings) -> tuple[Sender | None, dict[str, Sender]]:
    email: Sender | None = None
    if settings.smtp_host:
        email = SmtpEmailSender(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                security=settings.smtp_security.value,
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                ca_file=settings.smtp_ca_file or None,
            )
        )
    sms: dict[str, Sender] = {}
    if settings.smpp_host:
        sms["smpp"] = SmppSmsSender(
            SmppConfig(
                settings.smpp_host,
                settings.smpp_port,
                settings.smpp_system_id,
                settings.smpp_password.get_secret_value(),
                settings.smpp_source_addr,
            )
        )
    if settings.sms_http_url:
        sms["http"] = HttpSmsSender(
            HttpSmsConfig(
                settings.sms_http_url,
                settings.sms_http_account,
                settings.sms_http_token.get_secret_value(),
                settings.sms_http_from,
            )
        )
    return email, sms


def build(
    settings: NotifierSettings,
    *,
    clock: Clock = utcnow,
    email: Sender | None = None,
    sms: dict[str, Sender] | None = None,
    report_source: handlers.ReportSource | None = None,
    loops: bool = True,
) -> tuple[ServiceRuntime, Notifier]:
    """The runtime and the notifier; tests pass their clock and senders, and may run the loops' steps by hand."""
    configured_email, configured_sms = senders(settings)
    policy = GroupPolicy(
        group_wait=timedelta(seconds=settings.group_wait_seconds),
        group_interval=timedelta(seconds=settings.group_interval_seconds),
        repeat_interval=timedelta(seconds=settings.repeat_interval_seconds),
    )
    watchdog = handlers.WatchdogSettings(
        rating_every=timedelta(minutes=settings.rating_check_minutes),
        watch_emails=tuple(settings.watch_emails),
        lag_threshold=settings.lag_threshold,
        heartbeat_misses=settings.heartbeat_misses,
    )
    retry = RetryPolicy(
        attempts_per_round=settings.send_attempts,
        wait_seconds=settings.send_retry_wait_seconds,
        rounds=settings.send_rounds,
        round_backoff=timedelta(seconds=settings.send_round_backoff_seconds),
    )
    if report_source is None:
        report_source = HttpReportSource(
            ReportSourceConfig(
                rater_url=settings.rater_url,
                invoicer_url=settings.invoicer_url,
                jwt_secret=settings.jwt_secret.get_secret_value(),
                jwt_issuer=settings.jwt_issuer,
                attempts=settings.report_attempts,
                wait_seconds=settings.report_retry_wait_seconds,
                timeout=settings.report_timeout_seconds,
            )
        )
    notifier = Notifier(
        settings,
        clock,
        policy,
        watchdog,
        report_source,
        handlers.ReportRetry(backoff=timedelta(minutes=settings.report_retry_minutes)),
    )
    runtime = ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        subscriptions=(notifier.subscription(),),
        background=[notifier.flush_loop, notifier.dispatch_loop, notifier.watchdog_loop] if loops else [],
    )
    # The dispatcher needs the runtime's units of work, the runtime needs the notifier's handlers.
    notifier.dispatcher = Dispatcher(
        runtime.units,
        email if email is not None else configured_email,
        sms if sms is not None else configured_sms,
        settings.default_sms_provider.value,
        retry,
        instance=runtime.instance_id,
        claim_for=timedelta(seconds=settings.send_claim_seconds),
    )
    notifier.lease = SqlLease("notifier-loops", runtime.instance_id, timedelta(seconds=settings.lease_seconds))
    return runtime, notifier


def bootstrap(settings: NotifierSettings) -> ServiceRuntime:
    runtime, _ = build(settings)
    return runtime
