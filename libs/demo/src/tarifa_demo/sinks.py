"""Local stand-ins for the outside world: a mail sink, an SMS gateway sink and the Summit simulator.

Each runs in the `tarifa up --demo` process, on loopback, and leaves what it received under the
data directory so the user can open it: `demo/mail/*.eml`, `demo/sms/*.txt`. The HTTP ones run
uvicorn in a thread of their own (uvicorn takes over SIGINT in the main thread, which belongs to
the supervisor). The Summit simulator's state is kept in `demo/summit-state.json` across runs,
as a real Summit would keep its terminals when Tarifa restarts.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from tarifa_notifier.adapters.sms_gateway_simulator import GatewaySimulator, SentSms
from tarifa_voip_summit.simulator import PortOut, SummitState, TerminalOut, create_simulator

Report = Callable[[str], None]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


class MailSink:
    """A real SMTP server (aiosmtpd) on loopback; every message becomes a .eml file and a printed line."""

    def __init__(self, folder: Path, port: int, report: Report) -> None:
        self.folder = folder
        self.port = port
        self.report = report
        self._count = itertools.count(1)
        self._controller: Controller | None = None

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        content: bytes = envelope.content
        message = message_from_bytes(content, policy=default)
        path = self.folder / f"{_stamp()}-{next(self._count):03d}.eml"
        path.write_bytes(content)
        self.report(f"mail sink: to {', '.join(envelope.rcpt_tos)}: {message['Subject']}  ({path.name})")
        return "250 OK"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class ThreadedApp:
    """An ASGI app served by uvicorn in a thread of its own, on loopback."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, name=f"sink-{port}", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"could not serve on 127.0.0.1:{self.port} (is the port taken?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class _Outbox(list[SentSms]):
    """The gateway simulator's list of sent messages, which also writes each one down."""

    def __init__(self, write: Callable[[SentSms], None]) -> None:
        super().__init__()
        self._write = write

    def append(self, sms: SentSms) -> None:
        super().append(sms)
        self._write(sms)


class SmsSink:
    """The notifier's Twilio-style gateway simulator; every SMS becomes a .txt file and a printed line."""

    def __init__(self, folder: Path, port: int, report: Report) -> None:
        self.folder = folder
        self.report = report
        self.simulator = GatewaySimulator(account="AC-demo", token="demo-token")  # noqa: S106 - the sink's own
        self.simulator.sent = _Outbox(self._write)
        self._app = ThreadedApp(self.simulator.app(), port)
        self.url = f"http://127.0.0.1:{port}"

    def _write(self, sms: SentSms) -> None:
        path = self.folder / f"{_stamp()}-{sms.sid[-6:]}.txt"
        path.write_text(f"To: {sms.to}\nFrom: {sms.sender}\n\n{sms.body}\n")
        self.report(f"SMS sink: to {sms.to}: {sms.body[:200]}  ({path.name})")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._app.start()

    def stop(self) -> None:
        self._app.stop()


class SummitSink:
    """The Summit Networks simulator with HTTP Basic, its terminals kept in a JSON file between runs."""

    USERNAME = "tarifa-demo"
    PASSWORD = "demo-summit-password"  # noqa: S105 - the simulator's own credential

    def __init__(self, state_file: Path, port: int) -> None:
        self.state_file = state_file
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.state = SummitState()
        self.state.seed_demo()
        self._load()
        self._app = ThreadedApp(create_simulator(self.state, username=self.USERNAME, password=self.PASSWORD), port)

    def _load(self) -> None:
        if not self.state_file.exists():
            return
        saved = json.loads(self.state_file.read_text())
        self.state.terminals = {key: TerminalOut.model_validate(value) for key, value in saved["terminals"].items()}
        self.state.ports = {key: PortOut.model_validate(value) for key, value in saved["ports"].items()}
        self.state.idempotency = {
            key: self.state.terminals[terminal_id]
            for key, terminal_id in saved["idempotency"].items()
            if terminal_id in self.state.terminals
        }

    def save(self) -> None:
        saved = {
            "terminals": {key: terminal.model_dump(mode="json") for key, terminal in self.state.terminals.items()},
            "ports": {key: port.model_dump(mode="json") for key, port in self.state.ports.items()},
            "idempotency": {key: terminal.terminal_id for key, terminal in self.state.idempotency.items()},
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(saved, indent=1, ensure_ascii=False))

    def start(self) -> None:
        self._app.start()

    def stop(self) -> None:
        self._app.stop()
        self.save()
