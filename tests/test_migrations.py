"""The migrations build exactly the schema the models describe, on the test database."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from allegiance.db import get_engine
from allegiance.migrate import alembic_config
from allegiance.models import Base


def test_models_and_migrations_agree(database: str) -> None:
    engine = get_engine(database).execution_options(sqlite_begin="DEFERRED")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_orders_brand_is_filled_from_the_payload(tmp_path: Path) -> None:
    """0090 copies the payload's brand (a string) of existing orders into the new column."""
    url = f"sqlite:///{tmp_path / 'brand.db'}"
    engine = get_engine(url).execution_options(sqlite_begin="DEFERRED")
    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0070")
        for order_id, payload in (
            ("o1", {"brand": "outlet", "total": "10.00"}),
            ("o2", {"total": "10.00"}),
            ("o3", {"brand": 7}),
        ):
            conn.execute(
                text(
                    "INSERT INTO orders (tenant_id, order_id, placed_at, currency, subtotal_minor,"
                    " total_minor, refunded_minor, status, payload, created_at) VALUES"
                    " ('t', :id, '2026-03-01 00:00:00', 'USD', 1000, 1000, 0, 'completed',"
                    " :payload, '2026-03-01 00:00:00')"
                ),
                {"id": order_id, "payload": json.dumps(payload)},
            )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        rows = conn.execute(text("SELECT order_id, brand FROM orders ORDER BY order_id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("o1", "outlet"), ("o2", None), ("o3", None)]


def test_head_constant_is_alembics_head(tmp_path: Path) -> None:
    """``migrate.HEAD`` lets commands skip Alembic on a current database: it must be the
    newest revision, and a database below it must still be upgraded."""
    from alembic.script import ScriptDirectory

    from allegiance.migrate import HEAD, at_head, upgrade

    url = f"sqlite:///{tmp_path / 'head.db'}"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD
    engine = get_engine(url).execution_options(sqlite_begin="DEFERRED")
    assert not at_head(engine)  # nothing there yet
    with engine.begin() as conn:
        config = alembic_config(url)
        config.attributes["connection"] = conn
        command.upgrade(config, "0130")
    assert not at_head(engine)
    upgrade(url)
    assert at_head(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM member_months")).scalar() == 0
    engine.dispose()
