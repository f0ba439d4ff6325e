"""Full validation of a program document: schema, every CEL expression, cross references.

Every error names its location as a key path (``["rules", 2, "when"]``) and what is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from allegiance.config import get_settings
from allegiance.coupon.schemas import coupon_reward_errors, spec_errors
from allegiance.experiment.validate import experiment_errors
from allegiance.kit.clock import as_utc, zone
from allegiance.kit.expression import ExpressionError, check_expression
from allegiance.kit.money import currency_exponent, decimal_places
from allegiance.program.coalition import partner_point_value
from allegiance.program.schema import COUPON_REWARD_TYPES, EVENT_PATTERN, REWARD_NEEDS, Program

_SAMPLE_TIME = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def sample_item() -> dict[str, Any]:
    return {
        "sku": "SKU-1",
        "name": "Sample",
        "category": "general",
        "labels": ["sample"],
        "quantity": 1,
        "unit_price": 10.0,
        "amount": 10.0,
        "attributes": {},
    }


def sample_context() -> dict[str, Any]:
    """A context with every documented field, used to type-check expressions at apply time."""
    item = sample_item()
    return {
        "order": {
            "id": "o-1",
            "placed_at": _SAMPLE_TIME,
            "currency": "USD",
            "items": [item],
            "subtotal": 10.0,
            "total": 10.0,
            "shipping_amount": 0.0,
            "tax_amount": 0.0,
            "discount_amount": 0.0,
            "coupon_codes": ["CODE"],
            "channel": "web",
            "brand": "main",
            "partner": "main",
            "quantity": 1,
            "attributes": {},
        },
        "item": item,
        "member": {
            "id": "m-1",
            "email": "a@example.com",
            "name": "A",
            "phone": "",
            "locale": "en",
            "tags": ["tag"],
            "attributes": {},
            "tier": "",
            "perks": ["free_shipping"],
            "plan": "",
            "account_id": "",
            "account_role": "",
            "enrolled_at": _SAMPLE_TIME,
            "birthdate": "2000-01-01",
            "stats": {"orders": 0, "spend": 0.0, "points_earned": 0.0},
            "segments": [],
            "badges": [],
            "experiments": {},
        },
        "event": {
            "id": "e-1",
            "type": "review.created",
            "occurred_at": _SAMPLE_TIME,
            "properties": {},
        },
        "account": {"id": "", "name": "", "group": "", "pooled": False, "attributes": {}},
        "now": _SAMPLE_TIME,
    }


ORDER_ROOTS = frozenset({"order", "member", "account", "now"})
ITEM_ROOTS = ORDER_ROOTS | {"item"}
EVENT_ROOTS = frozenset({"event", "member", "account", "now"})
MEMBER_ROOTS = frozenset({"member", "account", "now"})
PRICE_LIST_ROOTS = frozenset({"member", "account", "now"})


def validate_program(document: Any) -> tuple[Program | None, list[dict[str, Any]]]:
    """Return the parsed program, or None and a list of ``{loc, msg}`` errors."""
    if not isinstance(document, dict):
        return None, [{"loc": [], "msg": "the program document must be an object (mapping)"}]
    try:
        program = Program.model_validate(document)
    except ValidationError as exc:
        return None, [
            {"loc": list(err["loc"]), "msg": _message(err)} for err in exc.errors(include_url=False)
        ]
    errors: list[dict[str, Any]] = []
    settings = get_settings()
    try:
        zone(program.timezone)
    except ValueError as exc:
        errors.append({"loc": ["timezone"], "msg": str(exc)})
    if len(program.rules) > settings.max_program_rules:
        errors.append(
            {"loc": ["rules"], "msg": f"at most {settings.max_program_rules} rules are allowed"}
        )
    sample = sample_context()
    # each declared experiment as a key of member.experiments (a typo in a condition is a 422)
    sample["member"]["experiments"] = {e.key: e.variants[0].key for e in program.experiments}
    campaigns = {c.key for c in program.campaigns}
    seen: set[str] = set()
    for index, campaign in enumerate(program.campaigns):
        if campaign.key in seen:
            errors.append({"loc": ["campaigns", index, "key"], "msg": "duplicate campaign key"})
        seen.add(campaign.key)
    seen = set()
    for index, rule in enumerate(program.rules):
        loc: list[str | int] = ["rules", index]
        if rule.key in seen:
            errors.append({"loc": [*loc, "key"], "msg": f"duplicate rule key {rule.key!r}"})
        seen.add(rule.key)
        is_order = rule.on == "order.completed"
        roots = ORDER_ROOTS if is_order else EVENT_ROOTS
        if rule.when is not None:
            _check(errors, [*loc, "when"], rule.when, sample, roots)
        part = rule.earn or rule.multiply
        part_name = "earn" if rule.earn else "multiply"
        if part is not None and part.items is not None:
            if not is_order:
                errors.append(
                    {"loc": [*loc, part_name, "items"], "msg": "items filters apply to orders only"}
                )
            else:
                _check(errors, [*loc, part_name, "items"], part.items, sample, ITEM_ROOTS)
        if part is not None and part.wallet and part.wallet not in program.wallets:
            errors.append({"loc": [*loc, part_name, "wallet"], "msg": _unknown_wallet(program)})
        if (
            rule.earn
            and not is_order
            and (rule.earn.per_amount is not None or rule.earn.per_quantity is not None)
        ):
            errors.append(
                {
                    "loc": [*loc, "earn"],
                    "msg": "per_amount and per_quantity apply to orders; events earn fixed "
                    "or percent of event.properties.amount",
                }
            )
        if rule.issue_coupon is not None:
            errors.extend(
                spec_errors(
                    rule.issue_coupon.discount,
                    currency_exponent(program.currency),
                    [*loc, "issue_coupon", "discount"],
                )
            )
        if rule.issue_reward is not None:
            target = next((r for r in program.rewards if r.key == rule.issue_reward.reward), None)
            if target is None or target.type not in COUPON_REWARD_TYPES:
                errors.append(
                    {
                        "loc": [*loc, "issue_reward", "reward"],
                        "msg": "must name a reward that gives a coupon (discount_fixed, "
                        "discount_percent, free_shipping, free_product or gift_card)",
                    }
                )
        if rule.campaign and rule.campaign not in campaigns:
            errors.append({"loc": [*loc, "campaign"], "msg": f"unknown campaign {rule.campaign!r}"})
    budget_wallets: dict[str, set[str]] = {}
    budgeted = {c.key for c in program.campaigns if c.budget is not None}
    for index, rule in enumerate(program.rules):
        if rule.campaign in budgeted:
            part = rule.earn or rule.multiply
            wallet = (part.wallet if part is not None else None) or program.default_wallet
            seen_wallets = budget_wallets.setdefault(rule.campaign, set())
            seen_wallets.add(wallet)
            if len(seen_wallets) > 1:
                errors.append(
                    {
                        "loc": ["rules", index, "campaign"],
                        "msg": "the rules of a campaign with a budget must credit one wallet",
                    }
                )
    _check_rewards(errors, program, sample)
    if program.tiers:
        keys = [level.key for level in program.tiers.levels]
        if len(set(keys)) != len(keys):
            errors.append({"loc": ["tiers", "levels"], "msg": "tier keys must be unique"})
        thresholds = [level.threshold for level in program.tiers.levels]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            errors.append(
                {"loc": ["tiers", "levels"], "msg": "thresholds must be strictly increasing"}
            )
        if program.tiers.wallet and program.tiers.wallet not in program.wallets:
            errors.append({"loc": ["tiers", "wallet"], "msg": _unknown_wallet(program)})
        if program.tiers.metric == "orders":
            for index, level in enumerate(program.tiers.levels):
                if level.threshold != level.threshold.to_integral_value():
                    errors.append(
                        {
                            "loc": ["tiers", "levels", index, "threshold"],
                            "msg": "an orders threshold is a whole number",
                        }
                    )
    _check_price_lists(errors, program, sample)
    _check_coalition(program, errors)
    _check_plans(program, errors)
    _check_referral(program, errors, sample)
    _check_sweepstakes(program, errors, sample)
    _check_promotions(program, errors, sample)
    _check_engagement(program, errors, sample)
    _check_games(program, errors, sample)
    errors += experiment_errors(program, sample, MEMBER_ROOTS)
    _check_segments(program, errors, sample)
    from allegiance.automation.validate import check_automations

    check_automations(program, errors, sample)
    return (None, errors) if errors else (program, [])


def _check_games(program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]) -> None:
    """Quizzes, polls and surveys (docs/engagement.md): unique keys, answers among the
    choices, reachable pass scores, known wallets, ``eligible`` conditions; leaderboards."""
    loc: list[str | int]
    for index, board in enumerate(program.leaderboards):
        loc = ["leaderboards", index]
        if board.metric == "events" and not board.event_type:
            errors.append(
                {"loc": [*loc, "event_type"], "msg": "an events leaderboard names its event_type"}
            )
        if board.metric != "events" and board.event_type:
            errors.append({"loc": [*loc, "event_type"], "msg": "only for the events metric"})
        if board.wallet is not None and board.wallet not in program.wallets:
            errors.append({"loc": [*loc, "wallet"], "msg": _unknown_wallet(program)})
    for section in ("quizzes", "polls", "surveys", "leaderboards"):
        keys = [item.key for item in getattr(program, section)]
        if len(keys) != len(set(keys)):
            errors.append({"loc": [section], "msg": f"{section} keys must be unique"})
    for index, quiz in enumerate(program.quizzes):
        loc = ["quizzes", index]
        questions = [q.key for q in quiz.questions]
        if len(questions) != len(set(questions)):
            errors.append({"loc": [*loc, "questions"], "msg": "question keys must be unique"})
        for number, question in enumerate(quiz.questions):
            choices = {c.key for c in question.choices}
            if len(choices) != len(question.choices):
                errors.append(
                    {
                        "loc": [*loc, "questions", number, "choices"],
                        "msg": "choice keys must be unique",
                    }
                )
            answer = [question.answer] if isinstance(question.answer, str) else question.answer
            if not answer or not set(answer) <= choices:
                errors.append(
                    {
                        "loc": [*loc, "questions", number, "answer"],
                        "msg": "the answer must name one or more of the question's choices",
                    }
                )
        if quiz.pass_score > len(quiz.questions):
            errors.append({"loc": [*loc, "pass_score"], "msg": "at most the number of questions"})
        if quiz.starts_at and quiz.ends_at and as_utc(quiz.ends_at) <= as_utc(quiz.starts_at):
            errors.append({"loc": [*loc, "ends_at"], "msg": "ends_at must be after starts_at"})
        if quiz.reward and quiz.reward.wallet and quiz.reward.wallet not in program.wallets:
            errors.append({"loc": [*loc, "reward", "wallet"], "msg": _unknown_wallet(program)})
    for index, poll in enumerate(program.polls):
        options = [o.key for o in poll.options]
        if len(options) != len(set(options)):
            errors.append({"loc": ["polls", index, "options"], "msg": "option keys must be unique"})
        if poll.eligible is not None:
            _check(errors, ["polls", index, "eligible"], poll.eligible, sample, MEMBER_ROOTS)
    for index, survey in enumerate(program.surveys):
        if survey.reward and survey.reward.wallet and survey.reward.wallet not in program.wallets:
            errors.append(
                {"loc": ["surveys", index, "reward", "wallet"], "msg": _unknown_wallet(program)}
            )


SEGMENT_ROOTS = frozenset({"member", "now"})


def segment_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample context of segment conditions: the member with computed statistics and
    category affinity (docs/segments.md)."""
    member = dict(sample["member"])
    member["stats"] = {
        **member["stats"],
        "recency_days": 10,
        "frequency": 1,
        "monetary": 10.0,
        "aov": 10.0,
        "clv": 10.0,
        "expected_purchases": 1.0,
        "p_alive": 0.5,
        "churn_risk": "low",
        "rfm_segment": "champions",
    }
    member["affinity"] = {"general": 1.0}
    return {"member": member, "now": sample["now"]}


def _check_segments(program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]) -> None:
    keys: set[str] = set()
    segment_sample_ = segment_sample(sample)
    for index, segment in enumerate(program.segments):
        if segment.key in keys:
            errors.append({"loc": ["segments", index, "key"], "msg": "duplicate segment key"})
        keys.add(segment.key)
        _check(
            errors, ["segments", index, "condition"], segment.condition, segment_sample_,
            SEGMENT_ROOTS,
        )  # fmt: skip


def _check_coalition(program: Program, errors: list[dict[str, Any]]) -> None:
    """Brands and partners: unique keys, declared brands, known wallets, a settlement value."""
    brands: set[str] = set()
    for index, brand in enumerate(program.brands):
        if brand.key in brands:
            errors.append({"loc": ["brands", index, "key"], "msg": "duplicate brand key"})
        brands.add(brand.key)
    for key, wallet in program.wallets.items():
        for index, brand_key in enumerate(wallet.brands or []):
            if brand_key not in brands:
                errors.append(
                    {
                        "loc": ["wallets", key, "brands", index],
                        "msg": f"unknown brand {brand_key!r}; declare it under 'brands'",
                    }
                )
        if wallet.brands is not None and not wallet.brands:
            errors.append(
                {
                    "loc": ["wallets", key, "brands"],
                    "msg": "list at least one brand, or leave 'brands' out for a shared wallet",
                }
            )
    partners: set[str] = set()
    for index, partner in enumerate(program.partners):
        loc: list[str | int] = ["partners", index]
        if partner.key in partners:
            errors.append({"loc": [*loc, "key"], "msg": "duplicate partner key"})
        partners.add(partner.key)
        if partner.wallet is not None and partner.wallet not in program.wallets:
            errors.append({"loc": [*loc, "wallet"], "msg": _unknown_wallet(program)})
            continue
        if partner_point_value(program, partner) is None:
            errors.append(
                {
                    "loc": [*loc, "point_value"],
                    "msg": "settlement needs a point_value (money per point) on the partner "
                    "or on its wallet",
                }
            )


def _check_plans(program: Program, errors: list[dict[str, Any]]) -> None:
    levels = [level.key for level in program.tiers.levels] if program.tiers else []
    seen: set[str] = set()
    for index, plan in enumerate(program.plans):
        loc: list[str | int] = ["plans", index]
        if plan.key in seen:
            errors.append({"loc": [*loc, "key"], "msg": f"duplicate plan key {plan.key!r}"})
        seen.add(plan.key)
        currency = plan.currency or program.currency
        exponent = currency_exponent(currency)
        if decimal_places(plan.fee) > exponent:
            errors.append(
                {"loc": [*loc, "fee"], "msg": f"more than {exponent} decimal places for {currency}"}
            )
        if plan.tier is not None and plan.tier not in levels:
            known = ", ".join(levels) if levels else "none (the program has no tiers)"
            errors.append(
                {"loc": [*loc, "tier"], "msg": f"unknown tier {plan.tier!r}; tier levels: {known}"}
            )


def _check_rewards(errors: list[dict[str, Any]], program: Program, sample: dict[str, Any]) -> None:
    """Keys, wallets, money within the currency, type-specific references, ``eligible``."""
    exponent = currency_exponent(program.currency)
    seen: set[str] = set()
    for index, reward in enumerate(program.rewards):
        loc: list[str | int] = ["rewards", index]
        if reward.key in seen:
            errors.append({"loc": [*loc, "key"], "msg": f"duplicate reward key {reward.key!r}"})
        seen.add(reward.key)
        if reward.wallet and reward.wallet not in program.wallets:
            errors.append({"loc": [*loc, "wallet"], "msg": _unknown_wallet(program)})
            continue
        wallet = program.wallets[reward.wallet or program.default_wallet]
        if reward.cost is not None and decimal_places(reward.cost) > wallet.precision:
            errors.append(
                {
                    "loc": [*loc, "cost"],
                    "msg": f"has more than {wallet.precision} decimal places (the wallet's "
                    "precision)",
                }
            )
        money_fields = ["max_amount"]
        if reward.type not in ("discount_percent",):
            money_fields.append("value")
        for name in money_fields:
            amount = getattr(reward, name)
            if amount is not None and decimal_places(amount) > exponent:
                errors.append(
                    {
                        "loc": [*loc, name],
                        "msg": f"has more than {exponent} decimal places for {program.currency}",
                    }
                )
        if reward.type == "store_credit":
            target = reward.credit_wallet or _first_credit_wallet(program)
            if target is None or target not in program.wallets:
                errors.append(
                    {
                        "loc": [*loc, "credit_wallet"],
                        "msg": "a store_credit reward needs a wallet of kind credit",
                    }
                )
            elif program.wallets[target].kind != "credit":
                errors.append({"loc": [*loc, "credit_wallet"], "msg": "not a credit wallet"})
        if reward.type == "cashback" and (reward.point_value or wallet.point_value) is None:
            errors.append(
                {
                    "loc": [*loc, "point_value"],
                    "msg": "a cashback reward needs a point_value (money per point) on the "
                    "reward or its wallet",
                }
            )
        if reward.eligible is not None:
            _check(errors, [*loc, "eligible"], reward.eligible, sample, MEMBER_ROOTS)
        missing = [k for k in REWARD_NEEDS.get(reward.type, ()) if getattr(reward, k) is None]
        for name in missing:
            errors.append({"loc": [*loc, name], "msg": f"a {reward.type} reward needs {name}"})
        if reward.coupon is not None and not missing:
            errors.extend(coupon_reward_errors(reward.type, reward.value, loc))


def _first_credit_wallet(program: Program) -> str | None:
    return next((k for k, w in program.wallets.items() if w.kind == "credit"), None)


def _check_referral(program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]) -> None:
    referral = program.referral
    if referral is None:
        return
    for side in ("referee", "referrer"):
        reward = getattr(referral, side)
        if reward is None:
            continue
        wallet = program.wallets.get(reward.wallet or program.default_wallet)
        if wallet is None:
            errors.append({"loc": ["referral", side, "wallet"], "msg": _unknown_wallet(program)})
        elif decimal_places(reward.points) > wallet.precision:
            errors.append(
                {
                    "loc": ["referral", side, "points"],
                    "msg": f"has more than {wallet.precision} decimal places "
                    "(the wallet's precision)",
                }
            )
    if referral.qualifying is not None:
        _check(errors, ["referral", "qualifying"], referral.qualifying, sample, ORDER_ROOTS)


def _check_sweepstakes(
    program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]
) -> None:
    """Unique keys, event entries from non-order events, known wallets and rewards, CEL."""
    seen: set[str] = set()
    rewards = {r.key: r for r in program.rewards}
    for index, sweepstake in enumerate(program.sweepstakes):
        loc: list[str | int] = ["sweepstakes", index]
        if sweepstake.key in seen:
            errors.append({"loc": [*loc, "key"], "msg": "duplicate sweepstake key"})
        seen.add(sweepstake.key)
        on = sweepstake.entries.on
        if on is not None and (not EVENT_PATTERN.match(on) or on.startswith("order.")):
            errors.append(
                {"loc": [*loc, "entries", "on"], "msg": "a custom event type (not order.*)"}
            )
        buy = sweepstake.entries.buy
        if buy is not None:
            wallet = program.wallets.get(buy.wallet or program.default_wallet)
            if wallet is None:
                errors.append(
                    {"loc": [*loc, "entries", "buy", "wallet"], "msg": _unknown_wallet(program)}
                )
            elif decimal_places(buy.cost) > wallet.precision:
                errors.append({"loc": [*loc, "entries", "buy", "cost"], "msg": "too many decimals"})
        prize = sweepstake.prize
        if prize.points is not None:
            wallet = program.wallets.get(prize.wallet or program.default_wallet)
            if wallet is None:
                errors.append({"loc": [*loc, "prize", "wallet"], "msg": _unknown_wallet(program)})
            elif decimal_places(prize.points) > wallet.precision:
                errors.append({"loc": [*loc, "prize", "points"], "msg": "too many decimals"})
        if prize.reward is not None:
            reward = rewards.get(prize.reward)
            if reward is None or reward.type not in COUPON_REWARD_TYPES:
                errors.append(
                    {
                        "loc": [*loc, "prize", "reward"],
                        "msg": "not a catalog reward that gives a coupon "
                        f"({', '.join(COUPON_REWARD_TYPES)})",
                    }
                )
        if sweepstake.eligible is not None:
            _check(errors, [*loc, "eligible"], sweepstake.eligible, sample, MEMBER_ROOTS)


# the keys each promotion type uses besides the common ones (when, items, code, limit, ...)
_PROMOTION_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # type: (required, optional)
    "discount_percent": ({"value"}, {"target"}),
    "discount_fixed": ({"value"}, {"target"}),
    "discount_steps": ({"steps"}, {"target"}),
    "buy_x_get_y": ({"buy", "get"}, {"value"}),
    "free_item": ({"free_items"}, set()),
    "free_shipping": (set(), set()),
}
_TYPED = {"value", "target", "steps", "buy", "get", "free_items"}


def _check_promotions(
    program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]
) -> None:
    """Unique keys, CEL, the keys each type needs (and only those), money in the currency."""
    exponent = currency_exponent(program.currency)
    seen: set[str] = set()
    for index, promotion in enumerate(program.promotions):
        loc: list[str | int] = ["promotions", index]
        if promotion.key in seen:
            errors.append(
                {"loc": [*loc, "key"], "msg": f"duplicate promotion key {promotion.key!r}"}
            )
        seen.add(promotion.key)
        if promotion.when is not None:
            _check(errors, [*loc, "when"], promotion.when, sample, ORDER_ROOTS)
        if promotion.items is not None:
            _check(errors, [*loc, "items"], promotion.items, sample, ITEM_ROOTS)
        required, optional = _PROMOTION_FIELDS[promotion.type]
        for name in sorted(required):
            if getattr(promotion, name) is None:
                errors.append(
                    {"loc": [*loc, name], "msg": f"a {promotion.type} promotion needs {name!r}"}
                )
        for name in sorted(_TYPED - required - optional):
            if getattr(promotion, name) is not None:
                errors.append(
                    {"loc": [*loc, name], "msg": f"not used by a {promotion.type} promotion"}
                )
        if promotion.type in ("discount_percent", "buy_x_get_y") and (
            promotion.value is not None and promotion.value > 100
        ):
            errors.append({"loc": [*loc, "value"], "msg": "a percent is at most 100"})
        for name in ("value", "max_amount"):
            amount = getattr(promotion, name)
            money = name == "max_amount" or promotion.type == "discount_fixed"
            if money and amount is not None and decimal_places(amount) > exponent:
                errors.append({"loc": [*loc, name], "msg": _too_precise(program, exponent)})
        if promotion.target == "items" and promotion.items is None:
            errors.append({"loc": [*loc, "target"], "msg": "target items needs an 'items' filter"})
        if promotion.steps is not None:
            amounts = [step.min_amount for step in promotion.steps]
            if not amounts or amounts != sorted(set(amounts)):
                errors.append(
                    {
                        "loc": [*loc, "steps"],
                        "msg": "list steps by strictly increasing min_amount",
                    }
                )
            for number, step in enumerate(promotion.steps):
                if decimal_places(step.min_amount) > exponent:
                    errors.append(
                        {
                            "loc": [*loc, "steps", number, "min_amount"],
                            "msg": _too_precise(program, exponent),
                        }
                    )
        if promotion.free_items is not None and not promotion.free_items:
            errors.append({"loc": [*loc, "free_items"], "msg": "list at least one item"})
        if (
            promotion.starts_at is not None
            and promotion.ends_at is not None
            and as_utc(promotion.ends_at) <= as_utc(promotion.starts_at)
        ):
            errors.append({"loc": [*loc, "ends_at"], "msg": "ends_at must be after starts_at"})


def _activity_roots(on: str | None) -> frozenset[str]:
    if on is None:
        return MEMBER_ROOTS
    return ORDER_ROOTS if on == "order.completed" else EVENT_ROOTS


def _check_engagement(
    program: Program, errors: list[dict[str, Any]], sample: dict[str, Any]
) -> None:
    """Badges and challenges: unique keys, CEL per activity type, rewards that exist."""
    badge_keys: set[str] = set()
    for index, badge in enumerate(program.badges):
        loc: list[str | int] = ["badges", index]
        if badge.key in badge_keys:
            errors.append({"loc": [*loc, "key"], "msg": f"duplicate badge key {badge.key!r}"})
        badge_keys.add(badge.key)
        roots = _activity_roots(badge.on)
        if badge.when is not None:
            _check(errors, [*loc, "when"], badge.when, sample, roots)
        levels = badge.levels or []
        if len({level.key for level in levels}) != len(levels):
            errors.append({"loc": [*loc, "levels"], "msg": "level keys must be unique"})
        for number, level in enumerate(levels):
            _check(errors, [*loc, "levels", number, "when"], level.when, sample, roots)
    seen: set[str] = set()
    for index, challenge in enumerate(program.challenges):
        loc = ["challenges", index]
        if challenge.key in seen:
            errors.append(
                {"loc": [*loc, "key"], "msg": f"duplicate challenge key {challenge.key!r}"}
            )
        seen.add(challenge.key)
        if as_utc(challenge.ends_at) <= as_utc(challenge.starts_at):
            errors.append({"loc": [*loc, "ends_at"], "msg": "ends_at must be after starts_at"})
        steps = challenge.steps or []
        if len({step.key for step in steps}) != len(steps):
            errors.append({"loc": [*loc, "steps"], "msg": "step keys must be unique"})
        for number, step in enumerate(steps):
            if step.when is not None:
                _check(
                    errors, [*loc, "steps", number, "when"], step.when, sample,
                    _activity_roots(step.on),
                )  # fmt: skip
        streak = challenge.streak
        if streak is not None and streak.when is not None:
            _check(
                errors, [*loc, "streak", "when"], streak.when, sample, _activity_roots(streak.on)
            )
        reward = challenge.reward
        if reward is None:
            continue
        if reward.points is not None:
            wallet = program.wallets.get(reward.wallet or program.default_wallet)
            if wallet is None:
                errors.append({"loc": [*loc, "reward", "wallet"], "msg": _unknown_wallet(program)})
            elif decimal_places(reward.points) > wallet.precision:
                errors.append(
                    {
                        "loc": [*loc, "reward", "points"],
                        "msg": f"has more than {wallet.precision} decimal places "
                        "(the wallet's precision)",
                    }
                )
        if reward.badge is not None and reward.badge not in badge_keys:
            errors.append(
                {"loc": [*loc, "reward", "badge"], "msg": f"unknown badge {reward.badge!r}"}
            )
        if reward.reward is not None:
            target = next((r for r in program.rewards if r.key == reward.reward), None)
            if target is None or target.type not in COUPON_REWARD_TYPES:
                errors.append(
                    {
                        "loc": [*loc, "reward", "reward"],
                        "msg": "must name a reward that gives a coupon (discount_fixed, "
                        "discount_percent, free_shipping, free_product or gift_card)",
                    }
                )


def _check(
    errors: list[dict[str, Any]],
    loc: list[str | int],
    source: str,
    sample: dict[str, Any],
    roots: frozenset[str],
) -> None:
    try:
        check_expression(
            source,
            sample,
            allowed_roots=roots,
            max_length=get_settings().max_expression_length,
        )
    except ExpressionError as exc:
        errors.append({"loc": loc, "msg": f"invalid CEL expression: {exc}"})


def _check_price_lists(
    errors: list[dict[str, Any]], program: Program, sample: dict[str, Any]
) -> None:
    """Unique keys and entries, ``eligible`` conditions, money within the currency's decimals."""
    exponent = currency_exponent(program.currency)
    keys: set[str] = set()
    for index, price_list in enumerate(program.price_lists):
        loc: list[str | int] = ["price_lists", index]
        if price_list.key in keys:
            errors.append(
                {"loc": [*loc, "key"], "msg": f"duplicate price list key {price_list.key!r}"}
            )
        keys.add(price_list.key)
        if price_list.eligible is not None:
            _check(errors, [*loc, "eligible"], price_list.eligible, sample, PRICE_LIST_ROOTS)
        targets: set[tuple[str, str]] = set()
        for number, entry in enumerate(price_list.entries):
            entry_loc: list[str | int] = [*loc, "entries", number]
            target = (
                ("sku", entry.sku) if entry.sku is not None else ("category", entry.category or "")
            )
            if target in targets:
                errors.append(
                    {
                        "loc": [*entry_loc, target[0]],
                        "msg": f"another entry of this list has {target[0]} {target[1]!r}",
                    }
                )
            targets.add(target)
            if entry.list_price is not None and decimal_places(entry.list_price) > exponent:
                errors.append(
                    {"loc": [*entry_loc, "list_price"], "msg": _too_precise(program, exponent)}
                )
            for step, price_break in enumerate(entry.breaks):
                if (
                    price_break.unit_price is not None
                    and decimal_places(price_break.unit_price) > exponent
                ):
                    errors.append(
                        {
                            "loc": [*entry_loc, "breaks", step, "unit_price"],
                            "msg": _too_precise(program, exponent),
                        }
                    )


def _too_precise(program: Program, exponent: int) -> str:
    return f"has more than {exponent} decimal places for {program.currency}"


def _unknown_wallet(program: Program) -> str:
    return f"unknown wallet; defined wallets: {', '.join(program.wallets)}"


def _message(err: Any) -> str:
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (not part of the program document)"
    return msg
