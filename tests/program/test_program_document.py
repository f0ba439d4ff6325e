"""The program document through PUT/GET /v1/program: JSON, YAML, dry runs, versions, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

YAML_PROGRAM = """\
name: Acme Rewards
currency: USD
timezone: Europe/Warsaw
wallets:
  points: {precision: 0, rounding: floor}
  credit: {precision: 2, kind: credit}
refund_policy: within_balance
rules:
  - key: base
    on: order.completed
    earn: {per_amount: 1, items: "item.category != 'shipping'"}
  - key: red-x3
    on: order.completed
    multiply: {factor: 3, items: "'color:red' in item.labels"}
  - key: review
    on: review.created
    earn: {fixed: 50}
    limit: {per_member: 3, period: month}
  - key: cashback
    on: order.completed
    earn: {wallet: credit, percent: 2}
"""


def _put_yaml(api: Api, text: str, query: str = "") -> Any:
    return api.put(
        f"/v1/program{query}",
        content=text.encode("utf-8"),
        headers={"Content-Type": "application/yaml"},
    )


def test_put_json_then_get_and_versions(api: Api) -> None:
    first = apply_program(api, BASIC_PROGRAM)
    assert first["version"] == 1
    assert first["name"] == BASIC_PROGRAM["name"]
    assert first["rules"] == BASIC_PROGRAM["rules"]
    current = api.get("/v1/program")
    assert current.status_code == 200, current.text
    assert current.json() == {"version": 1, **BASIC_PROGRAM}

    second_doc = {**BASIC_PROGRAM, "name": "Renamed"}
    assert apply_program(api, second_doc)["version"] == 2
    assert api.get("/v1/program").json() == {"version": 2, **second_doc}
    versions = api.get("/v1/program/versions")
    assert versions.status_code == 200, versions.text
    data = versions.json()["data"]
    assert sorted(v["version"] for v in data) == [1, 2]
    assert all(v.get("created_at") for v in data)


def test_no_program_yet(api: Api) -> None:
    response = api.get("/v1/program")
    assert response.status_code == 404
    assert response.json()["code"] == "program_not_found"


def test_put_yaml_keeps_the_on_key(api: Api) -> None:
    response = _put_yaml(api, YAML_PROGRAM)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1
    assert [r["on"] for r in body["rules"]] == [
        "order.completed",
        "order.completed",
        "review.created",
        "order.completed",
    ]
    assert all(True not in r for r in body["rules"])  # 'on' did not become a boolean key
    stored = api.get("/v1/program").json()
    assert stored["rules"][2] == {
        "key": "review",
        "on": "review.created",
        "earn": {"fixed": 50},
        "limit": {"per_member": 3, "period": "month"},
    }
    # and the rules work: the red line is tripled, cashback goes to the credit wallet
    placed = {"placed_at": "2026-03-01T10:00:00Z"}
    api.now = "2026-03-01T10:00:00Z"
    body_ = order("o1", "m1", "10.00", "20.00", **placed)
    body_["items"][0]["labels"] = ["color:red"]
    booked = api.post("/v1/orders", json=body_)
    assert booked.status_code == 201, booked.text
    assert booked.json()["balances"] == {
        "points": {"active": 50, "pending": 0},
        "credit": {"active": 0.6, "pending": 0},
    }
    review = api.post("/v1/events", json={"id": "e1", "type": "review.created", "member_id": "m1"})
    assert review.status_code == 201, review.text
    assert review.json()["balances"]["points"]["active"] == 100


def test_malformed_yaml_is_a_located_400(api: Api) -> None:
    response = _put_yaml(api, "name: x\nrules: [\n  - {key: a\n")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "malformed_yaml"
    assert body["errors"][0]["loc"][0] == "body"


def test_dry_run_validates_without_a_version(api: Api) -> None:
    response = api.put("/v1/program?dry_run=true", json=BASIC_PROGRAM)
    assert response.status_code == 200, response.text
    assert api.get("/v1/program").status_code == 404
    assert api.get("/v1/program/versions").json()["data"] == []
    yaml_dry = _put_yaml(api, YAML_PROGRAM, "?dry_run=true")
    assert yaml_dry.status_code == 200, yaml_dry.text
    assert api.get("/v1/program/versions").json()["data"] == []
    # a dry run of a broken document reports the errors and still creates nothing
    broken = copy.deepcopy(BASIC_PROGRAM)
    broken["rules"][0]["when"] = "order.total >"
    bad = api.put("/v1/program?dry_run=true", json=broken)
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["loc"] == ["rules", 0, "when"]
    apply_program(api, BASIC_PROGRAM)
    assert (
        api.put("/v1/program?dry_run=true", json={**BASIC_PROGRAM, "name": "B"}).status_code == 200
    )
    assert api.get("/v1/program").json()["version"] == 1
    assert api.get("/v1/program").json()["name"] == BASIC_PROGRAM["name"]


def _with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASIC_PROGRAM)
    document.update(changes)
    return document


def _rule(**fields: Any) -> dict[str, Any]:
    return {"key": "r", "on": "order.completed", "earn": {"fixed": 1}, **fields}


INVALID = [
    pytest.param(_with(colour="red"), ["colour"], "unknown key", id="unknown top-level key"),
    pytest.param(
        _with(rules=[_rule(erans={"fixed": 1})]),
        ["rules", 0, "erans"],
        "unknown key",
        id="unknown rule key",
    ),
    pytest.param(
        _with(rules=[_rule(earn={"wallet": "miles", "fixed": 1})]),
        ["rules", 0, "earn", "wallet"],
        "unknown wallet",
        id="bad wallet reference",
    ),
    pytest.param(
        _with(rules=[_rule(multiply={"factor": 2, "wallet": "miles"}, earn=None)]),
        ["rules", 0, "multiply", "wallet"],
        "unknown wallet",
        id="bad wallet reference in multiply",
    ),
    pytest.param(
        _with(rules=[_rule(key="a"), _rule(key="b"), _rule(key="a")]),
        ["rules", 2, "key"],
        "duplicate",
        id="duplicate rule key",
    ),
    pytest.param(
        _with(rules=[_rule(when="order.total >")]), ["rules", 0, "when"], "", id="CEL syntax error"
    ),
    pytest.param(
        _with(rules=[_rule(when="ordr.total > 1.0")]),
        ["rules", 0, "when"],
        "ordr",
        id="CEL unknown name",
    ),
    pytest.param(
        _with(rules=[_rule(when="order.totl > 1.0")]),
        ["rules", 0, "when"],
        "totl",
        id="CEL unknown field",
    ),
    pytest.param(
        _with(rules=[_rule(when="order.total - 2 > 10.0")]),
        ["rules", 0, "when"],
        "double",
        id="CEL int and double mixed",
    ),
    pytest.param(
        _with(rules=[_rule(when="order.total")]),
        ["rules", 0, "when"],
        "condition",
        id="non-boolean when",
    ),
    pytest.param(
        _with(rules=[_rule(earn={"per_amount": 1, "items": "item.price > 1.0"})]),
        ["rules", 0, "earn", "items"],
        "price",
        id="CEL error in items",
    ),
    pytest.param(
        _with(rules=[_rule(on="review.created", when="order.total > 1.0")]),
        ["rules", 0, "when"],
        "order",
        id="order not available for events",
    ),
    pytest.param(_with(timezone="Mars/Olympus"), ["timezone"], "time zone", id="bad timezone"),
    pytest.param(
        _with(
            tiers={
                "metric": "spend",
                "levels": [
                    {"key": "bronze", "threshold": 0},
                    {"key": "gold", "threshold": 1000},
                    {"key": "silver", "threshold": 500},
                ],
            }
        ),
        ["tiers", "levels"],
        "increasing",
        id="thresholds not increasing",
    ),
    pytest.param(
        _with(rules=[_rule(campaign="nope")]),
        ["rules", 0, "campaign"],
        "campaign",
        id="unknown campaign",
    ),
    pytest.param(
        _with(
            wallets={"points": {}, "credit": {"kind": "credit", "precision": 2}},
            campaigns=[{"key": "spring", "budget": 100}],
            rules=[
                _rule(key="a", campaign="spring"),
                _rule(key="b", campaign="spring", earn={"wallet": "credit", "percent": 1}),
            ],
        ),
        ["rules", 1, "campaign"],
        "one wallet",
        id="budgeted campaign over two wallets",
    ),
    pytest.param(
        _with(campaigns=[{"key": "c", "starts_at": "2026-02-01", "ends_at": "2026-01-01"}]),
        ["campaigns", 0],
        "ends_at",
        id="campaign window backwards",
    ),
    pytest.param(
        _with(rules=[_rule(when="order.items.exists(i, i.sku == 1.0) && nope > 1")]),
        ["rules", 0, "when"],
        "unknown name 'nope'",
        id="unknown name next to a macro",
    ),
]


@pytest.mark.parametrize(("document", "loc", "fragment"), INVALID)
def test_located_errors(api: Api, document: dict[str, Any], loc: list[Any], fragment: str) -> None:
    document = {k: v for k, v in document.items() if v is not None}
    for rule in document.get("rules", []):
        for key in [k for k, v in rule.items() if v is None]:
            del rule[key]
    response = api.put("/v1/program", json=document)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "invalid_program"
    matching = [e for e in body["errors"] if e["loc"] == loc]
    assert matching, body["errors"]
    assert fragment.lower() in matching[0]["msg"].lower(), matching
    assert api.get("/v1/program/versions").json()["data"] == []


def test_type_error_message_mentions_doubles(api: Api) -> None:
    response = api.put("/v1/program", json=_with(rules=[_rule(when="order.total - 2 > 0.0")]))
    assert response.status_code == 422
    message = response.json()["errors"][0]["msg"]
    assert "double" in message
    assert "2.0" in message  # tells how to fix it
    # the corrected expression is accepted
    apply_program(api, _with(rules=[_rule(when="order.total - 2.0 > 0.0")]))


def test_several_errors_reported_at_once(api: Api) -> None:
    document = _with(
        timezone="Nowhere/Land",
        rules=[
            _rule(key="a", when="order.total"),
            _rule(key="a", earn={"wallet": "x", "fixed": 1}),
        ],
    )
    response = api.put("/v1/program", json=document)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    for expected in (
        ["timezone"],
        ["rules", 0, "when"],
        ["rules", 1, "key"],
        ["rules", 1, "earn", "wallet"],
    ):
        assert expected in locs, locs


def test_program_applies_to_orders_and_new_version_to_later_orders(
    api: Api, tenant: tuple[str, str]
) -> None:
    api.now = "2026-03-01T10:00:00Z"
    before = api.post("/v1/orders", json=order("o0", "m1", "10.00"))
    assert before.status_code == 409
    assert before.json()["code"] == "program_not_found"

    apply_program(api, BASIC_PROGRAM)  # 1 point per dollar
    first = api.post("/v1/orders", json=order("o1", "m1", "100.00"))
    assert first.status_code == 201, first.text
    assert first.json()["program_version"] == 1
    assert first.json()["effects"][0]["amount"] == 100

    doubled = _with(rules=[{"key": "base", "on": "order.completed", "earn": {"per_amount": 2}}])
    assert apply_program(api, doubled)["version"] == 2
    second = api.post("/v1/orders", json=order("o2", "m1", "100.00"))
    assert second.status_code == 201, second.text
    assert second.json()["program_version"] == 2
    assert second.json()["effects"][0]["amount"] == 200
    assert second.json()["balances"]["points"]["active"] == 300

    # the first order is untouched by the new version: a replay answers as before, and a
    # half refund reverses half of what it earned (50), not half of what v2 would give
    replay = api.post("/v1/orders", json=order("o1", "m1", "100.00"))
    assert replay.status_code == 200
    assert replay.json()["effects"][0]["amount"] == 100
    refund = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "50.00"})
    assert refund.status_code == 201, refund.text
    assert refund.json()["effects"][0]["amount"] == 50
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 250
    assert ledger_ok(tenant[0]) == []


def test_rejected_version_leaves_current_program(api: Api) -> None:
    apply_program(api, BASIC_PROGRAM)
    bad = api.put("/v1/program", json=_with(rules=[_rule(when="nope")]))
    assert bad.status_code == 422
    assert api.get("/v1/program").json()["version"] == 1
    api.now = "2026-03-01T10:00:00Z"
    booked = api.post("/v1/orders", json=order("o1", "m1", "12.00"))
    assert booked.json()["effects"][0]["amount"] == 12


def test_comprehension_macros_are_accepted_and_work(api: Api) -> None:
    apply_program(
        api,
        _with(
            rules=[
                _rule(key="base", earn={"per_amount": 1}),
                _rule(
                    key="sku-bonus",
                    when="order.items.exists(i, i.sku == '000')",
                    earn={"fixed": 200},
                ),
            ]
        ),
    )
    with_sku = order("o1", "m1", "10.00") | {
        "items": [{"sku": "000", "amount": "10.00"}, {"sku": "x", "amount": "5.00"}]
    }
    response = api.post("/v1/orders", json=with_sku)
    assert response.status_code == 201, response.text
    assert response.json()["balances"]["points"]["active"] == 215
    response = api.post("/v1/orders", json=order("o2", "m2", "10.00"))
    assert response.json()["balances"]["points"]["active"] == 10
