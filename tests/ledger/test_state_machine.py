"""Stateful test of the ledger through HTTP: random orders, duplicate deliveries, partial
refunds, cancellations, manual credits and debits and clock moves, for each refund policy.

After every step: every ledger invariant holds (``ledger_ok``), balances are never negative
unless the policy is ``unlimited``, and member stats match what was sent.
"""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import Api, apply_program, ledger_ok, new_tenant

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MEMBERS = ("m1", "m2")
PENDING_DAYS = {"points": 3, "credit": 1}


def program(policy: str) -> dict[str, Any]:
    return {
        "name": f"State machine ({policy})",
        "currency": "USD",
        "timezone": "UTC",
        "refund_policy": policy,
        "wallets": {
            "points": {
                "precision": 0,
                "rounding": "floor",
                "pending_days": PENDING_DAYS["points"],
                "expiry": {"mode": "rolling_days", "days": 20},
            },
            "credit": {"precision": 2, "kind": "credit", "pending_days": PENDING_DAYS["credit"]},
        },
        "rules": [
            {"key": "base", "on": "order.completed", "earn": {"per_amount": 1}},
            {
                "key": "red-x3",
                "on": "order.completed",
                "multiply": {"factor": 3, "items": "'red' in item.labels"},
            },
            {
                "key": "big-bonus",
                "on": "order.completed",
                "when": "order.total >= 50.0",
                "earn": {"fixed": 10},
            },
            {
                "key": "cashback",
                "on": "order.completed",
                "earn": {"wallet": "credit", "percent": 2},
            },
        ],
    }


def money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def expected_earn(lines: list[tuple[int, bool]], total_cents: int) -> dict[str, Decimal]:
    """What an order earns under ``program()`` (rounded once per wallet, floor)."""
    base = sum(Decimal(c) / 100 * (3 if red else 1) for c, red in lines)
    if total_cents >= 5000:
        base += 10
    subtotal = sum(c for c, _ in lines)
    cashback_cents = (Decimal(subtotal) * 2 / 100).to_integral_value(rounding=ROUND_FLOOR)
    return {
        "points": base.to_integral_value(rounding=ROUND_FLOOR),
        "credit": cashback_cents / 100,
    }


def iso(moment: datetime) -> str:
    return moment.isoformat()


lines_strategy = st.lists(
    st.tuples(st.integers(min_value=1, max_value=9_999), st.booleans()), min_size=1, max_size=4
)


class LedgerMachine(RuleBasedStateMachine):
    """Drives one fresh tenant; ``client`` and ``policy`` are set on a subclass per test."""

    client: httpx.Client
    policy: str
    run_jobs: bool

    def __init__(self) -> None:
        super().__init__()
        self.tenant_id, key = new_tenant("state-machine")
        self.api = Api(self.client, key)
        self.now = START
        self.api.now = iso(self.now)
        apply_program(self.api, program(self.policy))
        for member_id in MEMBERS:
            response = self.api.put(f"/v1/members/{member_id}", json={"name": member_id})
            assert response.status_code == 201, response.text
        # order id -> {member, body, total, refunded, cancelled}
        self.orders: dict[str, dict[str, Any]] = {}
        # every create sent: (path, body, status, response json), for replays
        self.creates: list[tuple[str, Any, int, Any]] = []
        self.counter = 0
        # member views as of the last invariant check; a rule that must write nothing sets
        # ``unchanged`` and the next check compares (one GET per member per step)
        self.views: dict[str, dict[str, Any]] = {}
        self.unchanged = False

    # ---- helpers -------------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def post(self, path: str, body: Any) -> httpx.Response:
        response = self.api.post(path, json=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
        return response

    def remember(self, path: str, body: Any, response: httpx.Response) -> None:
        assert "Idempotent-Replayed" not in response.headers, response.headers
        self.creates.append((path, copy.deepcopy(body), response.status_code, response.json()))

    def member(self, member_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/members/{member_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def active(self, member_id: str, wallet: str) -> Decimal:
        """Active balance as of the last check (rules that move the clock refresh it)."""
        value = self.views[member_id]["balances"][wallet]["active"]
        return Decimal(str(value))

    def expect_unchanged(self) -> None:
        self.unchanged = True

    # ---- rules ---------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert ledger_ok(self.tenant_id) == []
        self.views = {m: self.member(m) for m in MEMBERS}

    @rule(
        member_id=st.sampled_from(MEMBERS),
        lines=lines_strategy,
        shipping=st.sampled_from([0, 0, 499]),
    )
    def place_order(self, member_id: str, lines: list[tuple[int, bool]], shipping: int) -> None:
        order_id = self.next_id("o")
        body: dict[str, Any] = {
            "id": order_id,
            "member_id": member_id,
            "currency": "USD",
            "items": [
                {
                    "sku": f"sku-{i}",
                    "name": f"Item {i}",
                    "category": "general",
                    "labels": ["red"] if red else [],
                    "quantity": 1,
                    "unit_price": money(cents),
                    "amount": money(cents),
                }
                for i, (cents, red) in enumerate(lines)
            ],
        }
        if shipping:
            body["shipping_amount"] = money(shipping)
        total = sum(c for c, _ in lines) + shipping
        response = self.post("/v1/orders", body)
        assert response.status_code == 201, response.text
        result = response.json()
        assert result["order_id"] == order_id
        earned: dict[str, Decimal] = {"points": Decimal(0), "credit": Decimal(0)}
        for effect in result["effects"]:
            if effect["type"] in ("points_earned", "points_pending"):
                # pending_days > 0 on both wallets: an order's points start pending
                assert effect["type"] == "points_pending", effect
                earned[effect["wallet"]] += Decimal(str(effect["amount"]))
        assert earned == expected_earn(lines, total), (lines, shipping, result)
        self.remember("/v1/orders", body, response)
        self.orders[order_id] = {
            "member": member_id,
            "body": body,
            "total": total,
            "refunded": 0,
            "cancelled": False,
        }

    @precondition(lambda self: self.creates)
    @rule(data=st.data())
    def replay_create(self, data: st.DataObject) -> None:
        """A duplicate delivery: same id, same body → the stored answer again."""
        path, body, status, stored = data.draw(st.sampled_from(self.creates))
        response = self.api.post(path, json=body)
        assert response.headers.get("Idempotent-Replayed") == "true", (path, response.text)
        assert response.status_code == (200 if status == 201 else status), response.text
        assert response.json() == stored
        self.expect_unchanged()

    @precondition(
        lambda self: any(isinstance(b, dict) and "id" in b for _, b, _, _ in self.creates)
    )
    @rule(data=st.data())
    def conflicting_create(self, data: st.DataObject) -> None:
        """Same id, different body → 409 idempotency_conflict, nothing written."""
        candidates = [c for c in self.creates if isinstance(c[1], dict) and "id" in c[1]]
        path, body, _, _ = data.draw(st.sampled_from(candidates))
        changed = copy.deepcopy(body)
        if "items" in changed and path == "/v1/orders":
            changed["items"][0]["amount"] = money(
                int(Decimal(changed["items"][0]["amount"]) * 100) + 1
            )
            changed["items"][0]["unit_price"] = changed["items"][0]["amount"]
        else:
            changed["reason"] = f"{changed.get('reason') or ''} changed"
        response = self.api.post(path, json=changed)
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "idempotency_conflict"
        self.expect_unchanged()

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), how=st.sampled_from(["part", "part", "rest", "over", "items"]))
    def refund(self, data: st.DataObject, how: str) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        state = self.orders[order_id]
        left = state["total"] - state["refunded"]
        refund_id = self.next_id("r")
        path = f"/v1/orders/{order_id}/refunds"
        if how == "over" or left == 0:
            amount = left + data.draw(st.integers(min_value=1, max_value=500))
        elif how == "rest":
            amount = left
        else:
            amount = data.draw(st.integers(min_value=1, max_value=left))
        body: dict[str, Any] = {"id": refund_id, "reason": "customer"}
        if how == "items":
            body["items"] = [{"sku": "sku-0", "quantity": 1, "amount": money(amount)}]
        else:
            body["amount"] = money(amount)
        response = self.post(path, body)
        self.remember(path, body, response)
        if state["cancelled"]:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "order_cancelled"
            self.expect_unchanged()
            return
        if amount > left:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "refund_exceeds_order"
            self.expect_unchanged()
            return
        assert response.status_code == 201, response.text
        result = response.json()
        state["refunded"] += amount
        assert result["refunded_total"] == money(state["refunded"])
        self.check_reversals(result["effects"])

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        state = self.orders[order_id]
        path = f"/v1/orders/{order_id}/cancel"
        response = self.post(path, None)
        if state["cancelled"]:
            # one cancellation per order: a second cancel replays the first
            assert response.status_code == 200, response.text
            assert response.headers.get("Idempotent-Replayed") == "true"
            return
        assert response.status_code == 201, response.text
        self.remember(path, None, response)
        result = response.json()
        assert result["status"] == "cancelled"
        state["cancelled"] = True
        state["refunded"] = state["total"]
        self.check_reversals(result["effects"])

    @rule(
        member_id=st.sampled_from(MEMBERS),
        wallet=st.sampled_from(["points", "credit"]),
        units=st.integers(min_value=1, max_value=5_000),
        expires_in=st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
    )
    def credit(self, member_id: str, wallet: str, units: int, expires_in: int | None) -> None:
        amount: Any = units if wallet == "points" else money(units)
        body: dict[str, Any] = {
            "id": self.next_id("a"),
            "wallet": wallet,
            "amount": amount,
            "reason": "goodwill",
        }
        if expires_in is not None:
            body["expires_at"] = iso(self.now + timedelta(days=expires_in))
        path = f"/v1/members/{member_id}/adjustments"
        before = self.active(member_id, wallet)
        response = self.post(path, body)
        assert response.status_code == 201, response.text
        self.remember(path, body, response)
        step = Decimal(units) if wallet == "points" else Decimal(units) / 100
        after = Decimal(str(response.json()["balances"][wallet]["active"]))
        assert after == before + step, (before, step, response.json())

    @rule(
        member_id=st.sampled_from(MEMBERS),
        wallet=st.sampled_from(["points", "credit"]),
        how=st.sampled_from(["some", "all", "over"]),
        data=st.data(),
    )
    def debit(self, member_id: str, wallet: str, how: str, data: st.DataObject) -> None:
        scale = 1 if wallet == "points" else 100
        balance = int(self.active(member_id, wallet) * scale)
        if how == "all" and balance > 0:
            units = balance
        elif how == "some" and balance > 1:
            units = data.draw(st.integers(min_value=1, max_value=balance - 1))
        else:
            units = max(balance, 0) + data.draw(st.integers(min_value=1, max_value=100))
        amount: Any = -units if wallet == "points" else f"-{money(units)}"
        body = {"id": self.next_id("d"), "wallet": wallet, "amount": amount, "reason": "manual"}
        path = f"/v1/members/{member_id}/adjustments"
        response = self.post(path, body)
        self.remember(path, body, response)
        if units <= balance:
            assert response.status_code == 201, response.text
            after = Decimal(str(response.json()["balances"][wallet]["active"])) * scale
            assert after == balance - units, (balance, units, response.json())
        else:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "insufficient_points"
            self.expect_unchanged()

    @rule(
        days=st.integers(min_value=0, max_value=25),
        hours=st.integers(min_value=0, max_value=23),
        jobs=st.booleans(),
    )
    def advance_clock(self, days: int, hours: int, jobs: bool) -> None:
        self.now += timedelta(days=days, hours=hours)
        self.api.now = iso(self.now)
        if jobs and self.run_jobs:
            from allegiance.db import get_engine
            from allegiance.worker.runner import run_all

            self.views = {m: self.member(m) for m in MEMBERS}
            run_all(get_engine(), self.now, self.tenant_id)
            # the jobs book only what reads already showed as of now
            self.expect_unchanged()
        else:
            self.views = {m: self.member(m) for m in MEMBERS}

    # ---- checks --------------------------------------------------------------------------

    def check_reversals(self, effects: list[dict[str, Any]]) -> None:
        for effect in effects:
            assert effect["type"] == "points_reversed", effect
            total = Decimal(str(effect["amount"]))
            assert total == Decimal(str(effect["pending_voided"])) + Decimal(
                str(effect["active_reversed"])
            )
            assert total >= 0 and Decimal(str(effect["not_reversed"])) >= 0
            if self.policy == "only_pending":
                assert effect["active_reversed"] == 0, effect
            if self.policy == "unlimited":
                assert effect["not_reversed"] == 0, effect

    @invariant()
    def ledger_holds(self) -> None:
        assert ledger_ok(self.tenant_id) == []

    @invariant()
    def balances_and_stats(self) -> None:
        if not self.views:
            return  # before ``start``
        views = {m: self.member(m) for m in MEMBERS}
        if self.unchanged:
            for member_id in MEMBERS:
                old, new = self.views[member_id], views[member_id]
                assert (new["balances"], new["stats"]) == (old["balances"], old["stats"])
        self.unchanged = False
        self.views = views
        for member_id, view in views.items():
            for wallet, balance in view["balances"].items():
                assert balance["pending"] >= 0, (member_id, wallet, balance)
                if self.policy != "unlimited":
                    assert balance["active"] >= 0, (member_id, wallet, balance)
                for lot in balance["expiring"]:
                    assert lot["amount"] > 0, balance
                    assert lot["expires_at"] > iso(self.now), (lot, iso(self.now))
            mine = [o for o in self.orders.values() if o["member"] == member_id]
            assert view["stats"]["orders"] == sum(1 for o in mine if not o["cancelled"])
            assert view["stats"]["spend"] == money(sum(o["total"] - o["refunded"] for o in mine))


def machine(client: httpx.Client, policy: str, run_jobs: bool) -> type[LedgerMachine]:
    return type(
        f"LedgerMachine_{policy}",
        (LedgerMachine,),
        {"client": client, "policy": policy, "run_jobs": run_jobs},
    )


# soak runs: ALLEGIANCE_SM_EXAMPLES=500 ALLEGIANCE_SM_SHRINK=1 pytest tests/ledger/...
EXAMPLES = int(os.environ.get("ALLEGIANCE_SM_EXAMPLES", "20"))
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("ALLEGIANCE_SM_SHRINK"):
    PHASES.append(Phase.shrink)  # minimal failing steps, at the price of minutes per failure


@pytest.mark.parametrize("policy", ["only_pending", "within_balance", "unlimited"])
def test_ledger_state_machine(http: httpx.Client, policy: str) -> None:
    run_state_machine_as_test(
        machine(http, policy, run_jobs=True),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=20,
            deadline=None,
            database=None,
            phases=PHASES,
            suppress_health_check=list(HealthCheck),
        ),
    )


# ---- regressions found by the machine, replayed step by step ------------------------------


@pytest.mark.parametrize("refusal", ["debit", "refund", "cancelled"])
def test_refused_write_after_lazy_expiry_keeps_the_ledger_balanced(
    http: httpx.Client, refusal: str
) -> None:
    """A write that settles a member (expiring a lot for the first time in the tenant, which
    creates the ``expired`` system account) and is then refused rolls everything back; the
    next write must still book the expiry against a real ``expired`` account of this wallet."""
    tenant_id, key = new_tenant("lazy-expiry")
    api = Api(http, key)
    api.now = iso(START)
    apply_program(api, program("within_balance"))
    assert api.put("/v1/members/m1", json={}).status_code == 201
    credit = {"id": "a1", "wallet": "points", "amount": 10, "reason": "welcome"}
    assert api.post("/v1/members/m1/adjustments", json=credit).status_code == 201
    order_body = {
        "id": "o1",
        "member_id": "m1",
        "items": [{"sku": "s", "amount": "1.00", "quantity": 1}],
    }
    assert api.post("/v1/orders", json=order_body).status_code == 201
    if refusal == "cancelled":
        assert api.post("/v1/orders/o1/cancel").status_code == 201
    assert ledger_ok(tenant_id) == []
    # the welcome points expire after 20 days; nothing has settled the member since
    api.now = iso(START + timedelta(days=30))
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 0
    if refusal == "debit":
        response = api.post(
            "/v1/members/m1/adjustments",
            json={"id": "d1", "wallet": "points", "amount": -5, "reason": "x"},
        )
        assert response.json()["code"] == "insufficient_points", response.text
    else:
        response = api.post("/v1/orders/o1/refunds", json={"id": "r1", "amount": "5.00"})
        expected = "order_cancelled" if refusal == "cancelled" else "refund_exceeds_order"
        assert response.json()["code"] == expected, response.text
    assert response.status_code == 409
    assert ledger_ok(tenant_id) == []
    # the next write settles the member for real (and creates accounts of another wallet)
    response = api.post(
        "/v1/members/m1/adjustments",
        json={"id": "a2", "wallet": "credit", "amount": "1.00", "reason": "x"},
    )
    assert response.status_code == 201, response.text
    assert ledger_ok(tenant_id) == []
    ledger = api.get("/v1/members/m1/ledger").json()["data"]
    expired = [t for t in ledger if t["code"] == "expire"]
    assert {t["wallet"] for t in expired} == {"points"}, ledger
    # the welcome points and (unless cancelled) the order's 1 point, activated on day 3
    assert sum(t["amount"] for t in expired) == (-10 if refusal == "cancelled" else -11), ledger
    assert [t["amount"] for t in ledger if t["wallet"] == "credit" and t["code"] == "adjust"] == [
        1.0
    ], ledger
    member = api.get("/v1/members/m1").json()
    assert member["balances"]["points"]["active"] == 0
    # 1.00 adjusted, plus the order's 0.02 cashback unless the order was cancelled
    assert member["balances"]["credit"]["active"] == (1.0 if refusal == "cancelled" else 1.02)
    # and the same again through the jobs
    from allegiance.db import get_engine
    from allegiance.worker.runner import run_all

    run_all(get_engine(), START + timedelta(days=60), tenant_id)
    assert ledger_ok(tenant_id) == []
