"""The services' HTTP APIs as the demo calls them: one client per service, errors that say what failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx


class DemoStepFailed(Exception):
    """A call to a service answered something the demo cannot go on with."""


T = TypeVar("T")


class NotYet(Exception):
    """What a poll saw while its condition was not true yet."""


async def until(check: Callable[[], Awaitable[T]], *, what: str, timeout: float, interval: float = 1.0) -> T:
    """Poll `check` until it stops raising NotYet, or fail after `timeout` seconds saying what it last saw."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except NotYet as seen:
            if time.monotonic() > deadline:
                raise DemoStepFailed(f"{what}: not after {timeout:.0f}s ({seen})") from None
        await asyncio.sleep(interval)


class ServiceApi:
    """One service's `/v1` API with a bearer token; a non-2xx answer raises with the service's own words."""

    def __init__(self, name: str, base_url: str, token: str) -> None:
        self.name = name
        self.base_url = base_url
        self.client = httpx.AsyncClient(
            base_url=f"{base_url}/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    async def call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        answer = await self.client.request(method, path, **kwargs)
        if answer.is_success or answer.status_code in ok:
            return answer
        raise DemoStepFailed(f"{self.name}: {method} /v1{path} answered {answer.status_code}: {answer.text[:500]}")

    async def get(self, path: str, **kwargs: Any) -> Any:
        return (await self.call("GET", path, **kwargs)).json()

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (await self.call("POST", path, json=body, **kwargs)).json()

    async def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (await self.call("PUT", path, json=body, **kwargs)).json()

    async def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (await self.call("PATCH", path, json=body, **kwargs)).json()

    async def download(self, path: str) -> bytes:
        return (await self.call("GET", path)).content

    async def close(self) -> None:
        await self.client.aclose()


class Apis:
    """The five services of the platform, by role."""

    def __init__(self, urls: dict[str, str], token: str) -> None:
        self.collector = ServiceApi("collector", urls["collector"], token)
        self.rater = ServiceApi("rater", urls["rater"], token)
        self.voip = ServiceApi("voip-summit", urls["voip-summit"], token)
        self.invoicer = ServiceApi("invoicer", urls["invoicer"], token)
        self.notifier = ServiceApi("notifier", urls["notifier"], token)

    async def close(self) -> None:
        for api in (self.collector, self.rater, self.voip, self.invoicer, self.notifier):
            await api.close()
