"""Running sources: SMDR over TCP in both directions, drop directories, and the loop that keeps them configured.

IP Office sends SMDR as soon as a TCP peer is there and expects no acknowledgement; what
protects a record is that we read at most a bounded number of batches ahead of the one being
committed (the TCP window then holds IP Office back), and that IP Office re-sends its buffer
after a reconnect (duplicates the archive's primary key absorbs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.lines import LineSplitter
from tarifa_collector.adapters.repository import settings_of
from tarifa_collector.config import CollectorSettings
from tarifa_collector.domain.csv_formats import SUMMIT_HEADER
from tarifa_collector.domain.schedule import next_run
from tarifa_collector.domain.sources import AfterImport, Connection, RecordFormat, SourceKind, SourceSettings
from tarifa_collector.handlers import PreparedBatch
from tarifa_common.events import utcnow

log = logging.getLogger(__name__)
# A batch is whatever arrived while the previous one was being prepared, up to READ_SIZE: the
# stream buffers up to twice STREAM_LIMIT before it stops reading the socket (then the TCP
# window holds IP Office back). Bigger batches amortise the per-transaction cost (commit,
# source state row); 1 MiB is about 7,000 SMDR records.
READ_SIZE = 1024 * 1024
STREAM_LIMIT = 512 * 1024
# Prepared batches waiting while one is stored. The reader prepares batch N+1 (Python) while the
# database stores batch N (SQLite's own thread, or PostgreSQL); once this many wait, it reads no more.
PIPELINE_DEPTH = 1


class SmdrStream:
    """One SMDR connection: a reader that splits and prepares batches, a writer that stores them in order.

    The two overlap through a queue of `depth` batches, and the queue is the back-pressure: when
    it is full the reader stops reading, the stream's buffer fills and the TCP window holds IP
    Office back. In memory at most: the batch being stored, `depth` waiting, the one the reader
    holds, and the stream's buffer. A record counts as received once its batch committed; when
    the link drops, what was read in whole lines is still stored before the drop is reported.
    """

    def __init__(
        self,
        intake: Intake,
        tenant: str,
        source: SourceSettings,
        location: str,
        *,
        depth: int = PIPELINE_DEPTH,
        read_size: int = READ_SIZE,
    ) -> None:
        self.intake, self.tenant, self.source, self.location = intake, tenant, source, location
        self.read_size = read_size
        self.queue: asyncio.Queue[tuple[PreparedBatch, str] | None] = asyncio.Queue(maxsize=depth)
        self.bytes_read = 0  # read from the connection so far
        self.received = 0  # records committed (accepted or duplicates)
        self.held_back = False  # the reader waits for room in the queue (it reads nothing meanwhile)

    async def run(self, reader: asyncio.StreamReader) -> int:
        """Read until the peer closes; return how many records were received (accepted or duplicates)."""
        storing = asyncio.ensure_future(self._store())
        try:
            await self._read(reader, storing)
        except Exception:
            if not storing.done():  # the link dropped: keep what was read, then report the drop
                await self._put(None, storing)
                await storing
            raise
        except BaseException:  # cancelled (the source stops): the batch in flight rolls back, as before
            storing.cancel()
            with contextlib.suppress(BaseException):
                await storing
            raise
        await self._put(None, storing)
        await storing
        return self.received

    async def _read(self, reader: asyncio.StreamReader, storing: asyncio.Future[None]) -> None:
        splitter = LineSplitter()
        while True:
            data = await reader.read(self.read_size)
            if not data:
                break
            offset = self.bytes_read
            self.bytes_read += len(data)
            lines = splitter.feed(data)
            if lines:
                batch = await self._prepare(lines)
                await self._put((batch, f"{self.location} offset {offset}"), storing)
        rest = splitter.rest()
        if rest.strip():
            batch = self.intake.prepare(self.tenant, self.source, [], incomplete=[rest])
            await self._put((batch, f"{self.location} offset {self.bytes_read}"), storing)

    async def _prepare(self, lines: Sequence[bytes]) -> PreparedBatch:
        """Prepare a batch while the previous one is stored: in the prepare worker, or letting the loop run."""
        return await self.intake.prepare_batch(self.tenant, self.source, lines)

    async def _put(self, item: tuple[PreparedBatch, str] | None, storing: asyncio.Future[None]) -> None:
        """Queue a batch, waiting for room; if storing failed meanwhile, raise its error instead of waiting."""
        if storing.done():  # it ends only after the last batch, so here it failed
            storing.result()
        if not self.queue.full():
            self.queue.put_nowait(item)
            return
        self.held_back = True
        room = asyncio.ensure_future(self.queue.put(item))
        try:
            done, _ = await asyncio.wait((room, storing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.held_back = False
            if not room.done():
                room.cancel()
        if room not in done:
            storing.result()
            raise RuntimeError("storing the batches ended before the last one")

    async def _store(self) -> None:
        while (item := await self.queue.get()) is not None:
            batch, location = item
            outcome = await self.intake.store(self.tenant, self.source, batch, location=location)
            self.received += outcome.accepted + outcome.duplicates
            # Let whoever waits for the database connection (the outbox relay) have it before the
            # next batch's transaction takes it again: a fast link must not starve the relay.
            await asyncio.sleep(0)


async def pump(
    reader: asyncio.StreamReader,
    intake: Intake,
    tenant: str,
    source: SourceSettings,
    location: str,
) -> int:
    """Read SMDR lines until the peer closes (`SmdrStream`); return how many records were received."""
    return await SmdrStream(intake, tenant, source, location).run(reader)


class SmdrListener:
    """We listen; IP Office connects (its SMDR "IP address/TCP port" point at us)."""

    def __init__(self, intake: Intake, tenant: str, source: SourceSettings, bind_host: str) -> None:
        self.intake, self.tenant, self.source = intake, tenant, source
        self.bind_host = source.host or bind_host
        self._connections = 0

    async def run(self) -> None:
        assert self.source.port is not None
        server = await asyncio.start_server(self._serve, self.bind_host, self.source.port, limit=STREAM_LIMIT)
        await self.intake.connection(
            self.tenant, self.source.id, Connection.LISTENING, f"{self.bind_host}:{self.source.port}"
        )
        log.info("SMDR listener of %s/%s on %s:%s", self.tenant, self.source.id, self.bind_host, self.source.port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.intake.connection(self.tenant, self.source.id, Connection.IDLE))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        self._connections += 1
        await self.intake.connection(self.tenant, self.source.id, Connection.CONNECTED, peer)
        try:
            await pump(reader, self.intake, self.tenant, self.source, f"tcp {peer}")
        except (ConnectionError, OSError) as error:
            log.warning("SMDR link from %s to %s dropped: %s", peer, self.source.id, error)
        finally:
            self._connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if self._connections == 0:
                await self.intake.connection(self.tenant, self.source.id, Connection.DISCONNECTED, peer)


class SmdrClient:
    """IP Office listens; we connect, and reconnect with exponential backoff and jitter when the link drops."""

    def __init__(self, intake: Intake, tenant: str, source: SourceSettings, max_backoff: float) -> None:
        self.intake, self.tenant, self.source = intake, tenant, source
        self.max_backoff = max_backoff

    async def run(self) -> None:
        assert self.source.host is not None and self.source.port is not None
        peer = f"{self.source.host}:{self.source.port}"
        backoff = 0.2
        while True:
            await self.intake.connection(self.tenant, self.source.id, Connection.CONNECTING, peer)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.source.host, self.source.port, limit=STREAM_LIMIT), timeout=10
                )
            except (OSError, TimeoutError) as error:
                log.warning(
                    "SMDR client %s cannot reach %s: %s; retrying in %.1fs", self.source.id, peer, error, backoff
                )
                await self.intake.connection(
                    self.tenant,
                    self.source.id,
                    Connection.DISCONNECTED,
                    peer,
                    error=f"cannot connect to {peer}: {error or type(error).__name__}",
                )
            else:
                await self.intake.connection(self.tenant, self.source.id, Connection.CONNECTED, peer)
                try:
                    if await pump(reader, self.intake, self.tenant, self.source, f"tcp {peer}"):
                        backoff = 0.2
                except (ConnectionError, OSError) as error:
                    log.warning("SMDR link to %s dropped: %s", peer, error)
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()
                await self.intake.connection(self.tenant, self.source.id, Connection.DISCONNECTED, peer)
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, self.max_backoff)


def skip_header(source: SourceSettings, lines: list[bytes]) -> list[bytes]:
    """An operator CSV file whose mapping says it has a header loses its first line; a Summit file its header."""
    if source.column_mapping is not None and source.column_mapping.header and lines:
        return lines[1:]
    if source.format is RecordFormat.SUMMIT_CSV and lines and lines[0].strip().lstrip(b"\xef\xbb\xbf") == SUMMIT_HEADER:
        return lines[1:]
    return lines


class DropDirectory:
    """Files dropped in a directory: read once settled, complete lines only, then archived or deleted.

    A file is taken once it has not changed for `settle` seconds (the writer is done). Its
    records go through the same deterministic ids as everything else, so a file dropped twice
    is accepted once. Archived files go to `<directory>/archive/`.
    """

    def __init__(self, intake: Intake, tenant: str, source: SourceSettings, poll: float, settle: float) -> None:
        self.intake, self.tenant, self.source = intake, tenant, source
        self.poll, self.settle = poll, settle
        assert source.directory is not None
        self.directory = Path(source.directory)

    async def run(self) -> None:
        if self.source.schedule is None:
            while True:
                await self.scan()
                await asyncio.sleep(self.poll)
        zone = ZoneInfo(self.source.time_zone)
        while True:
            fire = next_run(self.source.schedule, utcnow(), zone)
            log.info("next import of %s/%s at %s", self.tenant, self.source.id, fire.isoformat())
            await asyncio.sleep(max((fire - utcnow()).total_seconds(), 0))
            await self.scan()

    async def scan(self) -> int:
        """Import every settled file once; return how many files were taken."""
        paths = await asyncio.to_thread(self._settled_files)
        for path in paths:
            await self.import_file(path)
        return len(paths)

    def _settled_files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        now = time.time()
        return sorted(
            path
            for path in self.directory.iterdir()
            if path.is_file() and not path.name.startswith(".") and now - path.stat().st_mtime >= self.settle
        )

    def _put_away(self, path: Path) -> None:
        if self.source.after_import is AfterImport.DELETE:
            path.unlink()
        else:
            archive = self.directory / "archive"
            archive.mkdir(exist_ok=True)
            os.replace(path, archive / path.name)

    async def import_file(self, path: Path) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        splitter = LineSplitter()
        lines = skip_header(self.source, splitter.feed(data))
        rest = splitter.rest()
        for start in range(0, max(len(lines), 1), 1000):
            chunk = lines[start : start + 1000]
            last = start + 1000 >= len(lines)
            await self.intake.ingest(
                self.tenant,
                self.source,
                chunk,
                location=f"file {path.name} from line {start + 1}",
                incomplete=[rest] if last and rest.strip() else (),
            )
        await asyncio.to_thread(self._put_away, path)
        log.info("imported %s for %s/%s (%d lines)", path.name, self.tenant, self.source.id, len(lines))


@dataclass
class _Running:
    source: SourceSettings
    task: asyncio.Task[None]


class SourceRunner:
    """Keeps one task per enabled link or directory source, following configuration changes."""

    def __init__(self, intake: Intake, settings: CollectorSettings) -> None:
        self.intake = intake
        self.settings = settings
        self.running: dict[tuple[str, str], _Running] = {}

    def _factory(self, tenant: str, source: SourceSettings) -> Callable[[], Awaitable[None]] | None:
        if source.kind is SourceKind.SMDR_LISTENER:
            return SmdrListener(self.intake, tenant, source, self.settings.smdr_bind_host).run
        if source.kind is SourceKind.SMDR_CLIENT:
            return SmdrClient(self.intake, tenant, source, self.settings.client_max_backoff_seconds).run
        if source.kind is SourceKind.DROP_DIRECTORY:
            return DropDirectory(
                self.intake,
                tenant,
                source,
                self.settings.directory_poll_seconds,
                self.settings.directory_settle_seconds,
            ).run
        return None

    async def reconcile(self) -> None:
        wanted: dict[tuple[str, str], SourceSettings] = {}
        for row in await self.intake.sources():
            source = settings_of(row)
            if source.enabled and source.kind is not SourceKind.HTTP:
                wanted[(row.tenant, row.id)] = source
        for key, running in list(self.running.items()):
            if key not in wanted or wanted[key] != running.source or running.task.done():
                running.task.cancel()
                with contextlib.suppress(BaseException):
                    await running.task
                del self.running[key]
        for key, source in wanted.items():
            if key not in self.running:
                factory = self._factory(key[0], source)
                if factory is not None:
                    task = asyncio.ensure_future(self._guard(key, factory))
                    self.running[key] = _Running(source, task)

    async def _guard(self, key: tuple[str, str], factory: Callable[[], Awaitable[None]]) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("source %s/%s stopped; it restarts at the next reconcile", *key)
            with contextlib.suppress(Exception):
                await self.intake.connection(
                    key[0], key[1], Connection.FAILED, None, error=f"{type(error).__name__}: {error}"
                )

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.reconcile()
                except Exception:
                    log.exception("could not load the sources; trying again")
                await asyncio.sleep(self.settings.reconcile_seconds)
        finally:
            for running in self.running.values():
                running.task.cancel()
            await asyncio.gather(*(r.task for r in self.running.values()), return_exceptions=True)
            self.running.clear()


async def watch_sources(intake: Intake, settings: CollectorSettings) -> None:
    """The watchdog: every `watchdog_seconds`, alerts for silent sources and dropped links, stale legs out."""
    grace = timedelta(seconds=settings.link_grace_seconds)
    leg_timeout = timedelta(minutes=settings.leg_timeout_minutes)
    while True:
        try:
            for row in await intake.sources():
                if row.enabled:
                    await intake.watch(row, link_grace=grace, leg_timeout=leg_timeout)
        except Exception:
            log.exception("watchdog round failed; trying again")
        await asyncio.sleep(settings.watchdog_seconds)
