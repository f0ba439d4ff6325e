"""Webhook endpoints through HTTP: create (secret once), list, get, update, delete, rotate,
validation with located errors; the deliveries list and its cursor."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from allegiance.db import write_session
from allegiance.webhook import service
from allegiance.webhook.models import WebhookEndpoint
from tests.conftest import Api, new_tenant


def create(api: Api, **body: object) -> dict:
    payload = {"url": "https://crm.example/hooks", "events": ["points.*"], **body}
    response = api.post("/v1/webhook-endpoints", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_shows_the_secret_once(api: Api) -> None:
    created = create(api, description="CRM", events=["points.*", "order.completed"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :])) == 32
    Webhook(secret)  # the receivers' library takes it as it is
    assert created["enabled"] is True
    assert created["events"] == ["points.*", "order.completed"]
    shown = api.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert "secret" not in shown
    assert shown["description"] == "CRM"
    listed = api.get("/v1/webhook-endpoints").json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]
    assert listed["next_cursor"] is None


def test_bad_input_is_located(api: Api) -> None:
    for body, loc in [
        ({"url": "ftp://crm.example/x", "events": ["*"]}, ["body", "url"]),
        ({"url": "not a url", "events": ["*"]}, ["body", "url"]),
        ({"url": "https://crm.example", "events": []}, ["body", "events"]),
        ({"url": "https://crm.example", "events": ["Points!"]}, ["body", "events"]),
        ({"url": "https://crm.example", "events": ["*"], "secret": "x"}, ["body", "secret"]),
    ]:
        response = api.post("/v1/webhook-endpoints", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["loc"] == loc, response.json()
    created = create(api)
    response = api.patch(f"/v1/webhook-endpoints/{created['id']}", json={"url": "mailto:a@b"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "url"]
    response = api.patch(f"/v1/webhook-endpoints/{created['id']}", json={"events": None})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "events"]
    response = api.get("/v1/webhook-deliveries?status=lost")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "status"]
    response = api.get("/v1/webhook-deliveries?cursor=zzz")
    assert response.status_code == 422


def test_update_rotate_and_delete(api: Api) -> None:
    created = create(api)
    path = f"/v1/webhook-endpoints/{created['id']}"
    updated = api.patch(path, json={"enabled": False, "events": ["*"]}).json()
    assert (updated["enabled"], updated["disabled_reason"], updated["events"]) == (
        False,
        "manual",
        ["*"],
    )
    again = api.patch(path, json={"enabled": True, "url": "http://localhost:9/x"}).json()
    assert (again["enabled"], again["disabled_reason"], again["url"]) == (
        True,
        None,
        "http://localhost:9/x",
    )
    rotated = api.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    # during the overlap both secrets sign, so a receiver on either one verifies
    with write_session() as session:
        endpoint = session.get(WebhookEndpoint, created["id"])
        assert endpoint is not None
        now = datetime.now(UTC)
        header = service.signature(endpoint, "msg_1", "{}", now)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": header}  # fmt: skip
    for secret in (created["secret"], new_secret):
        Webhook(secret).verify("{}", headers)
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.get(path).json()["code"] == "webhook_endpoint_not_found"
    assert api.delete(path).status_code == 404


def test_endpoints_belong_to_their_tenant(api: Api) -> None:
    created = create(api)
    other = api.with_key(new_tenant()[1])
    assert other.get(f"/v1/webhook-endpoints/{created['id']}").status_code == 404
    assert other.get("/v1/webhook-endpoints").json()["data"] == []
    assert other.get("/v1/webhook-deliveries/msg_nope").status_code == 404


def test_deliveries_list_filters_and_pages(api: Api, tenant: tuple[str, str]) -> None:
    first = create(api)
    second = create(api)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with write_session() as session:
        for i in range(5):
            for endpoint in (first, second):
                service.enqueue_delivery(
                    session,
                    tenant_id=tenant[0],
                    endpoint_id=endpoint["id"],
                    event={"id": f"evt_{i}", "type": "points.earned" if i % 2 else "x.y"},
                    now=now,
                )
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = f"/v1/webhook-deliveries?endpoint_id={first['id']}&limit=2"
        response = api.get(query + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(d["event_id"] for d in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"evt_{i}" for i in reversed(range(5))]  # newest first, each once
    typed = api.get("/v1/webhook-deliveries?event_type=points.earned&status=pending").json()
    assert sorted(d["event_id"] for d in typed["data"]) == ["evt_1", "evt_1", "evt_3", "evt_3"]
    one = typed["data"][0]
    shown = api.get(f"/v1/webhook-deliveries/{one['id']}").json()
    assert shown["attempt_history"] == [] and shown["attempts_total"] == 0
    assert shown["payload"]["id"] == one["event_id"]
