"""The shared service-to-service client against a real local HTTP server (uvicorn on a free port).

httpx.MockTransport stands in only for an upstream that deliberately fails (503 then 200, 503
for good); a refused connection is a real closed port.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import PlainTextResponse

from tarifa_common import auth
from tarifa_common.broker import free_port
from tarifa_common.service_client import ServiceClient, ServiceUnavailable
from tarifa_common.testing import eventually

SECRET = "the-secret-both-services-share-0000000000"


@dataclass
class Upstream:
    url: str
    requests: list[str]


def _app(requests: list[str]) -> FastAPI:
    app = FastAPI()

    def principal(authorization: str | None) -> auth.Principal:
        try:
            return auth.verify((authorization or "").removeprefix("Bearer "), SECRET)
        except Exception as error:
            raise HTTPException(401, "bad token") from error

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/whoami")
    async def whoami(until: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        requests.append("GET /v1/whoami")
        who = principal(authorization)
        return {"tenant": who.tenant, "subject": who.subject, "roles": sorted(who.roles), "until": until}

    @app.post("/v1/echo")
    async def echo(body: dict[str, Any], authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        requests.append("POST /v1/echo")
        return {"tenant": principal(authorization).tenant, "body": body}

    @app.get("/v1/text")
    async def text() -> PlainTextResponse:
        requests.append("GET /v1/text")
        return PlainTextResponse("not json at all")

    @app.get("/v1/missing")
    async def missing() -> None:
        requests.append("GET /v1/missing")
        raise HTTPException(404, "no such thing")

    return app


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    requests: list[str] = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_app(requests), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"

    async def ready() -> None:
        assert not task.done(), "the upstream stopped while starting"
        async with httpx.AsyncClient() as client:
            try:
                assert (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.TransportError as error:
                raise AssertionError(f"not listening yet: {error}") from error

    await eventually(ready, timeout=30)
    yield Upstream(url, requests)
    server.should_exit = True
    await task


def _client(url: str, *, secret: str = SECRET, transport: httpx.AsyncBaseTransport | None = None) -> ServiceClient:
    return ServiceClient(
        "the rater", url, secret, caller="collector", attempts=3, wait_seconds=0.01, transport=transport
    )


async def test_a_call_carries_a_service_token_of_the_tenant_and_answers_the_json(upstream: Upstream) -> None:
    client = _client(upstream.url + "/")
    answer = await client.get_json("acme", "/v1/whoami", {"until": "2026-12-01T00:00:00+00:00"})
    assert answer == {
        "tenant": "acme",
        "subject": "collector",
        "roles": [auth.SERVICE],
        "until": "2026-12-01T00:00:00+00:00",
    }
    assert await client.post_json("globex", "/v1/echo", {"record_ids": ["a", "b"]}) == {
        "tenant": "globex",
        "body": {"record_ids": ["a", "b"]},
    }


async def test_a_refused_token_is_not_retried_and_says_both_services_need_the_same_secret(upstream: Upstream) -> None:
    client = _client(upstream.url, secret="another-secret-than-the-upstream-has-0000")
    with pytest.raises(ServiceUnavailable) as refused:
        await client.get_json("acme", "/v1/whoami", {"until": "x"})
    assert refused.value.status == 401
    assert str(refused.value) == (
        "the rater refused the collector's token (HTTP 401): "
        "both services need the same TARIFA_JWT_SECRET and TARIFA_JWT_ISSUER"
    )
    assert upstream.requests == ["GET /v1/whoami"]


async def test_a_404_is_final_and_carries_its_status_and_body(upstream: Upstream) -> None:
    with pytest.raises(ServiceUnavailable) as missing:
        await _client(upstream.url).get_json("acme", "/v1/missing")
    assert (missing.value.service, missing.value.status) == ("the rater", 404)
    assert missing.value.problem.startswith("answered HTTP 404: ") and "no such thing" in missing.value.problem
    assert upstream.requests == ["GET /v1/missing"]


async def test_an_answer_that_is_not_json_is_a_clear_error(upstream: Upstream) -> None:
    with pytest.raises(ServiceUnavailable, match=r"^the rater answered something that is not JSON$"):
        await _client(upstream.url).get_json("acme", "/v1/text")


async def test_a_503_then_a_200_is_retried_and_answers() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(503) if len(seen) == 1 else httpx.Response(200, json={"ok": True})

    client = _client("http://rater.invalid", transport=httpx.MockTransport(answer))
    assert await client.get_json("acme", "/v1/anything") == {"ok": True}
    assert len(seen) == 2 and seen[0] == seen[1]  # one token per call, sent again on the retry


async def test_a_service_busy_on_every_try_names_the_status_and_the_tries() -> None:
    seen: list[httpx.Request] = []

    def busy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(429 if len(seen) == 1 else 503)

    with pytest.raises(ServiceUnavailable) as busy_error:
        await _client("http://rater.invalid", transport=httpx.MockTransport(busy)).get_json("acme", "/v1/x")
    assert str(busy_error.value) == "the rater answered HTTP 503 after 3 tries"
    assert busy_error.value.status == 503 and len(seen) == 3


class _Counting(httpx.AsyncHTTPTransport):
    """A real transport that counts what it tried to send."""

    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.tries += 1
        return await super().handle_async_request(request)


async def test_a_refused_connection_is_retried_then_says_the_service_did_not_answer() -> None:
    closed = free_port()  # nothing listens there
    transport = _Counting()
    with pytest.raises(ServiceUnavailable) as down:
        await _client(f"http://127.0.0.1:{closed}", transport=transport).get_json("acme", "/v1/whoami")
    assert str(down.value).startswith("the rater did not answer: ConnectError: ")
    assert down.value.status is None and transport.tries == 3
