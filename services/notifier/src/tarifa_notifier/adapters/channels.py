"""Network clients that deliver one message: e-mail over SMTP, SMS over SMPP or a Twilio-style HTTP gateway."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx
import smpplib.client  # type: ignore[import-untyped]  # smpplib ships no type information
import smpplib.consts  # type: ignore[import-untyped]
import smpplib.exceptions  # type: ignore[import-untyped]
import smpplib.gsm  # type: ignore[import-untyped]

from tarifa_notifier.domain.reports import Attachment


class DeliveryFailed(Exception):
    """The provider refused or could not be reached; the message may be retried."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One log row to send; `key` is stable across retries and restarts (the log row's id)."""

    key: str
    address: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...] = ()  # e-mail only (a report's file)


class Sender(Protocol):
    name: str

    async def send(self, message: OutgoingMessage) -> str:
        """Deliver; return the provider's reference. Raise DeliveryFailed on a refusal."""
        ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    security: str = "none"  # none, starttls, tls
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # a private CA's bundle; the system's trust store otherwise
    timeout: float = 10.0


class SmtpEmailSender:
    """E-mail through aiosmtplib; the Message-ID derives from the log row, so a re-send is recognisable."""

    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: OutgoingMessage) -> str:
        email = EmailMessage()
        email["From"] = self.config.sender
        email["To"] = message.address
        email["Subject"] = message.subject
        message_id = f"<tarifa-notification-{message.key}@{self.config.sender.rsplit('@', 1)[-1]}>"
        email["Message-ID"] = message_id
        email.set_content(message.body)
        for attachment in message.attachments:
            maintype, _, subtype = attachment.media_type.partition("/")
            email.add_attachment(
                attachment.content, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
            )
        try:
            await aiosmtplib.send(
                email,
                hostname=self.config.host,
                port=self.config.port,
                username=self.config.username or None,
                password=self.config.password or None,
                use_tls=self.config.security == "tls",
                start_tls=self.config.security == "starttls",
                cert_bundle=self.config.ca_file or None,
                timeout=self.config.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"SMTP {self.config.host}:{self.config.port}: {error}") from error
        return message_id


@dataclass(frozen=True, slots=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    source_addr: str = "Tarifa"
    timeout: float = 10.0


class SmppSmsSender:
    """SMS as an ESME over SMPP 3.4 with smpplib (blocking, so each send runs in a worker thread)."""

    name = "smpp"

    def __init__(self, config: SmppConfig) -> None:
        self.config = config

    async def send(self, message: OutgoingMessage) -> str:
        return await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: OutgoingMessage) -> str:
        config = self.config
        client = smpplib.client.Client(config.host, config.port, timeout=config.timeout, allow_unknown_opt_params=True)
        references: list[str] = []
        client.set_message_sent_handler(lambda pdu: references.append(str(pdu.message_id)))
        try:
            client.connect()
            client.bind_transmitter(system_id=config.system_id, password=config.password)
            parts, coding, esm_class = smpplib.gsm.make_parts(message.body)
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                    source_addr=config.source_addr,
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    destination_addr=message.address.lstrip("+"),
                    short_message=part,
                    data_coding=coding,
                    esm_class=esm_class,
                    registered_delivery=False,
                )
                client.read_once()
        except (OSError, smpplib.exceptions.PDUError, smpplib.exceptions.ConnectionError) as error:
            raise DeliveryFailed(f"SMPP {config.host}:{config.port}: {type(error).__name__}: {error}") from error
        finally:
            # The message is accepted once submit_sm_resp is read: a failing unbind must not re-send it.
            with contextlib.suppress(Exception):
                client.unbind()
            with contextlib.suppress(Exception):  # closing a socket that may already be gone
                client.disconnect()
        return ",".join(references)


@dataclass(frozen=True, slots=True)
class HttpSmsConfig:
    base_url: str
    account: str
    token: str
    sender: str = "Tarifa"
    timeout: float = 10.0


class HttpSmsSender:
    """SMS through a Twilio-style REST gateway; `Idempotency-Key` lets the gateway drop a re-send."""

    name = "http"

    def __init__(self, config: HttpSmsConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport

    async def send(self, message: OutgoingMessage) -> str:
        url = f"{self.config.base_url.rstrip('/')}/2010-04-01/Accounts/{self.config.account}/Messages.json"
        try:
            async with httpx.AsyncClient(timeout=self.config.timeout, transport=self._transport) as client:
                answer = await client.post(
                    url,
                    data={"To": message.address, "From": self.config.sender, "Body": message.body},
                    auth=(self.config.account, self.config.token),
                    headers={"Idempotency-Key": f"tarifa-notification-{message.key}"},
                )
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"SMS gateway {url}: {type(error).__name__}: {error}") from error
        if answer.status_code >= 300:
            raise DeliveryFailed(f"SMS gateway answered {answer.status_code}: {answer.text[:200]}")
        return str(answer.json().get("sid", ""))
