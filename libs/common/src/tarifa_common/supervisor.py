"""`tarifa up`: the embedded platform on one machine — a broker and every service as its own process.

Each service runs `tarifa serve NAME` with SQLite under the data directory. The supervisor waits
until every `/readyz` answers, restarts a service that dies (with backoff, and says so), and on
Ctrl-C or SIGTERM stops the services, then the broker, leaving no process behind: children also
get a parent-death signal, so even a killed supervisor orphans nothing.

An extension (`tarifa up --demo`, see `tarifa_common.service.PlatformExtension`) may add settings
for the services before they start and run beside the supervisor once they are ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from rich.console import Console
from rich.table import Table

from tarifa_common.broker import EmbeddedBroker, die_with_parent, port_is_open
from tarifa_common.config import random_secret
from tarifa_common.kafka import ensure_topics
from tarifa_common.service import Platform, PlatformExtension, ServiceSpec

SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret


@dataclass
class ManagedService:
    spec: ServiceSpec
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    ready: bool = False
    history: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tarifa_common.cli", "serve", self.spec.name],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.ready = False

    def close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


def load_or_create_secret(data_dir: Path) -> str:
    """The embedded platform's token key, kept in the data directory so tokens survive restarts."""
    path = data_dir / SECRET_FILE
    if env_secret := os.environ.get("TARIFA_JWT_SECRET"):
        return env_secret
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = random_secret()
    path.write_text(secret)
    path.chmod(0o600)
    return secret


class Supervisor:
    def __init__(
        self,
        specs: list[ServiceSpec],
        *,
        data_dir: Path,
        broker_port: int,
        port_offset: int = 0,
        console: Console | None = None,
        ready_timeout: float = 90.0,
        extension: PlatformExtension | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.console = console or Console(stderr=True)
        self.broker = EmbeddedBroker(broker_port, log_file=self.data_dir / "logs" / "broker.log")
        self.ready_timeout = ready_timeout
        secret = load_or_create_secret(self.data_dir)
        self.secret = secret
        self.port_offset = port_offset
        self.extension = extension
        self._extension_task: asyncio.Task[None] | None = None
        self.services: list[ManagedService] = []
        ports = {spec.name: spec.settings.default_http_port + port_offset for spec in specs}
        for spec in specs:
            port = ports[spec.name]
            prefix = spec.settings.env_prefix()
            # Where each other service answers, as `TARIFA_<SERVICE>_<OTHER>_URL` (the notifier's
            # reports read `TARIFA_NOTIFIER_RATER_URL`, the collector's start-up re-publish
            # `TARIFA_COLLECTOR_RATER_URL`); a service without such a field ignores it.
            peers = {
                f"{prefix}{other.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{other_port}"
                for other, other_port in ports.items()
                if other != spec.name
            }
            env = {
                **os.environ,
                **peers,
                "TARIFA_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
                "TARIFA_JWT_SECRET": secret,
                "TARIFA_ENVIRONMENT": os.environ.get("TARIFA_ENVIRONMENT", "development"),
                # Tansu holds a group join for about the session timeout: keep it short here.
                "TARIFA_CONSUMER_SESSION_TIMEOUT_MS": os.environ.get("TARIFA_CONSUMER_SESSION_TIMEOUT_MS", "3000"),
                "TARIFA_CONSUMER_REBALANCE_TIMEOUT_MS": os.environ.get("TARIFA_CONSUMER_REBALANCE_TIMEOUT_MS", "3000"),
                f"{prefix}HTTP_PORT": str(port),
                f"{prefix}DATABASE_URL": f"sqlite+aiosqlite:///{self.data_dir / 'db' / spec.name}.db",
            }
            self.services.append(ManagedService(spec, port, env, self.data_dir / "logs" / f"{spec.name}.log"))
        self._stopping = asyncio.Event()

    def request_stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            return await self._run()
        finally:
            await self.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _run(self) -> int:
        busy = [s for s in self.services if port_is_open("127.0.0.1", s.port)]
        if busy:
            names = ", ".join(f"{s.spec.name} ({s.port})" for s in busy)
            self.console.print(f"[red]These ports are taken: {names}.[/] Stop what uses them or pass --port-offset.")
            return 1
        started = time.monotonic()
        with self.console.status("starting the embedded Kafka broker (Tansu)…"):
            await self.broker.start()
            await ensure_topics(self.broker.bootstrap_servers)
        self.console.print(f"[green]✓[/] broker on {self.broker.bootstrap_servers}")
        if self.extension is not None:
            try:
                extra = await self.extension.prepare(self.platform())
            except Exception as error:  # an extension that cannot start says why; the platform does not start
                self.console.print(f"[red]could not prepare the extension: {error}[/]")
                return 1
            for service in self.services:
                prefix = service.spec.settings.env_prefix()
                # Where a service listens, keeps its data and finds the broker stays the supervisor's to say.
                owned = {
                    "TARIFA_KAFKA_BOOTSTRAP_SERVERS",
                    "TARIFA_JWT_SECRET",
                    f"{prefix}HTTP_PORT",
                    f"{prefix}DATABASE_URL",
                }
                service.env.update({key: value for key, value in extra.items() if key not in owned})
        for service in self.services:
            service.start()
        if not await self._wait_ready(started):
            return 1
        self._print_summary(time.monotonic() - started)
        if self.extension is not None:
            self._extension_task = asyncio.create_task(self._run_extension(self.extension))
        return await self._watch()

    def platform(self) -> Platform:
        return Platform(
            data_dir=self.data_dir,
            port_offset=self.port_offset,
            bootstrap_servers=self.broker.bootstrap_servers,
            jwt_secret=self.secret,
            urls={service.spec.name: service.url for service in self.services},
            console=self.console,
        )

    async def _run_extension(self, extension: PlatformExtension) -> None:
        """Run the extension beside the supervisor; its failure is told, and the platform keeps running."""
        try:
            await extension.run(self.platform())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.console.print(f"[red]{type(extension).__name__} failed: {type(error).__name__}: {error}[/]")

    async def _wait_ready(self, started: float) -> bool:
        async with httpx.AsyncClient(timeout=2.0) as client:
            with self.console.status("starting services…") as status:
                while not self._stopping.is_set():
                    for service in self.services:
                        if service.ready:
                            continue
                        if service.process is not None and service.process.poll() is not None:
                            self._report_death(service)
                            return False
                        with contextlib.suppress(httpx.HTTPError):
                            if (await client.get(f"{service.url}/readyz")).status_code == 200:
                                service.ready = True
                                self.console.print(f"[green]✓[/] {service.spec.name} ready on {service.url}")
                    waiting = [s.spec.name for s in self.services if not s.ready]
                    if not waiting:
                        return True
                    if time.monotonic() - started > self.ready_timeout:
                        self.console.print(
                            f"[red]Not ready after {self.ready_timeout:.0f}s: {', '.join(waiting)}.[/] "
                            f"Their logs are in {self.data_dir / 'logs'}."
                        )
                        return False
                    status.update(f"waiting for {', '.join(waiting)}…")
                    await asyncio.sleep(0.2)
        return False

    def _report_death(self, service: ManagedService) -> None:
        code = service.process.returncode if service.process else "?"
        tail = service.log_path.read_text(errors="replace").splitlines()[-15:] if service.log_path.exists() else []
        self.console.print(f"[red]{service.spec.name} exited with code {code}.[/] Last lines of {service.log_path}:")
        for line in tail:
            self.console.print(f"  {line}", markup=False, highlight=False)

    def _print_summary(self, elapsed: float) -> None:
        table = Table(title=f"Tarifa is up ({elapsed:.1f}s)", title_justify="left")
        table.add_column("service")
        table.add_column("API docs")
        table.add_column("log")
        for service in self.services:
            table.add_row(service.spec.name, f"{service.url}/docs", str(service.log_path))
        self.console.print(table)
        self.console.print(f"broker: {self.broker.bootstrap_servers}   data: {self.data_dir}")
        self.console.print(f"a token: [bold]tarifa token --data-dir {self.data_dir} --tenant demo --role admin[/]")
        self.console.print("Ctrl-C stops everything.")

    async def _watch(self) -> int:
        """Restart a service that dies, with backoff; give up on one that keeps dying."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=0.5)
            if self._stopping.is_set():
                break
            for service in self.services:
                if service.process is None or service.process.poll() is None:
                    continue
                self._report_death(service)
                now = time.monotonic()
                service.history = [t for t in service.history if now - t < 300] + [now]
                if len(service.history) > 5:
                    self.console.print(f"[red]{service.spec.name} died 5 times in 5 minutes; stopping Tarifa.[/]")
                    return 1
                delay = min(2 ** len(service.history), 30)
                self.console.print(f"[yellow]restarting {service.spec.name} in {delay}s[/]")
                service.close_log()
                await asyncio.sleep(delay)
                service.restarts += 1
                service.start()
        return 0

    async def shutdown(self) -> None:
        """The extension's work, then the services (they finish their batch and commit), then the broker."""
        if self._extension_task is not None and not self._extension_task.done():
            self._extension_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._extension_task
        running = [s for s in self.services if s.process is not None and s.process.poll() is None]
        if running or self.broker.pid:
            self.console.print("stopping…")
        for service in running:
            assert service.process is not None
            service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 25
        while any(s.process.poll() is None for s in running if s.process) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for service in running:
            if service.process is not None and service.process.poll() is None:
                self.console.print(f"[yellow]{service.spec.name} did not stop in time; killing it[/]")
                service.process.kill()
                service.process.wait()
        for service in self.services:
            service.close_log()
        if self.extension is not None:
            await self.extension.close()
        await self.broker.stop()
        self.console.print("stopped.")
