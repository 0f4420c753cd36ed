"""A stateful simulator of the Summit Networks provisioning API, the contract we speak, and its faults.

Summit publishes no API specification, so this module *is* the contract: its OpenAPI document
is exported to `services/voip-summit/summit-api.yaml` (`tarifa voip-summit summit-spec`).
Resources are named after the platform's concepts: partitions, categories, licences, plans,
cost centres, terminals (with their credential), DIDs and ports.

It can misbehave on purpose (`PUT /_faults`): added latency, answers that never come
(timeouts), 5xx, 429 with Retry-After, and "lost answers" where the request is applied but the
client sees a 502, so a retry is a duplicate. `POST /terminals` honours an `Idempotency-Key`.
Run it alone with `tarifa voip-summit simulator --port N`.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

API_PREFIX = "/api/v1"


class Faults(BaseModel):
    """Misbehaviour to inject; each `*_next` counter applies to the next N API requests."""

    latency_ms: int = Field(default=0, ge=0, examples=[50])
    timeout_next: int = Field(default=0, ge=0, description="hang this many requests (the client times out)")
    fail_next: int = Field(default=0, ge=0, description="answer 503 to this many requests, doing nothing")
    throttle_next: int = Field(default=0, ge=0, description="answer 429 with Retry-After to this many requests")
    retry_after_seconds: int = Field(default=1, ge=0)
    lose_answer_next: int = Field(default=0, ge=0, description="apply this many requests, then answer 502")
    ignore_idempotency_key: bool = Field(default=False, description="behave like a platform without idempotency")
    hang_seconds: float = Field(default=30.0, gt=0)


class CatalogueItem(BaseModel):
    code: str = Field(examples=["RES"])
    description: str = Field(examples=["Residencial"])


class PartitionOut(BaseModel):
    code: str = Field(examples=["SP-CAPITAL"])
    description: str = Field(examples=["São Paulo capital"])
    categories: list[str] = Field(examples=[["LIVRE", "BLOQ", "PARC", "CANC"]])


class TerminalIn(BaseModel):
    """What a SIP line is on Summit: a terminal (or trunk) and its configuration."""

    external_id: str = Field(description="the client's line id; the look-up key that prevents duplicates")
    bid_type: str = Field(examples=["terminal"])
    number: str = Field(examples=["551130001234"])
    partition: str = Field(examples=["SP-CAPITAL"])
    category: str = Field(examples=["LIVRE"])
    plan: str = Field(examples=["FIXO-100"])
    licence: str | None = Field(default=None, examples=["BASIC"])
    cost_centre: str = Field(examples=["Default"])
    call_limit: int = Field(ge=1, examples=[2])
    due_day: int = Field(ge=1, le=25, examples=[10])
    account_code: str | None = Field(default=None, examples=["123456"])
    extension: str | None = Field(default=None, examples=["2001"])
    description: str | None = None
    credit_limit: str | None = Field(default=None, examples=["150.00"])
    active: bool = True


class TerminalPatch(BaseModel):
    category: str | None = None
    plan: str | None = None
    licence: str | None = None
    cost_centre: str | None = None
    call_limit: int | None = Field(default=None, ge=1)
    due_day: int | None = Field(default=None, ge=1, le=25)
    credit_limit: str | None = None
    description: str | None = None
    active: bool | None = None


class Credential(BaseModel):
    username: str = Field(examples=["t-8f3a2c"])
    domain: str = Field(examples=["sip.summit.example"])


class DidIn(BaseModel):
    number: str = Field(examples=["551130001299"])
    priority: int = Field(default=1, ge=0)
    port: int | None = Field(default=None, ge=1, description="1 = the main line; other = a new port; null = no calls")


class DidOut(DidIn):
    port_id: str | None = None


class TerminalOut(TerminalIn):
    terminal_id: str = Field(examples=["T-000001"])
    credential: Credential
    dids: list[DidOut] = Field(default_factory=list)


class PortOut(BaseModel):
    port_id: str
    terminal_id: str
    number: str
    port: int


@dataclass
class SummitState:
    """Everything the simulated platform holds; one instance is one operator's Summit."""

    partitions: dict[str, PartitionOut] = field(default_factory=dict)
    licences: dict[str, CatalogueItem] = field(default_factory=dict)
    plans: dict[str, CatalogueItem] = field(default_factory=dict)
    categories: dict[str, CatalogueItem] = field(default_factory=dict)
    cost_centres: list[str] = field(default_factory=lambda: ["Default"])
    terminals: dict[str, TerminalOut] = field(default_factory=dict)
    ports: dict[str, PortOut] = field(default_factory=dict)
    idempotency: dict[str, TerminalOut] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    creates_applied: int = 0

    def seed_demo(self) -> None:
        for code, description in (("LIVRE", "Livre"), ("BLOQ", "Bloqueio"), ("PARC", "Parcial"), ("CANC", "Cancelado")):
            self.categories[code] = CatalogueItem(code=code, description=description)
        self.categories["LOCAL"] = CatalogueItem(code="LOCAL", description="Somente local")
        self.partitions["SP-CAPITAL"] = PartitionOut(
            code="SP-CAPITAL", description="São Paulo capital", categories=["LIVRE", "BLOQ", "PARC", "CANC"]
        )
        self.partitions["RJ"] = PartitionOut(code="RJ", description="Rio de Janeiro", categories=["LIVRE", "LOCAL"])
        self.licences["BASIC"] = CatalogueItem(code="BASIC", description="Básica residencial")
        self.licences["TRUNK"] = CatalogueItem(code="TRUNK", description="Tronco SIP")
        self.plans["FIXO-100"] = CatalogueItem(code="FIXO-100", description="Fixo 100 minutos")
        self.plans["FIXO-ILIM"] = CatalogueItem(code="FIXO-ILIM", description="Fixo ilimitado local")


def create_simulator(
    state: SummitState | None = None, *, username: str | None = None, password: str | None = None
) -> FastAPI:
    """The simulator app; with `username`/`password` it demands HTTP Basic authentication like Summit."""
    summit = state or SummitState()
    if state is None:
        summit.seed_demo()
    app = FastAPI(
        title="Summit Networks provisioning API (as Tarifa speaks it)",
        version="1.0.0",
        description=__doc__ or "",
    )
    app.state.summit = summit

    @app.middleware("http")
    async def misbehave(request: Request, call_next: Any) -> Response:
        if not request.url.path.startswith(API_PREFIX):
            return await call_next(request)  # type: ignore[no-any-return]
        summit.requests += 1
        faults = summit.faults
        if username is not None and not _authorised(request, username, password or ""):
            return JSONResponse({"error": "bad credentials"}, status_code=401)
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.timeout_next:
            faults.timeout_next -= 1
            await asyncio.sleep(faults.hang_seconds)
        if faults.fail_next:
            faults.fail_next -= 1
            return JSONResponse({"error": "service unavailable (injected)"}, status_code=503)
        if faults.throttle_next:
            faults.throttle_next -= 1
            return JSONResponse(
                {"error": "too many requests (injected)"},
                status_code=429,
                headers={"Retry-After": str(faults.retry_after_seconds)},
            )
        response: Response = await call_next(request)
        if faults.lose_answer_next and request.method != "GET":
            faults.lose_answer_next -= 1
            return JSONResponse({"error": "bad gateway: the answer was lost (injected)"}, status_code=502)
        return response

    control = APIRouter(prefix="/_control", tags=["fault injection"])

    @control.put("/faults", summary="Set the misbehaviour to inject")
    async def set_faults(faults: Faults) -> Faults:
        summit.faults = faults
        return faults

    @control.get("/stats", summary="Requests seen and terminals held")
    async def stats() -> dict[str, int]:
        return {"requests": summit.requests, "terminals": len(summit.terminals), "creates": summit.creates_applied}

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/partitions", tags=["catalogue"])
    async def partitions() -> list[PartitionOut]:
        return list(summit.partitions.values())

    @api.get("/partitions/{code}/categories", tags=["catalogue"])
    async def partition_categories(code: str) -> list[CatalogueItem]:
        partition = summit.partitions.get(code)
        if partition is None:
            raise HTTPException(404, f"no partition {code}")
        return [summit.categories[c] for c in partition.categories if c in summit.categories]

    @api.get("/categories", tags=["catalogue"])
    async def categories() -> list[CatalogueItem]:
        return list(summit.categories.values())

    @api.get("/licences", tags=["catalogue"])
    async def licences() -> list[CatalogueItem]:
        return list(summit.licences.values())

    @api.get("/plans", tags=["catalogue"])
    async def plans() -> list[CatalogueItem]:
        return list(summit.plans.values())

    @api.get("/cost-centres", tags=["catalogue"])
    async def cost_centres() -> list[str]:
        return summit.cost_centres

    @api.get("/terminals", tags=["terminals"])
    async def list_terminals(external_id: str | None = None) -> list[TerminalOut]:
        return [t for t in summit.terminals.values() if external_id is None or t.external_id == external_id]

    @api.post("/terminals", status_code=201, tags=["terminals"])
    async def create_terminal(body: TerminalIn, idempotency_key: Annotated[str | None, Header()] = None) -> TerminalOut:
        if idempotency_key and not summit.faults.ignore_idempotency_key and idempotency_key in summit.idempotency:
            return summit.idempotency[idempotency_key]
        _check_catalogue(summit, body.partition, body.category)
        if any(t.number == body.number for t in summit.terminals.values()):
            raise HTTPException(409, f"number {body.number} already has a terminal")
        terminal_id = f"T-{len(summit.terminals) + 1:06d}-{uuid.uuid4().hex[:4]}"
        terminal = TerminalOut(
            **body.model_dump(),
            terminal_id=terminal_id,
            credential=Credential(username=f"sip{body.number}", domain="sip.summit.example"),
        )
        summit.terminals[terminal_id] = terminal
        summit.creates_applied += 1
        if idempotency_key:
            summit.idempotency[idempotency_key] = terminal
        return terminal

    @api.get("/terminals/{terminal_id}", tags=["terminals"])
    async def get_terminal(terminal_id: str) -> TerminalOut:
        return _terminal(summit, terminal_id)

    @api.get("/terminals/{terminal_id}/credential", tags=["terminals"], summary="The SIP credential of a terminal")
    async def get_credential(terminal_id: str) -> Credential:
        return _terminal(summit, terminal_id).credential

    @api.patch("/terminals/{terminal_id}", tags=["terminals"])
    async def update_terminal(terminal_id: str, body: TerminalPatch) -> TerminalOut:
        terminal = _terminal(summit, terminal_id)
        changes = body.model_dump(exclude_none=True)
        if "category" in changes:
            _check_catalogue(summit, terminal.partition, changes["category"])
        updated = terminal.model_copy(update=changes)
        summit.terminals[terminal_id] = updated
        return updated

    @api.delete("/terminals/{terminal_id}", status_code=204, tags=["terminals"])
    async def delete_terminal(terminal_id: str) -> Response:
        if terminal_id in summit.terminals:  # deleting twice is not an error: a retried cancel succeeds
            del summit.terminals[terminal_id]
            for port_id in [p for p, port in summit.ports.items() if port.terminal_id == terminal_id]:
                del summit.ports[port_id]
        return Response(status_code=204)

    @api.put("/terminals/{terminal_id}/dids/{number}", tags=["DIDs"], summary="Add or replace a DID (idempotent)")
    async def put_did(terminal_id: str, number: str, body: DidIn) -> DidOut:
        terminal = _terminal(summit, terminal_id)
        port_id = None
        if body.port is not None and body.port != 1:
            port_id = f"P-{terminal_id}-{body.port}"
            summit.ports[port_id] = PortOut(port_id=port_id, terminal_id=terminal_id, number=number, port=body.port)
        did = DidOut(number=number, priority=body.priority, port=body.port, port_id=port_id)
        terminal.dids = [d for d in terminal.dids if d.number != number] + [did]
        return did

    @api.delete("/terminals/{terminal_id}/dids/{number}", status_code=204, tags=["DIDs"])
    async def delete_did(terminal_id: str, number: str) -> Response:
        terminal = _terminal(summit, terminal_id)
        terminal.dids = [d for d in terminal.dids if d.number != number]
        for port_id in [p for p, port in summit.ports.items() if port.number == number]:
            del summit.ports[port_id]
        return Response(status_code=204)

    @api.get("/ports", tags=["DIDs"])
    async def ports() -> list[PortOut]:
        return list(summit.ports.values())

    app.include_router(api)
    app.include_router(control)
    return app


def _authorised(request: Request, username: str, password: str) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    return secrets.compare_digest(user, username) and secrets.compare_digest(given, password)


def _terminal(summit: SummitState, terminal_id: str) -> TerminalOut:
    terminal = summit.terminals.get(terminal_id)
    if terminal is None:
        raise HTTPException(404, f"no terminal {terminal_id}")
    return terminal


def _check_catalogue(summit: SummitState, partition_code: str, category: str) -> None:
    # A partition Summit has not been told about is accepted with any category: operators in local
    # catalogue mode register partitions here that the simulator's demo seed does not have.
    partition = summit.partitions.get(partition_code)
    if partition is not None and category not in partition.categories:
        raise HTTPException(422, f"category {category} is not allowed in partition {partition_code}")
