"""Every installed service: its migrations apply (and revert) on SQLite and PostgreSQL, its API documents itself."""

from pathlib import Path

import pytest
from sqlalchemy import inspect

from tarifa_common.db import downgrade, make_engine, migrate
from tarifa_common.service import ServiceSpec, discover

SPECS = discover()


def migrations_of(spec: ServiceSpec) -> Path:
    module = __import__(f"tarifa_{spec.name.replace('-', '_')}.bootstrap", fromlist=["MIGRATIONS"])
    path: Path = module.MIGRATIONS
    return path


@pytest.mark.parametrize("name", list(SPECS))
async def test_migrations_create_the_schema_and_revert_cleanly(name: str, database_url: str) -> None:
    spec = SPECS[name]
    engine = make_engine(database_url)
    try:
        await migrate(engine, migrations_of(spec), spec.name)
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert {"tarifa_inbox", "tarifa_outbox", f"alembic_version_{name.replace('-', '_')}"} <= tables
        await downgrade(engine, migrations_of(spec), spec.name, "base")
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert "tarifa_inbox" not in tables
        await migrate(engine, migrations_of(spec), spec.name)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", list(SPECS))
def test_the_api_documents_health_and_problem_answers(name: str, tmp_path: Path) -> None:
    spec = SPECS[name]
    settings = spec.settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    app = spec.create_app(settings)
    schema = app.openapi()
    assert {"/healthz", "/readyz"} <= set(schema["paths"])
    assert schema["info"]["title"] == f"Tarifa {name}"
