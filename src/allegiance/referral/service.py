"""Referrals: codes and share links, enrollment with fraud checks, qualification on the
referee's first order, conversion after the hold, voiding on a refund inside the hold.

Rewards are ledger credits (code ``earn``, source ``referral``) with idempotency keys
``referral/<id>/referee`` and ``referral/<id>/referrer``, so nothing is booked twice.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from allegiance.errors import NotFound
from allegiance.kit.clock import zone
from allegiance.kit.expression import compile_expression
from allegiance.kit.money import currency_exponent, number, to_minor
from allegiance.ledger import service as ledger
from allegiance.ledger.service import Credit
from allegiance.member import repository as members
from allegiance.outbox import service as outbox
from allegiance.program.schema import Program, ReferralProgram, ReferralReward
from allegiance.referral import repository
from allegiance.referral.models import Referral

if TYPE_CHECKING:
    from allegiance.member.models import Member
    from allegiance.order.service import PreparedOrder
    from allegiance.program.compiled import CompiledProgram

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
GMAIL = frozenset({"gmail.com", "googlemail.com"})
STATUSES = ("pending", "qualified", "converted", "rejected", "voided")
# member attributes compared by the same_address / same_device checks
ADDRESS_KEYS = ("address_hash",)
DEVICE_KEYS = ("device_hash", "ip_hash")


# ---- normalisation -----------------------------------------------------------------------


def normalize_email(email: str | None) -> str:
    """Lower case; a ``+tag`` is dropped; Gmail ignores dots (googlemail.com is gmail.com)."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}" if local else ""


def normalize_phone(phone: str | None) -> str:
    return "".join(ch for ch in phone or "" if ch.isdigit())


def normalize_code(code: str) -> str:
    return code.strip().upper()


# ---- codes -------------------------------------------------------------------------------


def _program(session: Session, tenant_id: str) -> tuple[Program, ReferralProgram] | None:
    from allegiance.program.service import load_program

    compiled = load_program(session, tenant_id=tenant_id)
    if compiled is None or compiled.program.referral is None:
        return None
    return compiled.program, compiled.program.referral


def ensure_code(
    session: Session, *, tenant_id: str, settings: ReferralProgram, member_id: str, now: datetime
) -> str:
    """The member's code, generated on first need (unique per tenant)."""
    for _ in range(8):
        found = repository.code_of(session, tenant_id, member_id)
        if found is not None:
            return found
        random = "".join(secrets.choice(ALPHABET) for _ in range(settings.code.length))
        repository.insert_code(session, tenant_id, member_id, settings.code.prefix + random, now)
    raise RuntimeError("could not allocate a unique referral code")


def share_url(settings: ReferralProgram, code: str) -> str | None:
    return settings.share_url.replace("{code}", code) if settings.share_url else None


def referral_card(
    session: Session, *, tenant_id: str, member_id: str, now: datetime
) -> dict[str, Any]:
    """GET /v1/members/{id}/referral: code, share link, who referred the member, stats."""
    found = _program(session, tenant_id)
    if found is None:
        raise NotFound("the program has no referral section", code="referrals_not_configured")
    program, settings = found
    member = members.get(session, tenant_id, member_id)
    if member is None or member.erased_at is not None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    code = ensure_code(
        session, tenant_id=tenant_id, settings=settings, member_id=member_id, now=now
    )
    own = repository.of_referee(session, tenant_id, member_id)
    return {
        "member_id": member_id,
        "code": code,
        "share_url": share_url(settings, code),
        "referred_by": None
        if own is None
        else {
            "referrer_id": own.referrer_id,
            "status": own.status,
            "reason": own.reason,
        },
        "stats": stats(session, tenant_id=tenant_id, program=program, member_id=member_id),
    }


def stats(session: Session, *, tenant_id: str, program: Program, member_id: str) -> dict[str, Any]:
    """Referred members by status, and points earned from referrals (both sides) by wallet."""
    counts = dict.fromkeys(STATUSES, 0)
    earned: dict[str, int] = defaultdict(int)
    for status, wallet, count, points in repository.stats_of_referrer(
        session, tenant_id, member_id
    ):
        counts[status] = counts.get(status, 0) + count
        if status == "converted" and wallet:
            earned[wallet] += points
    own = repository.of_referee(session, tenant_id, member_id)
    if own is not None and own.referee_wallet and own.referee_points_minor:
        earned[own.referee_wallet] += own.referee_points_minor
    return {
        "referred": {**counts, "total": sum(counts.values())},
        "points_earned": {
            w: number(v, program.wallets[w].precision if w in program.wallets else 0)
            for w, v in sorted(earned.items())
        },
    }


# ---- enrollment --------------------------------------------------------------------------


def on_enrollment(
    session: Session,
    *,
    tenant_id: str,
    member: Member,
    previous: Member | None,
    code: str,
    now: datetime,
) -> None:
    """Record the referral of a member upserted with ``referral_code`` (once per referee).

    ``previous`` is the member row before this upsert (None: created by it). The caller holds
    the member's row lock.
    """
    found = _program(session, tenant_id)
    if found is None:
        return  # no referral program: the code is only stored on the member
    program, settings = found
    if repository.of_referee(session, tenant_id, member.member_id) is not None:
        return  # decided already (a retried or repeated upsert)
    code = normalize_code(code)
    referrer_id = repository.owner_of_code(session, tenant_id, code, lock=True) if code else None
    referrer = members.get(session, tenant_id, referrer_id) if referrer_id else None
    if referrer is not None and referrer.erased_at is not None:
        referrer = None
    reason = _fraud_reason(session, tenant_id, program, settings, member, previous, referrer, now)
    row: dict[str, Any] = {
        "tenant_id": tenant_id,
        "referee_id": member.member_id,
        "referrer_id": referrer.member_id if referrer is not None else None,
        "code": code[:100],
        "status": "rejected" if reason else "pending",
        "reason": reason,
        "referee_points_minor": 0,
        "referrer_points_minor": 0,
        "created_at": now,
        "updated_at": now,
    }
    reward = settings.referee
    if not reason and reward is not None and reward.points > 0:
        wallet_key, amount_minor = _amount(program, reward)
        row.update(referee_wallet=wallet_key, referee_points_minor=amount_minor)
    if not repository.insert_if_new(session, row):
        return
    if row["referee_points_minor"]:
        referral = repository.of_referee(session, tenant_id, member.member_id)
        assert referral is not None
        _credit(
            session,
            tenant_id=tenant_id,
            program=program,
            member_id=member.member_id,
            wallet_key=row["referee_wallet"],
            amount_minor=row["referee_points_minor"],
            referral_id=referral.id,
            side="referee",
            now=now,
        )


def _fraud_reason(
    session: Session,
    tenant_id: str,
    program: Program,
    settings: ReferralProgram,
    referee: Member,
    previous: Member | None,
    referrer: Member | None,
    now: datetime,
) -> str | None:
    """The first rule the referral breaks, as a reason code; None when it is accepted."""
    if referrer is None:
        return "unknown_code"
    if referrer.member_id == referee.member_id:
        return "self_referral"
    email = normalize_email(referee.email)
    if email and email == normalize_email(referrer.email):
        return "same_email"
    phone = normalize_phone(referee.phone)
    if phone and phone == normalize_phone(referrer.phone):
        return "same_phone"
    if _same_attribute(referee, referrer, ADDRESS_KEYS):
        return "same_address"
    if _same_attribute(referee, referrer, DEVICE_KEYS):
        return "same_device"
    if previous is not None:
        if previous.orders_count > 0 or previous.first_order_at is not None:
            return "referee_has_orders"
        return "not_new_member"
    if settings.cap_per_month is not None:
        local = now.astimezone(zone(program.timezone))
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        used = repository.counted_since(session, tenant_id, referrer.member_id, month_start)
        if used >= settings.cap_per_month:
            return "referrer_cap_reached"
    return None


def _same_attribute(a: Member, b: Member, keys: tuple[str, ...]) -> bool:
    left, right = a.attributes or {}, b.attributes or {}
    for key in keys:
        value = left.get(key)
        if isinstance(value, str | int) and value != "" and value == right.get(key):
            return True
    return False


def _amount(program: Program, reward: ReferralReward) -> tuple[str, int]:
    wallet_key = reward.wallet or program.default_wallet
    return wallet_key, to_minor(reward.points, program.wallets[wallet_key].precision)


def _credit(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    wallet_key: str,
    amount_minor: int,
    referral_id: int,
    side: str,
    now: datetime,
) -> None:
    """Credit a referral reward, active at once (the caller holds the member's row lock)."""
    ledger.credit(
        session,
        tenant_id=tenant_id,
        program=program,
        credits=[
            Credit(
                member_id=member_id,
                wallet=wallet_key,
                amount_minor=amount_minor,
                code="earn",
                source_type="referral",
                source_id=str(referral_id),
                idem_key=f"referral/{referral_id}/{side}",
                available_at=now,
                effective_at=now,
                reason=f"referral_{side}",
            )
        ],
        now=now,
    )
    member = members.get(session, tenant_id, member_id)
    settle_at = member.settle_at if member is not None else None
    moment = ledger.expiry_for(program.wallets[wallet_key], program.timezone, now)
    deadline = ledger.inactivity_deadline(program, now)
    for candidate in (moment, deadline):
        if candidate is not None:
            settle_at = candidate if settle_at is None else min(settle_at, candidate)
    members.set_settle_at(session, tenant_id, member_id, settle_at)


# ---- orders ------------------------------------------------------------------------------


def on_orders_booked(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    orders: list[PreparedOrder],
    members_: dict[str, Member],
    now: datetime,
) -> None:
    """The referee's first order decides a pending referral: ``qualified`` (the hold starts at
    the order's time) or ``rejected`` (``first_order_not_qualifying``)."""
    settings = program.program.referral
    if settings is None:
        return
    pending = repository.pending_of(
        session, tenant_id, [o.member_id for o in orders if o.member_id]
    )
    if not pending:
        return
    from allegiance.order.service import member_context

    first: dict[str, PreparedOrder] = {}
    for booked in orders:
        mid = booked.member_id
        if mid and (mid not in first or booked.placed_at < first[mid].placed_at):
            first[mid] = booked
    condition = compile_expression(settings.qualifying) if settings.qualifying else None
    exponent = currency_exponent(program.currency)
    for referral in pending:
        o = first.get(referral.referee_id)
        if o is None:
            continue
        referral.order_id = o.order_id
        referral.updated_at = now
        context = {
            "order": o.context.get("order", {}),
            "member": member_context(members_.get(referral.referee_id), exponent),
            "now": now,
        }
        if condition is not None and not condition.test(context):
            referral.status = "rejected"
            referral.reason = "first_order_not_qualifying"
            continue
        wallet_key, amount_minor = _amount(program.program, settings.referrer)
        referral.status = "qualified"
        referral.qualified_at = now
        referral.convert_at = o.placed_at + timedelta(days=settings.hold_days)
        referral.referrer_wallet = wallet_key
        referral.referrer_points_minor = amount_minor
    session.flush()


def on_order_reversed(session: Session, *, tenant_id: str, order_id: str, now: datetime) -> None:
    """A refund (any amount) or cancellation of the qualifying order inside the hold voids the
    referral; after the hold the referrer's reward stands."""
    referral = repository.qualified_by_order(session, tenant_id, order_id)
    if referral is None or referral.convert_at is None or now >= referral.convert_at:
        return
    referral.status = "voided"
    referral.reason = "refunded_in_hold"
    referral.voided_at = now
    referral.updated_at = now
    session.flush()


# ---- conversion (job) --------------------------------------------------------------------


def due(session: Session, *, tenant_id: str, now: datetime, limit: int) -> list[tuple[int, str]]:
    return repository.due(session, tenant_id, now, limit)


def convert(
    session: Session, *, tenant_id: str, referral_id: int, referrer_id: str, now: datetime
) -> bool:
    """Credit the referrer of one due referral; False when it is gone or taken."""
    from allegiance.order.service import lock_members
    from allegiance.program.service import load_program

    compiled = load_program(session, tenant_id=tenant_id)
    if compiled is None:
        return False
    # the member lock first (the order every booking takes), then the referral
    locked = lock_members(
        session, tenant_id=tenant_id, program=compiled, member_ids=[referrer_id], now=now
    )
    referral = repository.lock_due(session, tenant_id, referral_id, now)
    if referral is None:
        return False
    referral.updated_at = now
    referrer = locked.get(referrer_id)
    wallet_key = referral.referrer_wallet or compiled.program.default_wallet
    if referrer is None or referrer.erased_at is not None:
        referral.status = "voided"
        referral.reason = "referrer_erased"
        referral.voided_at = now
        return True
    if wallet_key not in compiled.program.wallets:
        referral.status = "voided"
        referral.reason = "wallet_removed"
        referral.voided_at = now
        return True
    referral.status = "converted"
    referral.converted_at = now
    if referral.referrer_points_minor > 0:
        _credit(
            session,
            tenant_id=tenant_id,
            program=compiled.program,
            member_id=referrer_id,
            wallet_key=wallet_key,
            amount_minor=referral.referrer_points_minor,
            referral_id=referral.id,
            side="referrer",
            now=now,
        )
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_="referral.converted",
        data={
            "referral_id": referral.id,
            "referrer_id": referrer_id,
            "referee_id": referral.referee_id,
            "order_id": referral.order_id,
            "wallet": wallet_key,
            "points": number(
                referral.referrer_points_minor, compiled.program.wallets[wallet_key].precision
            ),
        },
        now=now,
    )
    session.flush()
    return True


# ---- views -------------------------------------------------------------------------------


def referral_view(program: Program | None, r: Referral) -> dict[str, Any]:
    def reward(wallet: str | None, amount: int) -> dict[str, Any] | None:
        if not wallet:
            return None
        precision = (
            program.wallets[wallet].precision if program and wallet in program.wallets else 0
        )
        return {"wallet": wallet, "points": number(amount, precision)}

    return {
        "id": r.id,
        "referee_id": r.referee_id,
        "referrer_id": r.referrer_id,
        "code": r.code,
        "status": r.status,
        "reason": r.reason,
        "order_id": r.order_id,
        "referee_reward": reward(r.referee_wallet, r.referee_points_minor),
        "referrer_reward": reward(r.referrer_wallet, r.referrer_points_minor),
        "qualified_at": _iso(r.qualified_at),
        "convert_at": _iso(r.convert_at),
        "converted_at": _iso(r.converted_at),
        "voided_at": _iso(r.voided_at),
        "created_at": _iso(r.created_at),
    }


def referrals_page(
    session: Session,
    *,
    tenant_id: str,
    member_id: str,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[Referral]:
    if members.get(session, tenant_id, member_id) is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    return repository.of_referrer_page(
        session, tenant_id, member_id, status=status, before_id=before_id, limit=limit
    )


def referrals_of_member(
    session: Session, *, tenant_id: str, member_id: str, program: Program | None
) -> list[dict[str, Any]]:
    """The member's referral as referee and its referrals as referrer (GDPR export)."""
    rows = repository.of_referrer_page(
        session, tenant_id, member_id, status=None, before_id=None, limit=100_000
    )
    own = repository.of_referee(session, tenant_id, member_id)
    return [referral_view(program, r) for r in ([own] if own else []) + rows]


def referral_of(session: Session, *, tenant_id: str, referee_id: str) -> Referral:
    found = repository.of_referee(session, tenant_id, referee_id)
    if found is None:
        raise NotFound(f"member {referee_id!r} was not referred", code="referral_not_found")
    return found


def program_of(session: Session, tenant_id: str) -> Program | None:
    from allegiance.program.service import load_program

    compiled = load_program(session, tenant_id=tenant_id)
    return compiled.program if compiled else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
