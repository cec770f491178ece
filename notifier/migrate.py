"""Schema upgrades through Alembic, configured in code so the scripts ship inside the package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migrating(engine: Engine) -> Iterator[Config]:
    """One transaction for the whole run; on SQLite, foreign keys off while tables are rebuilt.

    Batch mode rebuilds a SQLite table by copy, drop and rename, which enforced foreign keys
    forbid while other rows point at it. The pragma only works outside a transaction, so it is
    set on the raw connection, and the keys are checked before the transaction commits.
    """
    cfg = _config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                cfg.attributes["connection"] = connection
                yield cfg
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("the migration left rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _migrating(engine) as cfg:
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migrating(engine) as cfg:
        command.downgrade(cfg, revision)


def autogenerate(engine: Engine, message: str) -> None:
    """Developer aid: write a new revision from the difference between models and the database."""
    with _migrating(engine) as cfg:
        command.revision(cfg, message=message, autogenerate=True)
