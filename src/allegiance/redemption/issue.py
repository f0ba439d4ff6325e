"""What a redemption gives, per reward type, and how a cancellation takes it back.

``issue`` runs between the hold and the spend of the points (phase two of a redemption), in
the same transaction: if it fails, nothing of the redemption remains.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.coupon import service as coupons
from allegiance.coupon.schemas import CouponSettings, DiscountSpec
from allegiance.errors import Conflict, InsufficientPoints
from allegiance.kit.money import currency_exponent, money_str, number, round_to_minor, to_minor
from allegiance.ledger import service as ledger
from allegiance.ledger.service import Credit
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import COUPON_REWARD_TYPES, Reward
from allegiance.redemption.models import Redemption


def credit_wallet(program: CompiledProgram, reward: Reward) -> str:
    if reward.credit_wallet:
        return reward.credit_wallet
    return next(k for k, w in program.program.wallets.items() if w.kind == "credit")


def cashback_value(program: CompiledProgram, reward: Reward, points_minor: int) -> int:
    """Money (minor units) ``points_minor`` points of the reward's wallet are worth, rounded
    down to the cent so points never pay more than their value."""
    wallet = program.program.wallets[reward.wallet or program.program.default_wallet]
    point_value = reward.point_value or wallet.point_value
    assert point_value is not None  # checked when the program was applied
    exponent = currency_exponent(program.currency)
    money = Decimal(points_minor).scaleb(-wallet.precision) * point_value
    return round_to_minor(money, exponent, "floor")


def issue(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    reward: Reward,
    redemption: Redemption,
    now: datetime,
) -> dict[str, Any]:
    exponent = currency_exponent(program.currency)
    issued: dict[str, Any] = {}
    if reward.type == "store_credit":
        assert reward.value is not None
        target = credit_wallet(program, reward)
        precision = program.program.wallets[target].precision
        amount_minor = to_minor(reward.value * redemption.quantity, precision)
        ledger.credit(
            session,
            tenant_id=tenant_id,
            program=program.program,
            credits=[
                Credit(
                    member_id=redemption.member_id,
                    wallet=target,
                    amount_minor=amount_minor,
                    code="earn",
                    source_type="redemption",
                    source_id=redemption.redemption_id,
                    idem_key=f"redemption/{redemption.redemption_id}/credit",
                    available_at=now,
                    effective_at=now,
                    reason=f"reward {reward.key}",
                    owner_type=redemption.owner_type,
                    owner_id=redemption.owner_id,
                )
            ],
            now=now,
        )
        issued["credit"] = {"wallet": target, "amount": number(amount_minor, precision)}
    elif reward.type == "cashback":
        value_minor = cashback_value(program, reward, redemption.points_minor)
        issued["value"] = money_str(value_minor, exponent)
        if reward.coupon is not None and value_minor > 0:
            # pay with points as a code the checkout applies: a fixed discount of the value
            spec = DiscountSpec(type="discount_fixed", value=Decimal(value_minor).scaleb(-exponent))
            issued["coupon"] = _coupon(session, tenant_id, program, reward, redemption, spec, now)
    elif reward.type in COUPON_REWARD_TYPES:
        spec = coupons.reward_spec(reward)
        given = [
            _coupon(session, tenant_id, program, reward, redemption, spec, now)
            for _ in range(redemption.quantity)
        ]
        issued["coupon"] = given[0]
        if len(given) > 1:
            issued["coupons"] = given
    return issued


def _coupon(
    session: Session,
    tenant_id: str,
    program: CompiledProgram,
    reward: Reward,
    redemption: Redemption,
    spec: DiscountSpec,
    now: datetime,
) -> dict[str, Any]:
    """A coupon for the member who redeemed, made with the reward's coupon settings."""
    found = coupons.issue_coupon(
        session,
        tenant_id=tenant_id,
        spec=spec,
        settings=reward.coupon or CouponSettings(),
        member_id=redemption.member_id,
        source_type="redemption",
        source_id=redemption.redemption_id,
        now=now,
        currency=program.currency,
    )
    coupon = {k: found.get(k) for k in ("code", "starts_at", "expires_at")}
    if found.get("balance") is not None:
        coupon["balance"] = found["balance"]
    return coupon


def revoke(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    redemption: Redemption,
    now: datetime,
) -> None:
    """Take back what a cancelled redemption gave; 409 when it can no longer be taken back."""
    if redemption.issued and (redemption.issued.get("coupon") or redemption.issued.get("coupons")):
        coupons.void_coupons_of(
            session,
            tenant_id=tenant_id,
            source_type="redemption",
            source_id=redemption.redemption_id,
        )
    credit = redemption.issued.get("credit") if redemption.issued else None
    if credit:
        wallet = program.program.wallets.get(credit["wallet"])
        precision = wallet.precision if wallet else 0
        amount_minor = to_minor(Decimal(str(credit["amount"])), precision)
        try:
            ledger.debit(
                session,
                tenant_id=tenant_id,
                member_id=redemption.member_id,
                wallet=credit["wallet"],
                amount_minor=amount_minor,
                code="reverse",
                source_type="redemption",
                source_id=redemption.redemption_id,
                idem_key=f"redemption/{redemption.redemption_id}/credit-back",
                now=now,
                reason="redemption cancelled",
                counter="issued",
                owner_type=redemption.owner_type,
                owner_id=redemption.owner_id,
            )
        except InsufficientPoints as exc:
            raise Conflict(
                "the store credit this redemption gave has been spent",
                code="credit_spent",
            ) from exc
