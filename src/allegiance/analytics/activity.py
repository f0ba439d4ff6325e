"""``member_months``: the calendar months (program time zone) each member ordered in.

The cohort matrix asks, for every member whose first order fell in a range of months, in
which months of the range it ordered. Counting that from the orders means grouping every order
of the range by member; this table holds the answer per (member, month) instead, with the
member's first-order time beside it, so the matrix is one index-only range read.

It is exact, not a cache that lags: it is written in the transactions that book and cancel
orders, after the member's row lock, touching only that member's rows (concurrent bookings
share no row). A month is local to the program's time zone, so a time zone change makes the
stored months wrong: the state row then says so, reads count from the orders, and the
``member_months`` job (``analytics.tasks.rebuild_member_months``) rebuilds the tenant member
by member under the same locks (docs/analytics.md#cohorts, decisions 569-574).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Table, bindparam, delete, exists, select, text, update
from sqlalchemy.orm import Session

from allegiance.analytics.models import MemberMonth, MemberMonthsState
from allegiance.config import get_settings
from allegiance.db import bulk_insert_values, is_postgres
from allegiance.kit.clock import zone
from allegiance.member.models import Member
from allegiance.order.models import Order

# a rebuild starts this long after the time zone changed: a booking that read the old program
# before the change and commits after it wrote its month in the old zone before the rebuild
SETTLE = timedelta(minutes=1)

_COLUMNS = ("tenant_id", "member_id", "month", "first_order_at")
_KEY = ("tenant_id", "member_id", "month")

_zones: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    found = _zones.get(name)
    if found is None:
        found = _zones[name] = zone(name)
    return found


_months: dict[tuple[datetime, str], int] = {}


def month_of(at: datetime, timezone: str) -> int:
    """The calendar month holding ``at`` in ``timezone``, as YYYYMM (memoised: an import's
    orders share their timestamps)."""
    key = (at, timezone)
    found = _months.get(key)
    if found is None:
        if len(_months) > 50_000:
            _months.clear()
        local = at.astimezone(_zone(timezone))
        found = _months[key] = local.year * 100 + local.month
    return found


def month_span(month: int, timezone: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of a YYYYMM month, in UTC."""
    year, number = divmod(month, 100)
    tz = _zone(timezone)
    nxt = (year + 1, 1) if number == 12 else (year, number + 1)
    return (
        datetime(year, number, 1, tzinfo=tz).astimezone(UTC),
        datetime(*nxt, 1, tzinfo=tz).astimezone(UTC),
    )


# ---- writes with the orders ----------------------------------------------------------------


def record_bookings(
    session: Session,
    *,
    tenant_id: str,
    timezone: str,
    ordered: Iterable[tuple[str, datetime]],
    first_before: dict[str, datetime | None],
    first_after: dict[str, datetime | None],
) -> None:
    """Add the months of newly booked orders (``ordered``: (member id, placed at)); the caller
    holds the members' locks. ``first_before``/``first_after``: each member's first-order time
    before and after the booking; an earlier order booked late moves the member's cohort."""
    moved = [
        (first_after[mid], mid)
        for mid, before in first_before.items()
        if before is not None and first_after.get(mid) is not None and first_after[mid] != before
    ]
    if moved:
        table = MemberMonth.__table__
        assert isinstance(table, Table)
        statement = (
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c.member_id == bindparam("mid"))
            .values(first_order_at=bindparam("first"))
        )
        session.connection().execute(
            statement, [{"first": first, "mid": mid} for first, mid in moved]
        )
    rows = {
        (tenant_id, mid, month_of(at, timezone), first_after[mid])
        for mid, at in ordered
        if first_after.get(mid) is not None
    }
    if len(rows) > 1 and is_postgres(session):
        # a batch (imports, the rebuild): leave out the months already there and insert the
        # rest plainly; ON CONFLICT's speculative insertion doubled the server's work. Safe
        # because the caller holds these members' locks: nobody else writes their rows now.
        mids = sorted({r[1] for r in rows})
        there = set(
            session.connection().execute(_EXISTING_PG, {"tid": tenant_id, "mids": mids}).all()
        )
        new_rows = sorted(r for r in rows if (r[1], r[2]) not in there)
        if new_rows:
            session.connection().execute(
                _INSERT_PG,
                {
                    "tid": tenant_id,
                    "mids": [r[1] for r in new_rows],
                    "months": [r[2] for r in new_rows],
                    "firsts": [r[3] for r in new_rows],
                },
            )
    elif rows:
        bulk_insert_values(
            session, MemberMonth.__table__, _COLUMNS, sorted(rows), skip_conflicts_on=_KEY
        )


_EXISTING_PG = text(
    "SELECT member_id, month FROM member_months "
    "WHERE tenant_id = :tid AND member_id = ANY(CAST(:mids AS text[]))"
)
_INSERT_PG = text(
    "INSERT INTO member_months (tenant_id, member_id, month, first_order_at) "
    "SELECT :tid, m, n, f FROM unnest(CAST(:mids AS text[]), CAST(:months AS integer[]), "
    "CAST(:firsts AS timestamptz[])) AS s(m, n, f)"
)


def record_cancel(
    session: Session, *, tenant_id: str, timezone: str, member_id: str, placed_at: datetime
) -> None:
    """After an order was cancelled (member locked): drop its month unless another order of
    the member in that month still counts."""
    month = month_of(placed_at, timezone)
    start, end = month_span(month, timezone)
    still = session.scalar(
        select(
            exists().where(
                Order.tenant_id == tenant_id,
                Order.member_id == member_id,
                Order.placed_at >= start,
                Order.placed_at < end,
                Order.status != "cancelled",
            )
        )
    )
    if not still:
        session.execute(
            delete(MemberMonth).where(
                MemberMonth.tenant_id == tenant_id,
                MemberMonth.member_id == member_id,
                MemberMonth.month == month,
            )
        )


# ---- time zone and state -------------------------------------------------------------------


def state_of(session: Session, tenant_id: str, *, lock: bool = False) -> MemberMonthsState | None:
    statement = select(MemberMonthsState).where(MemberMonthsState.tenant_id == tenant_id)
    if lock and is_postgres(session):
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.execute(statement).scalar_one_or_none()


def exact_for(session: Session, tenant_id: str, timezone: str) -> bool:
    """Whether the tenant's ``member_months`` are complete and exact in ``timezone``."""
    state = state_of(session, tenant_id)
    return state is not None and state.timezone == timezone


def program_applied(
    session: Session,
    *,
    tenant_id: str,
    timezone: str,
    previous_timezone: str | None,
    now: datetime,
) -> None:
    """Called when a program version is applied (under the tenant's program lock);
    ``previous_timezone`` is None for the tenant's first program. A first program of a tenant
    without orders starts exact; a time zone change makes the months stale until the job has
    rebuilt them."""
    first = previous_timezone is None
    if not first and previous_timezone == timezone:
        return
    state = state_of(session, tenant_id, lock=True)
    if state is None:
        state = MemberMonthsState(tenant_id=tenant_id)
        session.add(state)
    empty = first and not session.scalar(select(exists().where(Order.tenant_id == tenant_id)))
    # any change, even back to the zone the table was built for: bookings in between wrote
    # their months in the other zone
    state.timezone = timezone if empty else None
    state.building = state.cursor = None
    state.changed_at = now
    session.flush()


def rebuild_batch(
    session: Session, tenant_id: str, timezone: str, after: str | None, size: int
) -> list[str]:
    """Recount the months of the next ``size`` members after ``after`` (locked, in id order)."""
    statement = _members_after(tenant_id, after, size)
    if is_postgres(session):
        statement = statement.with_for_update()
    members = list(session.execute(statement))
    if not members:
        return []
    ids = [m.member_id for m in members]
    firsts = {m.member_id: m.first_order_at for m in members}
    session.execute(
        delete(MemberMonth).where(
            MemberMonth.tenant_id == tenant_id, MemberMonth.member_id.in_(ids)
        )
    )
    record_bookings(
        session,
        tenant_id=tenant_id,
        timezone=timezone,
        ordered=_counted_orders(session, tenant_id, ids),
        first_before={},
        first_after=firsts,
    )
    return ids


def _members_after(tenant_id: str, after: str | None, size: int) -> Select[str, datetime | None]:
    """(member id, first order) of the next ``size`` members of the tenant after ``after``."""
    statement = (
        select(Member.member_id, Member.first_order_at)
        .where(Member.tenant_id == tenant_id)
        .order_by(Member.member_id)
        .limit(size)
    )
    if after is not None:
        statement = statement.where(Member.member_id > after)
    return statement


def _counted_orders(
    session: Session, tenant_id: str, member_ids: Sequence[str] | None
) -> list[tuple[str, datetime]]:
    """(member id, placed at) of the orders that count (members' orders, not cancelled)."""
    statement = select(Order.member_id, Order.placed_at).where(
        Order.tenant_id == tenant_id,
        Order.member_id.is_not(None),
        Order.status != "cancelled",
    )
    if member_ids is not None:
        statement = statement.where(Order.member_id.in_(member_ids))
    return [(str(mid), at) for mid, at in session.execute(statement)]


# ---- checks --------------------------------------------------------------------------------


def verify(session: Session, *, tenant_id: str, timezone: str | None) -> list[str]:
    """When the table claims to be exact, compare it with a recount from the orders and the
    members' first-order times, ``job_batch_size`` members at a time (memory stays flat on a
    large tenant); returns readable breaches (part of ``allegiance ledger verify``)."""
    if timezone is None or not exact_for(session, tenant_id, timezone):
        return []
    size = get_settings().job_batch_size
    breaches: list[str] = []
    after: str | None = None
    while True:
        firsts = dict(session.execute(_members_after(tenant_id, after, size)).tuples().all())
        if not firsts:
            break
        ids = list(firsts)
        breaches += _compare(session, tenant_id, timezone, ids, firsts)
        after = ids[-1]
    strays = session.scalars(
        select(MemberMonth.member_id)
        .where(
            MemberMonth.tenant_id == tenant_id,
            ~exists().where(
                Member.tenant_id == MemberMonth.tenant_id,
                Member.member_id == MemberMonth.member_id,
            ),
        )
        .distinct()
    ).all()
    breaches += [f"member {mid}: in member_months but not a member" for mid in sorted(strays)]
    return breaches


def _compare(
    session: Session,
    tenant_id: str,
    timezone: str,
    ids: list[str],
    firsts: dict[str, datetime | None],
) -> list[str]:
    expected = {
        (mid, month_of(at, timezone)): firsts.get(mid)
        for mid, at in _counted_orders(session, tenant_id, ids)
    }
    stored = {
        (mid, month): first
        for mid, month, first in session.execute(
            select(MemberMonth.member_id, MemberMonth.month, MemberMonth.first_order_at).where(
                MemberMonth.tenant_id == tenant_id, MemberMonth.member_id.in_(ids)
            )
        )
    }
    breaches = []
    for key in sorted(expected.keys() - stored.keys()):
        breaches.append(f"member {key[0]}: ordered in month {key[1]}, missing from member_months")
    for key in sorted(stored.keys() - expected.keys()):
        breaches.append(f"member {key[0]}: member_months has month {key[1]} without an order")
    for key in sorted(expected.keys() & stored.keys()):
        if expected[key] != stored[key]:
            breaches.append(
                f"member {key[0]} month {key[1]}: first order {stored[key]} in member_months, "
                f"{expected[key]} on the member"
            )
    return breaches
