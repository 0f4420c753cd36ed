"""The SQL store of one unit of work: integrations, ranges, catalogue, lines, DIDs, the Summit queue, audit.

Every change that Summit must learn is queued here as an operation in the same transaction,
with its `line.events` event in the outbox; `provisioning` applies the queue in the background.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from tarifa_common import topics
from tarifa_common.contracts import LineChanged, LineEventKind, LineSnapshot, line_event_type
from tarifa_common.errors import Conflict, InvalidInput, NotFound
from tarifa_common.events import Event, utcnow
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_voip_summit.adapters.secrets import PasswordBox
from tarifa_voip_summit.adapters.summit import SummitAddress
from tarifa_voip_summit.adapters.tables import (
    CatalogueRow,
    DidRow,
    IntegrationRow,
    LineAuditRow,
    LineRow,
    NumberAllocationRow,
    NumberRangeRow,
    OperationRow,
    PartitionRow,
)
from tarifa_voip_summit.domain.model import (
    CatalogueMode,
    CategoryChange,
    LineFields,
    LineNotFound,
    LineState,
    NumberInUse,
    NumberRange,
    NumberStatus,
    OperationKind,
    OperationStatus,
    Partition,
    check_category,
    check_did_port,
)

SOURCE = "tarifa/voip-summit"
CATALOGUE_KINDS = ("category", "licence", "plan", "cost_centre")


def partition_of(row: PartitionRow) -> Partition:
    extra = tuple(c for c in row.extra_categories.split(",") if c)
    return Partition(
        row.code,
        row.description,
        row.blocking_enabled,
        row.default_category,
        row.block_category,
        row.partial_block_category,
        row.cancellation_category,
        extra,
    )


def range_of(row: NumberRangeRow) -> NumberRange:
    return NumberRange(row.name, row.prefix, row.first, row.last)


class SqlSummitStore:
    """Implements `handlers.LineStore` and everything the API asks of storage, inside one transaction."""

    def __init__(self, uow: UnitOfWork, box: PasswordBox) -> None:
        self.uow = uow
        self.session = uow.session
        self.box = box

    # --- integrations ------------------------------------------------------------------------

    async def create_integration(self, tenant: str, password: str, fields: dict[str, Any]) -> IntegrationRow:
        row = IntegrationRow(tenant=tenant, access_password_encrypted=self.box.seal(password), **fields)
        self.session.add(row)
        await self.session.flush()
        return row

    async def integration(self, tenant: str, integration_id: str) -> IntegrationRow:
        row = await self.session.get(IntegrationRow, integration_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"no integration {integration_id} in this tenant")
        return row

    async def integrations(self, tenant: str | None) -> Sequence[IntegrationRow]:
        query = select(IntegrationRow).order_by(col(IntegrationRow.created_at))
        if tenant is not None:
            query = query.where(IntegrationRow.tenant == tenant)
        return (await self.session.exec(query)).all()

    async def update_integration(
        self, tenant: str, integration_id: str, password: str | None, changes: dict[str, Any]
    ) -> IntegrationRow:
        row = await self.integration(tenant, integration_id)
        for name, value in changes.items():
            setattr(row, name, value)
        if password is not None:
            row.access_password_encrypted = self.box.seal(password)
        row.updated_at = utcnow()
        self.session.add(row)
        return row

    def address(self, row: IntegrationRow, scheme: str = "http") -> SummitAddress:
        host = row.api_host if "://" in row.api_host else f"{scheme}://{row.api_host}"
        return SummitAddress(f"{host}:{row.api_port}", row.access_user, self.box.open(row.access_password_encrypted))

    # --- number ranges -----------------------------------------------------------------------

    async def create_range(self, tenant: str, number_range: NumberRange) -> NumberRangeRow:
        for other in await self.ranges(tenant):
            theirs = range_of(other)
            same_plan = theirs.prefix == number_range.prefix and len(theirs.first) == len(number_range.first)
            if (
                same_plan
                and int(number_range.first) <= int(theirs.last)
                and int(theirs.first) <= int(number_range.last)
            ):
                raise InvalidInput("first", f"the range overlaps range {other.name!r} ({other.id})")
        row = NumberRangeRow(tenant=tenant, **asdict(number_range))
        self.session.add(row)
        await self.session.flush()
        return row

    async def ranges(self, tenant: str) -> Sequence[NumberRangeRow]:
        query = select(NumberRangeRow).where(NumberRangeRow.tenant == tenant).order_by(col(NumberRangeRow.name))
        return (await self.session.exec(query)).all()

    async def range_row(self, tenant: str, range_id: str) -> NumberRangeRow:
        row = await self.session.get(NumberRangeRow, range_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"no number range {range_id} in this tenant")
        return row

    async def numbers(
        self, tenant: str, range_id: str, status: NumberStatus | None, offset: int, limit: int
    ) -> tuple[int, list[tuple[str, NumberStatus, str | None]]]:
        """The range's numbers with their status, derived from the lines and DIDs holding them."""
        number_range = range_of(await self.range_row(tenant, range_id))
        held = {
            a.number: a.line_id
            for a in (
                await self.session.exec(
                    select(NumberAllocationRow).where(
                        NumberAllocationRow.tenant == tenant,
                        col(NumberAllocationRow.number).startswith(number_range.prefix),
                    )
                )
            ).all()
            if number_range.contains(a.number)
        }
        in_use = len(held)
        if status is NumberStatus.IN_USE:
            rows: list[tuple[str, NumberStatus, str | None]] = []
            for number in sorted(held)[offset : offset + limit]:
                rows.append((number, NumberStatus.IN_USE, held[number]))
            return in_use, rows
        result: list[tuple[str, NumberStatus, str | None]] = []
        skipped = 0
        index = 0
        while index < number_range.size and len(result) < limit:
            number = number_range.number_at(index)
            index += 1
            line = held.get(number)
            if status is NumberStatus.AVAILABLE and line is not None:
                continue
            if skipped < offset:
                skipped += 1
                continue
            result.append((number, NumberStatus.IN_USE if line else NumberStatus.AVAILABLE, line))
        return in_use, result

    async def _check_in_a_range(self, tenant: str, number: str, field_name: str) -> None:
        if not any(range_of(r).contains(number) for r in await self.ranges(tenant)):
            raise InvalidInput(field_name, f"{number} is outside every number range of this tenant")

    async def _allocate(self, tenant: str, number: str, line_id: str, holder: str, field_name: str) -> None:
        """Hold `number` for a line; the (tenant, number) key refuses a second holder even under a race."""
        await self._check_in_a_range(tenant, number, field_name)
        existing = await self.session.get(NumberAllocationRow, (tenant, number))
        if existing is not None:
            raise NumberInUse(f"{field_name}: {number} is already in use by line {existing.line_id}")
        self.session.add(NumberAllocationRow(tenant=tenant, number=number, line_id=line_id, holder=holder))
        try:
            await self.session.flush()
        except IntegrityError as error:
            raise NumberInUse(f"{field_name}: {number} was taken by another request a moment ago") from error

    async def _release_numbers(self, tenant: str, line_id: str, number: str | None = None) -> None:
        query = select(NumberAllocationRow).where(
            NumberAllocationRow.tenant == tenant, NumberAllocationRow.line_id == line_id
        )
        if number is not None:
            query = query.where(NumberAllocationRow.number == number)
        for row in (await self.session.exec(query)).all():
            await self.session.delete(row)

    # --- catalogue ---------------------------------------------------------------------------

    async def create_partition(self, tenant: str, partition: Partition) -> PartitionRow:
        if await self._partition_row(tenant, partition.code) is not None:
            raise Conflict(f"code: partition {partition.code!r} already exists")
        row = PartitionRow(
            tenant=tenant,
            code=partition.code,
            description=partition.description,
            blocking_enabled=partition.blocking_enabled,
            default_category=partition.default_category,
            block_category=partition.block_category,
            partial_block_category=partition.partial_block_category,
            cancellation_category=partition.cancellation_category,
            extra_categories=",".join(partition.extra_categories),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_partition(self, tenant: str, partition: Partition) -> PartitionRow:
        row = await self._partition_row(tenant, partition.code)
        if row is None:
            raise NotFound(f"no partition {partition.code!r}")
        row.description = partition.description
        row.blocking_enabled = partition.blocking_enabled
        row.default_category = partition.default_category
        row.block_category = partition.block_category
        row.partial_block_category = partition.partial_block_category
        row.cancellation_category = partition.cancellation_category
        row.extra_categories = ",".join(partition.extra_categories)
        self.session.add(row)
        return row

    async def _partition_row(self, tenant: str, code: str) -> PartitionRow | None:
        query = select(PartitionRow).where(PartitionRow.tenant == tenant, PartitionRow.code == code)
        return (await self.session.exec(query)).first()

    async def partition(self, tenant: str, code: str) -> Partition | None:
        row = await self._partition_row(tenant, code)
        return partition_of(row) if row else None

    async def partitions(self, tenant: str) -> list[Partition]:
        query = select(PartitionRow).where(PartitionRow.tenant == tenant).order_by(col(PartitionRow.code))
        return [partition_of(r) for r in (await self.session.exec(query)).all()]

    async def create_item(self, tenant: str, kind: str, code: str, description: str) -> CatalogueRow:
        if not code.strip():
            raise InvalidInput("code", "must not be empty")
        folded = code.strip().casefold()
        if await self.item(tenant, kind, code) is not None:
            raise Conflict(f"code: {kind} {code!r} already exists (codes are compared without case)")
        row = CatalogueRow(tenant=tenant, kind=kind, code=code.strip(), folded=folded, description=description)
        self.session.add(row)
        await self.session.flush()
        return row

    async def item(self, tenant: str, kind: str, code: str) -> CatalogueRow | None:
        query = select(CatalogueRow).where(
            CatalogueRow.tenant == tenant, CatalogueRow.kind == kind, CatalogueRow.folded == code.strip().casefold()
        )
        return (await self.session.exec(query)).first()

    async def items(self, tenant: str, kind: str) -> Sequence[CatalogueRow]:
        query = select(CatalogueRow).where(CatalogueRow.tenant == tenant, CatalogueRow.kind == kind)
        return (await self.session.exec(query.order_by(col(CatalogueRow.code)))).all()

    async def _check_local_catalogue(self, tenant: str, fields: LineFields) -> LineFields:
        partition = await self.partition(tenant, fields.partition)
        if partition is None:
            raise InvalidInput("partition", f"unknown partition {fields.partition!r}; create it under /v1/partitions")
        check_category(partition, fields.category)
        if await self.item(tenant, "category", fields.category) is None and not partition.allowed_categories:
            raise InvalidInput("category", f"unknown category {fields.category!r}")
        for kind, name, value in (("plan", "plan", fields.plan), ("licence", "licence", fields.licence)):
            if value is not None and await self.item(tenant, kind, value) is None:
                raise InvalidInput(name, f"unknown {kind} {value!r}; create it under /v1/catalogue/{kind}s")
        centre = await self.item(tenant, "cost_centre", fields.cost_centre)
        if centre is None:
            raise InvalidInput("cost_centre", f"unknown cost centre {fields.cost_centre!r}")
        # Summit takes the cost centre as it was registered ("Default"), whatever case the caller used.
        return LineFields(**{**asdict(fields), "cost_centre": centre.code})

    # --- lines -------------------------------------------------------------------------------

    async def create_line(self, tenant: str, fields: LineFields, caused_by: str) -> LineRow:
        integration = await self.integration(tenant, fields.integration_id)
        if not integration.active:
            raise InvalidInput("integration_id", "the integration is not active")
        if integration.catalogue_mode == CatalogueMode.LOCAL.value:
            fields = await self._check_local_catalogue(tenant, fields)
        row = LineRow(
            tenant=tenant,
            state=(LineState.ACTIVE if fields.active else LineState.INACTIVE).value,
            **{k: (v.value if hasattr(v, "value") else v) for k, v in asdict(fields).items()},
        )
        await self._allocate(tenant, fields.number, row.id, "line", "number")
        self.session.add(row)
        await self.session.flush()
        self._enqueue(row, OperationKind.CREATE, self._terminal_body(row))
        self._audit(row, "created", None, row.category, "line created", caused_by)
        self._emit(row, LineEventKind.CREATED, "line created", caused_by, [])
        if row.active:
            self._emit(row, LineEventKind.ACTIVATED, "line created active", caused_by, [])
        return row

    @staticmethod
    def _terminal_body(row: LineRow) -> dict[str, Any]:
        return {
            "external_id": row.id,
            "bid_type": row.bid_type,
            "number": row.number,
            "partition": row.partition,
            "category": row.category,
            "plan": row.plan,
            "licence": row.licence,
            "cost_centre": row.cost_centre,
            "call_limit": row.call_limit,
            "due_day": row.due_day,
            "account_code": row.account_code,
            "extension": row.extension,
            "description": row.description,
            "credit_limit": None if row.credit_limit is None else str(row.credit_limit),
            "active": row.active,
        }

    async def line(self, tenant: str, line_id: str) -> LineRow:
        row = await self.session.get(LineRow, line_id)
        if row is None or row.tenant != tenant:
            raise LineNotFound(f"no line {line_id} in this tenant")
        return row

    async def lines(self, tenant: str, contract_id: str | None = None) -> Sequence[LineRow]:
        query = select(LineRow).where(LineRow.tenant == tenant)
        if contract_id is not None:
            query = query.where(LineRow.contract_id == contract_id)
        return (await self.session.exec(query.order_by(col(LineRow.created_at)))).all()

    async def update_line(self, tenant: str, line_id: str, changes: dict[str, Any], caused_by: str) -> LineRow:
        """Change fields of a live line; Summit learns them through the queue."""
        row = await self.line(tenant, line_id)
        if row.state == LineState.CANCELLED.value:
            raise Conflict(f"line {line_id} is cancelled; create a new line instead")
        if "category" in changes:
            partition = await self.partition(tenant, row.partition)
            if partition is not None:
                check_category(partition, changes["category"])
        if "cost_centre" in changes and (centre := await self.item(tenant, "cost_centre", changes["cost_centre"])):
            changes["cost_centre"] = centre.code
        old_category, was_active = row.category, row.active
        for name, value in changes.items():
            setattr(row, name, value)
        if "active" in changes:
            row.state = (LineState.ACTIVE if row.active else LineState.INACTIVE).value
        if row.active and (not was_active or row.category != old_category):
            # Activated by hand (after a credit breach, say) or moved: blocked only if the category blocks.
            partition = await self.partition(tenant, row.partition)
            row.blocked = partition is not None and row.category in {
                partition.block_category,
                partition.partial_block_category,
                partition.cancellation_category,
            }
        row.updated_at = utcnow()
        self.session.add(row)
        summit_changes = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in changes.items()}
        summit_changes.pop("billing_plan", None)
        summit_changes.pop("city", None)
        summit_changes.pop("activation_date", None)
        if summit_changes:
            self._enqueue(row, OperationKind.UPDATE, summit_changes)
        dids = await self._did_numbers(tenant, row.id)
        if row.category != old_category:
            self._audit(row, "category changed", old_category, row.category, "changed through the API", caused_by)
            self._emit(row, LineEventKind.CATEGORY_CHANGED, "changed through the API", caused_by, dids)
        if row.active != was_active:
            what = "activated" if row.active else "deactivated"
            self._audit(row, what, old_category, row.category, f"{what} through the API", caused_by)
            kind = LineEventKind.ACTIVATED if row.active else LineEventKind.BLOCKED
            self._emit(row, kind, f"{what} through the API", caused_by, dids)
        return row

    async def cancel_line(self, tenant: str, line_id: str, caused_by: str) -> LineRow:
        row = await self.line(tenant, line_id)
        if row.state == LineState.CANCELLED.value:
            return row
        dids = await self._did_numbers(tenant, row.id)
        row.state = LineState.CANCELLED.value
        row.active = False
        row.updated_at = utcnow()
        self.session.add(row)
        await self._release_numbers(tenant, row.id)
        self._enqueue(row, OperationKind.CANCEL, {})
        self._audit(row, "cancelled", row.category, row.category, "cancelled through the API", caused_by)
        self._emit(row, LineEventKind.CANCELLED, "cancelled through the API", caused_by, dids)
        return row

    async def add_did(
        self, tenant: str, line_id: str, number: str, priority: int, port: int | None, caused_by: str
    ) -> DidRow:
        row = await self.line(tenant, line_id)
        if row.state == LineState.CANCELLED.value:
            raise Conflict(f"line {line_id} is cancelled")
        check_did_port(port)
        await self._allocate(tenant, number, row.id, "did", "number")
        did = DidRow(tenant=tenant, line_id=row.id, number=number, priority=priority, port=port, city=row.city)
        self.session.add(did)
        await self.session.flush()
        self._enqueue(row, OperationKind.ADD_DID, {"number": number, "priority": priority, "port": port})
        self._audit(row, f"DID {number} added", None, None, "added through the API", caused_by)
        self._emit(
            row, LineEventKind.DID_ADDED, f"DID {number} added", caused_by, await self._did_numbers(tenant, row.id)
        )
        return did

    async def dids(self, tenant: str, line_id: str) -> Sequence[DidRow]:
        query = select(DidRow).where(DidRow.tenant == tenant, DidRow.line_id == line_id)
        return (await self.session.exec(query.order_by(col(DidRow.priority), col(DidRow.number)))).all()

    async def _did_numbers(self, tenant: str, line_id: str) -> list[str]:
        return [d.number for d in await self.dids(tenant, line_id)]

    async def remove_did(self, tenant: str, line_id: str, number: str, caused_by: str) -> None:
        row = await self.line(tenant, line_id)
        found = [d for d in await self.dids(tenant, line_id) if d.number == number]
        if not found:
            raise NotFound(f"line {line_id} has no DID {number}")
        for did in found:
            await self.session.delete(did)
        await self._release_numbers(tenant, row.id, number)
        await self.session.flush()
        self._enqueue(row, OperationKind.REMOVE_DID, {"number": number})
        self._audit(row, f"DID {number} removed", None, None, "removed through the API", caused_by)
        dids = await self._did_numbers(tenant, row.id)
        self._emit(row, LineEventKind.DID_REMOVED, f"DID {number} removed", caused_by, dids)

    # --- blocking (handlers.LineStore) -------------------------------------------------------

    async def lines_of_contract(self, tenant: str, contract_id: str) -> Sequence[str]:
        return [r.id for r in await self.lines(tenant, contract_id) if r.state != LineState.CANCELLED.value]

    async def partition_of_line(self, tenant: str, line_id: str) -> Partition | None:
        row = await self.session.get(LineRow, line_id)
        if row is None or row.tenant != tenant:
            return None
        return await self.partition(tenant, row.partition)

    async def apply_category(self, tenant: str, line_id: str, change: CategoryChange, caused_by: str) -> bool:
        row = await self.session.get(LineRow, line_id)
        if row is None or row.tenant != tenant or row.state == LineState.CANCELLED.value:
            return False
        if row.category == change.category and row.blocked == change.blocked:
            return False
        old = row.category
        row.category, row.blocked, row.updated_at = change.category, change.blocked, utcnow()
        self.session.add(row)
        self._enqueue(row, OperationKind.UPDATE, {"category": change.category})
        self._audit(row, f"category {old} -> {change.category}", old, change.category, change.reason, caused_by)
        self._emit(row, change.kind, change.reason, caused_by, await self._did_numbers(tenant, row.id))
        return True

    async def deactivate(self, tenant: str, line_id: str, reason: str, caused_by: str) -> bool:
        row = await self.session.get(LineRow, line_id)
        if row is None or row.tenant != tenant or not row.active:
            return False
        row.active, row.blocked, row.state, row.updated_at = False, True, LineState.INACTIVE.value, utcnow()
        self.session.add(row)
        self._enqueue(row, OperationKind.UPDATE, {"active": False})
        self._audit(row, "deactivated", row.category, row.category, reason, caused_by)
        self._emit(row, LineEventKind.BLOCKED, reason, caused_by, await self._did_numbers(tenant, row.id))
        return True

    async def audit(self, tenant: str, line_id: str) -> Sequence[LineAuditRow]:
        query = select(LineAuditRow).where(LineAuditRow.tenant == tenant, LineAuditRow.line_id == line_id)
        return (await self.session.exec(query.order_by(col(LineAuditRow.id)))).all()

    # --- the Summit queue --------------------------------------------------------------------

    def _enqueue(self, row: LineRow, kind: OperationKind, payload: dict[str, Any]) -> None:
        row.sync_status = OperationStatus.PENDING.value
        self.session.add(
            OperationRow(tenant=row.tenant, line_id=row.id, kind=kind.value, payload=json.dumps(payload, default=str))
        )

    async def operations(self, tenant: str, line_id: str) -> Sequence[OperationRow]:
        query = select(OperationRow).where(OperationRow.tenant == tenant, OperationRow.line_id == line_id)
        return (await self.session.exec(query.order_by(col(OperationRow.id)))).all()

    async def retry_operation(self, tenant: str, operation_id: int) -> OperationRow:
        row = await self.session.get(OperationRow, operation_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"no operation {operation_id} in this tenant")
        if row.status != OperationStatus.FAILED.value:
            raise Conflict(f"operation {operation_id} is {row.status}; only a failed operation can be retried")
        row.status, row.attempts = OperationStatus.PENDING.value, 0
        self.session.add(row)
        line = await self.line(tenant, row.line_id)
        line.sync_status = OperationStatus.PENDING.value
        self.session.add(line)
        return row

    async def count_pending(self) -> int:
        query = select(func.count()).select_from(OperationRow).where(OperationRow.status == "pending")
        return int((await self.session.exec(query)).one())

    # --- audit and events --------------------------------------------------------------------

    def _audit(self, row: LineRow, what: str, old: str | None, new: str | None, reason: str, caused_by: str) -> None:
        self.session.add(
            LineAuditRow(
                tenant=row.tenant,
                line_id=row.id,
                what=what,
                old_category=old,
                new_category=new,
                reason=reason[:300],
                caused_by=caused_by[:64],
            )
        )

    def _emit(self, row: LineRow, kind: LineEventKind, reason: str, caused_by: str, dids: list[str]) -> None:
        self.uow.emit(line_event(row, kind, reason, caused_by, dids), topics.LINE_EVENTS, key=row.id)


def snapshot(row: LineRow, dids: list[str]) -> LineSnapshot:
    return LineSnapshot(
        line_id=row.id,
        contract_id=row.contract_id,
        extension=row.extension,
        number=f"+{row.number}",
        dids=[f"+{d}" for d in dids],
        partition=row.partition,
        category=row.category,
        plan=row.plan,
        cost_centre=row.cost_centre,
        due_day=row.due_day,
        credit_limit=row.credit_limit,
        active=row.active,
        blocked=row.blocked,
    )


def line_event(row: LineRow, kind: LineEventKind, reason: str, caused_by: str, dids: list[str]) -> Event:
    data = LineChanged(
        tenant=row.tenant, kind=kind, line=snapshot(row, dids), reason=reason, caused_by=caused_by
    ).model_dump(mode="json")
    return Event(type=line_event_type(kind), source=SOURCE, tenant=row.tenant, subject=row.id, data=data)
