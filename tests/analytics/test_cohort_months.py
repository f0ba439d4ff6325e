"""The member months behind the cohort matrix (docs/analytics.md#cohorts): kept with every
booking and cancel, exact at month edges of the program's time zone, moved by a backfilled
first order, rebuilt by the ``member_months`` job after a time zone change or the upgrade, and
checked against a recount by ``ledger_ok`` (the same check as ``allegiance ledger verify``).

Every matrix read from the table is compared with the count from the orders, the way the
matrix is computed when the table cannot be used."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from allegiance.analytics import activity, repository
from allegiance.analytics.kpis import _midnight, buckets
from allegiance.analytics.models import MemberMonth, MemberMonthsState
from allegiance.config import get_settings
from allegiance.db import get_engine, read_session, write_session
from allegiance.kit.clock import parse_timestamp
from allegiance.program.service import load_program
from allegiance.worker.runner import run_all
from tests.conftest import Api, apply_program, ledger_ok, new_tenant, order

PROGRAM: dict[str, Any] = {
    "name": "Cohorts",
    "currency": "USD",
    "timezone": "America/New_York",
    "wallets": {"points": {"precision": 0, "rounding": "floor"}},
    "tiers": {
        "metric": "spend",
        "window": {"mode": "lifetime"},
        "levels": [{"key": "bronze", "threshold": 0}, {"key": "gold", "threshold": 300}],
    },
    "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
}

YEAR = "from=2026-01-01&to=2026-06-30"


def place(api: Api, order_id: str, member_id: str, amount: str, moment: str) -> None:
    api.now = moment
    response = api.post("/v1/orders", json=order(order_id, member_id, amount, placed_at=moment))
    assert response.status_code == 201, response.text


def cancel(api: Api, order_id: str) -> None:
    response = api.post(f"/v1/orders/{order_id}/cancel")
    assert response.status_code == 201, response.text


def matrix(api: Api, query: str = YEAR, **filters: str) -> dict[str, list[int]]:
    extra = "".join(f"&{k}={v}" for k, v in filters.items())
    response = api.get(f"/v1/analytics/cohorts?{query}{extra}")
    assert response.status_code == 200, response.text
    return {row["cohort"]: row["members"] for row in response.json()["cohorts"]}


def counted(tenant_id: str, start: date, end: date) -> dict[tuple[int, int], int]:
    """The matrix counted from the orders (the path used without the table)."""
    with read_session(get_engine()) as session:
        compiled = load_program(session, tenant_id=tenant_id)
        assert compiled is not None
        spans = buckets(start, end, "month")
        bounds = [_midnight(compiled.program, s) for s, _ in spans]
        bounds.append(_midnight(compiled.program, spans[-1][1] + timedelta(days=1)))
        return repository.cohort_activity(session, tenant_id, bounds)


def consistent(api: Api, tenant_id: str) -> None:
    """The matrix as served equals the count from the orders, and the ledger check passes."""
    assert as_cells(matrix(api)) == counted(tenant_id, date(2026, 1, 1), date(2026, 6, 30))
    assert ledger_ok(tenant_id) == []


def as_cells(found: dict[str, list[int]]) -> dict[tuple[int, int], int]:
    cells = {}
    for index, members in enumerate(found.values()):
        for k, count in enumerate(members):
            if count:
                cells[(index, index + k)] = count
    return cells


def exact(tenant_id: str) -> bool:
    with read_session(get_engine()) as session:
        state = session.get(MemberMonthsState, tenant_id)
        compiled = load_program(session, tenant_id=tenant_id)
        assert compiled is not None
        return state is not None and state.timezone == compiled.program.timezone


def months_of(tenant_id: str) -> set[tuple[str, int]]:
    with read_session(get_engine()) as session:
        rows = session.execute(
            select(MemberMonth.member_id, MemberMonth.month).where(
                MemberMonth.tenant_id == tenant_id
            )
        )
        return {(m, month) for m, month in rows}


def jobs(tenant_id: str, moment: str) -> dict[str, int]:
    return run_all(get_engine(), parse_timestamp(moment), tenant_id)


@pytest.fixture()
def shop(api: Api, tenant: tuple[str, str]) -> tuple[Api, str]:
    apply_program(api, PROGRAM)
    assert exact(tenant[0])  # a new program without orders starts exact
    return api, tenant[0]


def test_months_follow_the_program_time_zone(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    # 2026-02-01 03:00 UTC is still 31 January in New York; 05:00 UTC is 1 February
    place(api, "a1", "m1", "10.00", "2026-02-01T03:00:00Z")
    place(api, "a2", "m1", "10.00", "2026-02-01T05:00:00Z")
    place(api, "b1", "m2", "10.00", "2026-03-31T23:30:00Z")  # 31 March local
    place(api, "b2", "m2", "10.00", "2026-04-01T04:30:00Z")  # 1 April local (EDT, UTC-4)
    assert months_of(tenant_id) == {
        ("m1", 202601),
        ("m1", 202602),
        ("m2", 202603),
        ("m2", 202604),
    }
    found = matrix(api)
    assert found["2026-01-01"][:2] == [1, 1]
    assert found["2026-03-01"][:2] == [1, 1]
    consistent(api, tenant_id)


def test_a_backfilled_earlier_order_moves_the_cohort(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    place(api, "late", "m1", "10.00", "2026-03-10T12:00:00Z")
    place(api, "again", "m1", "10.00", "2026-04-10T12:00:00Z")
    assert matrix(api)["2026-03-01"][:2] == [1, 1]
    # an order of January arrives late (an import of history): m1's cohort is January now
    api.now = "2026-04-20T12:00:00Z"
    body = order("early", "m1", "10.00", placed_at="2026-01-05T12:00:00Z")
    assert api.post("/v1/orders", json=body).status_code == 201
    found = matrix(api)
    assert found["2026-01-01"] == [1, 0, 1, 1, 0, 0]
    assert found["2026-03-01"] == [0, 0, 0, 0]
    consistent(api, tenant_id)


def test_a_cancel_drops_the_month_only_when_nothing_else_counts(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    place(api, "first", "m1", "10.00", "2026-01-10T12:00:00Z")
    place(api, "x1", "m1", "10.00", "2026-02-03T12:00:00Z")
    place(api, "x2", "m1", "10.00", "2026-02-20T12:00:00Z")
    cancel(api, "x1")
    assert ("m1", 202602) in months_of(tenant_id)
    assert matrix(api)["2026-01-01"][:2] == [1, 1]
    cancel(api, "x2")
    assert ("m1", 202602) not in months_of(tenant_id)
    assert matrix(api)["2026-01-01"][:2] == [1, 0]
    # the first order cancelled: the cohort stays (first_order_at is any order's), month 0 empties
    cancel(api, "first")
    assert months_of(tenant_id) == set()
    found = matrix(api)
    assert found["2026-01-01"][0] == 0
    consistent(api, tenant_id)


def test_tier_filter_and_partial_ranges_give_the_same_matrix(shop: tuple[Api, str]) -> None:
    api, tenant_id = shop
    place(api, "g1", "gold1", "400.00", "2026-01-15T12:00:00Z")
    place(api, "g2", "gold1", "10.00", "2026-03-15T12:00:00Z")
    place(api, "s1", "silver", "20.00", "2026-01-20T12:00:00Z")
    place(api, "s2", "silver", "20.00", "2026-02-20T12:00:00Z")
    assert matrix(api, tier="gold")["2026-01-01"] == [1, 0, 1, 0, 0, 0]
    assert matrix(api)["2026-01-01"] == [2, 1, 1, 0, 0, 0]
    consistent(api, tenant_id)
    # a range that does not start on the 1st counts from the orders: same cells
    partial = matrix(api, "from=2026-01-02&to=2026-03-31")
    assert partial["2026-01-02"] == [2, 1, 1]


def test_a_time_zone_change_reads_from_orders_until_the_job_rebuilt(
    shop: tuple[Api, str],
) -> None:
    api, tenant_id = shop
    # 1 February 02:00 UTC: January in New York, February in Tokyo
    place(api, "a1", "m1", "10.00", "2026-02-01T02:00:00Z")
    place(api, "a2", "m1", "10.00", "2026-03-15T12:00:00Z")
    assert ("m1", 202601) in months_of(tenant_id)
    api.now = "2026-04-01T00:00:00Z"
    apply_program(api, {**PROGRAM, "timezone": "Asia/Tokyo"})
    assert not exact(tenant_id)
    # still right: counted from the orders, in the new zone
    found = matrix(api)
    assert found["2026-02-01"] == [1, 1, 0, 0, 0]
    place(api, "a3", "m2", "10.00", "2026-04-01T00:00:10Z")
    # the rebuild waits a minute for bookings that read the old program
    assert jobs(tenant_id, "2026-04-01T00:00:30Z")["member_months"] == 0
    assert not exact(tenant_id)
    assert jobs(tenant_id, "2026-04-01T00:02:00Z")["member_months"] == 2
    assert exact(tenant_id)
    assert months_of(tenant_id) == {("m1", 202602), ("m1", 202603), ("m2", 202604)}
    assert matrix(api) == found | {"2026-04-01": [1, 0, 0]}
    assert ledger_ok(tenant_id) == []
    # back to New York: the months written meanwhile are Tokyo's, so it rebuilds again
    api.now = "2026-04-02T00:00:00Z"
    apply_program(api, PROGRAM)
    assert not exact(tenant_id)
    jobs(tenant_id, "2026-04-02T00:05:00Z")
    assert exact(tenant_id)
    assert ("m1", 202601) in months_of(tenant_id)
    assert ledger_ok(tenant_id) == []
    # another change of the program that keeps the zone leaves the table exact
    api.now = "2026-04-03T00:00:00Z"
    apply_program(api, {**PROGRAM, "name": "Renamed"})
    assert exact(tenant_id)


def test_the_job_fills_an_upgraded_install_in_batches(
    shop: tuple[Api, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, tenant_id = shop
    for n in range(5):
        place(api, f"o{n}", f"m{n}", "10.00", f"2026-0{n + 1}-10T12:00:00Z")
        place(api, f"p{n}", f"m{n}", "10.00", "2026-06-10T12:00:00Z")
    expected = months_of(tenant_id)
    before = matrix(api)
    # as after the migration: no rows, no state
    with write_session(get_engine()) as session:
        session.execute(delete(MemberMonth).where(MemberMonth.tenant_id == tenant_id))
        session.execute(delete(MemberMonthsState).where(MemberMonthsState.tenant_id == tenant_id))
    assert matrix(api) == before  # from the orders meanwhile
    monkeypatch.setattr(get_settings(), "job_batch_size", 2)
    monkeypatch.setattr(get_settings(), "job_max_batches", 2)
    assert jobs(tenant_id, "2026-07-01T00:00:00Z")["member_months"] == 4
    assert not exact(tenant_id)
    # a booking between rounds, for a member the job already passed and one it has not
    place(api, "q0", "m0", "10.00", "2026-05-10T12:00:00Z")
    place(api, "q4", "m4", "10.00", "2026-02-10T12:00:00Z")
    assert jobs(tenant_id, "2026-07-01T00:10:00Z")["member_months"] == 1
    assert exact(tenant_id)
    assert months_of(tenant_id) == expected | {("m0", 202605), ("m4", 202602)}
    consistent(api, tenant_id)


def test_verify_reports_a_table_that_disagrees_with_the_orders(
    shop: tuple[Api, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, tenant_id = shop
    place(api, "a0", "m0", "10.00", "2026-01-10T12:00:00Z")
    place(api, "a1", "m1", "10.00", "2026-02-10T12:00:00Z")
    place(api, "a2", "m1", "10.00", "2026-03-10T12:00:00Z")
    place(api, "a3", "m2", "10.00", "2026-03-11T12:00:00Z")
    monkeypatch.setattr(get_settings(), "job_batch_size", 2)  # the check goes in chunks
    assert ledger_ok(tenant_id) == []
    with write_session(get_engine()) as session:
        session.execute(
            delete(MemberMonth).where(
                MemberMonth.tenant_id == tenant_id, MemberMonth.month == 202603
            )
        )
        session.add(
            MemberMonth(
                tenant_id=tenant_id,
                member_id="m1",
                month=202605,
                first_order_at=parse_timestamp("2026-02-10T12:00:00Z"),
            )
        )
        session.add(
            MemberMonth(
                tenant_id=tenant_id,
                member_id="ghost",
                month=202601,
                first_order_at=parse_timestamp("2026-01-10T12:00:00Z"),
            )
        )
    # the matrix reads the table (the orders say [1, 1, 0, 0, 0])
    assert matrix(api)["2026-02-01"] == [1, 0, 0, 1, 0]
    breaches = ledger_ok(tenant_id)
    assert "member m1: ordered in month 202603, missing from member_months" in breaches
    assert "member m1: member_months has month 202605 without an order" in breaches
    assert "member m2: ordered in month 202603, missing from member_months" in breaches
    assert "member ghost: in member_months but not a member" in breaches
    assert len(breaches) == 4


def test_parallel_bookings_keep_the_months_exact(live_server: str) -> None:
    """Bookings of the same members and months at once, on a live server (Postgres: real
    concurrency under row locks; SQLite: the writers queue)."""
    tenant_id, key = new_tenant()
    client = httpx.Client(base_url=live_server, timeout=120)
    api = Api(client, key)
    apply_program(api, PROGRAM)

    def book(n: int) -> int:
        moment = f"2026-0{1 + n % 4}-{10 + n % 7}T12:00:00Z"
        body = order(f"o{n}", f"m{n % 3}", "10.00", placed_at=moment)
        return client.post("/v1/orders", json=body, headers=api.headers()).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(book, range(48)))
    assert statuses == [201] * 48
    assert len(months_of(tenant_id)) == 12  # 3 members x 4 months
    consistent(api, tenant_id)


def test_month_of_is_local() -> None:
    assert activity.month_of(parse_timestamp("2026-01-01T04:59:59Z"), "America/New_York") == 202512
    assert activity.month_of(parse_timestamp("2026-01-01T05:00:00Z"), "America/New_York") == 202601
    start, end = activity.month_span(202612, "Asia/Tokyo")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-11-30T15:00:00+00:00",
        "2026-12-31T15:00:00+00:00",
    )
