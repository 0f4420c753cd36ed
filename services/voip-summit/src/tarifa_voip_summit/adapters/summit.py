"""The Summit API client: httpx with timeouts, tenacity retries, and creates that never duplicate a line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from tarifa_common.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0


class SummitUnavailable(Unavailable):
    """Summit did not answer usefully after every retry (timeouts, 5xx, 429)."""

    code = "summit_unavailable"


class SummitRefused(InvalidInput):
    """Summit answered with a 4xx: retrying will not help; the message is Summit's."""

    code = "summit_refused"

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        super().__init__(field, problem)
        self.status = status


@dataclass(frozen=True, slots=True)
class SummitAddress:
    base_url: str
    username: str
    password: str


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _wait(fallback: Any) -> Any:
    """Honour a 429's Retry-After (capped), else exponential backoff with jitter."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        return float(fallback(state))

    return wait


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class SummitClient:
    """One Summit platform. Every call retries connection errors, timeouts, 5xx and 429."""

    def __init__(
        self,
        address: SummitAddress,
        *,
        timeout_seconds: float = 5.0,
        attempts: int = 5,
        backoff_seconds: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=address.base_url.rstrip("/") + API_PREFIX,
            auth=(address.username, address.password),
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
            transport=transport,
        )
        self._attempts = attempts
        self._backoff = backoff_seconds

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SummitClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=_wait(wait_exponential_jitter(multiplier=self._backoff, max=5.0, jitter=self._backoff)),
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        response = await self._http.request(method, path, **kwargs)
                    except (httpx.TimeoutException, httpx.TransportError) as error:
                        raise _Retryable(f"{method} {path}: {type(error).__name__}: {error}") from error
                    if response.status_code in RETRIED_STATUSES:
                        raise _Retryable(
                            f"{method} {path}: HTTP {response.status_code} {response.text[:200]}",
                            _retry_after(response) if response.status_code == 429 else None,
                        )
                    if response.status_code >= 400:
                        raise SummitRefused(
                            path,
                            f"Summit refused {method}: HTTP {response.status_code} {response.text[:300]}",
                            response.status_code,
                        )
                    return response
        except _Retryable as error:
            raise SummitUnavailable(f"Summit unavailable after {self._attempts} attempts: {error}") from error
        raise AssertionError("unreachable")  # pragma: no cover

    async def fetch(self, resource: str) -> Any:
        """A catalogue list: partitions, categories, licences, plans, cost-centres, terminals, ports."""
        return (await self._request("GET", f"/{resource}")).json()

    async def partition_categories(self, code: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await self._request("GET", f"/partitions/{code}/categories")).json()
        return data

    async def create_terminal(self, body: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a terminal once: look it up by our line id first, and send an idempotency key.

        The look-up covers a Summit that ignores the key: if an earlier attempt was applied but its
        answer lost, the terminal is found and returned instead of created again.
        """
        found = (await self._request("GET", "/terminals", params={"external_id": body["external_id"]})).json()
        if found:
            existing: dict[str, Any] = found[0]
            return existing
        try:
            created: dict[str, Any] = (
                await self._request("POST", "/terminals", json=body, headers={"Idempotency-Key": idempotency_key})
            ).json()
            return created
        except SummitRefused as refused:
            if refused.status != 409:
                raise
            # A 409 after a lost answer: the terminal exists; the look-up tells us which.
            again = (await self._request("GET", "/terminals", params={"external_id": body["external_id"]})).json()
            if again:
                result: dict[str, Any] = again[0]
                return result
            raise

    async def update_terminal(self, terminal_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self._request("PATCH", f"/terminals/{terminal_id}", json=changes)).json()
        return data

    async def delete_terminal(self, terminal_id: str) -> None:
        await self._request("DELETE", f"/terminals/{terminal_id}")

    async def put_did(self, terminal_id: str, number: str, priority: int, port: int | None) -> dict[str, Any]:
        body = {"number": number, "priority": priority, "port": port}
        data: dict[str, Any] = (await self._request("PUT", f"/terminals/{terminal_id}/dids/{number}", json=body)).json()
        return data

    async def delete_did(self, terminal_id: str, number: str) -> None:
        await self._request("DELETE", f"/terminals/{terminal_id}/dids/{number}")


class SummitClients:
    """One long-lived client per Summit address: building an httpx client loads the TLS trust store
    (about 0.1 s of blocked event loop), so clients are reused, and closed when the service stops."""

    def __init__(self, factory: Callable[[SummitAddress], SummitClient]) -> None:
        self._factory = factory
        self._clients: dict[SummitAddress, SummitClient] = {}

    def __call__(self, address: SummitAddress) -> SummitClient:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = self._factory(address)
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
