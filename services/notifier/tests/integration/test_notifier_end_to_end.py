"""The running service end to end: an alert posted to the API reaches a real SMTP server through the loops."""

from __future__ import annotations

import httpx
import pytest

from tarifa_common import auth
from tarifa_common.broker import EmbeddedBroker
from tarifa_common.testing import eventually
from tarifa_notifier.config import NotifierSettings
from tarifa_notifier.entrypoints.api import create_app

pytestmark = pytest.mark.broker
SECRET = "e" * 48


async def test_a_posted_alert_is_grouped_sent_once_and_its_resolution_too(
    broker: EmbeddedBroker, database_url: str, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    settings = NotifierSettings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        jwt_secret=SECRET,
        group_wait_seconds=0.5,
        group_interval_seconds=0.5,
        flush_tick_seconds=0.2,
        dispatch_tick_seconds=0.2,
        watchdog_tick_seconds=600,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_from="alerts@tarifa.test",
    )
    app = create_app(settings)
    runtime = app.state.runtime
    await runtime.start()
    headers = {"Authorization": f"Bearer {auth.mint(SECRET, subject='ops', tenant='acme', roles=['admin'])}"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier") as client:
            ana = (
                await client.post("/v1/recipients", json={"name": "Ana", "email": "ana@acme.test"}, headers=headers)
            ).json()
            await client.post(
                f"/v1/recipients/{ana['id']}/responsibilities",
                json={"object_kind": "source", "object_id": "pbx-hq"},
                headers=headers,
            )
            alert = {
                "fingerprint": "collector/source-silent/pbx-hq",
                "severity": "important",
                "object": {"kind": "source", "id": "pbx-hq"},
                "summary": "No call records from pbx-hq for 20 minutes",
            }
            for _ in range(5):
                posted = await client.post("/v1/alerts", json=alert, headers=headers)
            assert posted.json()["raised_count"] == 5

            async def told(count: int) -> None:
                assert len(smtp_server.box.messages) == count

            await eventually(lambda: told(1), timeout=20)
            await client.post(f"/v1/alerts/{posted.json()['id']}/resolve", headers=headers)
            await eventually(lambda: told(2), timeout=20)

            async def logged() -> None:  # the outcome is recorded just after the SMTP server has the message
                log = (await client.get("/v1/notifications", headers=headers)).json()
                assert [(n["kind"], n["status"], n["provider"]) for n in log] == [
                    ("alert.resolved", "sent", "smtp"),
                    ("alert.firing", "sent", "smtp"),
                ]

            await eventually(logged, timeout=20)
        assert [m.subject.split(" ")[0] for m in smtp_server.box.messages] == ["[IMPORTANT]", "[RESOLVED]"]
    finally:
        await runtime.stop()
