"""Sweepstakes through the API: the commitment published when entries open, entries from
events and bought with points, the draw once after the close, winners paid once, and a draw
anyone can re-derive from the published data (here by an implementation of its own)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from allegiance.cli import app as cli
from tests.conftest import Api, apply_program, ledger_ok, order

BEFORE = "2026-05-31T12:00:00Z"
OPEN = "2026-06-01T09:00:00Z"
DURING = "2026-06-10T12:00:00Z"
CLOSED = "2026-07-01T00:00:00Z"


def program(**overrides: Any) -> dict[str, Any]:
    sweepstake: dict[str, Any] = {
        "key": "summer",
        "name": "Summer draw",
        "opens_at": "2026-06-01T00:00:00Z",
        "closes_at": "2026-06-30T00:00:00Z",
        "winners": 2,
        "entries": {"on": "review.created", "buy": {"cost": 100, "max_per_member": 3}},
        "eligible": "!('staff' in member.tags)",
        "prize": {"points": 1000},
        **overrides,
    }
    return {
        "name": "Sweepstakes",
        "currency": "USD",
        "timezone": "UTC",
        "wallets": {"points": {"precision": 0, "rounding": "floor"}},
        "rules": [{"key": "base", "on": "order.completed", "earn": {"per_amount": 1}}],
        "rewards": [{"key": "ten-off", "type": "discount_fixed", "cost": 100, "value": 10}],
        "sweepstakes": [sweepstake],
    }


def points(api: Api, member_id: str) -> Any:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return response.json()["balances"]["points"]["active"]


def review(api: Api, event_id: str, member_id: str) -> None:
    response = api.post(
        "/v1/events", json={"id": event_id, "type": "review.created", "member_id": member_id}
    )
    assert response.status_code == 201, response.text


def buy(api: Api, purchase_id: str, member_id: str, count: int = 1) -> Any:
    return api.post(
        "/v1/sweepstakes/summer/entries",
        json={"id": purchase_id, "member_id": member_id, "count": count},
    )


# an implementation of docs/sweepstakes.md of its own, not the engine's
def rederive(seed_hex: str, entries: list[list[str]], n: int) -> tuple[str, list[list[str]]]:
    seed = bytes.fromhex(seed_hex)
    ordered = sorted(entries, key=lambda e: e[0].encode("utf-8"))
    blob = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    check = hashlib.sha256(seed + blob).hexdigest()
    pool, won, seen, i = list(ordered), [], set(), 0
    while pool and len(won) < n:
        digest = hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        pick = pool.pop(int.from_bytes(digest, "big") % len(pool))
        if pick[1] not in seen:
            seen.add(pick[1])
            won.append(pick)
        i += 1
    return check, won


def setup_entries(api: Api) -> str:
    """Members with points, entries from reviews and purchases; the commitment seen at open."""
    apply_program(api, program())
    api.now = BEFORE
    for member_id, amount in (("alice", "50.00"), ("bob", "500.00"), ("dave", "500.00")):
        assert api.post("/v1/orders", json=order(f"o-{member_id}", member_id, amount)).is_success
    assert api.put("/v1/members/sam", json={"tags": ["staff"]}).is_success
    before = api.get("/v1/sweepstakes/summer").json()
    assert (before["status"], before["commitment"]) == ("scheduled", None)
    refused = buy(api, "early", "bob")
    assert refused.status_code == 409 and refused.json()["code"] == "sweepstake_not_open"

    api.now = OPEN
    opened = api.get("/v1/sweepstakes/summer").json()
    assert opened["status"] == "open" and len(opened["commitment"]) == 64
    api.now = DURING
    for event_id, member_id in (("r1", "alice"), ("r2", "bob"), ("r3", "carol"), ("r4", "sam")):
        review(api, event_id, member_id)
    other = {"id": "x1", "type": "survey.completed", "member_id": "erin"}
    assert api.post("/v1/events", json=other).status_code == 201
    assert buy(api, "p1", "dave", 2).status_code == 201
    assert buy(api, "p2", "bob").status_code == 201
    return str(opened["commitment"])


def test_entries_from_events_and_points(api: Api, tenant: tuple[str, str]) -> None:
    setup_entries(api)
    # sam is staff (not eligible), erin's event is another type: 3 event entries + 3 bought
    assert api.get("/v1/sweepstakes/summer").json()["entries_count"] == 6
    assert points(api, "dave") == 500 - 200
    replay = buy(api, "p1", "dave", 2)
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["entry_ids"] == ["buy:p1:1", "buy:p1:2"]
    assert points(api, "dave") == 300  # the replay debits nothing
    capped = buy(api, "p3", "dave", 2)
    assert capped.status_code == 409 and capped.json()["code"] == "entry_limit_reached"
    poor = buy(api, "p4", "alice")  # 50 points, an entry costs 100
    assert poor.status_code == 409 and poor.json()["code"] == "insufficient_points"
    staff = buy(api, "p5", "sam")
    assert staff.status_code == 409 and staff.json()["code"] == "not_eligible"
    assert buy(api, "p6", "nobody").status_code == 404
    assert buy(api, "p7", "bob", 0).status_code == 422
    assert api.get("/v1/sweepstakes/summer").json()["entries_count"] == 6
    assert ledger_ok(tenant[0]) == []


def test_draw_is_reproducible_and_pays_once(
    api: Api, tenant: tuple[str, str], tmp_dir: Path
) -> None:
    commitment = setup_entries(api)
    early = api.post("/v1/sweepstakes/summer/draw")
    assert early.status_code == 409 and early.json()["code"] == "draw_not_due"
    assert api.get("/v1/sweepstakes/summer/draw").json()["code"] == "sweepstake_not_drawn"

    api.now = CLOSED
    review(api, "late", "dave")  # after the close: no entry
    before = {m: points(api, m) for m in ("alice", "bob", "carol", "dave")}
    drawn = api.post("/v1/sweepstakes/summer/draw")
    assert drawn.status_code == 200, drawn.text
    result = drawn.json()
    # the commitment published when entries opened is the hash of the revealed seed
    assert result["commitment"] == commitment
    assert hashlib.sha256(bytes.fromhex(result["seed"])).hexdigest() == commitment
    entries = [[e["id"], e["member_id"]] for e in result["entries"]]
    assert sorted(e[0] for e in entries) == [
        "buy:p1:1", "buy:p1:2", "buy:p2:1", "event:r1", "event:r2", "event:r3",
    ]  # fmt: skip
    check, won = rederive(result["seed"], entries, 2)
    assert result["check"] == check
    assert [[w["entry_id"], w["member_id"]] for w in result["winners"]] == won
    assert len({w[1] for w in won}) == 2

    winners = {w[1] for w in won}
    after = {m: points(api, m) for m in before}
    assert {m: after[m] - before[m] for m in before} == {
        m: 1000 if m in winners else 0 for m in before
    }
    again = api.post("/v1/sweepstakes/summer/draw")
    assert again.json() == result
    assert {m: points(api, m) for m in before} == after  # paid once
    public = api.get("/v1/sweepstakes/summer/draw").json()
    assert public == result
    assert api.get("/v1/sweepstakes/summer").json()["status"] == "drawn"
    assert ledger_ok(tenant[0]) == []

    # the verify command re-derives the published draw ...
    runner = CliRunner()
    good = tmp_dir / "draw.json"
    good.write_text(json.dumps(public))
    ok = runner.invoke(cli, ["sweepstakes", "verify", str(good)])
    assert ok.exit_code == 0, ok.output
    by_tenant = runner.invoke(cli, ["sweepstakes", "verify", "--tenant", tenant[0], "summer"])
    assert by_tenant.exit_code == 0, by_tenant.output
    # ... and changing any entry changes the check, so verify fails
    for index in range(len(entries)):
        for field, value in (("member_id", "mallory"), ("id", entries[index][0] + "x")):
            tampered = json.loads(json.dumps(public))
            tampered["entries"][index][field] = value
            changed = [[e["id"], e["member_id"]] for e in tampered["entries"]]
            assert rederive(public["seed"], changed, 2)[0] != public["check"]
            bad = tmp_dir / f"bad-{index}-{field}.json"
            bad.write_text(json.dumps(tampered))
            failed = runner.invoke(cli, ["sweepstakes", "verify", str(bad)])
            assert failed.exit_code == 1, (field, index, failed.output)
    # a wrong seed fails the commitment
    wrong_seed = dict(public, seed="00" * 32)
    bad = tmp_dir / "bad-seed.json"
    bad.write_text(json.dumps(wrong_seed))
    assert runner.invoke(cli, ["sweepstakes", "verify", str(bad)]).exit_code == 1

    # a later program change does not alter the published draw
    apply_program(api, program(winners=5))
    assert api.get("/v1/sweepstakes/summer/draw").json() == public
    by_tenant = runner.invoke(cli, ["sweepstakes", "verify", "--tenant", tenant[0], "summer"])
    assert by_tenant.exit_code == 0, by_tenant.output


def test_reward_prize_and_no_entries(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program(prize={"reward": "ten-off"}, winners=3))
    api.now = DURING
    review(api, "r1", "alice")
    review(api, "r2", "alice")
    api.now = CLOSED
    result = api.post("/v1/sweepstakes/summer/draw").json()
    # alice holds both entries and wins once
    assert [w["member_id"] for w in result["winners"]] == ["alice"]
    prize = result["winners"][0]["prize"]
    assert prize["reward"] == "ten-off" and prize["coupon"]
    coupon = api.get(f"/v1/coupons/{prize['coupon']}")
    assert coupon.status_code == 200, coupon.text
    assert coupon.json()["member_id"] == "alice"


def test_empty_draw_and_unknown(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, program())
    api.now = CLOSED
    result = api.post("/v1/sweepstakes/summer/draw").json()
    assert result["entries"] == [] and result["winners"] == []
    assert rederive(result["seed"], [], 2)[0] == result["check"]
    missing = api.post("/v1/sweepstakes/winter/draw")
    assert missing.status_code == 404 and missing.json()["code"] == "sweepstake_not_found"


def test_program_checks(api: Api, tenant: tuple[str, str]) -> None:
    cases = [
        ({"eligible": "member.nope("}, ["sweepstakes", 0, "eligible"]),
        ({"entries": {"on": "order.completed"}}, ["sweepstakes", 0, "entries", "on"]),
        ({"prize": {"reward": "missing"}}, ["sweepstakes", 0, "prize", "reward"]),
        ({"prize": {"points": 5, "wallet": "miles"}}, ["sweepstakes", 0, "prize", "wallet"]),
        ({"entries": {}}, ["sweepstakes", 0, "entries"]),
        ({"closes_at": "2026-05-01T00:00:00Z"}, ["sweepstakes", 0]),
    ]
    for change, loc in cases:
        response = api.put("/v1/program", json=program(**change))
        assert response.status_code == 422, (change, response.text)
        assert [e["loc"] for e in response.json()["errors"]] == [loc], response.text
