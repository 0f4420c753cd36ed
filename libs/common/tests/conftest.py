"""Fixtures of the shared library's tests: a database holding the inbox, the outbox and a tally."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tarifa_common.db import make_engine

PROCESSES = Path(__file__).parent / "processes"
sys.path.insert(0, str(PROCESSES))

from tally import create_tables  # noqa: E402


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    instance = make_engine(database_url)
    await create_tables(instance)
    yield instance
    await instance.dispose()
