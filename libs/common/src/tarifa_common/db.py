"""Storage shared by every service: async engines on SQLite or PostgreSQL, sessions, and migrations.

SQLite (embedded mode) gets WAL, a busy timeout and a single connection per process: SQLite has
one writer at a time anyway, and one connection means no lock upgrades that fail with
"database is locked". PostgreSQL gets a pool with pre-ping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)

# One advisory-lock key per service name, so two replicas never migrate at the same time.
_MIGRATION_LOCK_BASE = 0x7A71F


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`, tuned for the backend."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.update(pool_size=1, max_overflow=0, connect_args={"timeout": 30})
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def sqlite_datetime(moment: datetime) -> str:
    """An aware datetime as SQLAlchemy's SQLite `DateTime` stores an instant here: in UTC, microseconds
    always written (`YYYY-MM-DD HH:MM:SS.ffffff`).

    For hot paths that write rows with plain SQL: the ORM reads them back, and range queries
    compare them right with its bound values (a test holds it to SQLAlchemy's bind processor).
    A naive datetime is refused: it names no instant.
    """
    if moment.tzinfo is UTC:
        return moment.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class StagedCopy:
    """PostgreSQL's fastest bulk insert from Python: binary COPY into a staging table, then one INSERT … SELECT.

    asyncpg's `COPY … FROM STDIN (FORMAT binary)` encodes each value with its column's codec and
    nothing else; the `INSERT … SELECT FROM unnest($1::type[], …)` it replaces made asyncpg test
    every array element against `collections.abc` (two `isinstance` checks of 0.3 µs each for a
    string) before encoding it. 34 columns in batches of 300 and 2,000 rows: 37 and 30 µs of
    client CPU a row that way, 21 and 14 by COPY; wall time 69 and 54 µs, 53 and 38
    (`bench/pg_bulk_insert.py`). COPY cannot skip duplicates or
    answer RETURNING, so the rows land in a temporary table first (`ON COMMIT DELETE ROWS`, one
    per connection, made by the first insert of each transaction if missing, which also works
    behind a transaction-pooling PgBouncer) and a single statement moves them to `table`,
    emptying the stage (a writable CTE: several inserts in one transaction never see each
    other's rows).

    `columns` are copied in that order; `extra` adds columns set by the same SQL expression for
    every row (`$1`…, bound by `run`'s `parameters`); `ordered` inserts the rows in the order
    given (so that ids drawn from a sequence follow it); `tail` ends the INSERT (`ON CONFLICT …`,
    `RETURNING …`).
    """

    def __init__(
        self,
        table: str,
        columns: Sequence[str],
        *,
        extra: Sequence[tuple[str, str]] = (),
        ordered: bool = False,
        tail: str = "",
    ) -> None:
        self.stage = f"tarifa_stage_{table}"
        self.ordered = ordered
        self.columns = [*columns, "n"] if ordered else list(columns)
        copied = ", ".join(columns)
        ordinal = ", 0::bigint AS n" if ordered else ""
        # Every name comes from the caller's table metadata; every value is a bound parameter.
        self._create = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {copied}{ordinal} FROM {table} WITH NO DATA"
        )
        targets = ", ".join([*columns, *(name for name, _ in extra)])
        values = ", ".join([*columns, *(expression for _, expression in extra)])
        self._move = (
            f"WITH staged AS (DELETE FROM {self.stage} RETURNING *) "  # noqa: S608
            f"INSERT INTO {table} ({targets}) SELECT {values} FROM staged"
            f"{' ORDER BY n' if ordered else ''}{tail}"
        )

    async def run(
        self, connection: AsyncConnection, rows: Sequence[tuple[Any, ...]], parameters: tuple[Any, ...] = ()
    ) -> Sequence[Any]:
        """Insert `rows` (values in `columns` order, as asyncpg takes them) in the connection's
        transaction; return what the `tail`'s RETURNING answers (an empty list without one)."""
        if not rows:
            return []
        # Through SQLAlchemy first: its asyncpg adapter opens the transaction on the first statement,
        # and the COPY below, sent to the driver directly, must run inside it.
        await connection.exec_driver_sql(self._create)
        driver = (await connection.get_raw_connection()).driver_connection
        if driver is None:
            raise RuntimeError("StagedCopy needs an open asyncpg connection")
        if self.ordered:
            rows = [(*row, n) for n, row in enumerate(rows)]
        await driver.copy_records_to_table(self.stage, records=rows, columns=self.columns)
        result = await connection.exec_driver_sql(self._move, parameters)
        return result.all() if result.returns_rows else []


SessionFactory = async_sessionmaker[AsyncSession]


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits when the block ends, rolls back if it raises."""
    async with sessions() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def wait_for_database(engine: AsyncEngine, *, timeout: float = 60.0) -> None:
    """Wait (with backoff) until the database answers, as a container may start before it."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.2, max=5),
        retry=retry_if_exception_type(Exception),  # driver errors differ per backend; all mean "not yet"
        reraise=True,
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                log.info("waiting for the database", extra={"attempt": attempt.retry_state.attempt_number})
            await ping(engine)


def alembic_config(script_location: Path, service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["version_table"] = f"alembic_version_{service.replace('-', '_')}"
    return config


async def migrate(engine: AsyncEngine, script_location: Path, service: str, revision: str = "head") -> None:
    """Bring the service's schema up to `revision` (Alembic), holding a lock on PostgreSQL."""
    await _alembic(engine, script_location, service, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, script_location: Path, service: str, revision: str) -> None:
    """Take the service's schema down to `revision` (`base` removes it)."""
    await _alembic(engine, script_location, service, lambda config: command.downgrade(config, revision))


async def _alembic(engine: AsyncEngine, script_location: Path, service: str, action: Callable[[Config], None]) -> None:
    config = alembic_config(script_location, service)

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            lock_key = _MIGRATION_LOCK_BASE + sum(service.encode())
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        config.attributes["connection"] = connection
        action(config)

    async with engine.begin() as connection:
        await connection.run_sync(run)


def run_migrations_env(target_metadata: Any) -> None:
    """The body of every service's Alembic `env.py`.

    Called with a connection (from `migrate`), it migrates on it. Called from the alembic
    command line, it connects to `sqlalchemy.url` or `TARIFA_DATABASE_URL` itself.
    """
    import os

    from alembic import context

    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("TARIFA_DATABASE_URL", "")
    if not url:
        raise SystemExit("set sqlalchemy.url or TARIFA_DATABASE_URL to run migrations from the command line")

    async def run_async() -> None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(run_async())
