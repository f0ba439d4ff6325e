"""All SQL of the ledger. Called only from ``ledger/service.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert, bulk_insert_values, is_postgres
from allegiance.ledger.models import LedgerAccount, Lot, Transfer

_system_cache: dict[tuple[str, str, str], int] = {}


def system_account(session: Session, tenant_id: str, wallet: str, name: str) -> int:
    """Id of a tenant×wallet system account, creating it when missing.

    Ids are cached only once they are known to be committed: an id created inside a
    transaction that later rolls back would otherwise point at nothing (Postgres sequences
    don't roll back).
    """
    key = (tenant_id, wallet, name)
    cached = _system_cache.get(key)
    if cached is not None:
        return cached
    created_here: set[tuple[str, str, str]] = session.info.setdefault("new_system_accounts", set())
    found = _account_ids(session, tenant_id, wallet, "system", [name])
    if name in found:
        if key not in created_here:
            _system_cache[key] = found[name]
        return found[name]
    ids = ensure_accounts(session, tenant_id, wallet, "system", [name])
    created_here.add(key)
    return ids[name]


def ensure_accounts(
    session: Session, tenant_id: str, wallet: str, owner_type: str, owner_ids: Sequence[str]
) -> dict[str, int]:
    """Account ids for the owners, creating missing accounts (race-safe)."""
    if not owner_ids:
        return {}
    found = _account_ids(session, tenant_id, wallet, owner_type, owner_ids)
    missing = [o for o in owner_ids if o not in found]
    if len(missing) > 1 and is_postgres(session):
        # one statement for a batch's new accounts instead of a pipelined row each (imports);
        # in owner order, as below
        session.connection().execute(
            _NEW_ACCOUNTS_PG,
            {
                "tid": tenant_id,
                "wallet": wallet,
                "otype": owner_type,
                "owners": sorted(set(missing)),
            },
        )
        found.update(_account_ids(session, tenant_id, wallet, owner_type, missing))
    elif missing:
        bulk_insert(
            session,
            LedgerAccount.__table__,
            [
                {
                    "tenant_id": tenant_id,
                    "wallet": wallet,
                    "owner_type": owner_type,
                    "owner_id": owner,
                    "posted_minor": 0,
                    "pending_minor": 0,
                }
                for owner in sorted(set(missing))
            ],
            skip_conflicts_on=("tenant_id", "owner_type", "owner_id", "wallet"),
        )
        found.update(_account_ids(session, tenant_id, wallet, owner_type, missing))
    return found


_ACCOUNTS = cast(Table, LedgerAccount.__table__)
_NEW_ACCOUNTS_PG = text(
    "INSERT INTO ledger_accounts (tenant_id, wallet, owner_type, owner_id, posted_minor, "
    "pending_minor) SELECT :tid, :wallet, :otype, o, 0, 0 "
    "FROM unnest(CAST(:owners AS text[])) WITH ORDINALITY AS a(o, n) ORDER BY n "
    "ON CONFLICT (tenant_id, owner_type, owner_id, wallet) DO NOTHING"
)
_ACCOUNT_IDS = select(_ACCOUNTS.c.owner_id, _ACCOUNTS.c.id).where(
    _ACCOUNTS.c.tenant_id == bindparam("tid"),
    _ACCOUNTS.c.owner_type == bindparam("otype"),
    _ACCOUNTS.c.owner_id.in_(bindparam("owners", expanding=True)),
    _ACCOUNTS.c.wallet == bindparam("wallet"),
)
_MEMBER_ACCOUNTS = select(*_ACCOUNTS.c).where(
    _ACCOUNTS.c.tenant_id == bindparam("tid"),
    _ACCOUNTS.c.owner_type == bindparam("otype"),
    _ACCOUNTS.c.owner_id == bindparam("owner"),
)


def _account_ids(
    session: Session, tenant_id: str, wallet: str, owner_type: str, owner_ids: Sequence[str]
) -> dict[str, int]:
    result: dict[str, int] = {}
    ids = list(set(owner_ids))
    conn = session.connection()
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            _ACCOUNT_IDS,
            {
                "tid": tenant_id,
                "otype": owner_type,
                "owners": ids[start : start + 500],
                "wallet": wallet,
            },
        )
        result.update({r[0]: r[1] for r in rows})
    return result


def member_accounts(
    session: Session,
    tenant_id: str,
    member_id: str,
    *,
    lock: bool = False,
    owner_type: str = "member",
) -> list[Any]:
    """The holder's accounts (rows with the LedgerAccount columns)."""
    stmt = _MEMBER_ACCOUNTS.with_for_update() if lock and is_postgres(session) else _MEMBER_ACCOUNTS
    return list(
        session.connection().execute(
            stmt, {"tid": tenant_id, "otype": owner_type, "owner": member_id}
        )
    )


def account_balance(session: Session, account_id: int, *, lock: bool) -> tuple[int, int]:
    stmt = select(LedgerAccount.posted_minor, LedgerAccount.pending_minor).where(
        LedgerAccount.id == account_id
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    row = session.execute(stmt).one()
    return int(row[0]), int(row[1])


def add_balances(session: Session, changes: dict[int, tuple[int, int]]) -> None:
    """Apply (posted delta, pending delta) per account, in id order (no deadlocks)."""
    rows = [
        {"aid": account_id, "dp": posted, "dq": pending}
        for account_id, (posted, pending) in sorted(changes.items())
        if posted or pending
    ]
    if not rows:
        return
    session.connection().execute(_ADD_BALANCES, rows)


_ADD_BALANCES = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("aid"))
    .values(
        posted_minor=_ACCOUNTS.c.posted_minor + bindparam("dp"),
        pending_minor=_ACCOUNTS.c.pending_minor + bindparam("dq"),
    )
)


def debit_if_enough(session: Session, account_id: int, amount_minor: int) -> bool:
    """Take ``amount_minor`` from the posted balance only if it is there (checked in the write)."""
    result = session.execute(
        update(LedgerAccount)
        .where(LedgerAccount.id == account_id, LedgerAccount.posted_minor >= amount_minor)
        .values(posted_minor=LedgerAccount.posted_minor - amount_minor)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def insert_transfers(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert transfers with ids reserved up front (no per-row RETURNING); returns the ids."""
    if not rows:
        return []
    ids = _reserve_transfer_ids(session, len(rows))
    for row, transfer_id in zip(rows, ids, strict=True):
        row["id"] = transfer_id
        row.setdefault("partner", None)  # one column list for the whole batch
    bulk_insert(session, Transfer.__table__, rows)
    return ids


# column order of transfer and lot rows given as tuples (``insert_transfer_values``,
# ``insert_lot_values``); the id of a transfer and the transfer id of a lot come last
TRANSFER_COLUMNS = (
    "tenant_id", "wallet", "debit_account_id", "credit_account_id", "amount_minor", "code",
    "phase", "pending_id", "member_id", "order_id", "source_type", "source_id", "rule", "reason",
    "lot_id", "idem_key", "effective_at", "partner",
)  # fmt: skip
LOT_COLUMNS = (
    "tenant_id", "wallet", "account_id", "member_id", "status", "amount_minor",
    "remaining_minor", "available_at", "expires_at", "order_id", "rule", "notified_at",
    "created_at",
)  # fmt: skip


def insert_transfer_values(session: Session, rows: list[tuple[Any, ...]]) -> list[int]:
    """``insert_transfers`` for rows as tuples in ``TRANSFER_COLUMNS`` order; returns the ids
    (reserved up front, in row order)."""
    if not rows:
        return []
    ids = _reserve_transfer_ids(session, len(rows))
    bulk_insert_values(
        session,
        Transfer.__table__,
        (*TRANSFER_COLUMNS, "id"),
        [(*row, transfer_id) for row, transfer_id in zip(rows, ids, strict=True)],
    )
    return ids


def insert_lot_values(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Lots as tuples in ``LOT_COLUMNS`` order followed by the lot's transfer id."""
    bulk_insert_values(session, Lot.__table__, (*LOT_COLUMNS, "transfer_id"), rows)


def _reserve_transfer_ids(session: Session, count: int) -> list[int]:
    if is_postgres(session):
        result = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('ledger_transfers', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return sorted(int(r[0]) for r in result)
    # SQLite: the booking transaction holds the database write lock (BEGIN IMMEDIATE),
    # so nobody else can take these ids before we insert them
    top = session.execute(select(func.max(Transfer.id))).scalar_one_or_none() or 0
    return list(range(int(top) + 1, int(top) + 1 + count))


def insert_lots(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    bulk_insert(session, Lot.__table__, rows)
    return []


def update_lots(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each row: {lid, remaining, status, expires_at?, available_at?}."""
    if not rows:
        return

    plain = [r for r in rows if "expires_at" not in r]
    timed = [r for r in rows if "expires_at" in r]
    conn = session.connection()
    if plain:
        conn.execute(
            update(Lot)
            .where(Lot.id == bindparam("lid"))
            .values(remaining_minor=bindparam("remaining"), status=bindparam("status")),
            plain,
        )
    if timed:
        conn.execute(
            update(Lot)
            .where(Lot.id == bindparam("lid"))
            .values(
                remaining_minor=bindparam("remaining"),
                status=bindparam("status"),
                expires_at=bindparam("expires_at"),
            ),
            timed,
        )


def lots_by_id(session: Session, lot_ids: Sequence[int]) -> list[Lot]:
    if not lot_ids:
        return []
    return list(session.scalars(select(Lot).where(Lot.id.in_(list(lot_ids)))))


def open_lots(
    session: Session, account_id: int, *, status: str, order_id: str | None = None
) -> list[Lot]:
    """Lots with something left, earliest expiry first (no expiry last), then oldest."""
    stmt = select(Lot).where(Lot.account_id == account_id, Lot.status == status)
    if status == "active":
        stmt = stmt.where(Lot.remaining_minor > 0)
    if order_id is not None:
        stmt = stmt.where(Lot.order_id == order_id)
    stmt = stmt.order_by(case((Lot.expires_at.is_(None), 1), else_=0), Lot.expires_at, Lot.id)
    return list(session.scalars(stmt))


def accounts_in_debt(session: Session, account_ids: Sequence[int]) -> set[int]:
    """Which of the accounts have a debt lot (rare: only after unlimited reversals)."""
    found: set[int] = set()
    ids = sorted(set(account_ids))
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(Lot.account_id)
                .where(
                    Lot.account_id.in_(ids[start : start + 500]),
                    Lot.status == "active",
                    Lot.remaining_minor < 0,
                )
                .distinct()
            )
        )
    return found


def debt_lots(session: Session, account_id: int) -> list[Lot]:
    return list(
        session.scalars(
            select(Lot)
            .where(Lot.account_id == account_id, Lot.status == "active", Lot.remaining_minor < 0)
            .order_by(Lot.id)
        )
    )


def due_lots(session: Session, account_ids: Sequence[int], now: datetime) -> list[Lot]:
    """Pending lots that have matured and active lots that have expired, oldest event first."""
    return list(
        session.scalars(
            select(Lot)
            .where(
                Lot.account_id.in_(account_ids),
                or_(
                    and_(Lot.status == "pending", Lot.available_at <= now),
                    and_(
                        Lot.status == "active",
                        Lot.remaining_minor > 0,
                        Lot.expires_at.is_not(None),
                        Lot.expires_at <= now,
                    ),
                ),
            )
            .order_by(Lot.id)
        )
    )


def next_lot_moment(session: Session, account_ids: Sequence[int]) -> datetime | None:
    pending = select(func.min(Lot.available_at)).where(
        Lot.account_id.in_(account_ids), Lot.status == "pending"
    )
    expiring = select(func.min(Lot.expires_at)).where(
        Lot.account_id.in_(account_ids), Lot.status == "active", Lot.remaining_minor > 0
    )
    a = session.execute(pending).scalar_one_or_none()
    b = session.execute(expiring).scalar_one_or_none()
    moments = [_aware(m) for m in (a, b) if m is not None]
    return min(moments) if moments else None


def _aware(value: Any) -> datetime:
    from allegiance.kit.orm import UTCDateTime

    converted = UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    assert converted is not None
    return converted


def lots_of_accounts(session: Session, account_ids: Sequence[int]) -> list[Lot]:
    if not account_ids:
        return []
    return list(
        session.scalars(
            select(Lot).where(
                Lot.account_id.in_(list(account_ids)), Lot.status.in_(("pending", "active"))
            )
        )
    )


def order_wallet_totals(session: Session, tenant_id: str, order_id: str) -> dict[str, list[int]]:
    """Per wallet: [points earned by the order, points reversed for it so far]."""
    rows = session.execute(
        select(
            Transfer.wallet,
            func.sum(case((Transfer.code == "earn", Transfer.amount_minor), else_=0)),
            func.sum(case((Transfer.code == "reverse", Transfer.amount_minor), else_=0)),
        )
        .where(Transfer.tenant_id == tenant_id, Transfer.order_id == order_id)
        .group_by(Transfer.wallet)
    )
    return {r[0]: [int(r[1] or 0), int(r[2] or 0)] for r in rows}


def order_earn_source(
    session: Session, tenant_id: str, order_id: str, wallet: str
) -> tuple[int, str | None] | None:
    """(debit account, partner) of the order's earning in the wallet: who funded it."""
    row = session.execute(
        select(Transfer.debit_account_id, Transfer.partner)
        .where(
            Transfer.tenant_id == tenant_id,
            Transfer.order_id == order_id,
            Transfer.wallet == wallet,
            Transfer.code == "earn",
        )
        .order_by(Transfer.id)
        .limit(1)
    ).first()
    return (int(row[0]), row[1]) if row else None


def transfer_sources(
    session: Session, transfer_ids: Sequence[int]
) -> dict[int, tuple[int, str | None]]:
    """Per transfer id: (debit account, partner)."""
    found: dict[int, tuple[int, str | None]] = {}
    ids = sorted(set(transfer_ids))
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Transfer.id, Transfer.debit_account_id, Transfer.partner).where(
                Transfer.id.in_(ids[start : start + 500])
            )
        )
        found.update({int(r[0]): (int(r[1]), r[2]) for r in rows})
    return found


def transfers_page(
    session: Session, tenant_id: str, member_id: str, *, before_id: int | None, limit: int
) -> list[Transfer]:
    stmt = select(Transfer).where(Transfer.tenant_id == tenant_id, Transfer.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(Transfer.id < before_id)
    return list(session.scalars(stmt.order_by(Transfer.id.desc()).limit(limit)))


def lots_to_notify(
    session: Session, tenant_id: str, wallet: str, now: datetime, until: datetime, limit: int
) -> list[Lot]:
    """Active lots expiring in (now, until] not yet announced; locked, skipping locked ones."""
    stmt = (
        select(Lot)
        .where(
            Lot.tenant_id == tenant_id,
            Lot.wallet == wallet,
            Lot.status == "active",
            Lot.remaining_minor > 0,
            Lot.notified_at.is_(None),
            Lot.expires_at.is_not(None),
            Lot.expires_at > now,
            Lot.expires_at <= until,
        )
        .order_by(Lot.member_id, Lot.expires_at, Lot.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def mark_notified(session: Session, lot_ids: Sequence[int], now: datetime) -> None:
    if lot_ids:
        session.execute(update(Lot).where(Lot.id.in_(lot_ids)).values(notified_at=now))


# ---- verification queries -------------------------------------------------------------


def derived_balances(session: Session, tenant_id: str) -> dict[int, tuple[int, int]]:
    """Per account (posted, pending) recomputed from every transfer of the tenant."""
    t = Transfer
    posted_in = case((t.phase == "posted", t.amount_minor), else_=literal(0))
    pending_in = case(
        (t.phase == "pending", t.amount_minor),
        (and_(t.phase == "posted", t.pending_id.is_not(None)), -t.amount_minor),
        (t.phase == "void", -t.amount_minor),
        else_=literal(0),
    )
    result: dict[int, list[int]] = {}
    credit = session.execute(
        select(t.credit_account_id, func.sum(posted_in), func.sum(pending_in))
        .where(t.tenant_id == tenant_id)
        .group_by(t.credit_account_id)
    )
    for account_id, posted, pending in credit:
        entry = result.setdefault(account_id, [0, 0])
        entry[0] += int(posted or 0)
        entry[1] += int(pending or 0)
    debit = session.execute(
        select(t.debit_account_id, func.sum(posted_in), func.sum(pending_in))
        .where(t.tenant_id == tenant_id)
        .group_by(t.debit_account_id)
    )
    for account_id, posted, pending in debit:
        entry = result.setdefault(account_id, [0, 0])
        entry[0] -= int(posted or 0)
        entry[1] -= int(pending or 0)
    return {k: (v[0], v[1]) for k, v in result.items()}


def system_account_ids(session: Session, tenant_id: str) -> set[int]:
    return set(
        session.scalars(
            select(LedgerAccount.id).where(
                LedgerAccount.tenant_id == tenant_id, LedgerAccount.owner_type == "system"
            )
        )
    )


def accounts_of_tenant(session: Session, tenant_id: str) -> list[LedgerAccount]:
    return list(session.scalars(select(LedgerAccount).where(LedgerAccount.tenant_id == tenant_id)))


def lot_sums(session: Session, tenant_id: str) -> dict[tuple[int, str], int]:
    rows = session.execute(
        select(Lot.account_id, Lot.status, func.sum(Lot.remaining_minor))
        .where(Lot.tenant_id == tenant_id, Lot.status.in_(("pending", "active")))
        .group_by(Lot.account_id, Lot.status)
    )
    return {(r[0], r[1]): int(r[2] or 0) for r in rows}


def bad_lots(session: Session, tenant_id: str) -> list[Lot]:
    """Lots whose remaining amount is outside [0, amount] (debt lots: [amount, 0])."""
    return list(
        session.scalars(
            select(Lot).where(
                Lot.tenant_id == tenant_id,
                or_(
                    and_(Lot.amount_minor >= 0, Lot.remaining_minor < 0),
                    and_(Lot.amount_minor >= 0, Lot.remaining_minor > Lot.amount_minor),
                    and_(Lot.amount_minor < 0, Lot.remaining_minor > 0),
                    and_(Lot.amount_minor < 0, Lot.remaining_minor < Lot.amount_minor),
                    and_(Lot.status == "closed", Lot.remaining_minor != 0),
                ),
            )
        )
    )


def over_reversed_orders(session: Session, tenant_id: str) -> list[tuple[str, str, int, int]]:
    t = Transfer
    earned = func.sum(case((t.code == "earn", t.amount_minor), else_=0))
    reversed_ = func.sum(case((t.code == "reverse", t.amount_minor), else_=0))
    rows = session.execute(
        select(t.order_id, t.wallet, earned, reversed_)
        .where(t.tenant_id == tenant_id, t.order_id.is_not(None))
        .group_by(t.order_id, t.wallet)
        .having(reversed_ > earned)
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def tenants_with_ledger(session: Session) -> list[str]:
    return [r[0] for r in session.execute(select(LedgerAccount.tenant_id).distinct())]
