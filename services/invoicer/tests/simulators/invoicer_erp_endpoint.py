"""A customer's ERP endpoint that receives our EDI pushes, over real HTTP; it can misbehave on purpose.

It checks the HMAC signature (401 if wrong), answers 503 to the first `fail_first` requests, and
keeps one document per Idempotency-Key, as a well-behaved receiver would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request, Response

from tarifa_common.broker import free_port
from tarifa_invoicer.domain.delivery import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class ErpEndpoint:
    secret: str
    fail_first: int = 0
    requests: int = 0
    received: dict[str, bytes] = field(default_factory=dict)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/edi")
        async def receive(request: Request) -> Response:
            self.requests += 1
            body = await request.body()
            if not verify(self.secret, body, request.headers.get(SIGNATURE_HEADER, "")):
                return Response(status_code=401)
            if self.requests <= self.fail_first:
                return Response(status_code=503)
            self.received.setdefault(request.headers[IDEMPOTENCY_HEADER], body)
            return Response(status_code=202)

        return app


@contextlib.asynccontextmanager
async def running(endpoint: ErpEndpoint) -> AsyncIterator[ErpEndpoint]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(endpoint.app(), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    endpoint.url = f"http://127.0.0.1:{port}/edi"
    try:
        yield endpoint
    finally:
        server.should_exit = True
        await task
