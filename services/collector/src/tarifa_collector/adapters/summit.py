"""Summit CDR imports whose settings voip-summit owns: read them over HTTP, keep the last known, run them.

A `summit_integration` source names a voip-summit integration. Every `summit_refresh_seconds`
the collector asks voip-summit for it (`GET /v1/integrations/{id}` through
`tarifa_common.service_client`: a short-lived `service` token of the source's tenant, retries
on no answer, 5xx or 429), stores what it read in `collector_summit_import`, and runs the
import with the drop-directory machinery (`DropDirectory`, the schedule, delete or archive). When voip-summit
does not answer, the last known settings keep the import running, the source's `summit` block
says `stale` with the error, and an important alert is raised once (resolved by the next read).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.links import SourceRunner, _Running
from tarifa_collector.adapters.repository import settings_of
from tarifa_collector.adapters.tables import SourceRow, SummitImportRow
from tarifa_collector.config import CollectorSettings
from tarifa_collector.domain.sources import SourceKind, SourceSettings
from tarifa_collector.domain.summit import SummitImport
from tarifa_collector.handlers import SERVICE
from tarifa_common import alerts, topics
from tarifa_common.errors import InvalidInput
from tarifa_common.events import utcnow
from tarifa_common.service_client import ServiceClient, ServiceUnavailable

log = logging.getLogger(__name__)


class SummitUnavailable(Exception):
    """voip-summit did not give the integration's settings; the message says why."""


class HttpSummitIntegrations:
    """`GET {voip-summit}/v1/integrations/{id}` for one tenant, as the `service` role of that tenant."""

    def __init__(
        self,
        url: str,
        jwt_secret: str,
        *,
        issuer: str = "tarifa",
        timeout: float = 10.0,
        attempts: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client = ServiceClient(
            "voip-summit",
            url,
            jwt_secret,
            caller="collector",
            issuer=issuer,
            timeout=timeout,
            attempts=attempts,
            transport=transport,
        )
        self.url = self.client.url

    @classmethod
    def from_settings(cls, settings: CollectorSettings) -> HttpSummitIntegrations:
        return cls(
            settings.voip_summit_url,
            settings.jwt_secret.get_secret_value(),
            issuer=settings.jwt_issuer,
            timeout=settings.voip_summit_timeout_seconds,
            # The refresh every `summit_refresh_seconds` is the retry: retrying inside it would hold
            # the reconcile loop for attempts times the timeout, per source, while voip-summit is down.
            attempts=1,
        )

    async def import_settings(self, tenant: str, integration_id: str) -> SummitImport:
        if not self.url:
            raise SummitUnavailable("no voip-summit URL is configured (TARIFA_COLLECTOR_VOIP_SUMMIT_URL)")
        try:
            body = await self.client.get_json(tenant, f"/v1/integrations/{integration_id}")
        except ServiceUnavailable as error:
            if error.status == 404:
                raise SummitUnavailable(
                    f"voip-summit has no integration {integration_id!r} in tenant {tenant!r} (HTTP 404): "
                    "create it there, or set the source's integration_id to one that exists"
                ) from error
            raise SummitUnavailable(str(error)) from error
        try:
            return SummitImport.from_integration(body)
        except (KeyError, TypeError, ValueError, InvalidInput) as error:
            # InvalidInput: a schedule our cron reader refuses; one source's bad answer must not stop
            # the refresh of the others (it becomes this source's error, shown and alerted).
            raise SummitUnavailable(f"voip-summit's answer is not an integration: {error!r}") from error


async def summit_imports(session: AsyncSession, tenant: str) -> dict[str, SummitImportRow]:
    """The tenant's last known Summit import settings, by source id."""
    rows = (await session.exec(select(SummitImportRow).where(SummitImportRow.tenant == tenant))).all()
    return {row.source_id: row for row in rows}


def known_import(row: SummitImportRow) -> SummitImport | None:
    if row.directory is None or row.cron is None or row.period is None:
        return None
    return SummitImport(row.directory, row.cron, row.period, bool(row.delete_files), row.active is not False)


def _fingerprint(tenant: str, source_id: str) -> str:
    return f"collector/summit-settings/{tenant}/{source_id}"


class SummitImports(SourceRunner):
    """Reads the settings of every `summit_integration` source and keeps one drop-directory task per source.

    The base runner leaves these sources alone (it has no factory for their kind); this one turns
    each into the drop-directory source its last known settings describe, so a change in
    voip-summit (directory, schedule, period, delete option) restarts the import with it.
    """

    def __init__(self, intake: Intake, settings: CollectorSettings, integrations: HttpSummitIntegrations) -> None:
        super().__init__(intake, settings)
        self.integrations = integrations
        self._last_refresh: datetime | None = None

    async def refresh(self, now: datetime | None = None) -> None:
        """Read every summit_integration source's settings from voip-summit once; keep the last known on failure."""
        now = now or utcnow()
        sources = await self.intake.sources()
        await self._forget({(r.tenant, r.id) for r in sources if r.kind == SourceKind.SUMMIT_INTEGRATION.value})
        for row in sources:
            if row.kind != SourceKind.SUMMIT_INTEGRATION.value or not row.enabled or row.integration_id is None:
                continue
            try:
                found: SummitImport | None = await self.integrations.import_settings(row.tenant, row.integration_id)
                error = None
            except SummitUnavailable as failure:
                found, error = None, str(failure)
                log.warning("Summit settings of %s/%s not read: %s", row.tenant, row.id, error)
            await self._keep(row, found, error, now)
        self._last_refresh = now

    async def _forget(self, summit_sources: set[tuple[str, str]]) -> None:
        """Drop what deleted (or changed) sources had read, resolving their open alert."""
        async with self.intake.units() as uow:
            for row in (await uow.session.exec(select(SummitImportRow))).all():
                if (row.tenant, row.source_id) in summit_sources:
                    continue
                if row.alerted:
                    resolved = alerts.AlertResolved(
                        fingerprint=_fingerprint(row.tenant, row.source_id),
                        object=alerts.AlertObject(kind="source", id=row.source_id),
                        summary=f"Source {row.source_id} no longer follows a Summit integration",
                    )
                    uow.emit(alerts.resolved(row.tenant, SERVICE, resolved), topics.ALERT_EVENTS, resolved.fingerprint)
                await uow.session.delete(row)

    async def _keep(self, source: SourceRow, found: SummitImport | None, error: str | None, now: datetime) -> None:
        async with self.intake.units() as uow:
            row = await uow.session.get(SummitImportRow, (source.tenant, source.id))
            if row is None or row.integration_id != source.integration_id:  # new, or now another integration
                # The alert's fingerprint is the source's: an alert open for the old integration stays
                # this row's to resolve (or to keep) with what the new one answers.
                alerted = row is not None and row.alerted
                if row is not None:
                    await uow.session.delete(row)
                    await uow.session.flush()
                assert source.integration_id is not None
                row = SummitImportRow(
                    tenant=source.tenant, source_id=source.id, integration_id=source.integration_id, alerted=alerted
                )
            if found is not None:
                row.directory, row.cron, row.period = found.directory, found.cron, found.period
                row.delete_files, row.active, row.fetched_at = found.delete_files, found.active, now
                row.error = row.error_since = None
                if row.alerted:
                    row.alerted = False
                    resolved = alerts.AlertResolved(
                        fingerprint=_fingerprint(source.tenant, source.id),
                        object=alerts.AlertObject(kind="source", id=source.id),
                        summary=f"Summit import settings of {source.id} read from voip-summit again",
                    )
                    uow.emit(
                        alerts.resolved(source.tenant, SERVICE, resolved), topics.ALERT_EVENTS, resolved.fingerprint
                    )
            else:
                row.error = error
                row.error_since = row.error_since or now
                if not row.alerted:
                    row.alerted = True
                    kept = "runs on the last known settings" if known_import(row) else "cannot run: none known yet"
                    raised = alerts.AlertRaised(
                        fingerprint=_fingerprint(source.tenant, source.id),
                        severity=alerts.Severity.IMPORTANT,
                        object=alerts.AlertObject(kind="source", id=source.id),
                        summary=f"voip-summit did not give the Summit settings of {source.id}; the import {kept}",
                        details={"integration_id": source.integration_id, "error": error},
                    )
                    uow.emit(alerts.raised(source.tenant, SERVICE, raised), topics.ALERT_EVENTS, raised.fingerprint)
            uow.session.add(row)

    async def wanted(self) -> dict[tuple[str, str], SourceSettings]:
        """The drop-directory source each enabled summit_integration source runs, from its last known settings."""
        wanted: dict[tuple[str, str], SourceSettings] = {}
        rows = [r for r in await self.intake.sources() if r.kind == SourceKind.SUMMIT_INTEGRATION.value and r.enabled]
        async with self.intake.units() as uow:
            for source in rows:
                row = await uow.session.get(SummitImportRow, (source.tenant, source.id))
                found = known_import(row) if row is not None and row.integration_id == source.integration_id else None
                if found is not None and found.active:
                    wanted[(source.tenant, source.id)] = found.source(settings_of(source))
        return wanted

    async def reconcile(self) -> None:
        now = utcnow()
        due = self._last_refresh is None or now - self._last_refresh >= timedelta(
            seconds=self.settings.summit_refresh_seconds
        )
        if due:
            await self.refresh(now)
        wanted = await self.wanted()
        for key, running in list(self.running.items()):
            if key not in wanted or wanted[key] != running.source or running.task.done():
                running.task.cancel()
                await asyncio.gather(running.task, return_exceptions=True)
                del self.running[key]
        for key, source in wanted.items():
            if key not in self.running:
                factory = self._factory(key[0], source)
                if factory is not None:
                    task = asyncio.ensure_future(self._guard(key, factory))
                    self.running[key] = _Running(source, task)
