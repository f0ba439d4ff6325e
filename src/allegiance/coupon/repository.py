"""SQL for coupons and their uses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from allegiance.coupon.models import Coupon, CouponUse
from allegiance.db import bulk_insert, dialect_insert, is_postgres


def get_coupons(
    session: Session, tenant_id: str, codes: Sequence[str], *, lock: bool = False
) -> dict[str, Coupon]:
    """Coupons by code; ``lock`` takes row locks in code order (two orders racing for one
    coupon queue here on Postgres; SQLite serialises writers already)."""
    if not codes:
        return {}
    stmt = (
        select(Coupon)
        .where(Coupon.tenant_id == tenant_id, Coupon.code.in_(sorted(set(codes))))
        .order_by(Coupon.code)
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return {c.code: c for c in session.scalars(stmt)}


def insert_coupons(session: Session, rows: list[dict[str, Any]]) -> None:
    bulk_insert(session, Coupon.__table__, rows, skip_conflicts_on=("tenant_id", "code"))


def insert_codes(session: Session, base: dict[str, Any], codes: Iterable[str]) -> None:
    """Insert one coupon per code, all alike but for the code; taken codes are skipped.

    On Postgres the codes are copied into a temporary table and inserted in one statement
    (executemany of 100,000 rows costs seconds of round trips); SQLite inserts in bulk.
    """
    if not is_postgres(session):
        insert_coupons(session, [{**base, "code": c} for c in codes])
        return
    conn = session.connection()
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS coupon_codes_load (code varchar(64)) ON COMMIT DROP"
    )
    conn.exec_driver_sql("TRUNCATE coupon_codes_load")
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy("COPY coupon_codes_load (code) FROM STDIN") as copy:
        # codes are [A-Z0-9-] only: nothing to escape in COPY's text format
        copy.write("".join(f"{c}\n" for c in codes))
    columns = [name for name in base if name != "code"]
    conn.execute(
        text(
            f"INSERT INTO coupons (code, {', '.join(columns)}) "
            f"SELECT code, {', '.join(':' + name for name in columns)} FROM coupon_codes_load "
            "ON CONFLICT (tenant_id, code) DO NOTHING"
        ).bindparams(*(bindparam(name, type_=Coupon.__table__.c[name].type) for name in columns)),
        base,
    )


def insert_coupon_if_new(session: Session, row: dict[str, Any]) -> bool:
    """Insert one coupon unless its code is taken."""
    stmt = (
        dialect_insert(session)(Coupon.__table__)
        .values(row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "code"])
        .returning(Coupon.__table__.c.code)
    )
    return session.execute(stmt).first() is not None


def existing_codes(session: Session, tenant_id: str, codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    items = list(codes)
    for start in range(0, len(items), 1000):
        found.update(
            session.scalars(
                select(Coupon.code).where(
                    Coupon.tenant_id == tenant_id, Coupon.code.in_(items[start : start + 1000])
                )
            )
        )
    return found


def count_of_source(session: Session, tenant_id: str, source_type: str, source_id: str) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(
            select(func.count()).where(
                Coupon.tenant_id == tenant_id,
                Coupon.source_type == source_type,
                Coupon.source_id == source_id,
            )
        )
        or 0
    )


def codes_of_source(
    session: Session, tenant_id: str, source_type: str, source_id: str, *, page: int = 10_000
) -> Iterator[list[Any]]:
    """(code, starts_at, expires_at, max_uses, uses, status) of one source's coupons in code
    order, a page at a time (keyset, bounded memory)."""
    after = ""
    while True:
        rows = list(
            session.execute(
                select(
                    Coupon.code,
                    Coupon.starts_at,
                    Coupon.expires_at,
                    Coupon.max_uses,
                    Coupon.uses,
                    Coupon.status,
                )
                .where(
                    Coupon.tenant_id == tenant_id,
                    Coupon.source_type == source_type,
                    Coupon.source_id == source_id,
                    Coupon.code > after,
                )
                .order_by(Coupon.code)
                .limit(page)
            )
        )
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def coupons_of_source(
    session: Session, tenant_id: str, source_type: str, source_id: str
) -> list[Coupon]:
    """The few coupons of one source (an order's next-order coupons), locked on Postgres."""
    stmt = (
        select(Coupon)
        .where(
            Coupon.tenant_id == tenant_id,
            Coupon.source_type == source_type,
            Coupon.source_id == source_id,
        )
        .order_by(Coupon.code)
        .limit(1000)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def save_coupon(session: Session, coupon: Coupon) -> None:
    session.execute(
        update(Coupon)
        .where(Coupon.tenant_id == coupon.tenant_id, Coupon.code == coupon.code)
        .values(uses=coupon.uses, balance_minor=coupon.balance_minor, status=coupon.status)
    )


def get_use(session: Session, tenant_id: str, code: str, order_id: str) -> CouponUse | None:
    return session.get(CouponUse, (tenant_id, code, order_id))


def add_use(
    session: Session, tenant_id: str, code: str, order_id: str, amount_minor: int, now: datetime
) -> None:
    found = get_use(session, tenant_id, code, order_id)
    if found is None:
        session.add(
            CouponUse(
                tenant_id=tenant_id,
                code=code,
                order_id=order_id,
                amount_minor=amount_minor,
                used_at=now,
                released_at=None,
            )
        )
    else:  # used again after a release
        found.amount_minor = amount_minor
        found.used_at = now
        found.released_at = None
    session.flush()


def uses_of_order(session: Session, tenant_id: str, order_id: str) -> list[CouponUse]:
    return list(
        session.scalars(
            select(CouponUse)
            .where(
                CouponUse.tenant_id == tenant_id,
                CouponUse.order_id == order_id,
                CouponUse.released_at.is_(None),
            )
            .order_by(CouponUse.code)
        )
    )


def uses_of_coupon(session: Session, tenant_id: str, code: str, limit: int) -> list[CouponUse]:
    return list(
        session.scalars(
            select(CouponUse)
            .where(CouponUse.tenant_id == tenant_id, CouponUse.code == code)
            .order_by(CouponUse.used_at)
            .limit(limit)
        )
    )
