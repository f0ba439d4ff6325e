"""The holdout gets none of an experiment's benefits, through the HTTP API, even when the
merchant forgets a condition: rules, campaigns, rewards and promotions tied to variants."""

from __future__ import annotations

from typing import Any

from allegiance.experiment.assignment import variant_for
from allegiance.program.schema import Experiment
from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, order

EXPERIMENT = {
    "key": "spring",
    "holdout": 0.4,
    "variants": [{"key": "double"}, {"key": "coupon"}],
    "when": "!('staff' in member.tags)",
}
PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "experiments": [EXPERIMENT],
    "campaigns": [
        {"key": "spring-campaign", "experiment": {"key": "spring", "variants": ["double"]}}
    ],
    "rules": [
        *BASIC_PROGRAM["rules"],
        # no `when`: the restriction alone keeps the holdout out
        {"key": "bonus", "earn": {"fixed": 100},
         "experiment": {"key": "spring", "variants": ["double", "coupon"]}},
        {"key": "double-up", "multiply": {"factor": 2}, "campaign": "spring-campaign"},
        {"key": "conditioned", "when": "member.experiments.spring == 'coupon'",
         "earn": {"fixed": 7}},
    ],
    "rewards": [
        {"key": "five-off", "cost": 1, "type": "discount_fixed", "value": 5,
         "experiment": {"key": "spring", "variants": ["coupon"]}},
    ],
    "promotions": [
        {"key": "spring-sale", "type": "discount_percent", "value": 10,
         "experiment": {"key": "spring", "variants": ["double", "coupon"]}},
    ],
}  # fmt: skip
SPLIT = Experiment.model_validate(EXPERIMENT)


def _expected(variant: str, amount: int) -> int:
    if variant == "holdout":
        return amount
    if variant == "double":
        return amount * 2 + 100
    return amount + 100 + 7


def test_holdout_gets_no_experiment_benefit(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, PROGRAM)
    ids = [f"c{i}" for i in range(30)]
    variants = {m: variant_for(SPLIT, m) for m in ids}
    assert {"holdout", "double", "coupon"} <= set(variants.values())
    for i, member_id in enumerate(ids):
        response = api.post("/v1/orders", json=order(f"o{i}", member_id, "20.00"))
        assert response.status_code == 201, response.text
        earned = sum(
            e["amount"] for e in response.json()["effects"] if e["type"] == "points_earned"
        )
        assert earned == _expected(variants[member_id], 20), (member_id, variants[member_id])
        cart = order("cart", member_id, "20.00")
        del cart["id"]
        result = api.post("/v1/evaluate", json=cart).json()
        discounts = [d["promotion"] for d in result["discounts"]]
        assert discounts == ([] if variants[member_id] == "holdout" else ["spring-sale"])
        rewards = {r["key"]: r for r in api.get(f"/v1/members/{member_id}/rewards").json()["data"]}
        assert rewards["five-off"]["eligible"] is (variants[member_id] == "coupon")
    holdout = next(m for m in ids if variants[m] == "holdout")
    response = api.post(
        f"/v1/members/{holdout}/redemptions", json={"id": "r1", "reward": "five-off"}
    )
    assert response.status_code == 403 and response.json()["code"] == "not_eligible"
    lucky = next(m for m in ids if variants[m] == "coupon")
    response = api.post(f"/v1/members/{lucky}/redemptions", json={"id": "r2", "reward": "five-off"})
    assert response.status_code == 201, response.text
    assert ledger_ok(tenant[0]) == []


def test_members_outside_the_experiment_get_nothing_either(api: Api) -> None:
    apply_program(api, PROGRAM)
    for i in range(12):
        member_id = f"staff{i}"
        assert api.put(f"/v1/members/{member_id}", json={"tags": ["staff"]}).status_code in (
            200,
            201,
        )
        response = api.post("/v1/orders", json=order(f"s{i}", member_id, "20.00"))
        earned = sum(
            e["amount"] for e in response.json()["effects"] if e["type"] == "points_earned"
        )
        assert earned == 20


def test_an_ended_experiment_gives_nothing(api: Api) -> None:
    ended = {**EXPERIMENT, "starts_at": "2025-01-01T00:00:00Z", "ends_at": "2025-02-01T00:00:00Z"}
    apply_program(api, {**PROGRAM, "experiments": [ended]})
    member_id = next(f"e{i}" for i in range(50) if variant_for(SPLIT, f"e{i}") == "double")
    inside = api.post(
        "/v1/orders",
        json=order("in", member_id, "20.00", placed_at="2025-01-15T00:00:00Z"),
    ).json()
    after = api.post("/v1/orders", json=order("after", member_id, "20.00")).json()

    def points(body: dict[str, Any]) -> int:
        return sum(e["amount"] for e in body["effects"] if e["type"] == "points_earned")

    assert points(inside) == 140 and points(after) == 20
