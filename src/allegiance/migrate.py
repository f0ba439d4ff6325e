"""Run Alembic migrations from inside the installed package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from allegiance.db import get_engine, normalize_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# the newest revision (tests/test_migrations.py checks it is Alembic's head): a database
# already there needs no Alembic at all, which spares every command about half a second
HEAD = "0150"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def at_head(engine: Engine) -> bool:
    """Whether the database's schema is the newest (one read of ``alembic_version``)."""
    try:
        with engine.connect() as conn:
            versions = [
                row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
    except DBAPIError:  # no such table: a new database
        return False
    return versions == [HEAD]


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (safe to call repeatedly)."""
    engine = get_engine(url).execution_options(sqlite_begin="DEFERRED")
    if at_head(engine):
        return
    from alembic import command

    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
