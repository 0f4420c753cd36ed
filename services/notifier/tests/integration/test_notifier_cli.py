"""`tarifa notifier test-email` checks the SMTP settings against a real server and says what to fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tarifa_notifier.entrypoints.cli import commands


def test_test_email_reaches_the_configured_server(smtp_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TARIFA_NOTIFIER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TARIFA_NOTIFIER_SMTP_PORT", str(smtp_server.port))
    result = CliRunner().invoke(commands(), ["test-email", "ops@hotel.test"])
    assert result.exit_code == 0, result.output
    assert [(m.to, m.subject) for m in smtp_server.box.messages] == [(["ops@hotel.test"], "Tarifa notifier test")]


def test_test_email_without_settings_says_which_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARIFA_NOTIFIER_SMTP_HOST", raising=False)
    result = CliRunner().invoke(commands(), ["test-email", "ops@hotel.test"])
    assert result.exit_code == 2 and "TARIFA_NOTIFIER_SMTP_HOST" in result.output
