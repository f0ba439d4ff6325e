"""Sweepstakes: opening (seed and commitment), entries from events or bought with points,
the draw (seed revealed, winners derived by ``draw.pick_winners``), prizes for the winners.

Prizes are ledger credits (code ``earn``, source ``sweepstakes``) with idempotency keys
``sweepstakes/<key>/<member>``, or a catalog reward's coupon (source ``sweepstakes``).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from allegiance.b2b import service as b2b
from allegiance.errors import Conflict, NotFound
from allegiance.kit.expression import compile_expression
from allegiance.kit.money import currency_exponent, number, to_minor
from allegiance.ledger import service as ledger
from allegiance.ledger.service import Credit
from allegiance.member import repository as members
from allegiance.outbox import service as outbox
from allegiance.program.schema import Sweepstake
from allegiance.sweepstakes import draw as drawing
from allegiance.sweepstakes import repository
from allegiance.sweepstakes.models import SweepstakeDraw

if TYPE_CHECKING:
    from allegiance.member.models import Member
    from allegiance.program.compiled import CompiledProgram

MAX_ENTRIES_PER_PURCHASE = 1000


def find(program: CompiledProgram, key: str) -> Sweepstake:
    for sweepstake in program.program.sweepstakes:
        if sweepstake.key == key:
            return sweepstake
    raise NotFound(f"sweepstake {key!r} not found", code="sweepstake_not_found")


def ensure_open(
    session: Session, *, tenant_id: str, sweepstake: Sweepstake, now: datetime
) -> SweepstakeDraw | None:
    """The draw row; from ``opens_at`` on it exists, with a secret seed and its commitment."""
    found = repository.draw_of(session, tenant_id, sweepstake.key)
    if found is not None or now < sweepstake.opens_at:
        return found
    seed = secrets.token_bytes(32)
    repository.insert_draw_if_new(
        session,
        {
            "tenant_id": tenant_id,
            "sweepstake": sweepstake.key,
            "seed": seed.hex(),
            "commitment": drawing.commitment_of(seed),
            "opened_at": now,
        },
    )
    return repository.draw_of(session, tenant_id, sweepstake.key)


def _status(sweepstake: Sweepstake, row: SweepstakeDraw | None, now: datetime) -> str:
    if row is not None and row.drawn_at is not None:
        return "drawn"
    if now < sweepstake.opens_at:
        return "scheduled"
    return "open" if now < sweepstake.closes_at else "closed"


def sweepstake_view(
    session: Session, *, tenant_id: str, program: CompiledProgram, key: str, now: datetime
) -> dict[str, Any]:
    """GET /v1/sweepstakes/{key}: the window, the status and the commitment once open."""
    sweepstake = find(program, key)
    row = ensure_open(session, tenant_id=tenant_id, sweepstake=sweepstake, now=now)
    return {
        "key": sweepstake.key,
        "name": sweepstake.name,
        "status": _status(sweepstake, row, now),
        "opens_at": sweepstake.opens_at.isoformat(),
        "closes_at": sweepstake.closes_at.isoformat(),
        "draws_at": (sweepstake.draws_at or sweepstake.closes_at).isoformat(),
        "winners_count": sweepstake.winners,
        "commitment": row.commitment if row else None,
        "entries_count": repository.count_entries(session, tenant_id, key),
        "algorithm": drawing.ALGORITHM,
    }


def _eligible(sweepstake: Sweepstake, context: dict[str, Any]) -> bool:
    if sweepstake.eligible is None:
        return True
    return bool(compile_expression(sweepstake.eligible).test(context))


def _context(session: Session, tenant_id: str, member: Member, exponent: int, now: datetime) -> Any:
    from allegiance.order.service import member_context

    holder = b2b.holder_of(session, tenant_id=tenant_id, member=member)
    return holder, {
        "member": member_context(member, exponent),
        "account": b2b.account_context(holder.account),
        "now": now,
    }


def on_event(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    event_id: str,
    event_type: str,
    member_id: str,
    occurred_at: datetime,
    context: dict[str, Any],
    now: datetime,
) -> list[str]:
    """One entry per qualifying event (entry id ``event:<event id>``) into every open
    sweepstake whose ``entries.on`` is this type: the event happened inside the window, it
    arrives before ``closes_at`` and the member is eligible. The keys entered."""
    entered: list[str] = []
    for sweepstake in program.program.sweepstakes:
        if sweepstake.entries.on != event_type:
            continue
        if not (sweepstake.opens_at <= occurred_at < sweepstake.closes_at):
            continue
        if not (sweepstake.opens_at <= now < sweepstake.closes_at):
            continue
        if not _eligible(sweepstake, context):
            continue
        row = ensure_open(session, tenant_id=tenant_id, sweepstake=sweepstake, now=now)
        if row is None or row.drawn_at is not None:
            continue
        repository.insert_entries(
            session,
            [_entry(tenant_id, sweepstake.key, f"event:{event_id}", member_id, "event",
                    event_id, 0, now)],
        )  # fmt: skip
        entered.append(sweepstake.key)
    return entered


def _entry(
    tenant_id: str,
    key: str,
    entry_id: str,
    member_id: str,
    source: str,
    source_id: str,
    points_minor: int,
    now: datetime,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "sweepstake": key,
        "entry_id": entry_id,
        "member_id": member_id,
        "source": source,
        "source_id": source_id,
        "points_minor": points_minor,
        "created_at": now,
    }


def buy_entries(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    key: str,
    purchase_id: str,
    member_id: str,
    count: int,
    now: datetime,
) -> dict[str, Any]:
    """POST /v1/sweepstakes/{key}/entries: ``count`` entries for ``cost`` points each.

    Entry ids are ``buy:<purchase id>:<n>`` (n from 1). Refusals: ``entries_not_for_sale``,
    ``sweepstake_not_open``, ``not_eligible``, ``entry_limit_reached``, ``insufficient_points``.
    """
    from allegiance.order.service import lock_members

    sweepstake = find(program, key)
    buy = sweepstake.entries.buy
    if buy is None:
        raise Conflict("this sweepstake's entries are not sold", code="entries_not_for_sale")
    if not (sweepstake.opens_at <= now < sweepstake.closes_at):
        raise Conflict("the sweepstake is not open for entries", code="sweepstake_not_open")
    existing = members.get(session, tenant_id, member_id)
    if existing is None or existing.erased_at is not None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    # the member lock serialises one member's purchases, so the cap holds
    member = lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=[member_id], now=now
    )[member_id]
    row = ensure_open(session, tenant_id=tenant_id, sweepstake=sweepstake, now=now)
    if row is None or row.drawn_at is not None:
        raise Conflict("the sweepstake is not open for entries", code="sweepstake_not_open")
    holder, context = _context(session, tenant_id, member, currency_exponent(program.currency), now)
    if not _eligible(sweepstake, context):
        raise Conflict("the member may not enter this sweepstake", code="not_eligible")
    if buy.max_per_member is not None:
        bought = repository.count_entries(
            session, tenant_id, key, member_id=member_id, source="purchase"
        )
        if bought + count > buy.max_per_member:
            raise Conflict(
                f"at most {buy.max_per_member} bought entries per member; {bought} bought already",
                code="entry_limit_reached",
            )
    wallet_key = buy.wallet or program.program.default_wallet
    precision = program.program.wallets[wallet_key].precision
    cost_minor = to_minor(buy.cost, precision)
    ledger.debit(
        session,
        tenant_id=tenant_id,
        member_id=member_id,
        wallet=wallet_key,
        amount_minor=cost_minor * count,
        code="redeem",
        source_type="sweepstakes",
        source_id=f"{key}/{purchase_id}",
        idem_key=f"sweepstakes/{key}/entry/{purchase_id}",
        now=now,
        reason="sweepstakes_entry",
        owner_type=holder.owner[0],
        owner_id=holder.owner[1],
    )
    ids = [f"buy:{purchase_id}:{n}" for n in range(1, count + 1)]
    inserted = repository.insert_entries(
        session,
        [_entry(tenant_id, key, i, member_id, "purchase", purchase_id, cost_minor, now)
         for i in ids],
    )  # fmt: skip
    if inserted != count:
        raise Conflict("this purchase id was used already", code="entry_id_taken")
    return {
        "id": purchase_id,
        "sweepstake": key,
        "member_id": member_id,
        "entry_ids": ids,
        "wallet": wallet_key,
        "points": number(cost_minor * count, precision),
        "member_entries": repository.count_entries(session, tenant_id, key, member_id=member_id),
    }


def run_draw(
    session: Session, *, tenant_id: str, program: CompiledProgram, key: str, now: datetime
) -> dict[str, Any]:
    """POST /v1/sweepstakes/{key}/draw: once, from ``draws_at`` (default ``closes_at``) on.

    Reveals the seed, derives the winners from the seed and the sorted entries, gives each
    winner the prize and emits ``sweepstakes.drawn``. A second call returns the same result.
    """
    sweepstake = find(program, key)
    due = sweepstake.draws_at or sweepstake.closes_at
    if now < due:
        raise Conflict(f"the draw is due at {due.isoformat()}", code="draw_not_due")
    ensure_open(session, tenant_id=tenant_id, sweepstake=sweepstake, now=now)
    row = repository.draw_of(session, tenant_id, key, lock=True)
    assert row is not None  # ensure_open made it: now >= closes_at > opens_at
    if row.drawn_at is not None:
        return published(session, tenant_id=tenant_id, program=program, key=key)
    seed = bytes.fromhex(row.seed)
    entries = drawing.sort_entries(repository.entries_of(session, tenant_id, key))
    won = drawing.pick_winners(seed, entries, sweepstake.winners)
    prizes = _give_prizes(session, tenant_id, program, sweepstake, [m for _, m in won], now)
    row.drawn_at = now
    row.check_hash = drawing.check_of(seed, entries)
    row.winners_count = sweepstake.winners
    row.winners = [{"entry_id": e, "member_id": m, "prize": prizes.get(m)} for e, m in won]
    session.flush()
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_="sweepstakes.drawn",
        data={
            "sweepstake": key,
            "commitment": row.commitment,
            "check": row.check_hash,
            "winners": row.winners,
        },
        now=now,
    )
    return published(session, tenant_id=tenant_id, program=program, key=key)


def _give_prizes(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    sweepstake: Sweepstake,
    winners: list[str],
    now: datetime,
) -> dict[str, Any]:
    """Each winner's prize; an erased member's prize is not given (``None``)."""
    from allegiance.coupon import service as coupons
    from allegiance.order.service import lock_members

    if not winners:
        return {}
    prize = sweepstake.prize
    locked = lock_members(
        session, tenant_id=tenant_id, program=program, member_ids=winners, now=now
    )
    given: dict[str, Any] = {}
    credits: list[Credit] = []
    reward = next((r for r in program.program.rewards if r.key == prize.reward), None)
    for member_id in winners:
        member = locked.get(member_id)
        if member is None or member.erased_at is not None:
            given[member_id] = None
            continue
        if reward is not None:
            from allegiance.coupon.schemas import CouponSettings

            issued = coupons.issue_coupon(
                session,
                tenant_id=tenant_id,
                spec=coupons.reward_spec(reward),
                settings=reward.coupon or CouponSettings(),
                member_id=member_id,
                source_type="sweepstakes",
                source_id=f"{sweepstake.key}/{member_id}",
                now=now,
                currency=program.currency,
            )
            given[member_id] = {"reward": reward.key, "coupon": issued.get("code")}
            continue
        assert prize.points is not None  # the schema: points or reward
        wallet_key = prize.wallet or program.program.default_wallet
        precision = program.program.wallets[wallet_key].precision
        amount_minor = to_minor(prize.points, precision)
        owner = b2b.holder_of(session, tenant_id=tenant_id, member=member).owner
        credits.append(
            Credit(
                member_id=member_id,
                wallet=wallet_key,
                amount_minor=amount_minor,
                code="earn",
                source_type="sweepstakes",
                source_id=sweepstake.key,
                idem_key=f"sweepstakes/{sweepstake.key}/{member_id}",
                available_at=now,
                effective_at=now,
                reason="sweepstakes_prize",
                owner_type=owner[0],
                owner_id=owner[1],
            )
        )
        given[member_id] = {"wallet": wallet_key, "points": number(amount_minor, precision)}
    if credits:
        ledger.credit(
            session, tenant_id=tenant_id, program=program.program, credits=credits, now=now
        )
    return given


def published(
    session: Session, *, tenant_id: str, program: CompiledProgram, key: str
) -> dict[str, Any]:
    """GET /v1/sweepstakes/{key}/draw: everything needed to re-derive the result."""
    sweepstake = find(program, key)
    row = repository.draw_of(session, tenant_id, key)
    if row is None or row.drawn_at is None:
        raise Conflict("the sweepstake has not been drawn", code="sweepstake_not_drawn")
    entries = drawing.sort_entries(repository.entries_of(session, tenant_id, key))
    return {
        "sweepstake": key,
        "algorithm": drawing.ALGORITHM,
        "commitment": row.commitment,
        "seed": row.seed,
        "drawn_at": row.drawn_at.isoformat(),
        "winners_count": row.winners_count or sweepstake.winners,
        "entries": [{"id": e, "member_id": m} for e, m in entries],
        "check": row.check_hash,
        "winners": row.winners or [],
    }
