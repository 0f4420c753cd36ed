"""`SqlNotifierStore`: the handlers' store on SQLModel tables, in the unit of work's session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.alerts import Severity, SourceKind
from tarifa_common.events import deterministic_id
from tarifa_notifier.adapters.tables import (
    AlertGroupRow,
    AlertRow,
    AttachmentRow,
    FlushRow,
    GroupMemberRow,
    HeartbeatRow,
    InhibitRuleRow,
    NotificationRow,
    RecipientRow,
    ReportScheduleRow,
    ResponsibilityRow,
    SilenceRow,
    TenantWatchdogRow,
    WatchStateRow,
)
from tarifa_notifier.domain.alerts import (
    GROUP_KIND,
    Alert,
    AlertGroup,
    AlertStatus,
    InhibitRule,
    Matcher,
    MatchOp,
    Recipient,
    Responsibility,
    Silence,
    responsible_for,
)
from tarifa_notifier.domain.reports import Attachment, ReportFormat, ReportKind, ReportSchedule
from tarifa_notifier.domain.watchdogs import ConsumerSample, ServiceBeat, TenantWatchdog
from tarifa_notifier.handlers import PLATFORM, FlushRecord, NotificationDraft, ReportRetry


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def must_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def alert_id(tenant: str, fingerprint: str) -> str:
    return deterministic_id("notifier-alert", tenant, fingerprint)


def alert_of(row: AlertRow) -> Alert:
    return Alert(
        tenant=row.tenant,
        fingerprint=row.fingerprint,
        severity=Severity(row.severity),
        source_kind=SourceKind(row.source_kind),
        object_kind=row.object_kind,
        object_id=row.object_id,
        summary=row.summary,
        details=dict(row.details or {}),
        starts_at=must_utc(row.starts_at),
        updated_at=must_utc(row.updated_at),
        status=AlertStatus(row.status),
        resolved_at=utc(row.resolved_at),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=utc(row.acknowledged_at),
        raised_count=row.raised_count,
        repeat_seconds=row.repeat_seconds,
        extra_emails=tuple(row.extra_emails or ()),
    )


def silence_of(row: SilenceRow) -> Silence:
    return Silence(
        id=row.id,
        tenant=row.tenant,
        matchers=tuple(Matcher(m["label"], MatchOp(m["op"]), m["value"]) for m in row.matchers),
        starts_at=must_utc(row.starts_at),
        ends_at=must_utc(row.ends_at),
        created_by=row.created_by,
        comment=row.comment,
    )


def recipient_of(row: RecipientRow) -> Recipient:
    return Recipient(row.id, row.tenant, row.name, row.email, row.phone, row.active)


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class SqlNotifierStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Rows this transaction has seen (None: known to be absent), so a batch asks the database once.
        self._alerts: dict[tuple[str, str], AlertRow | None] = {}
        self._groups: dict[tuple[str, str], AlertGroupRow | None] = {}
        self._prefetched: set[str] = set()

    async def _prefetch(self, tenant: str) -> None:
        """Load a tenant's unresolved alerts and active groups in two queries, once per transaction.

        Ingestion is mostly repeats of alerts that are firing (an outage raises the same fingerprint
        again and again): those then cost no query at all.
        """
        if tenant in self._prefetched:
            return
        self._prefetched.add(tenant)
        with self.session.sync_session.no_autoflush:
            alerts = await self.session.exec(
                select(AlertRow).where(AlertRow.tenant == tenant, AlertRow.status != AlertStatus.RESOLVED.value)
            )
            for row in alerts.all():
                self._alerts.setdefault((tenant, row.fingerprint), row)
            groups = await self.session.exec(
                select(AlertGroupRow).where(AlertGroupRow.tenant == tenant, col(AlertGroupRow.first_at).is_not(None))
            )
            for group in groups.all():
                self._groups.setdefault((tenant, group.key), group)

    async def _alert_row(self, tenant: str, fingerprint: str) -> AlertRow | None:
        await self._prefetch(tenant)
        key = (tenant, fingerprint)
        if key in self._alerts:
            return self._alerts[key]
        # No autoflush: this store caches what it added, and flushing before every lookup made
        # ingestion flush once per event (the flush at commit writes the batch in one go).
        with self.session.sync_session.no_autoflush:
            row = await self.session.get(AlertRow, alert_id(tenant, fingerprint))
        self._alerts[key] = row
        return row

    async def _group_row(self, tenant: str, key: str) -> AlertGroupRow | None:
        if (tenant, key) in self._groups:
            return self._groups[(tenant, key)]
        with self.session.sync_session.no_autoflush:
            row = await self.session.get(AlertGroupRow, (tenant, key))
        self._groups[(tenant, key)] = row
        return row

    def id_of(self, alert: Alert) -> str:
        return alert_id(alert.tenant, alert.fingerprint)

    async def get_alert(self, tenant: str, fingerprint: str) -> Alert | None:
        row = await self._alert_row(tenant, fingerprint)
        return alert_of(row) if row is not None else None

    async def save_alert(self, alert: Alert) -> None:
        fields: dict[str, Any] = {
            "tenant": alert.tenant,
            "fingerprint": alert.fingerprint,
            "severity": alert.severity.value,
            "source_kind": alert.source_kind.value,
            "object_kind": alert.object_kind,
            "object_id": alert.object_id,
            "group_key": alert.group_key,
            "summary": alert.summary,
            "details": alert.details,
            "status": alert.status.value,
            "starts_at": alert.starts_at,
            "updated_at": alert.updated_at,
            "resolved_at": alert.resolved_at,
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": alert.acknowledged_at,
            "raised_count": alert.raised_count,
            "repeat_seconds": alert.repeat_seconds,
            "extra_emails": list(alert.extra_emails),
        }
        row = await self._alert_row(alert.tenant, alert.fingerprint)
        if row is None:
            row = AlertRow(id=alert_id(alert.tenant, alert.fingerprint), **fields)
            self.session.add(row)
            self._alerts[(alert.tenant, alert.fingerprint)] = row
            return
        for name, value in fields.items():
            setattr(row, name, value)

    async def get_group(self, tenant: str, key: str) -> AlertGroup:
        row = await self._group_row(tenant, key)
        if row is None:
            return AlertGroup(tenant, key)
        return AlertGroup(tenant, key, utc(row.first_at), utc(row.last_flush_at), dict(row.notified or {}))

    async def save_group(self, group: AlertGroup) -> None:
        row = await self._group_row(group.tenant, group.key)
        if row is None:
            row = AlertGroupRow(tenant=group.tenant, key=group.key)
            self.session.add(row)
            self._groups[(group.tenant, group.key)] = row
        row.first_at = group.first_at
        row.last_flush_at = group.last_flush_at
        row.notified = dict(group.notified)

    async def active_groups(self) -> list[AlertGroup]:
        rows = (await self.session.exec(select(AlertGroupRow).where(col(AlertGroupRow.first_at).is_not(None)))).all()
        return [
            AlertGroup(r.tenant, r.key, utc(r.first_at), utc(r.last_flush_at), dict(r.notified or {})) for r in rows
        ]

    async def alerts_of_groups(self, tenant: str, keys: Sequence[str]) -> dict[str, list[Alert]]:
        found: dict[str, list[Alert]] = {}
        for start in range(0, len(keys), 500):
            statement = select(AlertRow).where(
                AlertRow.tenant == tenant, col(AlertRow.group_key).in_(keys[start : start + 500])
            )
            for row in (await self.session.exec(statement)).all():
                found.setdefault(row.group_key, []).append(alert_of(row))
        return found

    async def active_silences(self, tenant: str, now: datetime) -> list[Silence]:
        statement = select(SilenceRow).where(
            SilenceRow.tenant == tenant, SilenceRow.starts_at <= now, SilenceRow.ends_at > now
        )
        return [silence_of(r) for r in (await self.session.exec(statement)).all()]

    async def responsible_ids(self, tenant: str, object_kind: str, object_id: str) -> list[str]:
        """Sorted ids of the recipients who answer for an object (directly, by kind or by group)."""
        statement = select(ResponsibilityRow).where(
            ResponsibilityRow.tenant == tenant,
            col(ResponsibilityRow.object_kind).in_([object_kind, GROUP_KIND]),
        )
        responsibilities = [
            Responsibility(r.recipient_id, r.object_kind, r.object_id)
            for r in (await self.session.exec(statement)).all()
        ]
        memberships: dict[str, set[tuple[str, str]]] = {}
        members = await self.session.exec(
            select(GroupMemberRow).where(
                GroupMemberRow.tenant == tenant,
                GroupMemberRow.object_kind == object_kind,
                GroupMemberRow.object_id == object_id,
            )
        )
        for m in members.all():
            memberships.setdefault(m.group_name, set()).add((m.object_kind, m.object_id))
        return sorted(responsible_for(object_kind, object_id, responsibilities, memberships))

    async def recipients_by_ids(self, tenant: str, ids: Sequence[str]) -> list[Recipient]:
        found: list[Recipient] = []
        for start in range(0, len(ids), 500):
            rows = await self.session.exec(
                select(RecipientRow).where(
                    RecipientRow.tenant == tenant, col(RecipientRow.id).in_(ids[start : start + 500])
                )
            )
            found += [recipient_of(r) for r in rows.all()]
        return found

    async def responsible_recipients(self, tenant: str, object_kind: str, object_id: str) -> list[Recipient]:
        return await self.recipients_by_ids(tenant, await self.responsible_ids(tenant, object_kind, object_id))

    async def add_flush(self, record: FlushRecord) -> None:
        self.session.add(
            FlushRow(
                tenant=record.tenant,
                group_key=record.group_key,
                object_kind=record.object_kind,
                object_id=record.object_id,
                kind=record.kind,
                severity=record.severity.value,
                at=record.at,
                email_subject=record.email_subject,
                email_body=record.email_body,
                sms_body=record.sms_body,
                extra_emails=list(record.extra_emails),
            )
        )

    async def next_open_flush(self) -> FlushRecord | None:
        statement = select(FlushRow).where(col(FlushRow.done).is_(False)).order_by(col(FlushRow.id)).limit(1)
        row = (await self.session.exec(statement)).first()
        if row is None:
            return None
        return FlushRecord(
            row.tenant,
            row.group_key,
            row.object_kind,
            row.object_id,
            row.kind,
            Severity(row.severity),
            must_utc(row.at),
            row.email_subject,
            row.email_body,
            row.sms_body,
            tuple(row.extra_emails or ()),
            row.id,
            row.cursor,
        )

    async def advance_flush(self, flush_id: int, cursor: str | None, done: bool) -> None:
        row = await self.session.get(FlushRow, flush_id)
        if row is not None:
            row.cursor, row.done = cursor, done

    async def add_notifications(self, drafts: Sequence[NotificationDraft]) -> int:
        """Insert log rows; a row whose dedup key exists already (an event seen twice) is skipped."""
        if not drafts:
            return 0
        values = [
            {
                "tenant": d.tenant,
                "dedup_key": d.dedup_key,
                "group_key": d.group_key,
                "kind": d.kind,
                "channel": d.channel.value,
                "address": d.address,
                "recipient_id": d.recipient_id,
                "subject": d.subject,
                "body": d.body,
                "status": "pending",
                "attempts": 0,
                "created_at": d.created_at,
                "next_attempt_at": d.created_at,
                "attachment_id": d.attachment_id,
            }
            for d in drafts
        ]
        # executemany of one cached statement: far cheaper to compile than a 1,000-row VALUES list.
        # executemany reports no reliable rowcount across drivers, so count the keys already logged.
        connection = await self.session.connection()
        keys = [d.dedup_key for d in drafts]
        existing = 0
        for start in range(0, len(keys), 500):
            found = await connection.execute(
                sa.select(sa.func.count())
                .select_from(NotificationRow)
                .where(col(NotificationRow.dedup_key).in_(keys[start : start + 500]))
            )
            existing += int(found.scalar_one())
        statement = _insert(self.session)(NotificationRow).on_conflict_do_nothing(index_elements=["dedup_key"])
        await connection.execute(statement, values)
        return len(values) - existing

    async def record_heartbeat(self, beat: ServiceBeat) -> None:
        row = await self.session.get(HeartbeatRow, (beat.service, beat.instance))
        if row is None:
            row = HeartbeatRow(service=beat.service, instance=beat.instance, tenant=PLATFORM)
            self.session.add(row)
        if row.seen_at is not None and must_utc(row.seen_at) > beat.seen_at:
            return
        row.seen_at = beat.seen_at
        row.interval_seconds = beat.interval_seconds
        row.consumers = {
            g: {"processed": s.processed, "lag": s.lag, "dead_lettered": s.dead_lettered}
            for g, s in beat.consumers.items()
        }

    async def heartbeats(self) -> list[ServiceBeat]:
        rows = (await self.session.exec(select(HeartbeatRow))).all()
        return [
            ServiceBeat(
                service=r.service,
                instance=r.instance,
                seen_at=must_utc(r.seen_at),
                interval_seconds=r.interval_seconds,
                consumers={
                    g: ConsumerSample(int(s["processed"]), int(s["lag"]), int(s.get("dead_lettered", 0)))
                    for g, s in (r.consumers or {}).items()
                },
            )
            for r in rows
        ]

    async def forget_heartbeats(self, before: datetime) -> int:
        result = await self.session.exec(delete(HeartbeatRow).where(col(HeartbeatRow.seen_at) < before))
        return int(result.rowcount or 0)

    async def load_watch(self, name: str, tenant: str = PLATFORM) -> dict[str, Any] | None:
        row = await self.session.get(WatchStateRow, (tenant, name))
        return dict(row.data) if row is not None else None

    async def save_watch(self, name: str, data: dict[str, Any], tenant: str = PLATFORM) -> None:
        row = await self.session.get(WatchStateRow, (tenant, name))
        if row is None:
            self.session.add(WatchStateRow(tenant=tenant, name=name, data=data))
        else:
            row.data = data
            sa.orm.attributes.flag_modified(row, "data")

    async def tenant_watchdogs(self) -> list[TenantWatchdog]:
        rows = (await self.session.exec(select(TenantWatchdogRow))).all()
        return [TenantWatchdog(r.tenant, timedelta(minutes=r.rating_check_minutes), tuple(r.emails)) for r in rows]

    async def inhibit_rules(self, tenant: str) -> list[InhibitRule]:
        rows = (await self.session.exec(select(InhibitRuleRow).where(InhibitRuleRow.tenant == tenant))).all()
        return [inhibit_rule_of(r) for r in rows]

    async def due_reports(self, now: datetime) -> list[tuple[ReportSchedule, datetime, datetime | None]]:
        statement = select(ReportScheduleRow).where(
            col(ReportScheduleRow.active).is_(True),
            col(ReportScheduleRow.next_run_at) <= now,
            sa.or_(col(ReportScheduleRow.retry_at).is_(None), col(ReportScheduleRow.retry_at) <= now),
        )
        return [
            (schedule_of(r), must_utc(r.next_run_at), utc(r.last_run_at))
            for r in (await self.session.exec(statement)).all()
        ]

    async def mark_report_run(self, schedule_id: str, ran_for: datetime, next_run_at: datetime) -> bool:
        """Move the schedule past the slot `ran_for`; False when that slot is no longer the one due.

        One conditional UPDATE, so of two transactions logging the same slot only one moves it.
        """
        result = await self.session.exec(
            sa.update(ReportScheduleRow)
            .where(col(ReportScheduleRow.id) == schedule_id, col(ReportScheduleRow.next_run_at) == ran_for)
            .values(last_run_at=ran_for, next_run_at=next_run_at, failures=0, retry_at=None, last_error=None)
        )
        return bool(result.rowcount)

    async def mark_report_failed(
        self, schedule_id: str, error: str, now: datetime, retry: ReportRetry
    ) -> tuple[int, datetime]:
        row = await self.session.get(ReportScheduleRow, schedule_id)
        if row is None:
            return 0, now
        row.failures += 1
        row.retry_at = now + retry.after(row.failures)
        row.last_error = error
        return row.failures, row.retry_at

    async def add_attachment(self, attachment_id: str, tenant: str, attachment: Attachment, at: datetime) -> None:
        if await self.session.get(AttachmentRow, attachment_id) is None:
            self.session.add(
                AttachmentRow(
                    id=attachment_id,
                    tenant=tenant,
                    filename=attachment.filename,
                    media_type=attachment.media_type,
                    content=attachment.content,
                    created_at=at,
                )
            )

    async def alerts_started_between(self, tenant: str, start: datetime, end: datetime) -> list[Alert]:
        statement = select(AlertRow).where(
            AlertRow.tenant == tenant, col(AlertRow.starts_at) >= start, col(AlertRow.starts_at) < end
        )
        return [alert_of(r) for r in (await self.session.exec(statement)).all()]


def matchers_of(stored: list[dict[str, str]]) -> tuple[Matcher, ...]:
    return tuple(Matcher(m["label"], MatchOp(m["op"]), m["value"]) for m in stored)


def inhibit_rule_of(row: InhibitRuleRow) -> InhibitRule:
    return InhibitRule(
        source=matchers_of(row.source),
        target=matchers_of(row.target),
        equal=tuple(row.equal),
        id=row.id,
        comment=row.comment,
    )


def schedule_of(row: ReportScheduleRow) -> ReportSchedule:
    return ReportSchedule(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        cron=row.cron,
        time_zone=row.time_zone,
        recipients=tuple(row.recipients),
        kind=ReportKind(row.kind),
        format=ReportFormat(row.format),
    )
