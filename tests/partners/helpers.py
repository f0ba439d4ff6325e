"""Shared pieces of the coalition tests: a two-partner program, partner keys, ledger reads."""

from __future__ import annotations

from typing import Any

from allegiance.db import read_session
from allegiance.ledger import repository as ledger_repository
from allegiance.ledger.models import LedgerAccount
from tests.conftest import Api, apply_program

COALITION: dict[str, Any] = {
    "name": "City Coalition",
    "currency": "USD",
    "timezone": "Europe/Warsaw",
    "wallets": {"points": {"precision": 0, "rounding": "floor", "point_value": "0.01"}},
    "partners": [
        {"key": "cafe", "name": "Corner Cafe"},
        {"key": "books", "name": "Book Nook", "point_value": "0.02"},
    ],
    "rewards": [{"key": "voucher", "name": "One-point voucher", "cost": 1}],
    "rules": [
        {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
        {
            "key": "cafe-bonus",
            "on": "order.completed",
            "when": "order.partner == 'cafe'",
            "earn": {"fixed": 5},
        },
    ],
}


def partner_key(api: Api, partner: str) -> Api:
    response = api.post("/v1/api-keys", json={"scope": "partner", "partner": partner})
    assert response.status_code == 201, response.text
    assert response.json()["partner"] == partner
    return api.with_key(response.json()["api_key"])


def setup_coalition(api: Api, document: dict[str, Any] | None = None) -> tuple[Api, Api]:
    apply_program(api, document or COALITION)
    return partner_key(api, "cafe"), partner_key(api, "books")


def spend_at(client: Api, member_id: str, amount: int, at: str, ref: str) -> None:
    """A redemption of ``amount`` one-point vouchers, made with ``client``'s key (a partner
    key redeems at its partner)."""
    client.now = at
    response = client.post(
        f"/v1/members/{member_id}/redemptions",
        json={"id": ref, "reward": "voucher", "quantity": amount},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "completed"


def system_balance(tenant_id: str, wallet: str, name: str) -> tuple[int, int]:
    """(posted, pending) of a system account, derived from its transfers."""
    with read_session() as session:
        account = (
            session.query(LedgerAccount)
            .filter_by(tenant_id=tenant_id, wallet=wallet, owner_type="system", owner_id=name)
            .one()
        )
        return ledger_repository.derived_balances(session, tenant_id).get(account.id, (0, 0))
