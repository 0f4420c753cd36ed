"""Alembic environment of the notifier (see tarifa_common.db.run_migrations_env)."""

from sqlmodel import SQLModel

from tarifa_common.db import run_migrations_env

run_migrations_env(SQLModel.metadata)
