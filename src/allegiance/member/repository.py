"""SQL for members. ``ensure_locked`` is how every member write serialises on Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, literal_column, select, text, update
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, dialect_insert, is_postgres, sqlite_timestamp
from allegiance.member.models import Member


def get(session: Session, tenant_id: str, member_id: str, *, lock: bool = False) -> Member | None:
    stmt = select(Member).where(Member.tenant_id == tenant_id, Member.member_id == member_id)
    if lock and is_postgres(session):
        # re-read under the lock: an object loaded earlier in this session must not be reused
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def upsert(
    session: Session, values: dict[str, Any], update_fields: Sequence[str]
) -> tuple[Member, bool]:
    """Insert or update one member and return it row-locked (Postgres: the upsert locks it)
    with whether this statement created it (Postgres: a row inserted by this transaction has
    ``xmax = 0``; SQLite has one writer, so a read before the write is exact)."""
    ins = dialect_insert(session)
    stmt = ins(Member).values(**values)
    set_ = {f: stmt.excluded[f] for f in update_fields}
    set_["updated_at"] = stmt.excluded["updated_at"]
    stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "member_id"], set_=set_)
    if is_postgres(session):
        created = bool(session.execute(stmt.returning(literal_column("(xmax = 0)"))).scalar_one())
    else:
        created = get(session, values["tenant_id"], values["member_id"]) is None
        session.execute(stmt)
    member = get(session, values["tenant_id"], values["member_id"], lock=False)
    assert member is not None
    return member, created


_MEMBERS = cast(Table, Member.__table__)
_NEW_MEMBER_COLUMNS = (
    "tenant_id", "member_id", "tags", "attributes", "enrolled_at", "created_at", "updated_at",
    "orders_count", "spend_minor",
)  # fmt: skip
_upsert_cache: dict[str, Any] = {}


def _upsert_one(session: Session) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE ... RETURNING: creates or row-locks one member."""
    dialect = session.get_bind().dialect.name
    stmt = _upsert_cache.get(dialect)
    if stmt is None:
        ins = dialect_insert(session)(_MEMBERS).values(
            {name: bindparam(name) for name in _NEW_MEMBER_COLUMNS}
        )
        returning: list[Any] = list(_MEMBERS.c)
        if dialect == "postgresql":
            # a row this statement inserted has no deleting/locking transaction yet
            returning.append(literal_column("(xmax = 0)").label("inserted_"))
        stmt = ins.on_conflict_do_update(
            index_elements=["tenant_id", "member_id"],
            set_={"tenant_id": ins.excluded.tenant_id},
        ).returning(*returning)
        _upsert_cache[dialect] = stmt
    return stmt


_LOCK_MEMBERS = (
    select(*_MEMBERS.c)
    .where(
        _MEMBERS.c.tenant_id == bindparam("tid"),
        _MEMBERS.c.member_id.in_(bindparam("ids", expanding=True)),
    )
    .order_by(_MEMBERS.c.member_id)
)


def _detached(row: Any) -> Member:
    """A member row as a plain mutable object with the model's attributes (no ORM state:
    building tracked instances costs more than the query)."""
    return cast(Member, SimpleNamespace(**row._mapping))


def ensure_locked(
    session: Session,
    tenant_id: str,
    member_ids: Sequence[str],
    now: datetime,
    created: list[str] | None = None,
) -> dict[str, Member]:
    """Create missing members (enrolled now) and lock all of them, in id order.

    The members come back detached (not tracked by the session): changes are written with
    explicit updates, never by an implicit flush. ``created``, when given, receives the ids
    this call created (one extra indexed read per 500 ids).
    """
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    existing: set[str] = set()
    single_on_postgres = len(ids) == 1 and is_postgres(session)
    if created is not None and not single_on_postgres:
        existing = _existing_ids(session, tenant_id, ids)
    rows = [
        {
            "tenant_id": tenant_id,
            "member_id": member_id,
            "tags": [],
            "attributes": {},
            "enrolled_at": now,
            "created_at": now,
            "updated_at": now,
            "orders_count": 0,
            "spend_minor": 0,
        }
        for member_id in ids
    ]
    conn = session.connection()
    if len(rows) == 1:
        values = dict(conn.execute(_upsert_one(session), rows[0]).one()._mapping)
        if values.pop("inserted_", False) and created is not None:
            created.append(values["member_id"])
        found = {values["member_id"]: cast(Member, SimpleNamespace(**values))}
        if single_on_postgres:
            return found
    else:
        if is_postgres(session):
            conn.execute(_NEW_MEMBERS_PG, {"tid": tenant_id, "ids": ids, "now": now})
        else:
            bulk_insert(session, _MEMBERS, rows, skip_conflicts_on=("tenant_id", "member_id"))
        lock = _LOCK_MEMBERS.with_for_update() if is_postgres(session) else _LOCK_MEMBERS
        found = {}
        for start in range(0, len(ids), 500):
            for row in conn.execute(lock, {"tid": tenant_id, "ids": ids[start : start + 500]}):
                found[row.member_id] = _detached(row)
    if created is not None:
        # a concurrent creator (Postgres) wrote its own ``now``: the row is not ours
        created.extend(
            m for m in ids if m not in existing and m in found and found[m].created_at == now
        )
    return found


def _existing_ids(session: Session, tenant_id: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(Member.member_id).where(
                    Member.tenant_id == tenant_id, Member.member_id.in_(ids[start : start + 500])
                )
            )
        )
    return found


# Postgres: the missing members of a batch in one statement (the rows differ only by id)
_NEW_MEMBERS_PG = text(
    "INSERT INTO members (tenant_id, member_id, tags, attributes, enrolled_at, created_at, "
    "updated_at, orders_count, spend_minor) "
    "SELECT :tid, m, '[]', '{}', :now, :now, :now, 0, 0 FROM unnest(CAST(:ids AS text[])) AS m "
    "ON CONFLICT (tenant_id, member_id) DO NOTHING"
)


def update_stats(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each row: {tid, mid, orders_count, spend_minor, first_order_at, last_order_at,
    last_activity_at, settle_at}."""
    if not rows:
        return
    if is_postgres(session) and len(rows) > 1 and len({r["tid"] for r in rows}) == 1:
        # one statement for the batch instead of a round of UPDATEs (imports)
        columns = {name: [r[name] for r in rows] for name in _STATS_COLUMNS}
        session.connection().execute(_UPDATE_STATS_PG, {"tid": rows[0]["tid"], **columns})
        return
    if len(rows) > 1 and not is_postgres(session):
        # straight to the driver: the statement's per-row parameter handling cost more than
        # the updates themselves (imports update a batch's members at once)
        stamp = sqlite_timestamp
        session.connection().exec_driver_sql(
            _UPDATE_STATS_SQLITE,
            [
                (
                    r["orders_count"], r["spend_minor"], stamp(r["first_order_at"]),
                    stamp(r["last_order_at"]), stamp(r["last_activity_at"]),
                    stamp(r["settle_at"]), r["tid"], r["mid"],
                )
                for r in rows
            ],
        )  # fmt: skip
        return
    session.connection().execute(_UPDATE_STATS, rows)


_STATS_COLUMNS = (
    "mid", "orders_count", "spend_minor", "first_order_at", "last_order_at", "last_activity_at",
    "settle_at",
)  # fmt: skip
_UPDATE_STATS_PG = text(
    "UPDATE members AS m SET orders_count = s.orders_count, spend_minor = s.spend_minor, "
    "first_order_at = s.first_order_at, last_order_at = s.last_order_at, "
    "last_activity_at = s.last_activity_at, settle_at = s.settle_at "
    "FROM unnest(CAST(:mid AS text[]), CAST(:orders_count AS integer[]), "
    "CAST(:spend_minor AS bigint[]), CAST(:first_order_at AS timestamptz[]), "
    "CAST(:last_order_at AS timestamptz[]), CAST(:last_activity_at AS timestamptz[]), "
    "CAST(:settle_at AS timestamptz[])) "
    "AS s(mid, orders_count, spend_minor, first_order_at, last_order_at, last_activity_at, "
    "settle_at) "
    "WHERE m.tenant_id = :tid AND m.member_id = s.mid"
)


_UPDATE_STATS_SQLITE = (
    "UPDATE members SET orders_count = ?, spend_minor = ?, first_order_at = ?, "
    "last_order_at = ?, last_activity_at = ?, settle_at = ? "
    "WHERE tenant_id = ? AND member_id = ?"
)
_UPDATE_STATS = (
    update(_MEMBERS)
    .where(_MEMBERS.c.tenant_id == bindparam("tid"), _MEMBERS.c.member_id == bindparam("mid"))
    .values(
        orders_count=bindparam("orders_count"),
        spend_minor=bindparam("spend_minor"),
        first_order_at=bindparam("first_order_at"),
        last_order_at=bindparam("last_order_at"),
        last_activity_at=bindparam("last_activity_at"),
        settle_at=bindparam("settle_at"),
    )
)


def set_settle_at(session: Session, tenant_id: str, member_id: str, at: datetime | None) -> None:
    session.execute(
        update(Member)
        .where(Member.tenant_id == tenant_id, Member.member_id == member_id)
        .values(settle_at=at)
    )


def set_activity(session: Session, tenant_id: str, member_id: str, at: datetime) -> None:
    session.execute(
        update(Member)
        .where(Member.tenant_id == tenant_id, Member.member_id == member_id)
        .values(last_activity_at=at)
    )


def erase(session: Session, tenant_id: str, member_id: str, now: datetime) -> None:
    session.execute(
        update(Member)
        .where(Member.tenant_id == tenant_id, Member.member_id == member_id)
        .values(
            email=None,
            name=None,
            phone=None,
            birthdate=None,
            locale=None,
            tags=[],
            attributes={},
            referral_code=None,
            email_consent=False,
            email_consent_at=None,
            marketing_consent=False,
            marketing_consent_at=None,
            erased_at=now,
            updated_at=now,
        )
    )


def due_for_settlement(
    session: Session, tenant_id: str, now: datetime, limit: int, skip_locked: bool
) -> list[str]:
    stmt = (
        select(Member.member_id)
        .where(
            Member.tenant_id == tenant_id, Member.settle_at.is_not(None), Member.settle_at <= now
        )
        .order_by(Member.member_id)
        .limit(limit)
    )
    if skip_locked and is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def set_tags(
    session: Session, tenant_id: str, member_id: str, tags: list[str], now: datetime
) -> None:
    session.execute(
        update(Member)
        .where(Member.tenant_id == tenant_id, Member.member_id == member_id)
        .values(tags=tags, updated_at=now)
    )
