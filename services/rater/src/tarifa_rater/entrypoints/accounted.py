"""`POST /v1/accounted-calls`: which of a list of collected calls the rater holds (rated or unrated).

The collector asks it on start to re-publish exactly what the rater has not accounted for
(the embedded broker forgets its topics on restart). A call counts as accounted once its
`cdr.raw` event was handled: it is then a row of `rater_call`, rated or waiting (unrated).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlmodel import col, select

from tarifa_common import auth
from tarifa_common.http import require
from tarifa_rater.adapters.tables import CallRow
from tarifa_rater.bootstrap import Rater

MAX_IDS = 5000
Asker = Annotated[auth.Principal, require(auth.SERVICE, auth.OPERATOR, auth.VIEWER)]


class AccountedQuery(BaseModel):
    record_ids: list[str] = Field(
        max_length=MAX_IDS,
        examples=[["0f8e4b52-5a39-5c49-9d0c-3a2b7e6f1d20"]],
        description=f"ids of collected calls (their `record_id`, the event id on cdr.raw), at most {MAX_IDS}",
    )


class AccountedAnswer(BaseModel):
    accounted: list[str] = Field(description="the ids the rater holds for the caller's tenant, rated or unrated")


def _rater(request: Request) -> Rater:
    rater: Rater = request.app.state.rater
    return rater


router = APIRouter(tags=["calls"])


@router.post("/accounted-calls", summary="Which of these collected calls the rater has accounted for")
async def accounted_calls(
    body: AccountedQuery, principal: Asker, rater: Annotated[Rater, Depends(_rater)]
) -> AccountedAnswer:
    wanted = list(dict.fromkeys(body.record_ids))
    found: list[str] = []
    async with rater.runtime.units() as uow:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = await uow.session.exec(
                select(CallRow.record_id).where(CallRow.tenant == principal.tenant, col(CallRow.record_id).in_(chunk))
            )
            found += rows.all()
    return AccountedAnswer(accounted=sorted(set(found)))
