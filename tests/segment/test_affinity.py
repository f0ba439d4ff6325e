"""Category affinity: purchased lines weigh 1, views the view weight, shares of the total,
inside the window; a view naming only a sku takes the category the model knows for it."""

from __future__ import annotations

from typing import Any

from allegiance.db import get_engine, read_session
from allegiance.kit.clock import parse_timestamp
from allegiance.segment.service import affinities
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, Api, apply_program


def line(sku: str, category: str, amount: str = "10.00") -> dict[str, Any]:
    return {"sku": sku, "name": sku, "category": category, "quantity": 1,
            "unit_price": amount, "amount": amount}  # fmt: skip


def view(api: Api, event_id: str, member_id: str, **properties: Any) -> None:
    response = api.post(
        "/v1/events",
        json={"id": event_id, "type": "product.viewed", "member_id": member_id,
              "properties": properties},
    )  # fmt: skip
    assert response.status_code == 201, response.text


def affinity_of(tenant_id: str, member_id: str, at: str) -> dict[str, float]:
    with read_session(get_engine()) as session:
        return affinities(
            session, tenant_id=tenant_id, member_ids=[member_id], now=parse_timestamp(at)
        ).get(member_id, {})


def test_affinity_formula_and_window(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, BASIC_PROGRAM)
    api.now = "2025-01-10T10:00:00Z"
    old = {"id": "o0", "member_id": "m1", "items": [line("ring", "jewels")]}
    assert api.post("/v1/orders", json=old).status_code == 201  # outside the 365-day window
    api.now = "2026-03-01T10:00:00Z"
    items = [line("boot", "shoes"), line("sandal", "shoes"), line("cap", "hats")]
    body = {"id": "o1", "member_id": "m1", "items": items}
    assert api.post("/v1/orders", json=body).status_code == 201
    view(api, "e1", "m1", sku="scarf", category="scarves")
    view(api, "e2", "m1", sku="scarf", category="scarves")
    view(api, "e3", "m1", sku="unknown-sku")  # no category anywhere: ignored
    # weights: shoes 2, hats 1, scarves 2 x 0.25 = 0.5; total 3.5
    assert affinity_of(tenant[0], "m1", api.now) == {
        "hats": round(1 / 3.5, 4),
        "scarves": round(0.5 / 3.5, 4),
        "shoes": round(2 / 3.5, 4),
    }
    assert affinity_of(tenant[0], "nobody", api.now) == {}


def test_a_view_with_only_a_sku_takes_the_models_category(
    api: Api, tenant: tuple[str, str]
) -> None:
    apply_program(api, BASIC_PROGRAM)
    api.now = "2026-03-01T10:00:00Z"
    other = {"id": "o1", "member_id": "m2", "items": [line("boot", "shoes")]}
    assert api.post("/v1/orders", json=other).status_code == 201
    view(api, "e1", "m1", sku="boot")
    assert affinity_of(tenant[0], "m1", api.now) == {}  # no model yet: category unknown
    run_all(get_engine(), parse_timestamp(api.now), tenant[0])
    assert affinity_of(tenant[0], "m1", api.now) == {"shoes": 1.0}
