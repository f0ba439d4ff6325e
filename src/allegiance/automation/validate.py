"""Apply-time checks of the ``automations`` section beyond its schema."""

from __future__ import annotations

from typing import Any

from allegiance.config import get_settings
from allegiance.kit.expression import ExpressionError, check_expression
from allegiance.kit.money import decimal_places
from allegiance.program.schema import COUPON_REWARD_TYPES, Program

CONDITION_ROOTS = frozenset({"event", "member", "account", "now"})


def check_automations(
    program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]
) -> None:
    seen: set[str] = set()
    rewards = {r.key: r for r in program.rewards}
    for index, automation in enumerate(program.automations):
        loc: list[str | int] = ["automations", index]
        if automation.key in seen:
            errors.append(
                {"loc": [*loc, "key"], "msg": f"duplicate automation key {automation.key!r}"}
            )
        seen.add(automation.key)
        if automation.condition is not None:
            try:
                check_expression(
                    automation.condition,
                    sample,
                    allowed_roots=CONDITION_ROOTS,
                    max_length=get_settings().max_expression_length,
                )
            except ExpressionError as exc:
                errors.append({"loc": [*loc, "condition"], "msg": f"invalid CEL expression: {exc}"})
        trigger = automation.trigger
        for name, wallet_name in (
            (
                "points_expiring",
                trigger.points_expiring.wallet if trigger.points_expiring else None,
            ),
            (
                "points_milestone",
                trigger.points_milestone.wallet if trigger.points_milestone else None,
            ),
        ):
            if wallet_name is not None and wallet_name not in program.wallets:
                errors.append(
                    {"loc": [*loc, "trigger", name, "wallet"], "msg": _unknown_wallet(program)}
                )
        for a_index, action in enumerate(automation.actions):
            a_loc: list[str | int] = [*loc, "actions", a_index, action.kind]
            spec = action.spec
            if action.kind == "award_points":
                wallet_key = spec.wallet or program.default_wallet
                config = program.wallets.get(wallet_key)
                if config is None:
                    errors.append({"loc": [*a_loc, "wallet"], "msg": _unknown_wallet(program)})
                elif decimal_places(spec.amount) > config.precision:
                    errors.append(
                        {
                            "loc": [*a_loc, "amount"],
                            "msg": f"wallet {wallet_key} has precision {config.precision}",
                        }
                    )
            elif action.kind == "issue_reward":
                target = rewards.get(spec.reward)
                if target is None or target.type not in COUPON_REWARD_TYPES:
                    errors.append(
                        {
                            "loc": [*a_loc, "reward"],
                            "msg": "must name a reward that gives a coupon (discount_fixed, "
                            "discount_percent, free_shipping, free_product or gift_card)",
                        }
                    )


def _unknown_wallet(program: Program) -> str:
    return f"unknown wallet; defined: {', '.join(program.wallets)}"
