"""SQL for analytics reads (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    distinct,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session

from allegiance.analytics.models import MemberMonth
from allegiance.engagement.game_models import SurveyResponse
from allegiance.ledger.models import LedgerAccount, Transfer
from allegiance.member.models import Member
from allegiance.order.models import Order
from allegiance.segment.models import SegmentMembership
from allegiance.tier.models import TierState


def partner_point_sums(
    session: Session, tenant_id: str, start: datetime, end: datetime
) -> dict[tuple[str, str, str], int]:
    """Σ amount per (partner, wallet, code) of partner-stamped transfers in [start, end).

    Codes: ``earn`` (issued at a partner), ``reverse`` (taken back by its refunds), ``spend``
    (redeemed at a partner), ``return`` (a cancelled redemption's points given back). Served by
    the (tenant, partner, effective_at) index.
    """
    rows = session.execute(
        select(Transfer.partner, Transfer.wallet, Transfer.code, func.sum(Transfer.amount_minor))
        .where(
            Transfer.tenant_id == tenant_id,
            Transfer.partner.is_not(None),
            Transfer.effective_at >= start,
            Transfer.effective_at < end,
            Transfer.code.in_(("earn", "reverse", "spend", "return")),
        )
        .group_by(Transfer.partner, Transfer.wallet, Transfer.code)
    )
    return {(str(r[0]), r[1], r[2]): int(r[3] or 0) for r in rows}


# ---- KPIs ---------------------------------------------------------------------------------
# Every function takes an optional ``members``: a SELECT of one column of member ids (a tier,
# later a segment). When given, only those members' rows count; several filters AND together.

MemberFilter = Select[Any] | None


def tune_for_aggregates(session: Session, work_mem_mb: int) -> None:
    """Give this read transaction's hash aggregates and sorts room in memory on Postgres (the
    server default, 4 MB, makes a month of customers spill to disk) and turn JIT compilation
    off for it; ends with the transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{int(work_mem_mb)}MB'"))
        # compiling these one-off aggregates costs more (0.3–1.5 s each) than it saves
        session.execute(text("SET LOCAL jit = off"))


# codes whose sums the KPIs read: issued (earn, reverse, adjust), redeemed (spend, redeem,
# return), expired (expire)
FLOW_CODES = ("earn", "reverse", "adjust", "spend", "redeem", "return", "expire")


def _system_accounts(tenant_id: str) -> Select[Any]:
    return select(LedgerAccount.id).where(
        LedgerAccount.tenant_id == tenant_id, LedgerAccount.owner_type == "system"
    )


def point_flows(
    session: Session,
    tenant_id: str,
    start: datetime | None,
    end: datetime,
    members: MemberFilter = None,
    codes: tuple[str, ...] = FLOW_CODES,
) -> dict[tuple[str, str], int]:
    """Σ amount per (wallet, code) of transfers effective in [start, end) (from the beginning
    when ``start`` is None). ``adjust`` is signed: + into a holder's wallet, − out of it.

    Range scans of (tenant, wallet, code, effective_at), one per code; without a member filter
    the plain sums read only that index (it carries the amount on Postgres).
    """
    plain = tuple(c for c in codes if c != "adjust")
    conditions = [Transfer.tenant_id == tenant_id, Transfer.effective_at < end]
    if start is not None:
        conditions.append(Transfer.effective_at >= start)
    if members is not None:
        conditions.append(Transfer.member_id.in_(members))
    found: dict[tuple[str, str], int] = {}
    if plain:
        rows = session.execute(
            select(Transfer.wallet, Transfer.code, func.sum(Transfer.amount_minor))
            .where(*conditions, Transfer.code.in_(plain))
            .group_by(Transfer.wallet, Transfer.code)
        )
        found.update({(r[0], r[1]): int(r[2] or 0) for r in rows})
    if "adjust" in codes:
        out_of_wallet = Transfer.credit_account_id.in_(_system_accounts(tenant_id))
        signed = case((out_of_wallet, -Transfer.amount_minor), else_=Transfer.amount_minor)
        rows = session.execute(
            select(Transfer.wallet, func.sum(signed))
            .where(*conditions, Transfer.code == "adjust")
            .group_by(Transfer.wallet)
        )
        found.update({(r[0], "adjust"): int(r[1] or 0) for r in rows})
    return found


def holder_balance(
    session: Session, tenant_id: str, wallet: str, members: MemberFilter = None
) -> int:
    """Σ of the active (posted) balances of the wallet's holders (members, pooled accounts)."""
    query = select(func.coalesce(func.sum(LedgerAccount.posted_minor), 0)).where(
        LedgerAccount.tenant_id == tenant_id,
        LedgerAccount.wallet == wallet,
        LedgerAccount.owner_type != "system",
    )
    if members is not None:
        query = query.where(
            LedgerAccount.owner_type == "member", LedgerAccount.owner_id.in_(members)
        )
    return int(session.scalar(query) or 0)


def holder_change_since(
    session: Session, tenant_id: str, wallet: str, since: datetime, members: MemberFilter = None
) -> int:
    """Net change of the holders' active balances by posted transfers effective at or after
    ``since``: subtracted from today's balance it gives the balance at ``since``."""
    system = _system_accounts(tenant_id)
    delta = case((Transfer.credit_account_id.in_(system), 0), else_=Transfer.amount_minor) - case(
        (Transfer.debit_account_id.in_(system), 0), else_=Transfer.amount_minor
    )
    query = select(func.coalesce(func.sum(delta), 0)).where(
        Transfer.tenant_id == tenant_id,
        Transfer.wallet == wallet,
        # every code, listed so the (tenant, wallet, code, effective_at) index serves it
        Transfer.code.in_(ALL_CODES),
        Transfer.effective_at >= since,
        Transfer.phase == "posted",
    )
    if members is not None:
        query = query.where(Transfer.member_id.in_(members))
    return int(session.scalar(query) or 0)


ALL_CODES = (
    "earn", "activate", "spend", "expire", "reverse", "adjust", "transfer", "hold", "release",
    "return", "redeem",
)  # fmt: skip


@dataclass
class OrderStats:
    """Completed orders placed in a period, net of refunds (minor units)."""

    revenue_minor: int = 0  # every order, guests included
    orders: int = 0
    member_revenue_minor: int = 0  # orders of (filtered) members
    member_orders: int = 0
    customers: int = 0  # members with at least one order
    repeat_customers: int = 0  # members with at least two
    new_customers: int = 0  # members whose first order ever is placed in the period
    repeat_revenue_minor: int = 0  # member orders other than the members' first orders


def order_stats(
    session: Session,
    tenant_id: str,
    start: datetime,
    end: datetime,
    brand: str | None = None,
    members: MemberFilter = None,
) -> OrderStats:
    """The period's orders grouped by member in the database (guests, and members outside the
    filter, form one group), then the new customers and the revenue of their first orders."""
    net = Order.total_minor - Order.refunded_minor
    conditions = _order_conditions(tenant_id, start, end, brand)
    counted: ColumnElement[bool] = Order.member_id.is_not(None)
    if members is not None:
        counted = and_(counted, Order.member_id.in_(members))
    member_key = case((counted, Order.member_id), else_=None)
    per_member = (
        select(member_key.label("member_id"), func.count().label("n"), func.sum(net).label("rev"))
        .where(*conditions)
        .group_by(member_key)
        .subquery()
    )
    is_member = per_member.c.member_id.is_not(None)
    row = session.execute(
        select(
            func.coalesce(func.sum(per_member.c.rev), 0),
            func.coalesce(func.sum(per_member.c.n), 0),
            func.coalesce(func.sum(case((is_member, per_member.c.rev), else_=0)), 0),
            func.coalesce(func.sum(case((is_member, per_member.c.n), else_=0)), 0),
            func.count(per_member.c.member_id),
            func.coalesce(func.sum(case((and_(is_member, per_member.c.n >= 2), 1), else_=0)), 0),
        )
    ).one()
    stats = OrderStats(*(int(v or 0) for v in row))
    # new customers: first order ever placed in the period (read from the member, then the
    # order at that moment); their first orders' revenue is what is not repeat revenue
    first = select(
        func.count(func.distinct(Member.member_id)), func.coalesce(func.sum(net), 0)
    ).where(
        Member.tenant_id == tenant_id,
        Member.first_order_at >= start,
        Member.first_order_at < end,
        Order.tenant_id == tenant_id,
        Order.member_id == Member.member_id,
        Order.placed_at == Member.first_order_at,
        *conditions,
    )
    if members is not None:
        first = first.where(Member.member_id.in_(members))
    new_customers, first_revenue = session.execute(first).one()
    stats.new_customers = int(new_customers or 0)
    stats.repeat_revenue_minor = stats.member_revenue_minor - int(first_revenue or 0)
    return stats


def _order_conditions(
    tenant_id: str, start: datetime, end: datetime, brand: str | None
) -> list[ColumnElement[bool]]:
    """Orders placed in [start, end), not cancelled, of the brand when one is given."""
    conditions = [
        Order.tenant_id == tenant_id,
        Order.placed_at >= start,
        Order.placed_at < end,
        Order.status != "cancelled",
    ]
    if brand is not None:
        # the payload's brand, copied to a column at booking (indexed with placed_at)
        conditions.append(Order.brand == brand)
    return conditions


def customers_in(
    session: Session,
    tenant_id: str,
    start: datetime,
    end: datetime,
    brand: str | None = None,
    members: MemberFilter = None,
) -> int:
    """Distinct members with a (not cancelled) order placed in [start, end)."""
    query = select(func.count(func.distinct(Order.member_id))).where(
        *_order_conditions(tenant_id, start, end, brand), Order.member_id.is_not(None)
    )
    if members is not None:
        query = query.where(Order.member_id.in_(members))
    return int(session.scalar(query) or 0)


def activation(
    session: Session, tenant_id: str, start: datetime, end: datetime, members: MemberFilter = None
) -> tuple[int, int]:
    """(members enrolled in [start, end), those of them with an earn or a redemption booked
    in [start, end)). One index-only range scan of the period's transfers, hashed, instead of
    a look-up per enrolled member."""
    active = (
        select(Transfer.member_id)
        .where(
            Transfer.tenant_id == tenant_id,
            Transfer.code.in_(("earn", "spend", "redeem")),
            Transfer.effective_at >= start,
            Transfer.effective_at < end,
            Transfer.member_id.is_not(None),
        )
        .distinct()
        .subquery()
    )
    # a join, not ``IN`` inside an aggregate: Postgres would re-run that subquery per member
    # once its result outgrows work_mem
    query = (
        select(func.count(), func.count(active.c.member_id))
        .select_from(Member)
        .outerjoin(active, active.c.member_id == Member.member_id)
        .where(Member.tenant_id == tenant_id, Member.enrolled_at >= start, Member.enrolled_at < end)
    )
    if members is not None:
        query = query.where(Member.member_id.in_(members))
    enrolled, activated = session.execute(query).one()
    return int(enrolled or 0), int(activated or 0)


def nps_counts(
    session: Session, tenant_id: str, start: datetime, end: datetime, members: MemberFilter = None
) -> tuple[int, int, int]:
    """(responses, promoters 9–10, detractors 0–6) of every survey answered in [start, end)."""
    query = select(
        func.count(),
        func.coalesce(func.sum(case((SurveyResponse.score >= 9, 1), else_=0)), 0),
        func.coalesce(func.sum(case((SurveyResponse.score <= 6, 1), else_=0)), 0),
    ).where(
        SurveyResponse.tenant_id == tenant_id,
        SurveyResponse.created_at >= start,
        SurveyResponse.created_at < end,
    )
    if members is not None:
        query = query.where(SurveyResponse.member_id.in_(members))
    total, promoters, detractors = session.execute(query).one()
    return int(total or 0), int(promoters or 0), int(detractors or 0)


def tier_members(tenant_id: str, tier: str, base_tier: str | None) -> Select[Any]:
    """Member ids holding ``tier`` now. Members never booked hold the base tier (threshold 0),
    without a tier state row."""
    if tier != base_tier:
        return select(TierState.owner_id).where(
            TierState.tenant_id == tenant_id,
            TierState.owner_type == "member",
            TierState.shown_key == tier,
        )
    elsewhere = select(TierState.owner_id).where(
        TierState.tenant_id == tenant_id,
        TierState.owner_type == "member",
        TierState.shown_key.is_not(None),
        TierState.shown_key != tier,
    )
    return select(Member.member_id).where(
        Member.tenant_id == tenant_id, Member.member_id.not_in(elsewhere)
    )


def segment_members(tenant_id: str, segment: str) -> Select[Any]:
    """Member ids in ``segment`` now."""
    return select(SegmentMembership.member_id).where(
        SegmentMembership.tenant_id == tenant_id, SegmentMembership.segment_key == segment
    )


# ---- cohorts ------------------------------------------------------------------------------


def _bucket(column: Any, bounds: list[datetime]) -> Any:
    """The index i of the bucket [bounds[i], bounds[i+1]) holding ``column`` (bounds sorted)."""
    return case(
        *((column < bound, index) for index, bound in enumerate(bounds[1:])),
        else_=None,
    )


def cohort_sizes(
    session: Session, tenant_id: str, bounds: list[datetime], members: MemberFilter = None
) -> dict[int, int]:
    """Members per month of first order (bucket index over ``bounds``)."""
    bucket = _bucket(Member.first_order_at, bounds)
    query = (
        select(bucket, func.count())
        .where(
            Member.tenant_id == tenant_id,
            Member.first_order_at >= bounds[0],
            Member.first_order_at < bounds[-1],
        )
        .group_by(bucket)
    )
    if members is not None:
        query = query.where(Member.member_id.in_(members))
    return {int(r[0]): int(r[1]) for r in session.execute(query) if r[0] is not None}


# periods a member's bitmask of active periods can hold (a Postgres bigint, sign bit unused)
MASK_PERIODS = 62


def cohort_activity(
    session: Session,
    tenant_id: str,
    bounds: list[datetime],
    brand: str | None = None,
    members: MemberFilter = None,
) -> dict[tuple[int, int], int]:
    """Distinct members of each first-order cohort ordering in each period: {(cohort, period):
    members}, both bucket indexes over ``bounds``.

    Up to ``MASK_PERIODS`` periods, each member's periods are folded into one bitmask while
    the orders are grouped by member (one hash entry per member instead of one per (member,
    period)), the masks are counted per (cohort, mask) in the database, and the bits are
    added up here: at most cohorts × distinct masks rows, each of at most 62 bits.
    """
    period = _bucket(Order.placed_at, bounds)
    conditions = [
        *_order_conditions(tenant_id, bounds[0], bounds[-1], brand),
        Order.member_id.is_not(None),
    ]
    if members is not None:
        conditions.append(Order.member_id.in_(members))
    cohort = _bucket(Member.first_order_at, bounds)
    in_cohorts = and_(
        Member.tenant_id == tenant_id,
        Member.first_order_at >= bounds[0],
        Member.first_order_at < bounds[-1],
    )
    if len(bounds) - 1 > MASK_PERIODS:
        pairs = (
            select(Order.member_id.label("member_id"), period.label("period"))
            .where(*conditions)
            .distinct()
            .subquery()
        )
        query = (
            select(cohort, pairs.c.period, func.count())
            .select_from(pairs)
            .join(Member, and_(in_cohorts, Member.member_id == pairs.c.member_id))
            .group_by(cohort, pairs.c.period)
        )
        return {
            (int(r[0]), int(r[1])): int(r[2])
            for r in session.execute(query)
            if r[0] is not None and r[1] is not None
        }
    bit = literal(1, BigInteger).op("<<")(period)
    if session.get_bind().dialect.name == "postgresql":
        fold = func.bit_or(bit)
    else:  # SQLite has no bit_or: the sum of the distinct bits is the same number
        fold = func.sum(distinct(bit))
    masks = (
        select(Order.member_id.label("member_id"), fold.label("mask"))
        .where(*conditions)
        .group_by(Order.member_id)
        .subquery()
    )
    query = (
        select(cohort, masks.c.mask, func.count())
        .select_from(masks)
        .join(Member, and_(in_cohorts, Member.member_id == masks.c.member_id))
        .group_by(cohort, masks.c.mask)
    )
    found: dict[tuple[int, int], int] = {}
    for row in session.execute(query):
        if row[0] is None or row[1] is None:
            continue
        mask, count = int(row[1]), int(row[2])
        for index in range(len(bounds) - 1):
            if mask >> index & 1:
                key = (int(row[0]), index)
                found[key] = found.get(key, 0) + count
    return found


def cohort_activity_by_month(
    session: Session,
    tenant_id: str,
    bounds: list[datetime],
    months: list[int],
    members: MemberFilter = None,
) -> dict[tuple[int, int], int]:
    """``cohort_activity`` for whole calendar months without a brand, read from
    ``member_months`` (one index-only range read: months in range, cohort by first order).
    ``months`` are the YYYYMM months of the periods, ``bounds`` their UTC limits."""
    cohort = _bucket(MemberMonth.first_order_at, bounds)
    query = (
        select(cohort, MemberMonth.month, func.count())
        .where(
            MemberMonth.tenant_id == tenant_id,
            MemberMonth.month >= months[0],
            MemberMonth.month <= months[-1],
            MemberMonth.first_order_at >= bounds[0],
            MemberMonth.first_order_at < bounds[-1],
        )
        .group_by(cohort, MemberMonth.month)
    )
    if members is not None:
        query = query.where(MemberMonth.member_id.in_(members))
    period = {month: index for index, month in enumerate(months)}
    return {
        (int(r[0]), period[int(r[1])]): int(r[2])
        for r in session.execute(query)
        if r[0] is not None and int(r[1]) in period
    }
