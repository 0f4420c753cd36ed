"""`tarifa notifier ...`: jobs people run by hand (try the e-mail and SMS settings, run the SMS gateway simulator)."""

from __future__ import annotations

import asyncio

import typer

from tarifa_notifier.adapters.channels import DeliveryFailed, OutgoingMessage
from tarifa_notifier.adapters.sms_gateway_simulator import GatewaySimulator
from tarifa_notifier.bootstrap import senders
from tarifa_notifier.config import NotifierSettings


def commands() -> typer.Typer:
    app = typer.Typer(help="The notifier's hand-run jobs.", no_args_is_help=True)

    @app.command("test-email")
    def test_email(address: str = typer.Argument(help="where to send the test message")) -> None:
        """Send one test e-mail with the TARIFA_NOTIFIER_SMTP_* settings, to check them."""
        email, _ = senders(NotifierSettings())
        if email is None:
            typer.echo("No SMTP server is set: set TARIFA_NOTIFIER_SMTP_HOST (and _PORT, _SECURITY, _USERNAME, ...)")
            raise typer.Exit(2)
        message = OutgoingMessage("test", address, "Tarifa notifier test", "If you read this, e-mail works.\n")
        try:
            reference = asyncio.run(email.send(message))
        except DeliveryFailed as error:
            typer.echo(f"not sent: {error}")
            raise typer.Exit(1) from error
        typer.echo(f"sent to {address} ({reference})")

    @app.command("test-sms")
    def test_sms(
        phone: str = typer.Argument(help="E.164 number, e.g. +5511999990001"),
        provider: str = typer.Option("smpp", help="smpp or http"),
    ) -> None:
        """Send one test SMS with the SMPP or HTTP gateway settings, to check them."""
        _, sms = senders(NotifierSettings())
        sender = sms.get(provider)
        if sender is None:
            typer.echo(
                f"No {provider} SMS provider is set: set TARIFA_NOTIFIER_SMPP_HOST or TARIFA_NOTIFIER_SMS_HTTP_URL"
            )
            raise typer.Exit(2)
        try:
            reference = asyncio.run(sender.send(OutgoingMessage("test", phone, "test", "Tarifa notifier test")))
        except DeliveryFailed as error:
            typer.echo(f"not sent: {error}")
            raise typer.Exit(1) from error
        typer.echo(f"sent to {phone} ({reference})")

    @app.command("sms-gateway-simulator")
    def sms_gateway_simulator(
        port: int = typer.Option(8125, help="port to listen on (loopback)"),
        fail_next: int = typer.Option(0, help="answer 503 to this many requests first"),
    ) -> None:
        """Run the Twilio-style SMS gateway simulator (for demos; it prints what it 'sends')."""
        import uvicorn

        simulator = GatewaySimulator(fail_next=fail_next)
        typer.echo(f"account {simulator.account}, token {simulator.token}, on http://127.0.0.1:{port}")
        uvicorn.run(simulator.app(), host="127.0.0.1", port=port)

    return app
