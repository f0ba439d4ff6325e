"""SQL for orders, refunds and events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert_values, dialect_insert, is_postgres
from allegiance.order.models import Event, Order, Refund


def existing_order_ids(session: Session, tenant_id: str, order_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    ids = list(set(order_ids))
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(Order.order_id).where(
                    Order.tenant_id == tenant_id, Order.order_id.in_(ids[start : start + 500])
                )
            )
        )
    return found


# column order of order rows given as tuples (``insert_order_values``)
ORDER_COLUMNS = (
    "tenant_id", "order_id", "member_id", "account_id", "placed_at", "currency",
    "subtotal_minor", "total_minor", "refunded_minor", "status", "program_version", "payload",
    "created_at", "partner", "brand",
)  # fmt: skip


def insert_order_values(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Orders as tuples in ``ORDER_COLUMNS`` order (a batch: no dict per order)."""
    bulk_insert_values(session, Order.__table__, ORDER_COLUMNS, rows)


_insert_if_new: dict[tuple[str, tuple[str, ...]], Any] = {}


def insert_order_if_new(session: Session, row: dict[str, Any]) -> bool:
    """Insert one order unless its id is taken (waits for a concurrent insert to finish)."""
    table = Order.__table__
    key = (session.get_bind().dialect.name, tuple(row))
    stmt = _insert_if_new.get(key)
    if stmt is None:
        stmt = (
            dialect_insert(session)(table)
            .values({name: bindparam(name) for name in row})
            .on_conflict_do_nothing(index_elements=["tenant_id", "order_id"])
            .returning(table.c.order_id)
        )
        _insert_if_new[key] = stmt
    return session.connection().execute(stmt, row).first() is not None


def get_order(
    session: Session, tenant_id: str, order_id: str, *, lock: bool = False
) -> Order | None:
    stmt = select(Order).where(Order.tenant_id == tenant_id, Order.order_id == order_id)
    if lock and is_postgres(session):
        # re-read under the lock: an object loaded earlier in this session must not be reused
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def set_refunded(
    session: Session, tenant_id: str, order_id: str, refunded_minor: int, status: str
) -> None:
    session.execute(
        update(Order)
        .where(Order.tenant_id == tenant_id, Order.order_id == order_id)
        .values(refunded_minor=refunded_minor, status=status)
    )


def insert_refund(session: Session, **values: Any) -> None:
    session.execute(insert(Refund).values(**values))


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(Event), rows)


def orders_of_member(session: Session, tenant_id: str, member_id: str, limit: int) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.tenant_id == tenant_id, Order.member_id == member_id)
            .order_by(Order.placed_at)
            .limit(limit)
        )
    )


def events_of_member(session: Session, tenant_id: str, member_id: str, limit: int) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.tenant_id == tenant_id, Event.member_id == member_id)
            .order_by(Event.occurred_at)
            .limit(limit)
        )
    )


def refund_exists(session: Session, tenant_id: str, refund_id: str) -> bool:
    stmt = select(Refund.refund_id).where(
        Refund.tenant_id == tenant_id, Refund.refund_id == refund_id
    )
    return session.execute(stmt).first() is not None


def event_exists(session: Session, tenant_id: str, event_id: str) -> bool:
    stmt = select(Event.event_id).where(Event.tenant_id == tenant_id, Event.event_id == event_id)
    return session.execute(stmt).first() is not None
