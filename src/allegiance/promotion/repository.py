"""SQL for what promotions gave a booked order (kept on the order row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from allegiance.order.models import Order


def set_order_promotions(
    session: Session, tenant_id: str, order_id: str, applied: list[dict[str, Any]]
) -> None:
    session.execute(
        update(Order)
        .where(Order.tenant_id == tenant_id, Order.order_id == order_id)
        .values(promotions=applied)
    )
