"""Event handlers: contract statuses move lines between their partition's categories; credit breaches block."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from tarifa_common.contracts import ContractStatusChanged, CreditLimitExceeded
from tarifa_common.events import Event
from tarifa_voip_summit.domain.model import (
    CategoryChange,
    Partition,
    category_for_contract_status,
    category_for_credit_breach,
)

log = logging.getLogger(__name__)


class LineStore(Protocol):
    """What the blocking handlers need from storage (the SQL store implements it)."""

    async def lines_of_contract(self, tenant: str, contract_id: str) -> Sequence[str]: ...

    async def partition_of_line(self, tenant: str, line_id: str) -> Partition | None: ...

    async def apply_category(self, tenant: str, line_id: str, change: CategoryChange, caused_by: str) -> bool: ...

    async def deactivate(self, tenant: str, line_id: str, reason: str, caused_by: str) -> bool: ...


async def apply_contract_status(event: Event, store: LineStore) -> int:
    """Move every line of the contract to the category its partition names for the new status.

    Returns how many lines changed. Lines of partitions with blocking disabled stay as they are.
    """
    status = ContractStatusChanged.model_validate(event.data)
    changed = 0
    for line_id in await store.lines_of_contract(event.tenant, status.contract_id):
        partition = await store.partition_of_line(event.tenant, line_id)
        if partition is None:
            log.warning("line %s has a partition unknown here; left unchanged", line_id)
            continue
        change = category_for_contract_status(partition, status.status)
        if change is not None and await store.apply_category(event.tenant, line_id, change, event.id):
            changed += 1
    log.info(
        "contract %s is %s: %d line(s) changed",
        status.contract_id,
        status.status.value,
        changed,
        extra={"event_id": event.id, "tenant": event.tenant},
    )
    return changed


async def block_line_over_credit(event: Event, store: LineStore) -> bool:
    """A credit-limit breach blocks that one line (block category, or deactivation if its partition has none)."""
    breach = CreditLimitExceeded.model_validate(event.data)
    partition = await store.partition_of_line(event.tenant, breach.line_id)
    change = category_for_credit_breach(partition) if partition is not None else None
    reason = f"credit limit {breach.credit_limit} {breach.currency} exceeded: spent {breach.spent}"
    if change is not None:
        return await store.apply_category(
            event.tenant, breach.line_id, CategoryChange(change.category, True, change.kind, reason), event.id
        )
    return await store.deactivate(event.tenant, breach.line_id, reason, event.id)
