"""Secrets at rest: webhook signing secrets, connector secrets and credentials, and the
unsubscribe-link key are stored encrypted once ALLEGIANCE_SECRET_KEYS is set; keys rotate
with `allegiance secrets reencrypt`, and encryption can be turned off again."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from allegiance.config import get_settings
from allegiance.db import get_engine
from allegiance.worker.runner import run_all
from tests.conftest import BASIC_PROGRAM, TEST_URL, Api, apply_program, order
from tests.integration.platforms import SECRET, connect, sample, shopify_post
from tests.test_cli import run
from tests.webhook.receiver import Receiver

K1 = Fernet.generate_key().decode()
K2 = Fernet.generate_key().decode()


@pytest.fixture()
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Keys set for this test; every secret of the database is plaintext again afterwards,
    so the tests that follow (without keys) can read them."""
    yield monkeypatch
    current = get_settings().secret_keys
    if current:
        result = cli("secrets", "reencrypt", "--plaintext", keys=current)
        assert result.returncode == 0, result.stderr


def cli(*args: str, keys: str | None) -> subprocess.CompletedProcess[str]:
    return run(TEST_URL, *args, settings={"ALLEGIANCE_SECRET_KEYS": keys})


def raw(statement: str, **params: str) -> str:
    with get_engine().connect() as conn:
        value = conn.execute(text(statement), params).scalar_one()
    return value if isinstance(value, str) else json.dumps(value)


def endpoint_secret(endpoint_id: str) -> str:
    return raw("SELECT secret FROM webhook_endpoints WHERE id = :id", id=endpoint_id)


def test_secrets_are_stored_encrypted_and_still_work(
    api: Api,
    http: httpx.Client,
    tenant: tuple[str, str],
    receiver: Receiver,
    keys: pytest.MonkeyPatch,
) -> None:
    keys.setattr(get_settings(), "secret_keys", K1)
    apply_program(api, BASIC_PROGRAM)
    created = api.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]})
    assert created.status_code == 201
    secret = created.json()["secret"]
    receiver.secrets.append(secret)
    stored = endpoint_secret(created.json()["id"])
    assert stored.startswith("fernet:") and secret not in stored
    assert Fernet(K1.encode()).decrypt(stored.removeprefix("fernet:").encode()).decode() == secret
    # the connector's webhook secret and API credentials
    connect(api, "shopify")
    put = api.put(
        "/v1/integrations/shopify",
        json={"webhook_secret": SECRET, "access_token": "shpat_123456789"},
    )
    assert put.status_code == 200, put.text
    where = "WHERE tenant_id = :t AND platform = 'shopify'"
    stored_secret = raw(f"SELECT webhook_secret FROM integrations {where}", t=tenant[0])
    stored_credentials = raw(f"SELECT credentials FROM integrations {where}", t=tenant[0])
    assert stored_secret.startswith("fernet:") and SECRET not in stored_secret
    assert "shpat_123456789" not in stored_credentials
    assert list(json.loads(stored_credentials)) == ["fernet"]
    # both still do their work: a signed Shopify delivery verifies and books, the webhook
    # deliveries are signed with the endpoint's secret
    booked = shopify_post(http, tenant[0], "orders/paid", sample("shopify_orders_paid.json"))
    assert booked.json()["status"] == "booked"
    api.now = datetime(2026, 3, 2, 12, tzinfo=UTC).isoformat()
    assert api.post("/v1/orders", json=order("o1", "m1", "50.00")).status_code == 201
    run_all(get_engine(), datetime(2026, 3, 2, 12, tzinfo=UTC), tenant[0])
    assert receiver.received and all(r.verified for r in receiver.received)
    # the key is missing: a clear 503, not a crash
    keys.setattr(get_settings(), "secret_keys", None)
    missing = api.get(f"/v1/webhook-endpoints/{created.json()['id']}")
    assert missing.status_code == 503
    assert missing.json()["code"] == "secret_keys_misconfigured"
    keys.setattr(get_settings(), "secret_keys", K1)


def test_plaintext_secrets_are_encrypted_and_keys_rotate(
    api: Api, tenant: tuple[str, str], receiver: Receiver, keys: pytest.MonkeyPatch
) -> None:
    created = api.post("/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]})
    endpoint_id, secret = created.json()["id"], created.json()["secret"]
    assert endpoint_secret(endpoint_id) == secret  # no key yet: plaintext
    # a key configured later: old plaintext rows are still read, `reencrypt` encrypts them
    keys.setattr(get_settings(), "secret_keys", K1)
    assert api.get(f"/v1/webhook-endpoints/{endpoint_id}").status_code == 200
    result = cli("secrets", "reencrypt", keys=K1)
    assert result.returncode == 0, result.stderr
    assert "webhook_endpoints:" in result.stdout
    stored = endpoint_secret(endpoint_id)
    assert Fernet(K1.encode()).decrypt(stored.removeprefix("fernet:").encode()).decode() == secret
    unreadable = cli("secrets", "reencrypt", "--plaintext", keys=None)  # nothing can read them
    assert unreadable.returncode == 1
    assert "ALLEGIANCE_SECRET_KEYS is not set" in unreadable.stderr
    assert cli("secrets", "reencrypt", keys=None).returncode == 2  # nothing to encrypt with
    # rotation: the new key first, the old one still reads; after reencrypt the old one goes
    assert cli("secrets", "reencrypt", keys=f"{K2},{K1}").returncode == 0
    stored = endpoint_secret(endpoint_id)
    assert Fernet(K2.encode()).decrypt(stored.removeprefix("fernet:").encode()).decode() == secret
    keys.setattr(get_settings(), "secret_keys", K2)
    rotated = api.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    # a key that cannot read them is refused by name, and nothing is rewritten
    wrong = cli("secrets", "reencrypt", keys=K1)
    assert wrong.returncode == 1
    assert "not in ALLEGIANCE_SECRET_KEYS" in wrong.stderr
    assert cli("secrets", "reencrypt", keys="not-a-key").returncode == 1
    # turning encryption off again
    assert cli("secrets", "reencrypt", "--plaintext", keys=K2).returncode == 0
    keys.setattr(get_settings(), "secret_keys", None)
    assert endpoint_secret(endpoint_id) == rotated.json()["secret"]


def test_new_key_prints_a_usable_key() -> None:
    result = cli("secrets", "new-key", keys=None)
    assert result.returncode == 0
    Fernet(result.stdout.strip().encode())  # a valid key
