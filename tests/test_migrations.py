"""Alembic: the scripts build exactly the models' schema, and go down and up again, on both databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from notifier import migrate
from notifier.db import make_engine
from notifier.models import Base

from .conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    request.getfixturevalue("_postgres_database")  # skips or fails as the suite is configured
    name = f"notifier_migrations_{os.getpid()}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_builds_what_the_models_describe(empty_engine: sa.Engine) -> None:
    migrate.upgrade(empty_engine)

    with empty_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_downgrade_and_upgrade_round_trip(empty_engine: sa.Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.downgrade(empty_engine, "base")

    tables = set(sa.inspect(empty_engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate.upgrade(empty_engine)
    assert set(sa.inspect(empty_engine).get_table_names()) >= set(Base.metadata.tables)
