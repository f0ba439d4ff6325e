"""The earning semantics of DESIGN.md §4 as a table.

Each case is a program (rules, wallets, campaigns) and a series of orders, each with the points
it must earn per wallet and per rule. Every order is first priced with ``POST /v1/evaluate``
(a dry run: the same numbers, nothing written) and then booked with ``POST /v1/orders``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import Api, apply_program, ledger_ok

LATER = "2027-06-01T00:00:00Z"  # the request time: after every order below (nothing pending)


def item(
    amount: str,
    *,
    quantity: int = 1,
    category: str = "general",
    labels: tuple[str, ...] = (),
    sku: str | None = None,
) -> dict[str, Any]:
    return {
        "sku": sku or f"sku-{category}-{amount}",
        "name": f"{category} {amount}",
        "category": category,
        "labels": list(labels),
        "quantity": quantity,
        "unit_price": amount,
        "amount": amount,
    }


@dataclass
class Step:
    """One order and what it must earn."""

    items: list[dict[str, Any]]
    points: dict[str, int | float]  # per wallet; a wallet not listed earns 0
    rules: dict[str, int | float]  # per rule (earned or pending effects)
    member: str = "m1"
    placed_at: str = "2026-03-10T12:00:00Z"
    multiplied: dict[str, float] | None = None  # rule -> factor of points_multiplied effects
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    name: str
    rules: list[dict[str, Any]]
    steps: list[Step]
    wallets: dict[str, Any] | None = None
    campaigns: list[dict[str, Any]] | None = None
    timezone: str = "UTC"


def program_of(case: Case) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": f"Table {case.name}",
        "currency": "USD",
        "timezone": case.timezone,
        "wallets": case.wallets or {"points": {"precision": 0, "rounding": "floor"}},
        "rules": case.rules,
    }
    if case.campaigns is not None:
        document["campaigns"] = case.campaigns
    return document


ONE = {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}
WARSAW = "Europe/Warsaw"

CASES = [
    Case(
        "per_amount",
        [{"key": "base", "earn": {"per_amount": 2}}],
        [Step([item("10.50"), item("4.25")], {"points": 29}, {"base": 29})],
    ),  # 29.5 floored
    Case(
        "per_quantity",
        [{"key": "per-unit", "earn": {"per_quantity": 5}}],
        [
            Step(
                [item("30.00", quantity=3), item("1.00", quantity=2)],
                {"points": 25},
                {"per-unit": 25},
            )
        ],
    ),
    Case(
        "items filter by category",
        [{"key": "books", "earn": {"per_amount": 1, "items": "item.category == 'books'"}}],
        [Step([item("30.00", category="books"), item("20.00")], {"points": 30}, {"books": 30})],
    ),
    Case(
        "items filter by label",
        [{"key": "promo", "earn": {"per_amount": 3, "items": "'promo' in item.labels"}}],
        [
            Step(
                [item("10.00", labels=("promo", "new")), item("20.00", labels=("new",))],
                {"points": 30},
                {"promo": 30},
            )
        ],
    ),
    Case(
        "items filter matching no line: the rule does not apply",
        [
            ONE,
            {
                "key": "promo",
                "stop": True,
                "earn": {"per_amount": 3, "items": "'promo' in item.labels"},
            },
            {"key": "after", "earn": {"fixed": 7}},
        ],
        [Step([item("10.00")], {"points": 17}, {"base": 10, "after": 7})],
    ),
    Case(
        "two per_amount rules stack",
        [ONE, {"key": "extra", "earn": {"per_amount": 0.5}}],
        [Step([item("100.00")], {"points": 150}, {"base": 100, "extra": 50})],
    ),
    Case(
        "line multiply with items",
        [ONE, {"key": "promo-x3", "multiply": {"factor": 3, "items": "'promo' in item.labels"}}],
        [
            Step(
                [item("40.00", labels=("promo",)), item("60.00")],
                {"points": 180},
                {"base": 180},
                multiplied={"promo-x3": 3.0},
            )
        ],
    ),
    Case(
        "order-level multiply without items",
        [ONE, {"key": "double", "multiply": {"factor": 2}}],
        [
            Step(
                [item("40.00"), item("60.00")],
                {"points": 200},
                {"base": 200},
                multiplied={"double": 2.0},
            )
        ],
    ),
    Case(
        "several multipliers multiply together",
        [
            ONE,
            {"key": "promo-x2", "multiply": {"factor": 2, "items": "'promo' in item.labels"}},
            {"key": "promo-x1_5", "multiply": {"factor": 1.5, "items": "item.category == 'books'"}},
            {"key": "all-x3", "multiply": {"factor": 3}},
        ],
        # 10 × 2 × 1.5 × 3 + 20 × 2 × 3 + 30 × 3 = 90 + 120 + 90
        [
            Step(
                [
                    item("10.00", category="books", labels=("promo",)),
                    item("20.00", labels=("promo",)),
                    item("30.00"),
                ],
                {"points": 300},
                {"base": 300},
                multiplied={"promo-x2": 2.0, "promo-x1_5": 1.5, "all-x3": 3.0},
            )
        ],
    ),
    Case(
        "factor 0 zeroes a line",
        [
            ONE,
            {
                "key": "no-gift-cards",
                "multiply": {"factor": 0, "items": "item.category == 'gift-card'"},
            },
        ],
        [
            Step(
                [item("50.00", category="gift-card"), item("25.00")],
                {"points": 25},
                {"base": 25},
                multiplied={"no-gift-cards": 0.0},
            )
        ],
    ),
    Case(
        "fixed is added after multiplication",
        [
            ONE,
            {"key": "double", "multiply": {"factor": 2}},
            {"key": "bonus", "earn": {"fixed": 50}},
        ],
        [
            Step(
                [item("100.00")],
                {"points": 250},
                {"base": 200, "bonus": 50},
                multiplied={"double": 2.0},
            )
        ],
    ),
    Case(
        "percent into a credit wallet, floor and half_up",
        [
            ONE,
            {"key": "cashback", "earn": {"wallet": "credit", "percent": 2}},
            {"key": "cashback-up", "earn": {"wallet": "credit_up", "percent": 2}},
        ],
        # 2 % of 123.45 = 2.469: floor 2.46, half_up 2.47
        [
            Step(
                [item("123.45")],
                {"points": 123, "credit": 2.46, "credit_up": 2.47},
                {"base": 123, "cashback": 2.46, "cashback-up": 2.47},
            )
        ],
        wallets={
            "points": {"precision": 0},
            "credit": {"kind": "credit", "precision": 2, "rounding": "floor"},
            "credit_up": {"kind": "credit", "precision": 2, "rounding": "half_up"},
        },
    ),
    Case(
        "stop ends evaluation only when its rule applied",
        [
            ONE,
            {"key": "vip", "when": "order.total >= 1000.0", "earn": {"fixed": 10}, "stop": True},
            {"key": "later", "earn": {"fixed": 5}},
        ],
        [
            Step([item("100.00")], {"points": 105}, {"base": 100, "later": 5}),
            Step([item("1000.00")], {"points": 1010}, {"base": 1000, "vip": 10}),
        ],
    ),
    Case(
        "priority reorders (lower first)",
        [
            {"key": "doc-first", "earn": {"fixed": 5}, "priority": 10},
            {"key": "doc-second", "earn": {"fixed": 7}, "priority": 1, "stop": True},
        ],
        [Step([item("10.00")], {"points": 7}, {"doc-second": 7})],
    ),
    Case(
        "minimum order via when",
        [{"key": "min50", "when": "order.total >= 50.0", "earn": {"fixed": 20}}],
        [
            Step([item("49.99")], {}, {}),
            Step([item("50.00")], {"points": 20}, {"min50": 20}),
            # total (not subtotal) decides: shipping counts here
            Step([item("45.00")], {"points": 20}, {"min50": 20}, extra={"shipping_amount": "5.00"}),
        ],
    ),
    Case(
        "campaign window against placed_at (ends_at excluded)",
        [
            {
                "key": "march-week",
                "earn": {"fixed": 10},
                "starts_at": "2026-03-01T00:00:00Z",
                "ends_at": "2026-03-08T00:00:00Z",
            }
        ],
        [
            Step([item("10.00")], {}, {}, placed_at="2026-02-28T23:59:59Z"),
            Step(
                [item("10.00")],
                {"points": 10},
                {"march-week": 10},
                placed_at="2026-03-01T00:00:00Z",
            ),
            Step(
                [item("10.00")],
                {"points": 10},
                {"march-week": 10},
                placed_at="2026-03-07T23:59:59Z",
            ),
            Step([item("10.00")], {}, {}, placed_at="2026-03-08T00:00:00Z"),
        ],
    ),
    Case(
        "campaign section window",
        [{"key": "spring-bonus", "campaign": "spring", "earn": {"fixed": 15}}],
        [
            Step([item("10.00")], {}, {}, placed_at="2026-03-19T23:00:00Z"),
            Step(
                [item("10.00")],
                {"points": 15},
                {"spring-bonus": 15},
                placed_at="2026-03-21T12:00:00Z",
            ),
        ],
        campaigns=[
            {
                "key": "spring",
                "starts_at": "2026-03-20T00:00:00Z",
                "ends_at": "2026-06-21T00:00:00Z",
            }
        ],
    ),
    Case(
        "cap_per_order",
        [{"key": "base", "earn": {"per_amount": 1}, "cap_per_order": 100}],
        [
            Step([item("250.00")], {"points": 100}, {"base": 100}),
            Step([item("80.00")], {"points": 80}, {"base": 80}),
        ],
    ),
    Case(
        "per member per month, calendar month in the program timezone",
        [{"key": "monthly", "earn": {"fixed": 10}, "limit": {"per_member": 1, "period": "month"}}],
        [
            Step([item("1.00")], {"points": 10}, {"monthly": 10}, placed_at="2026-03-31T10:00:00Z"),
            # 23:30 on 31 March in Warsaw (UTC+2): still March
            Step([item("1.00")], {}, {}, placed_at="2026-03-31T21:30:00Z"),
            # 00:30 on 1 April in Warsaw: a new month
            Step([item("1.00")], {"points": 10}, {"monthly": 10}, placed_at="2026-03-31T22:30:00Z"),
            Step([item("1.00")], {}, {}, placed_at="2026-04-15T12:00:00Z"),
            Step(
                [item("1.00")],
                {"points": 10},
                {"monthly": 10},
                member="m2",
                placed_at="2026-04-15T12:00:00Z",
            ),
        ],
        timezone=WARSAW,
    ),
    Case(
        "per member per day in the program timezone",
        [{"key": "daily", "earn": {"fixed": 3}, "limit": {"per_member": 2, "period": "day"}}],
        [
            Step([item("1.00")], {"points": 3}, {"daily": 3}, placed_at="2026-03-10T08:00:00Z"),
            Step([item("1.00")], {"points": 3}, {"daily": 3}, placed_at="2026-03-10T12:00:00Z"),
            # 23:59 on 10 March in Warsaw (UTC+1)
            Step([item("1.00")], {}, {}, placed_at="2026-03-10T22:59:00Z"),
            # 00:00 on 11 March in Warsaw
            Step([item("1.00")], {"points": 3}, {"daily": 3}, placed_at="2026-03-10T23:00:00Z"),
        ],
        timezone=WARSAW,
    ),
    Case(
        "per member per week (ISO weeks) in the program timezone",
        [{"key": "weekly", "earn": {"fixed": 4}, "limit": {"per_member": 1, "period": "week"}}],
        # Sunday 1 March 23:30 Warsaw, then Monday 2 March 00:30 Warsaw, then Wednesday
        [
            Step([item("1.00")], {"points": 4}, {"weekly": 4}, placed_at="2026-03-01T22:30:00Z"),
            Step([item("1.00")], {"points": 4}, {"weekly": 4}, placed_at="2026-03-01T23:30:00Z"),
            Step([item("1.00")], {}, {}, placed_at="2026-03-04T12:00:00Z"),
        ],
        timezone=WARSAW,
    ),
    Case(
        "per member per year in the program timezone",
        [{"key": "yearly", "earn": {"fixed": 6}, "limit": {"per_member": 1, "period": "year"}}],
        # 23:30 on 31 Dec 2025 in Warsaw, then 00:30 on 1 Jan 2026 in Warsaw
        [
            Step([item("1.00")], {"points": 6}, {"yearly": 6}, placed_at="2025-12-31T22:30:00Z"),
            Step([item("1.00")], {"points": 6}, {"yearly": 6}, placed_at="2025-12-31T23:30:00Z"),
            Step([item("1.00")], {}, {}, placed_at="2026-06-01T12:00:00Z"),
        ],
        timezone=WARSAW,
    ),
    Case(
        "per member lifetime",
        [{"key": "welcome", "earn": {"fixed": 100}, "limit": {"per_member": 2}}],
        [
            Step([item("1.00")], {"points": 100}, {"welcome": 100}),
            Step(
                [item("1.00")], {"points": 100}, {"welcome": 100}, placed_at="2026-05-01T00:00:00Z"
            ),
            Step([item("1.00")], {}, {}, placed_at="2026-09-01T00:00:00Z"),
            Step([item("1.00")], {"points": 100}, {"welcome": 100}, member="m2"),
        ],
    ),
    Case(
        "limit total over all members",
        [{"key": "first-two", "earn": {"fixed": 25}, "limit": {"total": 2}}],
        [
            Step([item("1.00")], {"points": 25}, {"first-two": 25}, member="m1"),
            Step([item("1.00")], {"points": 25}, {"first-two": 25}, member="m2"),
            Step([item("1.00")], {}, {}, member="m3"),
            Step([item("1.00")], {}, {}, member="m1"),
        ],
    ),
    Case(
        "rule budget runs out: exactly the budget is issued",
        [{"key": "launch", "earn": {"per_amount": 1}, "budget": 250}],
        [
            Step([item("100.00")], {"points": 100}, {"launch": 100}, member="m1"),
            Step([item("100.00")], {"points": 100}, {"launch": 100}, member="m2"),
            Step([item("100.00")], {"points": 50}, {"launch": 50}, member="m3"),
            Step([item("100.00")], {}, {}, member="m1"),
        ],
    ),
    Case(
        "campaign budget shared by two rules",
        [
            {"key": "spring-base", "campaign": "spring", "earn": {"per_amount": 1}},
            {"key": "spring-bonus", "campaign": "spring", "earn": {"fixed": 30}},
        ],
        [
            Step([item("100.00")], {"points": 130}, {"spring-base": 100, "spring-bonus": 30}),
            # 20 left in the budget: the first rule takes it, the second gets nothing
            Step([item("100.00")], {"points": 20}, {"spring-base": 20}, member="m2"),
            Step([item("100.00")], {}, {}, member="m3"),
        ],
        campaigns=[{"key": "spring", "budget": 150}],
    ),
    Case(
        "campaign budget smaller than one order of two rules",
        [
            {"key": "spring-base", "campaign": "spring", "earn": {"per_amount": 1}},
            {"key": "spring-bonus", "campaign": "spring", "earn": {"fixed": 30}},
        ],
        [
            Step([item("100.00")], {"points": 120}, {"spring-base": 100, "spring-bonus": 20}),
            Step([item("100.00")], {}, {}, member="m2"),
        ],
        campaigns=[{"key": "spring", "budget": 120}],
    ),
    Case(
        "rounding once per wallet, not per rule",
        [
            {"key": "half-a", "earn": {"per_amount": 0.5}},
            {"key": "half-b", "earn": {"per_amount": 0.5}},
        ],
        [Step([item("1.00")], {"points": 1}, {"half-a": 1})],
    ),  # 0.5 + 0.5, not 0 + 0
    Case(
        "a stop rule whose limit is used up does not stop",
        [
            {
                "key": "first-order",
                "earn": {"fixed": 100},
                "limit": {"per_member": 1},
                "stop": True,
            },
            ONE,
        ],
        [
            Step([item("10.00")], {"points": 100}, {"first-order": 100}),
            Step([item("10.00")], {"points": 10}, {"base": 10}),
        ],
    ),
    Case(
        "percent of the matching lines only",
        [
            ONE,
            {
                "key": "books-back",
                "earn": {"wallet": "credit", "percent": 5, "items": "item.category == 'books'"},
            },
        ],
        # 5 % of 19.99 = 0.9995, floored to 0.99; the 80.00 line is not a book
        [
            Step(
                [item("19.99", category="books"), item("80.00")],
                {"points": 99, "credit": 0.99},
                {"base": 99, "books-back": 0.99},
            )
        ],
        wallets={
            "points": {"precision": 0},
            "credit": {"kind": "credit", "precision": 2, "rounding": "floor"},
        },
    ),
    Case(
        "conditions on the member",
        [
            ONE,
            {"key": "vip", "when": "'vip' in member.tags", "multiply": {"factor": 2}},
            {"key": "returning", "when": "member.stats.orders >= 1", "earn": {"fixed": 5}},
        ],
        [
            Step(
                [item("10.00")],
                {"points": 20},
                {"base": 20},
                member="vip1",
                multiplied={"vip": 2.0},
            ),
            Step([item("10.00")], {"points": 25}, {"base": 20, "returning": 5}, member="vip1"),
            Step([item("10.00")], {"points": 10}, {"base": 10}, member="plain", multiplied={}),
        ],
    ),
]

MEMBER_TAGS = {"vip1": ["vip"]}


def _earned(effects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    by_rule: dict[str, Any] = {}
    multiplied: dict[str, Any] = {}
    for effect in effects:
        if effect["type"] in ("points_earned", "points_pending"):
            assert effect["rule"] not in by_rule, effects
            by_rule[effect["rule"]] = effect["amount"]
        elif effect["type"] == "points_multiplied":
            multiplied[effect["rule"]] = effect["factor"]
    return by_rule, multiplied


def _order_body(case: Case, index: int, step: Step) -> dict[str, Any]:
    return {
        "id": f"o{index}",
        "member_id": step.member,
        "placed_at": step.placed_at,
        "items": step.items,
        **step.extra,
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rules_table(case: Case, api: Api, tenant: tuple[str, str]) -> None:
    api.now = LATER
    apply_program(api, program_of(case))
    members = sorted({s.member for s in case.steps})
    for member in members:
        profile = {"tags": MEMBER_TAGS.get(member, [])}
        assert api.put(f"/v1/members/{member}", json=profile).status_code == 201
    wallets = program_of(case)["wallets"]
    totals: dict[str, dict[str, float]] = {m: dict.fromkeys(wallets, 0) for m in members}
    for index, step in enumerate(case.steps):
        body = _order_body(case, index, step)
        where = f"step {index} of {case.name!r}"
        ledger_before = api.get(f"/v1/members/{step.member}/ledger").json()["data"]

        dry = api.post("/v1/evaluate", json=body)
        assert dry.status_code == 200, dry.text
        dry_body = dry.json()
        dry_points = {k: v for k, v in dry_body["points"].items() if v}
        assert dry_points == step.points, where
        dry_rules, _ = _earned(dry_body["effects"])
        assert dry_rules == step.rules, where
        # the dry run wrote nothing
        assert api.get(f"/v1/members/{step.member}/ledger").json()["data"] == ledger_before

        booked = api.post("/v1/orders", json=body)
        assert booked.status_code == 201, booked.text
        result = booked.json()
        by_rule, multiplied = _earned(result["effects"])
        assert by_rule == step.rules, (where, result["effects"])
        if step.multiplied is not None:
            assert multiplied == step.multiplied, (where, result["effects"])
        per_wallet: dict[str, float] = {}
        for effect in result["effects"]:
            if effect["type"] in ("points_earned", "points_pending"):
                per_wallet[effect["wallet"]] = (
                    per_wallet.get(effect["wallet"], 0) + effect["amount"]
                )
        assert {k: round(v, 6) for k, v in per_wallet.items() if v} == step.points, where
        for wallet in wallets:
            totals[step.member][wallet] += step.points.get(wallet, 0)
            assert result["balances"][wallet]["active"] == pytest.approx(
                totals[step.member][wallet]
            ), where
            assert result["balances"][wallet]["pending"] == 0
    assert ledger_ok(tenant[0]) == []


# ---- events --------------------------------------------------------------------------------


REVIEW_PROGRAM: dict[str, Any] = {
    "name": "Reviews",
    "currency": "USD",
    "timezone": "UTC",
    "wallets": {"points": {"precision": 0}},
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {
            "key": "review",
            "on": "review.created",
            "earn": {"fixed": 50},
            "limit": {"per_member": 3, "period": "month"},
        },
    ],
}


def test_evaluate_for_an_anonymous_cart(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program_of(CASES[0]))
    dry = api.post("/v1/evaluate", json={"items": [item("10.50"), item("4.25")]})
    assert dry.status_code == 200, dry.text
    assert dry.json()["points"] == {"points": 29}
    assert api.get("/v1/domain-events").json()["data"] == []
    assert ledger_ok(tenant[0]) == []


def test_event_percent_of_amount(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(
        api,
        {
            "name": "Recycling",
            "currency": "USD",
            "wallets": {
                "points": {"precision": 0},
                "credit": {"kind": "credit", "precision": 2, "rounding": "half_up"},
            },
            "rules": [
                {
                    "key": "recycle",
                    "on": "recycling.returned",
                    "earn": {"wallet": "credit", "percent": 10},
                }
            ],
        },
    )
    api.now = LATER
    response = api.post(
        "/v1/events",
        json={
            "id": "rc1",
            "type": "recycling.returned",
            "member_id": "m1",
            "properties": {"amount": 25.45},
        },
    )
    assert response.status_code == 201, response.text
    # 10 % of 25.45 = 2.545, half_up 2.55
    assert response.json()["balances"]["credit"] == {"active": 2.55, "pending": 0}
    assert ledger_ok(tenant[0]) == []


def test_event_rule_with_monthly_limit(api: Api, tenant: tuple[str, str]) -> None:
    api.now = LATER
    apply_program(api, REVIEW_PROGRAM)
    earned = []
    for n, day in enumerate(["2026-03-02", "2026-03-10", "2026-03-20", "2026-03-31", "2026-04-01"]):
        response = api.post(
            "/v1/events",
            json={
                "id": f"review-{n}",
                "type": "review.created",
                "member_id": "m1",
                "occurred_at": f"{day}T12:00:00Z",
                "properties": {"product": f"p{n}"},
            },
        )
        assert response.status_code == 201, response.text
        effects = [e for e in response.json()["effects"] if e["type"] == "points_earned"]
        earned.append(sum(e["amount"] for e in effects))
        for effect in effects:
            assert effect["rule"] == "review"
    assert earned == [50, 50, 50, 0, 50]  # the 4th review in March earns nothing
    member = api.get("/v1/members/m1").json()
    assert member["balances"]["points"]["active"] == 200
    # another event type earns nothing and is accepted
    other = api.post(
        "/v1/events",
        json={
            "id": "quiz-1",
            "type": "quiz.completed",
            "member_id": "m1",
            "occurred_at": "2026-04-02T12:00:00Z",
        },
    )
    assert other.status_code == 201, other.text
    assert other.json()["effects"] == []
    assert ledger_ok(tenant[0]) == []


# ---- pending ---------------------------------------------------------------------------------


def test_pending_days_then_active(api: Api, tenant: tuple[str, str]) -> None:
    document = {**REVIEW_PROGRAM, "wallets": {"points": {"precision": 0, "pending_days": 14}}}
    apply_program(api, document)
    api.now = "2026-03-01T10:00:00Z"
    body = {
        "id": "o1",
        "member_id": "m1",
        "placed_at": "2026-03-01T10:00:00Z",
        "items": [item("100.00")],
    }
    dry = api.post("/v1/evaluate", json=body).json()
    assert dry["points"] == {"points": 100}
    response = api.post("/v1/orders", json=body)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["effects"] == [
        {
            "type": "points_pending",
            "wallet": "points",
            "amount": 100,
            "rule": "base",
            "available_at": "2026-03-15T10:00:00+00:00",
        }
    ]
    assert result["balances"] == {"points": {"active": 0, "pending": 100}}
    assert api.get("/v1/members/m1").json()["balances"]["points"]["pending"] == 100

    api.now = "2026-03-15T09:59:59Z"
    balances = api.get("/v1/members/m1").json()["balances"]["points"]
    assert (balances["active"], balances["pending"]) == (0, 100)
    api.now = "2026-03-15T10:00:00Z"
    balances = api.get("/v1/members/m1").json()["balances"]["points"]
    assert (balances["active"], balances["pending"]) == (100, 0)
    # a later order settles the matured lot in the ledger too
    api.now = "2026-03-20T10:00:00Z"
    later = api.post(
        "/v1/orders",
        json={
            "id": "o2",
            "member_id": "m1",
            "placed_at": "2026-03-20T10:00:00Z",
            "items": [item("10.00")],
        },
    )
    assert later.status_code == 201, later.text
    assert later.json()["balances"] == {"points": {"active": 100, "pending": 10}}
    assert ledger_ok(tenant[0]) == []
