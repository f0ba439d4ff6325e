"""SQL for platform connections, seen deliveries and privacy requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from allegiance.db import dialect_insert, is_postgres
from allegiance.integration.models import (
    DataRequest,
    Integration,
    IntegrationCancellation,
    IntegrationDelivery,
)
from allegiance.member.models import Member


def get_integration(session: Session, tenant_id: str, platform: str) -> Integration | None:
    return session.get(Integration, (tenant_id, platform))


def save_integration(session: Session, values: dict[str, Any]) -> None:
    insert = dialect_insert(session)
    stmt = insert(Integration).values(**values)
    changed = {
        k: stmt.excluded[k] for k in values if k not in ("tenant_id", "platform", "created_at")
    }
    session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "platform"], set_=changed)
    )


def delete_integration(session: Session, tenant_id: str, platform: str) -> int:
    result = session.execute(
        delete(Integration).where(
            Integration.tenant_id == tenant_id, Integration.platform == platform
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def insert_delivery_if_new(session: Session, row: dict[str, Any]) -> bool:
    """Claim a delivery id; False when it was seen (waits for a concurrent claim to finish)."""
    insert = dialect_insert(session)
    stmt = (
        insert(IntegrationDelivery)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "platform", "delivery_id"])
        .returning(IntegrationDelivery.delivery_id)
    )
    return session.execute(stmt).first() is not None


def lock_order_id(session: Session, tenant_id: str, order_id: str) -> None:
    """Serialise the connector paths of one order id until the transaction ends (Postgres; a
    SQLite write transaction has the database to itself)."""
    if is_postgres(session):
        session.execute(
            select(
                func.pg_advisory_xact_lock(func.hashtextextended(f"{tenant_id}\x1f{order_id}", 0))
            )
        )


def remember_cancellation(session: Session, row: dict[str, Any]) -> None:
    insert = dialect_insert(session)
    session.execute(
        insert(IntegrationCancellation)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "order_id"])
    )


def cancelled_before_booking(session: Session, tenant_id: str, order_id: str) -> bool:
    return session.get(IntegrationCancellation, (tenant_id, order_id)) is not None


def set_delivery_outcome(
    session: Session,
    *,
    tenant_id: str,
    platform: str,
    delivery_id: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    session.execute(
        update(IntegrationDelivery)
        .where(
            IntegrationDelivery.tenant_id == tenant_id,
            IntegrationDelivery.platform == platform,
            IntegrationDelivery.delivery_id == delivery_id,
        )
        .values(outcome=outcome, detail=detail)
    )


def list_deliveries(
    session: Session, tenant_id: str, platform: str, limit: int
) -> list[IntegrationDelivery]:
    return list(
        session.scalars(
            select(IntegrationDelivery)
            .where(
                IntegrationDelivery.tenant_id == tenant_id,
                IntegrationDelivery.platform == platform,
            )
            .order_by(IntegrationDelivery.received_at.desc(), IntegrationDelivery.delivery_id)
            .limit(limit)
        )
    )


def insert_data_request(session: Session, **values: Any) -> None:
    session.add(DataRequest(**values))
    session.flush()


def get_data_request(session: Session, tenant_id: str, request_id: str) -> DataRequest | None:
    return session.get(DataRequest, (tenant_id, request_id))


def list_data_requests(
    session: Session, tenant_id: str, platform: str, limit: int
) -> list[DataRequest]:
    return list(
        session.scalars(
            select(DataRequest)
            .where(DataRequest.tenant_id == tenant_id, DataRequest.platform == platform)
            .order_by(DataRequest.received_at.desc(), DataRequest.request_id)
            .limit(limit)
        )
    )


def drop_exports(session: Session, tenant_id: str, member_id: str | None) -> None:
    """Forget exports made for a member (all of the tenant's when ``member_id`` is None)."""
    stmt = update(DataRequest).where(DataRequest.tenant_id == tenant_id)
    if member_id is not None:
        stmt = stmt.where(DataRequest.member_id == member_id)
    session.execute(stmt.values(export=None))


def shop_erasure_in_progress(session: Session, tenant_id: str, platform: str) -> str | None:
    return session.scalars(
        select(DataRequest.request_id).where(
            DataRequest.tenant_id == tenant_id,
            DataRequest.platform == platform,
            DataRequest.kind == "shop_erasure",
            DataRequest.status == "in_progress",
        )
    ).first()


def shop_erasures_in_progress(session: Session, tenant_id: str) -> list[DataRequest]:
    return list(
        session.scalars(
            select(DataRequest).where(
                DataRequest.tenant_id == tenant_id,
                DataRequest.kind == "shop_erasure",
                DataRequest.status == "in_progress",
            )
        )
    )


def finish_shop_erasures(session: Session, tenant_id: str) -> None:
    session.execute(
        update(DataRequest)
        .where(
            DataRequest.tenant_id == tenant_id,
            DataRequest.kind == "shop_erasure",
            DataRequest.status == "in_progress",
        )
        .values(status="completed")
    )


def count_members_to_erase(session: Session, tenant_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).where(Member.tenant_id == tenant_id, Member.erased_at.is_(None))
        )
        or 0
    )


def members_to_erase(session: Session, tenant_id: str, after: str, limit: int) -> list[str]:
    """Member ids not erased yet, in id order after ``after`` (one page)."""
    return list(
        session.scalars(
            select(Member.member_id)
            .where(
                Member.tenant_id == tenant_id,
                Member.member_id > after,
                Member.erased_at.is_(None),
            )
            .order_by(Member.member_id)
            .limit(limit)
        )
    )
