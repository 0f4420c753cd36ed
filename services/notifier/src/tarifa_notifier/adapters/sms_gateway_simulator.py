"""A Twilio-style SMS gateway simulator (no real gateway runs here); it can fail on purpose.

`POST /2010-04-01/Accounts/{account}/Messages.json` with form fields To, From, Body and basic
auth. Switches: `fail_next` answers 503 that many times; `delay_next` sleeps before answering;
`Idempotency-Key` repeated returns the first answer without sending again, like real gateways.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Header, HTTPException, Path, Request


@dataclass
class SentSms:
    sid: str
    to: str
    sender: str
    body: str


@dataclass
class GatewaySimulator:
    account: str = "AC-test"
    token: str = "secret-token"  # noqa: S105 - the simulator's own test credential
    fail_next: int = 0
    delay_next: float = 0.0
    sent: list[SentSms] = field(default_factory=list)
    by_key: dict[str, SentSms] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI(title="SMS gateway simulator")

        @app.post("/2010-04-01/Accounts/{account}/Messages.json", status_code=201)
        async def send(
            request: Request,
            account: str = Path(),
            authorization: str = Header(default=""),
            idempotency_key: str | None = Header(default=None),
        ) -> dict[str, str]:
            # The form is read with the standard library's urlencoded parser (python-multipart is not installed).
            form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
            to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
            expected = "Basic " + base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
            if account != self.account or authorization != expected:
                raise HTTPException(401, "bad credentials")
            if self.delay_next:
                delay, self.delay_next = self.delay_next, 0.0
                await asyncio.sleep(delay)
            if self.fail_next > 0:
                self.fail_next -= 1
                raise HTTPException(503, "simulated outage")
            if idempotency_key and idempotency_key in self.by_key:
                return {"sid": self.by_key[idempotency_key].sid, "status": "queued"}
            sms = SentSms(f"SM{uuid.uuid4().hex}", to, sender, body)
            self.sent.append(sms)
            if idempotency_key:
                self.by_key[idempotency_key] = sms
            return {"sid": sms.sid, "status": "queued"}

        return app
