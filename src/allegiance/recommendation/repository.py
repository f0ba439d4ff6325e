"""SQL for recommendations: the history the model learns from and the stored model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert
from allegiance.order.models import Event, Order
from allegiance.recommendation.models import ItemSimilarity, RecommendationItem

VIEW_EVENT = "product.viewed"


def recent_orders(
    session: Session,
    tenant_id: str,
    *,
    since: datetime,
    until: datetime,
    limit: int,
    member_id: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(member id, payload) of the latest completed member orders in the window, newest
    first (one member's with ``member_id``)."""
    stmt = select(Order.member_id, Order.payload).where(
        Order.tenant_id == tenant_id,
        Order.status == "completed",
        Order.placed_at >= since,
        Order.placed_at <= until,
    )
    if member_id is not None:
        stmt = stmt.where(Order.member_id == member_id)
    else:
        stmt = stmt.where(Order.member_id.is_not(None))
    rows = session.execute(stmt.order_by(Order.placed_at.desc(), Order.order_id).limit(limit))
    return [(r[0], r[1]) for r in rows]


def recent_views(
    session: Session,
    tenant_id: str,
    *,
    since: datetime,
    until: datetime,
    limit: int,
    member_id: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(member id, properties) of the latest ``product.viewed`` events, newest first."""
    stmt = select(Event.member_id, Event.properties).where(
        Event.tenant_id == tenant_id,
        Event.type == VIEW_EVENT,
        Event.occurred_at >= since,
        Event.occurred_at <= until,
    )
    if member_id is not None:
        stmt = stmt.where(Event.member_id == member_id)
    else:
        stmt = stmt.where(Event.member_id.is_not(None))
    rows = session.execute(stmt.order_by(Event.occurred_at.desc(), Event.event_id).limit(limit))
    return [(r[0], r[1]) for r in rows]


def built_at(session: Session, tenant_id: str) -> datetime | None:
    """When the stored model was built (None: never, or it holds no items)."""
    return session.execute(
        select(func.max(RecommendationItem.built_at)).where(
            RecommendationItem.tenant_id == tenant_id
        )
    ).scalar_one_or_none()


def replace_model(
    session: Session, tenant_id: str, items: list[dict[str, Any]], pairs: list[dict[str, Any]]
) -> None:
    session.execute(delete(ItemSimilarity).where(ItemSimilarity.tenant_id == tenant_id))
    session.execute(delete(RecommendationItem).where(RecommendationItem.tenant_id == tenant_id))
    # a second worker rebuilding at the same moment writes the same rows: skip duplicates
    for start in range(0, len(items), 5_000):
        bulk_insert(
            session,
            RecommendationItem.__table__,
            items[start : start + 5_000],
            skip_conflicts_on=("tenant_id", "sku"),
        )
    for start in range(0, len(pairs), 5_000):
        bulk_insert(
            session,
            ItemSimilarity.__table__,
            pairs[start : start + 5_000],
            skip_conflicts_on=("tenant_id", "sku", "other_sku"),
        )


def neighbours(
    session: Session, tenant_id: str, skus: Sequence[str]
) -> dict[str, list[tuple[str, float]]]:
    """The stored neighbours (other sku, score) of each of these products."""
    found: dict[str, list[tuple[str, float]]] = {}
    ids = sorted(set(skus))
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(ItemSimilarity.sku, ItemSimilarity.other_sku, ItemSimilarity.score).where(
                ItemSimilarity.tenant_id == tenant_id,
                ItemSimilarity.sku.in_(ids[start : start + 500]),
            )
        )
        for sku, other, score in rows:
            found.setdefault(sku, []).append((other, float(score)))
    return found


def popular(session: Session, tenant_id: str, limit: int) -> list[RecommendationItem]:
    """The most popular stored products."""
    stmt = (
        select(RecommendationItem)
        .where(RecommendationItem.tenant_id == tenant_id)
        .order_by(RecommendationItem.popularity.desc(), RecommendationItem.sku)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def items(session: Session, tenant_id: str, skus: Sequence[str]) -> dict[str, RecommendationItem]:
    found: dict[str, RecommendationItem] = {}
    ids = sorted(set(skus))
    for start in range(0, len(ids), 500):
        stmt = select(RecommendationItem).where(
            RecommendationItem.tenant_id == tenant_id,
            RecommendationItem.sku.in_(ids[start : start + 500]),
        )
        found.update({r.sku: r for r in session.scalars(stmt)})
    return found


def categories(session: Session, tenant_id: str, skus: Sequence[str]) -> dict[str, str]:
    """sku -> category of stored products that have one."""
    return {sku: r.category for sku, r in items(session, tenant_id, skus).items() if r.category}
