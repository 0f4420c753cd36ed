"""Calling another Tarifa service as the `service` role of a tenant: one token per call, retries, one error.

Each call mints a short-lived token for the tenant (`auth.mint`, role `service`), sends it with
httpx and retries with tenacity what may pass by itself: no connection (a transport error), a
5xx or a 429. Any other answer that is not 2xx is final. Whatever goes wrong ends as one
`ServiceUnavailable` that names the service and says what happened.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential

from tarifa_common import auth

log = logging.getLogger(__name__)
TOKEN_TTL = timedelta(minutes=5)


class ServiceUnavailable(Exception):
    """Another service gave no usable answer: `str()` is `"{service} {problem}"`, `status` its HTTP status if any."""

    def __init__(self, service: str, problem: str, *, status: int | None = None) -> None:
        super().__init__(f"{service} {problem}")
        self.service, self.problem, self.status = service, problem, status


class _Busy(Exception):
    """A 5xx or a 429: the service is there but cannot answer now; worth another try."""

    def __init__(self, answer: httpx.Response) -> None:
        super().__init__(f"HTTP {answer.status_code}")
        self.answer = answer


class ServiceClient:
    """`{url}{path}` of one service (`service` names it in errors), called by `caller` as a tenant's `service` role."""

    def __init__(
        self,
        service: str,
        url: str,
        jwt_secret: str,
        *,
        caller: str,
        issuer: str = "tarifa",
        timeout: float = 10.0,
        attempts: int = 3,
        wait_seconds: float = 0.2,
        max_wait_seconds: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service, self.url, self.caller = service, url.rstrip("/"), caller
        self._secret, self._issuer, self._timeout, self._transport = jwt_secret, issuer, timeout, transport
        self.attempts, self._wait, self._max_wait = attempts, wait_seconds, max_wait_seconds

    async def get_json(self, tenant: str, path: str, params: dict[str, str] | None = None) -> Any:
        return _json(self.service, await self.request("GET", tenant, path, params=params))

    async def post_json(self, tenant: str, path: str, body: Any) -> Any:
        return _json(self.service, await self.request("POST", tenant, path, json=body))

    async def request(
        self, method: str, tenant: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> httpx.Response:
        """The service's 2xx answer; `ServiceUnavailable` for anything else, after retrying what may pass."""
        token = auth.mint(
            self._secret, subject=self.caller, tenant=tenant, roles=[auth.SERVICE], issuer=self._issuer, ttl=TOKEN_TTL
        )
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{self.url}{path}"

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s %s %s failed (attempt %d), retrying: %s", self.service, method, url, state.attempt_number, error
            )

        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=wait_exponential(multiplier=self._wait, max=self._max_wait),
                    retry=retry_if_exception_type((httpx.TransportError, _Busy)),
                    before_sleep=before_sleep,
                    reraise=True,
                ):
                    with attempt:
                        answer = await client.request(method, url, params=params, json=json, headers=headers)
                        if answer.status_code >= 500 or answer.status_code == 429:
                            raise _Busy(answer)
        except httpx.HTTPError as error:
            raise ServiceUnavailable(
                self.service, f"did not answer: {type(error).__name__}: {str(error) or 'no answer'}"
            ) from error
        except _Busy as error:
            status = error.answer.status_code
            raise ServiceUnavailable(
                self.service, f"answered HTTP {status} after {self.attempts} tries", status=status
            ) from error
        if answer.status_code in (401, 403):
            raise ServiceUnavailable(
                self.service,
                f"refused the {self.caller}'s token (HTTP {answer.status_code}): "
                "both services need the same TARIFA_JWT_SECRET and TARIFA_JWT_ISSUER",
                status=answer.status_code,
            )
        if not 200 <= answer.status_code < 300:
            raise ServiceUnavailable(
                self.service, f"answered HTTP {answer.status_code}: {answer.text[:200]}", status=answer.status_code
            )
        return answer


def _json(service: str, answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError as error:
        raise ServiceUnavailable(service, "answered something that is not JSON", status=answer.status_code) from error
