"""The migrations build exactly the schema the models describe, on the test database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from allegiance.db import get_engine
from allegiance.models import Base


def test_models_and_migrations_agree(database: str) -> None:
    engine = get_engine(database).execution_options(sqlite_begin="DEFERRED")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
