"""Asking the rater which collected calls it has accounted for, and re-publishing the rest on start.

The contract (docs/collector.md, "Start-up re-publish"): `POST {rater}/v1/accounted-calls`
with `{"record_ids": [...]}` (at most 5000) answers `{"accounted": [...]}`, the ids the rater
holds for the token's tenant, rated or unrated. The collector pages through each source's calls
of the look-back window, asks for each page and re-publishes what is missing: after the
embedded broker restarted (it keeps topics in memory), exactly what the rater never received.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx

from tarifa_collector import handlers
from tarifa_collector.adapters.repository import SqlCollectorStore
from tarifa_common.events import utcnow
from tarifa_common.service_client import ServiceClient
from tarifa_common.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)
PAGE = 1000


class HttpRatingLedger:
    """The rater's answer over HTTP (`ServiceClient`: a short-lived service token per tenant, retries)."""

    def __init__(self, rater: ServiceClient) -> None:
        self.rater = rater

    async def accounted(self, tenant: str, record_ids: Sequence[str]) -> set[str]:
        answer = await self.rater.post_json(tenant, "/v1/accounted-calls", {"record_ids": list(record_ids)})
        return set(answer["accounted"])


async def wait_for_rater(client: httpx.AsyncClient, *, max_wait: float = 600.0) -> bool:
    """Wait until the rater answers `/readyz` (it starts beside us under `tarifa up`); False if it never does."""
    delay, waited = 0.5, 0.0
    while waited < max_wait:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 10.0)
    return False


async def republish_unaccounted(
    units: UnitOfWorkFactory,
    ledger: handlers.RatingLedger,
    sources: list[tuple[str, str]],
    *,
    days: float,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Re-publish every source's calls of the last `days` that the rater has not accounted for.

    Page by page, each page its own transaction, with progress in the log. Returns (checked, re-published).
    """
    now = now or utcnow()
    start, end = now - timedelta(days=days), now + timedelta(days=366)
    checked = published = 0
    for tenant, source_id in sources:
        source_checked = source_published = 0
        after: tuple[datetime, str] | None = None
        while True:
            async with units() as uow:
                count, sent, after = await handlers.republish_unaccounted(
                    uow, SqlCollectorStore(uow.session), ledger, tenant, source_id, start, end, after=after, limit=PAGE
                )
            source_checked += count
            source_published += sent
            if count:
                log.info(
                    "start-up re-publish of %s/%s: %d calls checked, %d the rater lacked, re-published",
                    tenant,
                    source_id,
                    source_checked,
                    source_published,
                )
            if after is None:
                break
        checked += source_checked
        published += source_published
    log.info("start-up re-publish done: %d calls checked, %d re-published", checked, published)
    return checked, published
