"""Use cases for members: upsert, profile, GDPR erasure and export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.b2b import service as b2b
from allegiance.engagement import badges
from allegiance.errors import NotFound, invalid
from allegiance.kit.clock import as_utc
from allegiance.kit.money import currency_exponent, money_str, number
from allegiance.ledger import service as ledger
from allegiance.member import repository
from allegiance.member.enrolment import enrolled_data
from allegiance.member.models import Member
from allegiance.member.schemas import MemberUpsert
from allegiance.outbox import service as outbox
from allegiance.program.service import load_program
from allegiance.segment import service as segmentation
from allegiance.tier import service as tiers

MEMBER_ID_MAX = 255


def check_member_id(member_id: str) -> None:
    if not member_id or len(member_id) > MEMBER_ID_MAX or member_id.strip() != member_id:
        raise invalid(["path", "member_id"], "member id must be 1-255 characters, no padding")


def upsert_member(
    session: Session, *, tenant_id: str, member_id: str, data: MemberUpsert, now: datetime
) -> tuple[Member, bool]:
    """Create or update a member from the shop's customer record. Returns (member, created)."""
    check_member_id(member_id)
    existing = repository.get(session, tenant_id, member_id, lock=True)
    given = data.model_dump(exclude_unset=True)
    if "enrolled_at" in given and given["enrolled_at"] is not None:
        given["enrolled_at"] = as_utc(given["enrolled_at"])
    for key in ("tags", "attributes"):
        if key in given and given[key] is None:
            given[key] = [] if key == "tags" else {}
    for key in ("email_consent", "marketing_consent"):
        if key in given and given[key] is None:
            del given[key]  # null: not stated, the recorded consent stays
        elif key in given and (existing is None or getattr(existing, key) != given[key]):
            given[f"{key}_at"] = now  # when the member gave or withdrew it
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "member_id": member_id,
        "tags": [],
        "attributes": {},
        "enrolled_at": given.get("enrolled_at") or now,
        "created_at": now,
        "updated_at": now,
        "orders_count": 0,
        "spend_minor": 0,
        **given,
    }
    if existing is not None and existing.erased_at is not None:
        values["erased_at"] = None
        given["erased_at"] = None
    member, created = repository.upsert(session, values, update_fields=list(given))
    if created:
        outbox.emit(
            session,
            tenant_id=tenant_id,
            type_="member.enrolled",
            data=enrolled_data(member),
            now=now,
        )
    if given.get("referral_code"):
        from allegiance.referral import service as referrals

        referrals.on_enrollment(
            session, tenant_id=tenant_id, member=member, previous=existing,
            code=given["referral_code"], now=now,
        )  # fmt: skip
    program = load_program(session, tenant_id=tenant_id)
    if program is not None:
        segmentation.refresh_members(
            session, tenant_id=tenant_id, program=program, member_ids=[member_id], now=now
        )
    return member, created


def get_member(session: Session, *, tenant_id: str, member_id: str) -> Member:
    member = repository.get(session, tenant_id, member_id)
    if member is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    return member


def member_view(
    session: Session, *, tenant_id: str, member_id: str, now: datetime
) -> dict[str, Any]:
    """Profile, tier, balances as of ``now``, badges, segments and stats."""
    member = get_member(session, tenant_id=tenant_id, member_id=member_id)
    compiled = load_program(session, tenant_id=tenant_id)
    program = compiled.program if compiled else None
    exponent = currency_exponent(program.currency) if program else 2
    view = profile(member)
    holder = b2b.holder_of(session, tenant_id=tenant_id, member=member)
    account = None
    if holder.account is not None:
        account = b2b.account_summary(
            session, tenant_id=tenant_id, account=holder.account, program=compiled, now=now
        )
        account["role"] = member.account_role or "buyer"
        account.pop("tier", None)  # shown as the member's tier below
    # imported here: subscriptions use this module (member ids)
    from allegiance.subscription.service import active_membership, membership_view

    plan = (
        active_membership(
            session, tenant_id=tenant_id, member_id=member_id, now=now, program=compiled
        )
        if program is not None and program.plans
        else None
    )
    view.update(
        {
            "account": account,
            "tier": tiers.tier_view(
                session,
                tenant_id=tenant_id,
                program=compiled,
                owner=holder.owner,
                now=now,
                floor=plan.tier_floor if plan is not None and not holder.pooled else None,
            ),
            "balances": ledger.balances_view(
                session,
                tenant_id=tenant_id,
                program=program,
                member_id=member_id,
                last_activity_at=member.last_activity_at,
                now=now,
            ),
            "badges": badges.badges_view(
                session, tenant_id=tenant_id, program=program, member_id=member_id
            )
            if program is not None and (program.badges or program.challenges)
            else [],
            "segments": segmentation.segments_of(
                session, tenant_id=tenant_id, program=compiled, member_id=member_id
            ),
            "stats": {
                "orders": member.orders_count,
                "spend": money_str(member.spend_minor, exponent),
                "first_order_at": _iso(member.first_order_at),
                "last_order_at": _iso(member.last_order_at),
                "last_activity_at": _iso(member.last_activity_at),
            },
        }
    )
    view["membership"] = membership_view(
        session, tenant_id=tenant_id, member_id=member_id, now=now, program=compiled
    )
    return view


def profile(member: Member) -> dict[str, Any]:
    return {
        "member_id": member.member_id,
        "email": member.email,
        "name": member.name,
        "phone": member.phone,
        "birthdate": member.birthdate.isoformat() if member.birthdate else None,
        "locale": member.locale,
        "tags": member.tags or [],
        "attributes": member.attributes or {},
        "account_id": member.account_id,
        "account_role": member.account_role,
        "referral_code": member.referral_code,
        "enrolled_at": _iso(member.enrolled_at),
        "email_consent": bool(member.email_consent),
        "email_consent_at": _iso(member.email_consent_at),
        "marketing_consent": bool(member.marketing_consent),
        "marketing_consent_at": _iso(member.marketing_consent_at),
        "erased": member.erased_at is not None,
        "created_at": _iso(member.created_at),
        "updated_at": _iso(member.updated_at),
    }


def erase_member(session: Session, *, tenant_id: str, member_id: str, now: datetime) -> None:
    """GDPR erasure: personal data goes, ledger history and totals stay (keyed by the id)."""
    member = repository.get(session, tenant_id, member_id, lock=True)
    if member is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    repository.erase(session, tenant_id, member_id, now)
    # imported here: redemptions use this module's callers (member locks)
    from allegiance.redemption import repository as redemptions

    redemptions.erase_addresses(session, tenant_id, member_id)


def export_member(session: Session, *, tenant_id: str, member_id: str) -> dict[str, Any]:
    """Everything we hold about the person (GDPR access request)."""
    from allegiance.order import service as orders

    member = get_member(session, tenant_id=tenant_id, member_id=member_id)
    compiled = load_program(session, tenant_id=tenant_id)
    precision = {k: w.precision for k, w in compiled.program.wallets.items()} if compiled else {}
    accounts = ledger.system_account_ids(session, tenant_id)
    transfers = ledger.ledger_page(
        session, tenant_id=tenant_id, member_id=member_id, before_id=None, limit=100_000
    )
    return {
        "profile": profile(member),
        "orders": orders.orders_of_member(session, tenant_id=tenant_id, member_id=member_id),
        "events": orders.events_of_member(session, tenant_id=tenant_id, member_id=member_id),
        "ledger": [transfer_view(t, precision.get(t.wallet, 0), accounts) for t in transfers],
        "subscriptions": _subscriptions(session, tenant_id, member_id),
        "redemptions": _redemptions(session, tenant_id, member_id),
        "badges": badges.badges_view(
            session,
            tenant_id=tenant_id,
            program=compiled.program if compiled else None,
            member_id=member_id,
        ),
        "challenges": _challenges(session, tenant_id, compiled, member),
        "referrals": _referrals(session, tenant_id, member_id, compiled),
    }


def _referrals(
    session: Session, tenant_id: str, member_id: str, compiled: Any
) -> list[dict[str, Any]]:
    from allegiance.referral.service import referrals_of_member

    return referrals_of_member(
        session, tenant_id=tenant_id, member_id=member_id,
        program=compiled.program if compiled else None,
    )  # fmt: skip


def _subscriptions(session: Session, tenant_id: str, member_id: str) -> list[dict[str, Any]]:
    from allegiance.kit.clock import utcnow
    from allegiance.subscription.service import subscriptions_page

    data, _ = subscriptions_page(
        session, tenant_id=tenant_id, member_id=member_id, before_id=None, limit=10_000,
        now=utcnow(),
    )  # fmt: skip
    return data


def transfer_view(t: Any, precision: int, system_accounts: set[int]) -> dict[str, Any]:
    """A transfer as the member sees it: positive into the wallet (the member's, or its pooled
    account's), negative out. The other side of a member's transfer is a system account."""
    direction = -1 if t.credit_account_id in system_accounts else 1
    if t.debit_account_id in system_accounts and t.credit_account_id in system_accounts:
        direction = 0  # between system accounts (held points being spent): balance unchanged
    if t.phase == "void":
        direction = -direction
    return {
        "id": t.id,
        "wallet": t.wallet,
        "code": t.code,
        "phase": t.phase,
        "amount": number(direction * t.amount_minor, precision),
        "reason": t.reason,
        "rule": t.rule,
        "source": {"type": t.source_type, "id": t.source_id},
        "order_id": t.order_id,
        "partner": t.partner,
        "effective_at": _iso(t.effective_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def adjust_points(
    session: Session, *, tenant_id: str, member_id: str, adjustment: Any, now: datetime
) -> dict[str, Any]:
    """Manual credit (amount > 0) or debit (amount < 0) with a reason."""
    from decimal import Decimal

    from allegiance.kit.money import decimal_places, to_minor
    from allegiance.ledger.service import Credit
    from allegiance.order.service import balances, lock_members
    from allegiance.program.service import require_program

    compiled = require_program(session, tenant_id=tenant_id)
    program = compiled.program
    wallet_key = adjustment.wallet or program.default_wallet
    wallet = program.wallets.get(wallet_key)
    if wallet is None:
        raise invalid(["body", "wallet"], f"unknown wallet; defined: {', '.join(program.wallets)}")
    amount: Decimal = adjustment.amount
    if amount == 0:
        raise invalid(["body", "amount"], "an adjustment moves a non-zero amount")
    if decimal_places(amount) > wallet.precision:
        raise invalid(["body", "amount"], f"wallet {wallet_key} has precision {wallet.precision}")
    if repository.get(session, tenant_id, member_id) is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    locked = lock_members(
        session, tenant_id=tenant_id, program=compiled, member_ids=[member_id], now=now
    )
    member = locked[member_id]
    amount_minor = to_minor(abs(amount), wallet.precision)
    if amount > 0:
        expires_at = as_utc(adjustment.expires_at) if adjustment.expires_at else None
        if expires_at is not None and expires_at <= now:
            raise invalid(["body", "expires_at"], "must be in the future")
        ledger.credit(
            session,
            tenant_id=tenant_id,
            program=program,
            credits=[
                Credit(
                    member_id=member_id,
                    wallet=wallet_key,
                    amount_minor=amount_minor,
                    code="adjust",
                    source_type="adjustment",
                    source_id=adjustment.id,
                    idem_key=f"adjustment/{adjustment.id}",
                    available_at=now,
                    effective_at=now,
                    reason=adjustment.reason,
                    expires_at=expires_at,
                )
            ],
            now=now,
        )
        moment = expires_at or ledger.expiry_for(wallet, program.timezone, now)
    else:
        ledger.debit(
            session,
            tenant_id=tenant_id,
            member_id=member_id,
            wallet=wallet_key,
            amount_minor=amount_minor,
            code="adjust",
            source_type="adjustment",
            source_id=adjustment.id,
            idem_key=f"adjustment/{adjustment.id}",
            now=now,
            reason=adjustment.reason,
            counter="adjustments",
        )
        moment = None
    settle_at = member.settle_at
    deadline = ledger.inactivity_deadline(program, now)
    for candidate in (moment, deadline):
        if candidate is not None:
            settle_at = candidate if settle_at is None else min(settle_at, candidate)
    repository.set_activity(session, tenant_id, member_id, now)
    repository.set_settle_at(session, tenant_id, member_id, settle_at)
    return {
        "adjustment_id": adjustment.id,
        "member_id": member_id,
        "wallet": wallet_key,
        "amount": number(amount_minor if amount > 0 else -amount_minor, wallet.precision),
        "reason": adjustment.reason,
        "balances": balances(session, tenant_id=tenant_id, program=compiled, member_id=member_id),
    }


def _redemptions(session: Session, tenant_id: str, member_id: str) -> list[dict[str, Any]]:
    from allegiance.redemption import repository as redemptions

    return [
        {
            "redemption_id": r.redemption_id,
            "reward": r.reward,
            "status": r.status,
            "points_minor": r.points_minor,
            "shipping_address": r.shipping_address,
            "fulfilment": r.fulfilment,
            "created_at": _iso(r.created_at),
        }
        for r in redemptions.of_member(session, tenant_id, member_id, 100_000)
    ]


def _challenges(
    session: Session, tenant_id: str, compiled: Any, member: Member
) -> list[dict[str, Any]]:
    """Challenge progress for the export (none for an erased member's empty profile)."""
    from allegiance.engagement import challenges
    from allegiance.kit.clock import utcnow

    if compiled is None or member.erased_at is not None:
        return []
    return challenges.challenges_view(
        session,
        tenant_id=tenant_id,
        program=compiled.program,
        member_id=member.member_id,
        now=utcnow(),
    )
