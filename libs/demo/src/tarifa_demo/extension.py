"""`tarifa up --demo`: start the sinks and simulators, point the services at them, then tell the story.

Plugged into `tarifa up` through the `tarifa.extensions` entry point (`tarifa_common` never imports
this package). What the demo starts listens on loopback at fixed ports plus `--port-offset`:
the hotel's SMDR link 1080, the silent branch 1081, the Summit simulator 8190, the SMS gateway
sink 8191, the mail sink 8192. What it leaves for the user is under `<data dir>/demo/`.
"""

from __future__ import annotations

from dataclasses import asdict

from rich.markup import escape

from tarifa_collector.fake_ipoffice import FakeIpOffice
from tarifa_common import auth
from tarifa_common.broker import port_is_open
from tarifa_common.service import Platform
from tarifa_demo import scenario
from tarifa_demo.api import Apis
from tarifa_demo.seed import DemoPorts
from tarifa_demo.sinks import MailSink, SmsSink, SummitSink
from tarifa_demo.story import DemoPaths, Story


class Demo:
    """The demo as a `PlatformExtension`."""

    def __init__(self) -> None:
        self.mail: MailSink | None = None
        self.sms: SmsSink | None = None
        self.summit: SummitSink | None = None
        self.pbx = FakeIpOffice()

    async def prepare(self, platform: Platform) -> dict[str, str]:
        ports = DemoPorts.with_offset(platform.port_offset)
        paths = DemoPaths(platform.data_dir / "demo")
        busy = [f"{name} {port}" for name, port in asdict(ports).items() if port_is_open("127.0.0.1", port)]
        if busy:
            raise RuntimeError(f"the demo's ports are taken ({', '.join(busy)}); pass another --port-offset")

        def report(line: str) -> None:
            platform.console.print(f"[magenta]{escape(line)}[/]", highlight=False)

        self.mail = MailSink(paths.mail, ports.smtp, report)
        self.mail.start()
        self.sms = SmsSink(paths.sms, ports.sms, report)
        self.sms.start()
        self.summit = SummitSink(paths.summit_state, ports.summit)
        self.summit.start()
        await self.pbx.listen("127.0.0.1", ports.smdr_hotel)
        platform.console.print(
            f"[green]✓[/] demo sinks: mail 127.0.0.1:{ports.smtp} → {paths.mail}, "
            f"SMS gateway {self.sms.url} → {paths.sms}, Summit simulator {self.summit.url}, "
            f"hotel IP Office SMDR on 127.0.0.1:{ports.smdr_hotel}"
        )
        return {
            "TARIFA_NOTIFIER_SMTP_HOST": "127.0.0.1",
            "TARIFA_NOTIFIER_SMTP_PORT": str(ports.smtp),
            "TARIFA_NOTIFIER_SMTP_FROM": "alertas@tarifa-demo.example",
            "TARIFA_NOTIFIER_SMS_HTTP_URL": self.sms.url,
            "TARIFA_NOTIFIER_SMS_HTTP_ACCOUNT": self.sms.simulator.account,
            "TARIFA_NOTIFIER_SMS_HTTP_TOKEN": self.sms.simulator.token,
            "TARIFA_NOTIFIER_DEFAULT_SMS_PROVIDER": "http",
            # The demo's timers are short so the story fits in a few minutes (the defaults suit production).
            "TARIFA_NOTIFIER_GROUP_WAIT_SECONDS": "3",
            "TARIFA_NOTIFIER_GROUP_INTERVAL_SECONDS": "10",
            "TARIFA_INVOICER_SMTP_HOST": "127.0.0.1",
            "TARIFA_INVOICER_SMTP_PORT": str(ports.smtp),
            "TARIFA_COLLECTOR_WATCHDOG_SECONDS": "5",
            "TARIFA_COLLECTOR_DIRECTORY_POLL_SECONDS": "1",
            "TARIFA_COLLECTOR_DIRECTORY_SETTLE_SECONDS": "1",
            "TARIFA_COLLECTOR_SMDR_BIND_HOST": "127.0.0.1",
        }

    async def run(self, platform: Platform) -> None:
        token = auth.mint(platform.jwt_secret, subject="demo", tenant=scenario.TENANT, roles=["admin"])
        apis = Apis(platform.urls, token)
        ports = DemoPorts.with_offset(platform.port_offset)
        try:
            await Story(
                apis,
                platform.console,
                DemoPaths(platform.data_dir / "demo"),
                ports,
                platform.bootstrap_servers,
                self.pbx,
            ).run()
        finally:
            await apis.close()
            if self.summit is not None:
                self.summit.save()

    async def close(self) -> None:
        await self.pbx.stop()
        for sink in (self.summit, self.sms, self.mail):
            if sink is not None:
                sink.stop()
