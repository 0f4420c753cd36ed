"""Applies the queued Summit operations in the background, and reconciles our lines with Summit's.

Operations of one line are applied in order, one at a time; different lines proceed in parallel.
A call that still fails after the client's own retries counts one attempt; after
`operation_max_attempts` the operation is failed (with its last error) and the line waits for
a retry by hand (`POST /v1/operations/{id}/retry`). Summit is called outside any database
transaction, so a slow platform never holds a lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select

from tarifa_common import alerts, topics
from tarifa_common.errors import TarifaError
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWork, UnitOfWorkFactory
from tarifa_voip_summit.adapters.secrets import PasswordBox
from tarifa_voip_summit.adapters.store import SqlSummitStore
from tarifa_voip_summit.adapters.summit import SummitAddress, SummitClient, SummitRefused
from tarifa_voip_summit.adapters.tables import DidRow, IntegrationRow, LineRow, OperationRow
from tarifa_voip_summit.domain.model import (
    Drift,
    LineState,
    LineView,
    OperationKind,
    OperationStatus,
    compare,
)

log = logging.getLogger(__name__)
SERVICE = "voip-summit"
ClientFactory = Callable[[SummitAddress], SummitClient]


@dataclass(frozen=True, slots=True)
class _Work:
    operation_id: int
    tenant: str
    line_id: str
    kind: OperationKind
    payload: dict[str, Any]
    terminal_id: str | None
    address: SummitAddress


class Provisioner:
    """The background worker of the Summit queue, and the reconciliation job."""

    def __init__(
        self,
        units: UnitOfWorkFactory,
        box: PasswordBox,
        clients: ClientFactory,
        *,
        scheme: str = "http",
        max_attempts: int = 3,
        parallel: int = 8,
        lease_seconds: float = 120.0,
    ) -> None:
        self._lease_seconds = lease_seconds
        self._units = units
        self._box = box
        self._clients = clients
        self._scheme = scheme
        self._max_attempts = max_attempts
        self._parallel = asyncio.Semaphore(parallel)
        self.applied = 0
        self.failed = 0

    async def run(self, poll_seconds: float) -> None:
        while True:
            try:
                done = await self.apply_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying Summit operations failed; trying again")
                done = 0
            if done == 0:
                await asyncio.sleep(poll_seconds)

    async def apply_pending(self, limit: int = 200) -> int:
        """Apply the first pending operation of each line (up to `limit` lines); return how many were tried."""
        work = await self._next_work(limit)
        await asyncio.gather(*(self._apply(item) for item in work))
        return len(work)

    async def _next_work(self, limit: int) -> list[_Work]:
        async with self._units() as uow:
            store = SqlSummitStore(uow, self._box)
            query = (
                select(OperationRow)
                .where(col(OperationRow.status).in_([OperationStatus.PENDING.value, OperationStatus.FAILED.value]))
                .order_by(col(OperationRow.id))
            )
            first_of_line: dict[str, OperationRow] = {}
            for op in (await uow.session.exec(query)).all():
                first_of_line.setdefault(op.line_id, op)
            work: list[_Work] = []
            integrations: dict[str, IntegrationRow | None] = {}
            now = utcnow()
            for op in first_of_line.values():
                if op.status != OperationStatus.PENDING.value:
                    continue  # an earlier failed operation holds the line until it is retried by hand
                if not await self._claim(uow, op, now):
                    continue  # another replica is applying it
                line = await uow.session.get(LineRow, op.line_id)
                if line is None:
                    continue
                if line.integration_id not in integrations:
                    integrations[line.integration_id] = await uow.session.get(IntegrationRow, line.integration_id)
                integration = integrations[line.integration_id]
                if integration is None:
                    continue
                address = store.address(integration, self._scheme)
                work.append(
                    _Work(
                        op.id or 0,
                        op.tenant,
                        op.line_id,
                        OperationKind(op.kind),
                        json.loads(op.payload),
                        line.terminal_id,
                        address,
                    )
                )
                if len(work) >= limit:
                    break
            return work

    async def _claim(self, uow: UnitOfWork, op: OperationRow, now: datetime) -> bool:
        """Take a lease on the operation; an atomic conditional UPDATE, so two replicas never both win.

        A worker that dies leaves a lease that expires, and the operation is applied again (safe:
        creates look up before creating, updates and DID puts are idempotent).
        """
        table = OperationRow.__table__  # type: ignore[attr-defined]
        claimed_until = table.c.claimed_until
        connection = await uow.session.connection()
        result = await connection.execute(
            update(table)
            .where(
                table.c.id == op.id,
                table.c.status == OperationStatus.PENDING.value,  # another replica may have applied it since
                or_(claimed_until.is_(None), claimed_until < now),
            )
            .values(claimed_until=now + timedelta(seconds=self._lease_seconds))
        )
        return bool(result.rowcount == 1)

    async def _apply(self, work: _Work) -> None:
        async with self._parallel:
            result: dict[str, Any] = {}
            error: str | None = None
            final = False
            try:
                result = await self._call(self._clients(work.address), work)
            except SummitRefused as refused:
                error, final = refused.message, True
            except TarifaError as failure:
                error = failure.message
            except Exception as failure:  # a bug or an unexpected answer: keep the worker alive, record it
                error = f"{type(failure).__name__}: {failure}"
            await self._record(work, result, error, final)

    async def _call(self, client: SummitClient, work: _Work) -> dict[str, Any]:
        if work.kind is OperationKind.CREATE:
            return await client.create_terminal(work.payload, idempotency_key=f"{work.tenant}:{work.line_id}")
        if work.terminal_id is None:
            raise SummitRefused("terminal_id", "the line has no terminal on Summit yet (its create failed)")
        if work.kind is OperationKind.UPDATE:
            return await client.update_terminal(work.terminal_id, work.payload)
        if work.kind is OperationKind.CANCEL:
            await client.delete_terminal(work.terminal_id)
            return {}
        if work.kind is OperationKind.ADD_DID:
            return await client.put_did(
                work.terminal_id, work.payload["number"], work.payload["priority"], work.payload["port"]
            )
        await client.delete_did(work.terminal_id, work.payload["number"])
        return {}

    async def _record(self, work: _Work, result: dict[str, Any], error: str | None, final: bool) -> None:
        async with self._units() as uow:
            op = await uow.session.get(OperationRow, work.operation_id)
            line = await uow.session.get(LineRow, work.line_id)
            if op is None or line is None:
                return
            op.attempts += 1
            op.claimed_until = None
            if error is None:
                op.status, op.last_error, op.applied_at = OperationStatus.APPLIED.value, None, utcnow()
                if work.kind is OperationKind.CREATE:
                    line.terminal_id = str(result["terminal_id"])
                    credential = result.get("credential") or {}
                    line.credential = f"{credential.get('username', '')}@{credential.get('domain', '')}"
                if work.kind is OperationKind.ADD_DID and result.get("port_id"):
                    await self._store_port(uow, work, str(result["port_id"]))
                self.applied += 1
            else:
                op.last_error = error
                if final or op.attempts >= self._max_attempts:
                    op.status = OperationStatus.FAILED.value
                    self.failed += 1
                    log.warning("Summit operation %s (%s) failed: %s", op.id, op.kind, error)
            line.sync_status = await self._line_status(uow, line.id, op)
            line.last_error = op.last_error if op.status != OperationStatus.APPLIED.value else None
            uow.session.add(op)
            uow.session.add(line)

    @staticmethod
    async def _store_port(uow: UnitOfWork, work: _Work, port_id: str) -> None:
        query = select(DidRow).where(DidRow.line_id == work.line_id, DidRow.number == work.payload["number"])
        for did in (await uow.session.exec(query)).all():
            did.port_id = port_id
            uow.session.add(did)

    @staticmethod
    async def _line_status(uow: UnitOfWork, line_id: str, current: OperationRow) -> str:
        query = select(OperationRow).where(OperationRow.line_id == line_id, col(OperationRow.id) != current.id)
        statuses = {o.status for o in (await uow.session.exec(query)).all()} | {current.status}
        for status in (OperationStatus.FAILED, OperationStatus.PENDING):
            if status.value in statuses:
                return status.value
        return OperationStatus.APPLIED.value

    # --- reconciliation ----------------------------------------------------------------------

    async def reconcile(self) -> dict[str, Drift]:
        """Compare every active integration's lines with Summit's terminals; alert on drift, resolve when gone."""
        async with self._units() as uow:
            store = SqlSummitStore(uow, self._box)
            integrations = [i for i in await store.integrations(None) if i.active]
            targets = [(i.id, i.tenant, store.address(i, self._scheme)) for i in integrations]
        report: dict[str, Drift] = {}
        for integration_id, tenant, address in targets:
            try:
                terminals = await self._clients(address).fetch("terminals")
            except TarifaError as error:
                log.warning("reconciliation of integration %s skipped: %s", integration_id, error.message)
                continue
            async with self._units() as uow:
                query = select(LineRow).where(LineRow.tenant == tenant, LineRow.integration_id == integration_id)
                ours = {
                    r.terminal_id: LineView(r.terminal_id, r.number, r.category, r.active)
                    for r in (await uow.session.exec(query)).all()
                    if r.terminal_id and r.state != LineState.CANCELLED.value and r.sync_status == "applied"
                }
                theirs = {
                    str(t["terminal_id"]): LineView(
                        str(t["terminal_id"]), str(t["number"]), str(t["category"]), bool(t["active"])
                    )
                    for t in terminals
                }
                drift = compare(ours, theirs)
                report[integration_id] = drift
                fingerprint = f"voip-summit/line-drift/{integration_id}"
                subject = alerts.AlertObject(kind="integration", id=integration_id)
                if drift.any:
                    alert = alerts.AlertRaised(
                        fingerprint=fingerprint,
                        severity=alerts.Severity.IMPORTANT,
                        object=subject,
                        summary=f"Summit and Tarifa disagree: {drift.summary()}",
                        details={
                            "missing_on_summit": drift.missing_on_summit,
                            "unknown_on_summit": drift.unknown_on_summit,
                            "mismatched": drift.mismatched,
                        },
                    )
                    uow.emit(alerts.raised(tenant, SERVICE, alert), topics.ALERT_EVENTS, key=fingerprint)
                else:
                    resolution = alerts.AlertResolved(fingerprint=fingerprint, object=subject, summary="in step")
                    uow.emit(alerts.resolved(tenant, SERVICE, resolution), topics.ALERT_EVENTS, key=fingerprint)
        return report

    async def reconcile_every(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciliation failed; trying again at the next interval")
