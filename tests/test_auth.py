"""API keys: the key decides the tenant and the scope; revoked keys stop working."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok, new_tenant, order

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def make_key(api: Api, scope: str) -> tuple[str, str]:
    response = api.post("/v1/api-keys", json={"scope": scope, "name": f"{scope} key"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["scope"] == scope
    assert body["api_key"] and body["id"]
    return body["id"], body["api_key"]


@pytest.fixture()
def shop(api: Api, tenant: tuple[str, str]) -> Api:
    apply_program(api, BASIC_PROGRAM)
    assert api.put("/v1/members/m1", json={"email": "a@example.com"}).status_code == 201
    assert api.post("/v1/orders", json=order("o1", "m1", "20.00")).status_code == 201
    return api


ADMIN_ONLY = [
    ("GET", "/v1/program", None),
    ("PUT", "/v1/program", BASIC_PROGRAM),
    ("GET", "/v1/program/versions", None),
    ("POST", "/v1/members/m1/adjustments", {"id": "a1", "amount": 5, "reason": "x"}),
    ("DELETE", "/v1/members/m1", None),
    ("GET", "/v1/members/m1/export", None),
    ("POST", "/v1/api-keys", {"scope": "admin"}),
    ("GET", "/v1/api-keys", None),
]
INGEST = [
    ("PUT", "/v1/members/m2", {"email": "b@example.com"}),
    ("POST", "/v1/orders", order("o2", "m1", "5.00")),
    ("POST", "/v1/orders/o1/refunds", {"id": "r1", "amount": "1.00"}),
    ("POST", "/v1/orders/o1/cancel", None),
    ("POST", "/v1/events", {"id": "e1", "type": "review.created", "member_id": "m1"}),
]
STOREFRONT = [
    ("GET", "/v1/members/m1", None),
    ("GET", "/v1/members/m1/ledger", None),
]
EVERY = ADMIN_ONLY + INGEST + STOREFRONT + [("POST", "/v1/evaluate", order("c1", "m1", "1.00"))]


@pytest.mark.parametrize(("method", "path", "body"), EVERY, ids=[f"{m} {p}" for m, p, _ in EVERY])
def test_no_key_is_401(http: httpx.Client, method: str, path: str, body: Any) -> None:
    response = http.request(method, path, json=body)
    assert_problem(response, 401, "missing_api_key")


@pytest.mark.parametrize("header", ["Bearer", "Bearer   ", "Basic abc", "abc", "Token xyz"])
def test_malformed_authorization_header_is_401(shop: Api, header: str) -> None:
    response = shop.client.get("/v1/members/m1", headers={"Authorization": header})
    assert_problem(response, 401, "missing_api_key")


def test_bad_key_is_401_and_writes_nothing(shop: Api, tenant: tuple[str, str]) -> None:
    for bad in ("nope", tenant[1] + "x", tenant[1][:-1]):
        other = shop.with_key(bad)
        assert_problem(other.get("/v1/members/m1"), 401, "invalid_api_key")
        assert_problem(
            other.post("/v1/orders", json=order("o9", "m9", "5.00")), 401, "invalid_api_key"
        )
    assert_problem(shop.get("/v1/members/m9"), 404, "member_not_found")
    assert_problem(shop.post("/v1/orders/o9/cancel"), 404, "order_not_found")
    assert ledger_ok(tenant[0]) == []


def test_key_scheme_is_case_insensitive(shop: Api, tenant: tuple[str, str]) -> None:
    response = shop.client.get("/v1/members/m1", headers={"Authorization": f"bearer {tenant[1]}"})
    assert response.status_code == 200, response.text


def test_storefront_key_scope(shop: Api, tenant: tuple[str, str]) -> None:
    _, key = make_key(shop, "storefront")
    store = shop.with_key(key)
    before = shop.get("/v1/members/m1").json()
    for method, path, body in ADMIN_ONLY + INGEST:
        response = store.request(method, path, json=body)
        assert_problem(response, 403, "insufficient_scope")
    for method, path, body in STOREFRONT:
        response = store.request(method, path, json=body)
        assert response.status_code == 200, (path, response.text)
    assert store.post("/v1/evaluate", json=order("c1", "m1", "1.00")).status_code == 200
    # nothing written by any refused call
    assert shop.get("/v1/members/m1").json() == before
    assert_problem(shop.get("/v1/members/m2"), 404, "member_not_found")
    assert_problem(shop.post("/v1/orders/o2/cancel"), 404, "order_not_found")
    assert [v["version"] for v in shop.get("/v1/program/versions").json()["data"]] == [1]
    assert ledger_ok(tenant[0]) == []


def test_ingest_key_scope(shop: Api, tenant: tuple[str, str]) -> None:
    _, key = make_key(shop, "ingest")
    ingest = shop.with_key(key)
    for method, path, body in ADMIN_ONLY:
        response = ingest.request(method, path, json=body)
        assert_problem(response, 403, "insufficient_scope")
    for method, path, body in STOREFRONT:
        assert_problem(ingest.request(method, path, json=body), 403, "insufficient_scope")
    assert shop.get("/v1/members/m1").json()["balances"]["points"]["active"] == 20
    response = ingest.post("/v1/orders", json=order("o2", "m1", "5.00"))
    assert response.status_code == 201, response.text
    assert ingest.put("/v1/members/m2", json={}).status_code == 201
    assert (
        ingest.post("/v1/orders/o2/refunds", json={"id": "r1", "amount": "5.00"}).status_code == 201
    )
    assert ledger_ok(tenant[0]) == []


def test_unknown_scope_is_refused(shop: Api) -> None:
    response = shop.post("/v1/api-keys", json={"scope": "superuser"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    keys = shop.get("/v1/api-keys").json()["data"]
    assert [k["scope"] for k in keys] == ["admin"]


def test_other_tenants_data_is_invisible(shop: Api, tenant: tuple[str, str]) -> None:
    other_id, other_key = new_tenant("other")
    other = shop.with_key(other_key)
    apply_program(other, BASIC_PROGRAM)
    # reads of another tenant's member: not found (never a 403 that would leak existence)
    assert_problem(other.get("/v1/members/m1"), 404, "member_not_found")
    assert_problem(other.get("/v1/members/m1/ledger"), 404, "member_not_found")
    assert_problem(other.get("/v1/members/m1/export"), 404, "member_not_found")
    assert_problem(other.delete("/v1/members/m1"), 404, "member_not_found")
    assert_problem(
        other.post("/v1/members/m1/adjustments", json={"id": "a1", "amount": 5, "reason": "x"}),
        404,
        "member_not_found",
    )
    # refunds and cancels of another tenant's order
    assert_problem(
        other.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "1.00"}),
        404,
        "order_not_found",
    )
    assert_problem(other.post("/v1/orders/o1/cancel"), 404, "order_not_found")
    # the first tenant's data is intact
    member = shop.get("/v1/members/m1").json()
    assert member["email"] == "a@example.com"
    assert member["balances"]["points"]["active"] == 20
    assert member["erased"] is False
    assert [t["code"] for t in shop.get("/v1/members/m1/ledger").json()["data"]] == ["earn"]
    # the same ids are free in the other tenant: separate namespaces
    assert other.put("/v1/members/m1", json={"email": "z@example.com"}).status_code == 201
    response = other.post("/v1/orders", json=order("o1", "m1", "3.00"))
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert other.get("/v1/members/m1").json()["balances"]["points"]["active"] == 3
    assert shop.get("/v1/members/m1").json()["email"] == "a@example.com"
    # the second tenant's refund of its own o1 does not touch the first tenant's o1
    assert (
        other.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "3.00"}).status_code == 201
    )
    assert shop.get("/v1/members/m1").json()["balances"]["points"]["active"] == 20
    # the other tenant's key cannot revoke this tenant's keys
    own_keys = shop.get("/v1/api-keys").json()["data"]
    response = other.delete(f"/v1/api-keys/{own_keys[0]['id']}")
    assert response.status_code == 404, response.text
    assert shop.get("/v1/members/m1").status_code == 200
    assert ledger_ok(tenant[0]) == []
    assert ledger_ok(other_id) == []


def test_revoked_key_stops_working_at_once(shop: Api, tenant: tuple[str, str]) -> None:
    key_id, key = make_key(shop, "ingest")
    ingest = shop.with_key(key)
    # use the key first so that it sits in the in-process cache
    assert ingest.post("/v1/orders", json=order("o2", "m1", "5.00")).status_code == 201
    listed = {k["id"]: k for k in shop.get("/v1/api-keys").json()["data"]}
    assert listed[key_id]["revoked_at"] is None
    assert key not in str(listed)  # the secret is shown once, never listed
    assert shop.delete(f"/v1/api-keys/{key_id}").status_code == 204
    assert_problem(
        ingest.post("/v1/orders", json=order("o3", "m1", "5.00")), 401, "invalid_api_key"
    )
    assert_problem(ingest.put("/v1/members/m3", json={}), 401, "invalid_api_key")
    listed = {k["id"]: k for k in shop.get("/v1/api-keys").json()["data"]}
    assert listed[key_id]["revoked_at"] is not None
    assert_problem(shop.post("/v1/orders/o3/cancel"), 404, "order_not_found")
    assert_problem(shop.get("/v1/members/m3"), 404, "member_not_found")
    # the admin key still works
    assert shop.get("/v1/members/m1").json()["balances"]["points"]["active"] == 25


def test_revoked_admin_key_and_revoke_twice(shop: Api) -> None:
    key_id, key = make_key(shop, "admin")
    second = shop.with_key(key)
    assert second.get("/v1/program").status_code == 200
    assert second.delete(f"/v1/api-keys/{key_id}").status_code == 204  # a key may revoke itself
    assert_problem(second.get("/v1/program"), 401, "invalid_api_key")
    response = shop.delete(f"/v1/api-keys/{key_id}")
    assert response.status_code in (204, 404), response.text
    assert_problem(second.get("/v1/program"), 401, "invalid_api_key")
    assert shop.get("/v1/program").status_code == 200


def test_revoking_an_unknown_key_is_404(shop: Api) -> None:
    response = shop.delete("/v1/api-keys/key_does_not_exist")
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM


def test_tenant_cannot_be_chosen_by_header_or_body(shop: Api, tenant: tuple[str, str]) -> None:
    other_id, other_key = new_tenant("victim")
    victim = shop.with_key(other_key)
    apply_program(victim, BASIC_PROGRAM)
    response = shop.post(
        "/v1/orders",
        json=order("o5", "m5", "7.00"),
        headers={"X-Tenant-Id": other_id, "X-Allegiance-Tenant": other_id},
    )
    assert response.status_code == 201, response.text
    assert shop.get("/v1/members/m5").json()["balances"]["points"]["active"] == 7
    assert_problem(victim.get("/v1/members/m5"), 404, "member_not_found")
    response = shop.post("/v1/orders", json={**order("o6", "m5", "1.00"), "tenant_id": other_id})
    assert response.status_code == 422, response.text
    assert ledger_ok(other_id) == []
