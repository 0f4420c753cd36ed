"""One async function per command or event; each works through a `NotifierStore` inside one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from tarifa_common import contracts
from tarifa_common.alerts import AlertObject, AlertRaised, AlertResolved, Severity, SourceKind
from tarifa_common.events import deterministic_id
from tarifa_notifier.domain.alerts import (
    DEFAULT_INHIBIT_RULES,
    Alert,
    AlertGroup,
    Channel,
    Flush,
    GroupPolicy,
    InhibitRule,
    Recipient,
    Silence,
    deliveries_for,
    plan_flush,
    render,
)
from tarifa_notifier.domain.reports import (
    Attachment,
    CostCentreTotal,
    InvoiceSummary,
    Report,
    ReportFormat,
    ReportKind,
    ReportSchedule,
    alert_digest,
    calls_by_cost_centre,
    invoicing,
)
from tarifa_notifier.domain.watchdogs import (
    ConsumerSample,
    DeadLetterWatch,
    RatingWatch,
    ServiceBeat,
    TenantWatchdog,
    Verdict,
    heartbeat_verdicts,
    lag_verdicts,
)

PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class NotificationDraft:
    """A decided message, written to the notification log in the transaction that decided it."""

    tenant: str
    dedup_key: str
    group_key: str
    kind: str
    channel: Channel
    address: str
    recipient_id: str | None
    subject: str
    body: str
    created_at: datetime
    attachment_id: str | None = None


class NotifierStore(Protocol):
    """What the handlers need from the database (the adapter is `SqlNotifierStore`)."""

    async def get_alert(self, tenant: str, fingerprint: str) -> Alert | None: ...
    async def save_alert(self, alert: Alert) -> None: ...
    async def get_group(self, tenant: str, key: str) -> AlertGroup: ...
    async def save_group(self, group: AlertGroup) -> None: ...
    async def active_groups(self) -> list[AlertGroup]: ...
    async def alerts_of_groups(self, tenant: str, keys: Sequence[str]) -> dict[str, list[Alert]]: ...
    async def active_silences(self, tenant: str, now: datetime) -> list[Silence]: ...
    async def responsible_recipients(self, tenant: str, object_kind: str, object_id: str) -> list[Recipient]: ...
    async def responsible_ids(self, tenant: str, object_kind: str, object_id: str) -> list[str]: ...
    async def recipients_by_ids(self, tenant: str, ids: Sequence[str]) -> list[Recipient]: ...
    async def add_flush(self, record: FlushRecord) -> None: ...
    async def next_open_flush(self) -> FlushRecord | None: ...
    async def advance_flush(self, flush_id: int, cursor: str | None, done: bool) -> None: ...
    async def due_reports(self, now: datetime) -> list[tuple[ReportSchedule, datetime, datetime | None]]: ...
    async def mark_report_run(self, schedule_id: str, ran_for: datetime, next_run_at: datetime) -> bool: ...
    async def mark_report_failed(
        self, schedule_id: str, error: str, now: datetime, retry: ReportRetry
    ) -> tuple[int, datetime]: ...
    async def add_attachment(self, attachment_id: str, tenant: str, attachment: Attachment, at: datetime) -> None: ...
    async def alerts_started_between(self, tenant: str, start: datetime, end: datetime) -> list[Alert]: ...
    async def add_notifications(self, drafts: Sequence[NotificationDraft]) -> int: ...
    async def record_heartbeat(self, beat: ServiceBeat) -> None: ...
    async def heartbeats(self) -> list[ServiceBeat]: ...
    async def forget_heartbeats(self, before: datetime) -> int: ...
    async def load_watch(self, name: str, tenant: str = PLATFORM) -> dict[str, Any] | None: ...
    async def save_watch(self, name: str, data: dict[str, Any], tenant: str = PLATFORM) -> None: ...
    async def tenant_watchdogs(self) -> list[TenantWatchdog]: ...
    async def inhibit_rules(self, tenant: str) -> list[InhibitRule]: ...


# --- alerts in ------------------------------------------------------------------------------------


async def raise_alert(store: NotifierStore, tenant: str, raised: AlertRaised, now: datetime, **extra: Any) -> Alert:
    """Record a raised alert; one with a known fingerprint updates the existing alert (dedup)."""
    alert = await store.get_alert(tenant, raised.fingerprint)
    starts_episode = False
    if alert is None:
        alert = Alert(
            tenant=tenant,
            fingerprint=raised.fingerprint,
            severity=raised.severity,
            source_kind=raised.source_kind,
            object_kind=raised.object.kind,
            object_id=raised.object.id,
            summary=raised.summary,
            details=dict(raised.details),
            starts_at=now,
            updated_at=now,
            **extra,
        )
        starts_episode = True
    else:
        starts_episode = alert.raise_again(raised.severity, raised.summary, dict(raised.details), now)
    await store.save_alert(alert)
    if starts_episode:
        group = await store.get_group(tenant, alert.group_key)
        group.touch(now)
        await store.save_group(group)
    return alert


async def resolve_alert(store: NotifierStore, tenant: str, resolved: AlertResolved, now: datetime) -> Alert | None:
    """End an alert; unknown fingerprints and repeated resolutions change nothing."""
    alert = await store.get_alert(tenant, resolved.fingerprint)
    if alert is None or not alert.resolve(now):
        return alert
    await store.save_alert(alert)
    return alert


async def acknowledge_alert(store: NotifierStore, alert: Alert, who: str, now: datetime) -> Alert:
    alert.acknowledge(who, now)
    await store.save_alert(alert)
    return alert


# --- the Alertmanager loop: decide messages --------------------------------------------------------


async def flush_groups(store: NotifierStore, policy: GroupPolicy, now: datetime) -> list[Flush]:
    """Decide every group's message that is due and write it to the notification log, in one transaction.

    The decision (the group's new state) and the messages it implies commit together: a crash
    before the commit decides again after the restart; after it, the log holds the messages.
    """
    flushes: list[Flush] = []
    by_tenant: dict[str, list[AlertGroup]] = {}
    for group in await store.active_groups():
        by_tenant.setdefault(group.tenant, []).append(group)
    for tenant, groups in by_tenant.items():
        flushes += await _flush_tenant(store, tenant, groups, policy, now)
    return flushes


async def _flush_tenant(
    store: NotifierStore, tenant: str, groups: list[AlertGroup], policy: GroupPolicy, now: datetime
) -> list[Flush]:
    # One query for every active group's alerts: a firing alert always belongs to an active group.
    alerts_by_group = await store.alerts_of_groups(tenant, [g.key for g in groups])
    firing = [a for alerts in alerts_by_group.values() for a in alerts if a.firing]
    silences = await store.active_silences(tenant, now)
    rules = (*DEFAULT_INHIBIT_RULES, *await store.inhibit_rules(tenant))
    flushes: list[Flush] = []
    for group in groups:
        before = (group.first_at, group.last_flush_at, dict(group.notified))
        flush = plan_flush(group, alerts_by_group.get(group.key, []), silences, firing, policy, now, rules)
        if (group.first_at, group.last_flush_at, group.notified) != before:
            await store.save_group(group)
        if flush is None:
            continue
        flushes.append(flush)
        await store.add_flush(record_of(flush))
    return flushes


@dataclass(frozen=True, slots=True)
class FlushRecord:
    """A decided group message, before it is fanned out to its recipients (in chunks, later)."""

    tenant: str
    group_key: str
    object_kind: str
    object_id: str
    kind: str
    severity: Severity
    at: datetime
    email_subject: str
    email_body: str
    sms_body: str
    extra_emails: tuple[str, ...] = ()
    id: int | None = None
    cursor: str | None = None  # the last recipient id fanned out so far


def record_of(flush: Flush) -> FlushRecord:
    first = (flush.firing or flush.resolved)[0]
    subject, body = render(flush, Channel.EMAIL)
    _, sms = render(flush, Channel.SMS)
    extras = sorted({e for a in (*flush.firing, *flush.resolved) for e in a.extra_emails})
    return FlushRecord(
        flush.tenant,
        flush.group_key,
        first.object_kind,
        first.object_id,
        f"alert.{flush.kind}",
        flush.severity,
        flush.at,
        subject,
        body,
        sms,
        tuple(extras),
    )


def drafts_for(record: FlushRecord, recipients: Sequence[Recipient], include_extras: bool) -> list[NotificationDraft]:
    extras = record.extra_emails if include_extras else ()
    return [
        NotificationDraft(
            tenant=record.tenant,
            dedup_key=f"{record.tenant}|{record.group_key}|{record.at.isoformat()}|{d.channel}|{d.address}",
            group_key=record.group_key,
            kind=record.kind,
            channel=d.channel,
            address=d.address,
            recipient_id=d.recipient_id,
            subject=record.email_subject,
            body=record.email_body if d.channel is Channel.EMAIL else record.sms_body,
            created_at=record.at,
        )
        for d in deliveries_for(record.severity, recipients, extras)
    ]


StoreOpener = Callable[[], AbstractAsyncContextManager[NotifierStore]]


async def fan_out(open_store: StoreOpener, chunk: int = 250) -> int:
    """Write the notification-log rows of every decided flush, `chunk` recipients per transaction.

    Small transactions let the consumer's batches in between, so a message to 10,000 people does
    not stall intake. A crash mid-way resumes after the cursor; the log's dedup key makes a chunk
    written twice harmless.
    """
    written = 0
    while True:
        async with open_store() as store:
            record = await store.next_open_flush()
            if record is None:
                return written
            ids = await store.responsible_ids(record.tenant, record.object_kind, record.object_id)
        assert record.id is not None
        pending = [i for i in ids if record.cursor is None or i > record.cursor]
        first = record.cursor is None
        if not pending:
            async with open_store() as store:
                written += await store.add_notifications(drafts_for(record, [], include_extras=first))
                await store.advance_flush(record.id, record.cursor, done=True)
            continue
        for start in range(0, len(pending), chunk):
            ids_chunk = pending[start : start + chunk]
            async with open_store() as store:
                recipients = await store.recipients_by_ids(record.tenant, ids_chunk)
                written += await store.add_notifications(drafts_for(record, recipients, first and start == 0))
                await store.advance_flush(record.id, ids_chunk[-1], done=start + chunk >= len(pending))


# --- watchdogs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    rating_every: timedelta
    watch_emails: tuple[str, ...]
    lag_threshold: int
    heartbeat_misses: int = 3
    severity: Severity = Severity.IMPORTANT


async def record_heartbeat(store: NotifierStore, data: dict[str, Any], seen_at: datetime) -> None:
    consumers = {
        group: ConsumerSample(int(s.get("processed", 0)), int(s.get("lag", 0)), int(s.get("dead_lettered", 0)))
        for group, s in (data.get("consumers") or {}).items()
        if isinstance(s, dict)
    }
    await store.record_heartbeat(
        ServiceBeat(
            service=str(data["service"]),
            instance=str(data.get("instance", "")),
            seen_at=seen_at,
            interval_seconds=float(data.get("interval_seconds", 10.0)),
            consumers=consumers,
        )
    )


async def _apply_verdict(
    store: NotifierStore,
    verdict: Verdict,
    settings: WatchdogSettings,
    now: datetime,
    tenant: str = PLATFORM,
    every: timedelta | None = None,
    emails: tuple[str, ...] | None = None,
) -> None:
    if verdict.firing:
        await raise_alert(
            store,
            tenant,
            AlertRaised(
                fingerprint=verdict.fingerprint,
                severity=settings.severity,
                source_kind=SourceKind.AUTOMATION,
                object=AlertObject(kind=verdict.object_kind, id=verdict.object_id),
                summary=verdict.summary,
            ),
            now,
            repeat_seconds=int((every or settings.rating_every).total_seconds()),
            extra_emails=settings.watch_emails if emails is None else emails,
        )
    else:
        existing = await store.get_alert(tenant, verdict.fingerprint)
        if existing is not None and existing.firing:
            existing.summary = verdict.summary  # the resolved message says what happened: "rating resumed"
            existing.resolve(now)
            await store.save_alert(existing)


async def run_watchdogs(
    store: NotifierStore,
    settings: WatchdogSettings,
    now: datetime,
    dead_letter_ends: dict[str, int] | None = None,
    listening_since: datetime | None = None,
) -> list[Verdict]:
    """Run every watchdog once at `now`; fires and resolves the notifier's own alerts (tenant `platform`).

    `listening_since`: when this process began consuming heartbeats (see `RatingWatch`).
    """
    # Instances that restarted get new ids: forget the ones silent for a day, or the table only grows.
    await store.forget_heartbeats(now - timedelta(days=1))
    beats = await store.heartbeats()
    state = await store.load_watch("rating") or {}
    last = state.get("last_check_at")
    watch = RatingWatch(
        every=settings.rating_every,
        last_check_at=datetime.fromisoformat(last) if last else None,
        processed={k: int(v) for k, v in (state.get("processed") or {}).items()},
        listening_since=listening_since,
    )
    verdicts: list[Verdict] = []
    rating = watch.check(beats, now)
    if rating is not None:
        verdicts.append(rating)
        await store.save_watch(
            "rating",
            {"last_check_at": now.isoformat(), "processed": watch.processed},
        )
    verdicts += heartbeat_verdicts(beats, now, settings.heartbeat_misses)
    verdicts += lag_verdicts(beats, now, settings.lag_threshold, settings.rating_every)
    if dead_letter_ends is not None:
        dlq_state = await store.load_watch("dead-letters") or {}
        checked = dlq_state.get("last_check_at")
        dlq = DeadLetterWatch(
            settings.rating_every,
            datetime.fromisoformat(checked) if checked else None,
            {k: int(v) for k, v in (dlq_state.get("ends") or {}).items()},
        )
        dlq_verdicts = dlq.check(dead_letter_ends, now)
        if dlq_verdicts is not None:
            verdicts += dlq_verdicts
            await store.save_watch("dead-letters", {"last_check_at": now.isoformat(), "ends": dlq.ends})
    for verdict in verdicts:
        await _apply_verdict(store, verdict, settings, now)
    verdicts += await _tenant_rating_watchdogs(store, settings, beats, now, listening_since)
    return verdicts


async def _tenant_rating_watchdogs(
    store: NotifierStore,
    settings: WatchdogSettings,
    beats: Sequence[ServiceBeat],
    now: datetime,
    listening_since: datetime | None,
) -> list[Verdict]:
    """Each tenant that set its own rating watchdog: checked at its interval, its alert in its inbox, its list told.

    The rater's heartbeats count calls for every tenant together, so the verdict is the
    platform's, seen at the tenant's pace: a hotel that wants to hear within 2 minutes does,
    while the platform's own list is told at the platform's interval.
    """
    verdicts: list[Verdict] = []
    for watchdog in await store.tenant_watchdogs():
        state = await store.load_watch("rating", watchdog.tenant) or {}
        last = state.get("last_check_at")
        watch = RatingWatch(
            every=watchdog.every,
            last_check_at=datetime.fromisoformat(last) if last else None,
            processed={k: int(v) for k, v in (state.get("processed") or {}).items()},
            listening_since=listening_since,
        )
        verdict = watch.check(beats, now)
        if verdict is None:
            continue
        await store.save_watch(
            "rating", {"last_check_at": now.isoformat(), "processed": watch.processed}, watchdog.tenant
        )
        await _apply_verdict(store, verdict, settings, now, watchdog.tenant, watchdog.every, watchdog.emails)
        verdicts.append(verdict)
    return verdicts


# --- invoices and usage: tell the customer -------------------------------------------------------


async def tell_invoice_issued(store: NotifierStore, invoice: contracts.InvoiceIssued, now: datetime) -> int:
    """E-mail the people responsible for the customer that an invoice (or credit note) was issued."""
    recipients = await store.responsible_recipients(invoice.tenant, "customer", invoice.customer_id)
    what = "Credit note" if invoice.kind == "credit_note" else "Invoice"
    # `number` is the document number as printed, its series included (NF-000123).
    subject = f"{what} {invoice.number}: {invoice.total} {invoice.currency}, due {invoice.due_date}"
    lines = [
        f"{what} {invoice.number} for {invoice.period_start} to {invoice.period_end}.",
        f"Net {invoice.net} {invoice.currency}, tax {invoice.tax}, total {invoice.total}; due {invoice.due_date}.",
        *[f"{name}: {url}" for name, url in sorted(invoice.links.items())],
    ]
    drafts = [
        NotificationDraft(
            tenant=invoice.tenant,
            dedup_key=f"{invoice.tenant}|invoice|{invoice.invoice_id}|{d.channel}|{d.address}",
            group_key=f"customer:{invoice.customer_id}",
            kind="invoice.issued",
            channel=d.channel,
            address=d.address,
            recipient_id=d.recipient_id,
            subject=subject,
            body="\n".join(lines) + "\n",
            created_at=now,
        )
        for d in deliveries_for(Severity.IMPORTANT, recipients)
    ]
    return await store.add_notifications(drafts)


async def raise_usage_alert(
    store: NotifierStore, usage: contracts.UsageThresholdReached | contracts.CreditLimitExceeded, now: datetime
) -> Alert:
    """A line's threshold or credit limit becomes an alert on the line: its people (customer, operator) hear of it."""
    if isinstance(usage, contracts.UsageThresholdReached):
        raised = AlertRaised(
            fingerprint=f"rater/usage-threshold/{usage.line_id}/{usage.cycle_start}/{usage.threshold_percent}",
            severity=Severity.IMPORTANT,
            object=AlertObject(kind="line", id=usage.line_id),
            summary=(
                f"Line {usage.line_id} used {usage.threshold_percent}% of its allowance "
                f"({usage.used_seconds} of {usage.included_seconds} s) this cycle"
            ),
            details=usage.model_dump(mode="json"),
        )
    else:
        raised = AlertRaised(
            fingerprint=f"rater/credit-exceeded/{usage.line_id}/{usage.cycle_start}",
            severity=Severity.URGENT,
            object=AlertObject(kind="line", id=usage.line_id),
            summary=(
                f"Line {usage.line_id} spent {usage.spent} {usage.currency}, over its credit limit "
                f"of {usage.credit_limit}"
            ),
            details=usage.model_dump(mode="json"),
        )
    return await raise_alert(store, usage.tenant, raised, now)


# --- scheduled reports ---------------------------------------------------------------------------


class ReportSourceDown(Exception):
    """The service a report reads from could not answer, after the retries of one round."""


class ReportSource(Protocol):
    """The other services' report APIs (the adapter calls the rater and the invoicer over HTTP)."""

    async def cost_centre_totals(self, tenant: str, start: datetime, end: datetime) -> list[CostCentreTotal]: ...
    async def rated_calls_file(self, tenant: str, start: datetime, end: datetime, fmt: ReportFormat) -> Attachment: ...
    async def invoices(self, tenant: str, month: str) -> list[InvoiceSummary]: ...
    async def invoicing_file(self, tenant: str, month: str, fmt: ReportFormat) -> Attachment: ...


@dataclass(frozen=True, slots=True)
class ReportRetry:
    """A report whose source is down is tried again after `backoff`, doubling up to `longest`."""

    backoff: timedelta = timedelta(minutes=5)
    longest: timedelta = timedelta(hours=1)

    def after(self, failures: int) -> timedelta:
        return min(self.backoff * (1 << max(failures - 1, 0)), self.longest)


async def gather_report(
    schedule: ReportSchedule, start: datetime, end: datetime, source: ReportSource | None
) -> Report:
    """Read a rater or invoicer report for the period: the body table from JSON, the file the format asks for."""
    if source is None:
        raise ReportSourceDown("no report source is configured")
    attachment: Attachment | None = None
    if schedule.kind is ReportKind.CALLS_BY_COST_CENTRE:
        subject, body = calls_by_cost_centre(
            schedule, await source.cost_centre_totals(schedule.tenant, start, end), start, end
        )
        if schedule.format is not ReportFormat.TEXT:
            attachment = await source.rated_calls_file(schedule.tenant, start, end, schedule.format)
            day = start.astimezone(ZoneInfo(schedule.time_zone)).date()
            attachment = replace(attachment, filename=f"calls-{day:%Y-%m-%d}.{schedule.format.value}")
    elif schedule.kind is ReportKind.INVOICING:
        month = start.astimezone(ZoneInfo(schedule.time_zone)).strftime("%Y-%m")
        subject, body = invoicing(schedule, await source.invoices(schedule.tenant, month), month)
        if schedule.format is not ReportFormat.TEXT:
            attachment = await source.invoicing_file(schedule.tenant, month, schedule.format)
    else:
        raise ValueError(f"{schedule.kind} is not read from another service")
    return Report(subject, body, attachment)


def report_failed_fingerprint(schedule_id: str) -> str:
    return f"notifier/report-failed/{schedule_id}"


async def run_due_reports(
    open_store: StoreOpener,
    now: datetime,
    source: ReportSource | None = None,
    retry: ReportRetry | None = None,
) -> int:
    """Log the e-mails of every report due at `now`; one run per due time (missed runs are not replayed).

    The period depends on the kind (`ReportSchedule.period`). A report read from the rater or the
    invoicer is fetched outside any transaction, then logged with its slot in one: the log's dedup
    key (schedule, due time, address) and the slot check make a run decided twice, by a restart
    or a second replica, logged once. A source that stays down keeps the slot, is tried again
    with a growing wait, and raises an `important` alert to the report's recipients until it
    is sent (then the alert resolves).
    """
    retry = retry or ReportRetry()
    async with open_store() as store:
        due = await store.due_reports(now)
    logged = 0
    for schedule, due_at, last_run in due:
        start, end = schedule.period(due_at, last_run)
        if schedule.kind is ReportKind.ALERT_DIGEST:
            async with open_store() as store:
                subject, body = alert_digest(
                    schedule, await store.alerts_started_between(schedule.tenant, start, end), start, end
                )
                logged += await _log_report(store, schedule, due_at, Report(subject, body), now)
            continue
        try:
            report = await gather_report(schedule, start, end, source)
        except ReportSourceDown as error:
            async with open_store() as store:
                await _report_failed(store, schedule, due_at, str(error), retry, now)
            continue
        async with open_store() as store:
            logged += await _log_report(store, schedule, due_at, report, now)
    return logged


async def _log_report(
    store: NotifierStore, schedule: ReportSchedule, due_at: datetime, report: Report, now: datetime
) -> int:
    if not await store.mark_report_run(schedule.id, due_at, schedule.next_run(max(now, due_at))):
        return 0  # another replica, or this one before a restart, logged this slot already
    attachment_id = None
    if report.attachment is not None:
        attachment_id = deterministic_id("notifier-report", schedule.id, due_at.isoformat())
        await store.add_attachment(attachment_id, schedule.tenant, report.attachment, now)
    drafts = [
        NotificationDraft(
            tenant=schedule.tenant,
            dedup_key=f"{schedule.tenant}|report|{schedule.id}|{due_at.isoformat()}|{address}",
            group_key=f"report:{schedule.id}",
            kind="report",
            channel=Channel.EMAIL,
            address=address,
            recipient_id=None,
            subject=report.subject,
            body=report.body,
            created_at=now,
            attachment_id=attachment_id,
        )
        for address in schedule.recipients
    ]
    logged = await store.add_notifications(drafts)
    late = await store.get_alert(schedule.tenant, report_failed_fingerprint(schedule.id))
    if late is not None and late.firing:
        late.summary = f"Report {schedule.name!r} due {due_at:%Y-%m-%d %H:%M} UTC was sent, late"
        late.resolve(now)
        await store.save_alert(late)
    return logged


async def _report_failed(
    store: NotifierStore, schedule: ReportSchedule, due_at: datetime, error: str, retry: ReportRetry, now: datetime
) -> None:
    failures, retry_at = await store.mark_report_failed(schedule.id, error, now, retry)
    zone = ZoneInfo(schedule.time_zone)
    await raise_alert(
        store,
        schedule.tenant,
        AlertRaised(
            fingerprint=report_failed_fingerprint(schedule.id),
            severity=Severity.IMPORTANT,
            source_kind=SourceKind.AUTOMATION,
            object=AlertObject(kind="report", id=schedule.id),
            summary=(
                f"Report {schedule.name!r} due {due_at.astimezone(zone):%Y-%m-%d %H:%M} ({schedule.time_zone}) "
                f"is not sent: {error}; trying again at {retry_at.astimezone(zone):%H:%M} ({failures} failed round(s))"
            ),
            details={"condition": "report-failed", "schedule_id": schedule.id, "due_at": due_at.isoformat()},
        ),
        now,
        extra_emails=schedule.recipients,
    )
