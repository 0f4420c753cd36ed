"""E-mail over STARTTLS and implicit TLS with authentication, against a real aiosmtpd server and a test CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tarifa_common.broker import free_port
from tarifa_notifier.adapters.channels import DeliveryFailed, OutgoingMessage, SmtpConfig, SmtpEmailSender

MESSAGE = OutgoingMessage("42", "ops@hotel.test", "Rating stopped", "No call rated for 5 minutes.\n")


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"tarifa", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[tuple[ssl.SSLContext, str]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    yield context, str(bundle)


def start(box: list[bytes], **options: Any) -> Controller:
    class Box:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
            box.append(envelope.content)
            return "250 OK"

    controller = Controller(
        Box(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_required=True, **options
    )
    controller.start()
    return controller


async def test_starttls_with_login_delivers_over_a_verified_certificate(authority: tuple[ssl.SSLContext, str]) -> None:
    context, bundle = authority
    box: list[bytes] = []
    server = start(box, tls_context=context, require_starttls=True)
    try:
        config = SmtpConfig("127.0.0.1", server.port, "alerts@tarifa.test", "starttls", "tarifa", "s3cret", bundle)
        assert await SmtpEmailSender(config).send(MESSAGE) == "<tarifa-notification-42@tarifa.test>"
        assert len(box) == 1 and b"Subject: Rating stopped" in box[0]
        wrong = SmtpConfig("127.0.0.1", server.port, "alerts@tarifa.test", "starttls", "tarifa", "nope", bundle, 3)
        with pytest.raises(DeliveryFailed, match=r"SMTP 127\.0\.0\.1"):
            await SmtpEmailSender(wrong).send(MESSAGE)
        plain = SmtpConfig("127.0.0.1", server.port, "alerts@tarifa.test", "none", "tarifa", "s3cret", None, 3)
        with pytest.raises(DeliveryFailed):
            await SmtpEmailSender(plain).send(MESSAGE)  # the server demands STARTTLS before AUTH
        assert len(box) == 1
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_with_login_delivers(authority: tuple[ssl.SSLContext, str]) -> None:
    context, bundle = authority
    box: list[bytes] = []
    # aiosmtpd only sees STARTTLS as "TLS" when deciding to offer AUTH; here the whole session is TLS.
    server = start(box, ssl_context=context, auth_require_tls=False)
    try:
        config = SmtpConfig("127.0.0.1", server.port, "alerts@tarifa.test", "tls", "tarifa", "s3cret", bundle)
        await SmtpEmailSender(config).send(MESSAGE)
        assert len(box) == 1
    finally:
        server.stop()
