"""Price lists through HTTP: the program document, POST /v1/evaluate lines, price tables."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import Api, apply_program, ledger_ok

PROGRAM: dict[str, Any] = {
    "name": "B2B Shop",
    "currency": "USD",
    "rules": [{"key": "base", "earn": {"per_amount": 1}}],
    "price_lists": [
        {
            "key": "wholesale",
            "name": "Wholesale",
            "eligible": "'wholesale' in member.tags",
            "entries": [
                {
                    "sku": "ABC-1",
                    "list_price": "10.00",
                    "breaks": [
                        {"min_quantity": 1, "unit_price": "9.50"},
                        {"min_quantity": 10, "unit_price": "9.00"},
                        {"min_quantity": 100, "percent_off": 15},
                    ],
                },
                {"category": "tools", "breaks": [{"min_quantity": 5, "percent_off": 10}]},
            ],
            "volume": [{"min_quantity": 1000, "percent_off": 5}],
        },
        {
            "key": "partners",
            "eligible": "'group' in member.attributes && member.attributes.group == 'partner'",
            "entries": [{"sku": "ABC-1", "breaks": [{"min_quantity": 1, "percent_off": 8}]}],
        },
    ],
}


def item(sku: str, quantity: int | str, unit_price: str, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price, **extra}


def evaluate(api: Api, member_id: str | None, *items: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"items": list(items)}
    if member_id:
        body["member_id"] = member_id
    response = api.post("/v1/evaluate", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture()
def shop(api: Api) -> Api:
    apply_program(api, PROGRAM)
    assert api.put("/v1/members/w1", json={"tags": ["wholesale"]}).status_code == 201
    assert api.put("/v1/members/p1", json={"attributes": {"group": "partner"}}).status_code == 201
    assert api.put("/v1/members/r1", json={"tags": ["retail"]}).status_code == 201
    return api


def test_evaluate_lines_for_several_breaks(shop: Api, tenant: tuple[str, str]) -> None:
    result = evaluate(
        shop,
        "w1",
        item("ABC-1", 12, "10.00"),
        item("HAMMER", 5, "19.99", category="tools"),
        item("GLUE", 2, "3.00", category="supplies"),
    )
    assert result["lines"] == [
        {
            "index": 0, "sku": "ABC-1", "quantity": 12, "list_unit_price": "10.00",
            "unit_price": "9.00", "amount": "108.00", "savings": "12.00",
            "price_list": "wholesale", "rule": "wholesale:ABC-1:10+", "volume_rule": None,
        },
        {
            # 19.99 less 10 % = 17.991 -> 17.99
            "index": 1, "sku": "HAMMER", "quantity": 5, "list_unit_price": "19.99",
            "unit_price": "17.99", "amount": "89.95", "savings": "10.00",
            "price_list": "wholesale", "rule": "wholesale:category:tools:5+", "volume_rule": None,
        },
        {
            "index": 2, "sku": "GLUE", "quantity": 2, "list_unit_price": "3.00",
            "unit_price": "3.00", "amount": "6.00", "savings": "0.00",
            "price_list": None, "rule": None, "volume_rule": None,
        },
    ]  # fmt: skip
    assert result["price_savings"] == "22.00"
    assert result["priced_subtotal"] == "203.95"
    # the existing keys are still there; points are earned on the amounts as sent
    assert result["totals"] == {
        "subtotal": "225.95",
        "total": "225.95",
        "discount": "0.00",
        "shipping": "0.00",
        "total_after_discounts": "225.95",
    }
    assert result["points"] == {"points": 225}
    assert {"rules_applied", "effects", "discounts", "free_items"} <= result.keys()
    # a dry run: nothing written
    assert shop.get("/v1/members/w1/ledger").json()["data"] == []
    assert ledger_ok(tenant[0]) == []


@pytest.mark.parametrize(
    ("quantity", "unit_price", "rule"),
    [
        (1, "9.50", "wholesale:ABC-1:1+"),
        (10, "9.00", "wholesale:ABC-1:10+"),
        (100, "8.50", "wholesale:ABC-1:100+"),
        (1000, "8.08", "wholesale:ABC-1:100+"),  # 8.50 less 5 % volume = 8.075
    ],
)
def test_evaluate_each_break(shop: Api, quantity: int, unit_price: str, rule: str) -> None:
    line = evaluate(shop, "w1", item("ABC-1", quantity, "10.00"))["lines"][0]
    assert (line["unit_price"], line["rule"]) == (unit_price, rule)
    assert line["volume_rule"] == ("wholesale:volume:1000+" if quantity >= 1000 else None)


def test_volume_counts_every_covered_line(shop: Api) -> None:
    result = evaluate(
        shop,
        "w1",
        item("ABC-1", 5, "10.00"),
        item("SAW", 995, "4.00", category="tools"),
        item("GLUE", 5000, "1.00", category="supplies"),  # not covered by the list
    )
    assert [line["unit_price"] for line in result["lines"]] == ["9.03", "3.42", "1.00"]
    assert [line["volume_rule"] for line in result["lines"]] == [
        "wholesale:volume:1000+",
        "wholesale:volume:1000+",
        None,
    ]


def test_eligibility_by_member_tags_and_attributes(shop: Api) -> None:
    def unit(member_id: str | None) -> tuple[str, str | None]:
        line = evaluate(shop, member_id, item("ABC-1", 10, "10.00"))["lines"][0]
        return line["unit_price"], line["price_list"]

    assert unit("w1") == ("9.00", "wholesale")  # tag
    assert unit("p1") == ("9.20", "partners")  # attribute: 8 % off
    assert unit("r1") == ("10.00", None)
    assert unit("unknown") == ("10.00", None)  # evaluated as a new member
    assert unit(None) == ("10.00", None)
    # both lists: the better price wins
    assert (
        shop.put(
            "/v1/members/p1", json={"tags": ["wholesale"], "attributes": {"group": "partner"}}
        ).status_code
        == 200
    )
    assert unit("p1") == ("9.00", "wholesale")
    one = evaluate(shop, "p1", item("ABC-1", 1, "10.00"))["lines"][0]
    assert (one["unit_price"], one["price_list"]) == ("9.20", "partners")


def test_list_price_from_the_amount_when_no_unit_price(shop: Api) -> None:
    result = evaluate(shop, "w1", {"sku": "ABC-1", "quantity": 3, "amount": "31.00"})
    line = result["lines"][0]
    # list unit price 10.333... shown as 10.33; the list amount is the amount as sent
    assert line["list_unit_price"] == "10.33"
    assert (line["unit_price"], line["amount"], line["savings"]) == ("9.50", "28.50", "2.50")


def test_window_follows_the_cart_time(api: Api) -> None:
    document = copy.deepcopy(PROGRAM)
    document["price_lists"][0].update(
        eligible=None, starts_at="2026-05-01T00:00:00Z", ends_at="2026-06-01T00:00:00Z"
    )
    apply_program(api, document)
    api.now = "2026-04-30T12:00:00Z"
    assert evaluate(api, None, item("ABC-1", 1, "10.00"))["lines"][0]["price_list"] is None
    api.now = "2026-05-02T12:00:00Z"
    assert evaluate(api, None, item("ABC-1", 1, "10.00"))["lines"][0]["price_list"] == "wholesale"
    # a cart placed_at inside the window
    api.now = "2026-06-10T12:00:00Z"
    body = {"placed_at": "2026-05-20T00:00:00Z", "items": [item("ABC-1", 1, "10.00")]}
    assert api.post("/v1/evaluate", json=body).json()["lines"][0]["unit_price"] == "9.50"


# ---- tables ------------------------------------------------------------------------------


def row(low: int, high: int | None, unit: str, savings: str, percent: float) -> dict[str, Any]:
    return {
        "min_quantity": low,
        "max_quantity": high,
        "unit_price": unit,
        "savings": savings,
        "savings_percent": percent,
    }


def test_table_for_a_sku(shop: Api) -> None:
    response = shop.get("/v1/price-lists/wholesale/table", params={"sku": "ABC-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "price_list": "wholesale",
        "name": "Wholesale",
        "currency": "USD",
        "entry": {"sku": "ABC-1"},
        "list_price": "10.00",
        "member_id": None,
        "active": True,
        "eligible": False,
        "rows": [
            row(1, 9, "9.50", "0.50", 5.0),
            row(10, 99, "9.00", "1.00", 10.0),
            row(100, 999, "8.50", "1.50", 15.0),
            row(1000, None, "8.08", "1.92", 19.2),
        ],
        "volume": [{"min_quantity": 1000, "percent_off": 5.0}],
    }
    # another list price, and the member's eligibility
    other = shop.get(
        "/v1/price-lists/wholesale/table",
        params={"sku": "ABC-1", "list_price": "20.00", "member_id": "w1"},
    ).json()
    assert other["eligible"] is True
    assert other["list_price"] == "20.00"
    assert [r["unit_price"] for r in other["rows"]] == ["9.50", "9.00", "17.00", "16.15"]
    assert (
        shop.get(
            "/v1/price-lists/wholesale/table", params={"sku": "ABC-1", "member_id": "r1"}
        ).json()["eligible"]
        is False
    )


def test_table_for_a_category_and_the_cart_agrees(shop: Api) -> None:
    params = {"sku": "SAW", "category": "tools", "list_price": "4.00", "member_id": "w1"}
    body = shop.get("/v1/price-lists/wholesale/table", params=params).json()
    assert body["entry"] == {"category": "tools"}
    rows = [(r["min_quantity"], r["max_quantity"], r["unit_price"]) for r in body["rows"]]
    assert rows == [(1, 4, "4.00"), (5, 999, "3.60"), (1000, None, "3.42")]
    for quantity, _, unit_price in rows:
        line = evaluate(shop, "w1", item("SAW", quantity, "4.00", category="tools"))["lines"][0]
        assert line["unit_price"] == unit_price


def test_table_errors(shop: Api) -> None:
    def problem(params: dict[str, str], status: int, code: str, key: str = "wholesale") -> Any:
        response = shop.get(f"/v1/price-lists/{key}/table", params=params)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
        return response.json()

    problem({"sku": "ABC-1"}, 404, "price_list_not_found", key="nope")
    problem({"sku": "NOPE"}, 404, "price_entry_not_found")
    problem({"sku": "NOPE", "category": "food"}, 404, "price_entry_not_found")
    missing = problem({"sku": "SAW", "category": "tools"}, 422, "list_price_required")
    assert missing["errors"][0]["loc"] == ["query", "list_price"]
    assert problem({}, 422, "validation_error")["errors"][0]["loc"] == ["query", "sku"]
    too_precise = problem({"sku": "ABC-1", "list_price": "1.234"}, 422, "validation_error")
    assert too_precise["errors"][0]["loc"] == ["query", "list_price"]
    problem({"sku": "ABC-1", "list_price": "-1"}, 422, "validation_error")
    problem({"sku": "ABC-1", "list_price": "abc"}, 422, "validation_error")


def test_table_without_a_program(api: Api) -> None:
    response = api.get("/v1/price-lists/wholesale/table", params={"sku": "ABC-1"})
    assert response.status_code == 404
    assert response.json()["code"] == "price_list_not_found"


def test_table_scopes(shop: Api) -> None:
    store = shop.post("/v1/api-keys", json={"scope": "storefront"}).json()["api_key"]
    ingest = shop.post("/v1/api-keys", json={"scope": "ingest"}).json()["api_key"]
    path = "/v1/price-lists/wholesale/table?sku=ABC-1"
    assert shop.with_key(store).get(path).status_code == 200
    assert shop.with_key(ingest).get(path).json()["code"] == "insufficient_scope"
    assert shop.with_key(None).get(path).status_code == 401


def test_inactive_list_is_flagged(api: Api) -> None:
    document = copy.deepcopy(PROGRAM)
    document["price_lists"][0]["enabled"] = False
    apply_program(api, document)
    body = api.get("/v1/price-lists/wholesale/table", params={"sku": "ABC-1"}).json()
    assert body["active"] is False
    assert len(body["rows"]) == 4


# ---- the program document ----------------------------------------------------------------


def _with_list(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(PROGRAM)
    document["price_lists"][0].update(changes)
    return document


def _with_entry(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(PROGRAM)
    document["price_lists"][0]["entries"][0].update(changes)
    return document


BREAKS = [{"min_quantity": 1, "unit_price": "9.50"}]
INVALID = [
    pytest.param(
        _with_entry(
            breaks=[{"min_quantity": 10, "unit_price": 9}, {"min_quantity": 5, "unit_price": 8}]
        ),
        ["price_lists", 0, "entries", 0, "breaks"],
        "increasing",
        id="breaks not sorted",
    ),
    pytest.param(
        _with_entry(
            breaks=[{"min_quantity": 5, "unit_price": 9}, {"min_quantity": 5, "percent_off": 8}]
        ),
        ["price_lists", 0, "entries", 0, "breaks"],
        "increasing",
        id="duplicate min_quantity",
    ),
    pytest.param(
        _with_entry(breaks=[{"min_quantity": 1, "unit_price": 9, "percent_off": 5}]),
        ["price_lists", 0, "entries", 0, "breaks", 0],
        "exactly one",
        id="price and percent",
    ),
    pytest.param(
        _with_entry(breaks=[{"min_quantity": 1}]),
        ["price_lists", 0, "entries", 0, "breaks", 0],
        "exactly one",
        id="no price",
    ),
    pytest.param(
        _with_entry(category="tools"),
        ["price_lists", 0, "entries", 0],
        "exactly one of 'sku' or 'category'",
        id="sku and category",
    ),
    pytest.param(
        _with_entry(sku=None),
        ["price_lists", 0, "entries", 0],
        "exactly one of 'sku' or 'category'",
        id="neither",
    ),
    pytest.param(
        _with_entry(breaks=[{"min_quantity": 1, "percent_off": 101}]),
        ["price_lists", 0, "entries", 0, "breaks", 0, "percent_off"],
        "100",
        id="percent over 100",
    ),
    pytest.param(
        _with_list(volume=[{"min_quantity": 10, "percent_off": -1}]),
        ["price_lists", 0, "volume", 0, "percent_off"],
        "0",
        id="negative volume percent",
    ),
    pytest.param(
        _with_list(
            volume=[{"min_quantity": 10, "percent_off": 1}, {"min_quantity": 2, "percent_off": 2}]
        ),
        ["price_lists", 0, "volume"],
        "increasing",
        id="volume not sorted",
    ),
    pytest.param(
        _with_entry(breaks=[{"min_quantity": 0, "unit_price": 1}]),
        ["price_lists", 0, "entries", 0, "breaks", 0, "min_quantity"],
        "1",
        id="min_quantity 0",
    ),
    pytest.param(
        _with_entry(breaks=[{"min_quantity": 1, "unit_price": "9.999"}]),
        ["price_lists", 0, "entries", 0, "breaks", 0, "unit_price"],
        "decimal places",
        id="too many decimals",
    ),
    pytest.param(
        _with_entry(list_price="10.001"),
        ["price_lists", 0, "entries", 0, "list_price"],
        "decimal places",
        id="list price decimals",
    ),
    pytest.param(
        _with_entry(breaks=[]),
        ["price_lists", 0, "entries", 0, "breaks"],
        "at least 1",
        id="no breaks",
    ),
    pytest.param(
        _with_list(eligible="member.tierr == 'gold'"),
        ["price_lists", 0, "eligible"],
        "tierr",
        id="CEL unknown field",
    ),
    pytest.param(
        _with_list(eligible="order.total > 1.0"),
        ["price_lists", 0, "eligible"],
        "'order' is not available",
        id="CEL order not here",
    ),
    pytest.param(
        _with_list(eligible="member.tier"),
        ["price_lists", 0, "eligible"],
        "condition",
        id="CEL not a condition",
    ),
    pytest.param(
        _with_list(key="partners"),
        ["price_lists", 1, "key"],
        "duplicate",
        id="duplicate list key",
    ),
    pytest.param(
        _with_list(entries=[{"sku": "A", "breaks": BREAKS}, {"sku": "A", "breaks": BREAKS}]),
        ["price_lists", 0, "entries", 1, "sku"],
        "another entry",
        id="duplicate sku entry",
    ),
    pytest.param(
        _with_list(starts_at="2026-02-01", ends_at="2026-01-01"),
        ["price_lists", 0],
        "ends_at",
        id="window backwards",
    ),
    pytest.param(
        _with_list(entries=[], volume=[]),
        ["price_lists", 0],
        "needs entries",
        id="empty list",
    ),
    pytest.param(
        _with_list(discount=5),
        ["price_lists", 0, "discount"],
        "unknown key",
        id="unknown key",
    ),
    pytest.param(
        _with_list(key="Whole Sale"),
        ["price_lists", 0, "key"],
        "pattern",
        id="bad key",
    ),
]


@pytest.mark.parametrize(("document", "loc", "fragment"), INVALID)
def test_bad_documents_are_located_422(
    api: Api, document: dict[str, Any], loc: list[Any], fragment: str
) -> None:
    response = api.put("/v1/program", json=document)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_program"
    matching = [e for e in body["errors"] if e["loc"] == loc]
    assert matching, body["errors"]
    assert fragment in matching[0]["msg"], matching[0]["msg"]
    assert api.get("/v1/program").status_code == 404  # nothing stored


def test_document_round_trips_and_yaml(api: Api) -> None:
    stored = apply_program(api, PROGRAM)
    assert stored["price_lists"] == PROGRAM["price_lists"]
    text = """\
name: Shop
currency: EUR
price_lists:
  - key: gold
    eligible: "member.tier == 'gold'"
    entries:
      - {sku: A, breaks: [{min_quantity: 1, percent_off: 10}]}
    volume: [{min_quantity: 1000, percent_off: 5}]
"""
    response = api.put(
        "/v1/program", content=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["price_lists"][0]["volume"] == [{"min_quantity": 1000, "percent_off": 5}]


def test_eligibility_by_tier_and_by_account_group(api: Api) -> None:
    """A gold member (by spend) and a buyer of a wholesale account get the list's price in
    evaluate and in the price table; a bronze member without an account does not."""
    document = copy.deepcopy(PROGRAM)
    document["price_lists"][0]["eligible"] = "account.group == 'wholesale' || member.tier == 'gold'"
    document["tiers"] = {
        "metric": "spend",
        "levels": [{"key": "bronze", "threshold": 0}, {"key": "gold", "threshold": 500}],
    }
    apply_program(api, document)
    for member_id in ("gold-1", "buyer-1", "bronze-1"):
        assert api.put(f"/v1/members/{member_id}", json={}).status_code == 201
    response = api.post(
        "/v1/orders",
        json={"id": "o1", "member_id": "gold-1", "items": [{"sku": "X", "amount": "600"}]},
    )
    assert response.status_code == 201, response.text
    response = api.put(
        "/v1/accounts/acme",
        json={"name": "Acme", "group": "wholesale", "members": [{"member_id": "buyer-1"}]},
    )
    assert response.status_code == 201, response.text
    for member_id, eligible in (("gold-1", True), ("buyer-1", True), ("bronze-1", False)):
        line = evaluate(api, member_id, item("ABC-1", 10, "10.00"))["lines"][0]
        assert line["unit_price"] == ("9.00" if eligible else "10.00"), member_id
        table = api.get(
            "/v1/price-lists/wholesale/table", params={"sku": "ABC-1", "member_id": member_id}
        ).json()
        assert table["eligible"] is eligible, member_id
