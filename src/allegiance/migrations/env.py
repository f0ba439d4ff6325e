"""Alembic environment: the URL comes from the caller's config or ALLEGIANCE_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from allegiance.config import get_settings
from allegiance.db import get_engine, normalize_url
from allegiance.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
connection = config.attributes.get("connection")


def run() -> None:
    if connection is not None:
        _run_with(connection)
        return
    engine = get_engine(normalize_url(url)).execution_options(sqlite_begin="DEFERRED")
    with engine.connect() as conn:
        _run_with(conn)
        conn.commit()


def _run_with(conn: object) -> None:
    context.configure(
        connection=conn,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
