"""The community and behaviour programs of docs/community.md, applied exactly as the page
writes them (the YAML blocks are read from the page) and exercised through the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from allegiance.kit.yamlio import load_yaml
from tests.conftest import Api, apply_program, ledger_ok, order

PAGE = Path(__file__).resolve().parents[2] / "docs" / "community.md"


def example(name: str) -> dict[str, Any]:
    blocks = re.findall(r"```yaml\n(# example: ([\w-]+)\n.*?)```", PAGE.read_text(), re.S)
    found = {key: text for text, key in blocks}
    document = load_yaml(found[name])
    assert isinstance(document, dict)
    return document


def event(
    api: Api, event_id: str, type_: str, member_id: str, at: str, **properties: Any
) -> dict[str, Any]:
    api.now = at
    response = api.post(
        "/v1/events",
        json={"id": event_id, "type": type_, "member_id": member_id, "properties": properties},
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def balance(api: Api, member_id: str, wallet: str = "points") -> Any:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return response.json()["balances"].get(wallet, {}).get("active", 0)


def test_reviews(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("reviews"))
    for n, day in enumerate(("03", "10", "17", "24")):
        applied = event(api, f"review-{n}", "review.created", "alice",
                        f"2026-03-{day}T10:00:00Z", verified_purchase=True)  # fmt: skip
        assert applied["rules_applied"] == (["review"] if n < 3 else [])
    assert balance(api, "alice") == 150  # 3 a month
    event(api, "review-4", "review.created", "alice", "2026-04-01T10:00:00Z",
          verified_purchase=True)  # fmt: skip
    event(api, "review-5", "review.created", "alice", "2026-04-02T10:00:00Z",
          verified_purchase=False)  # fmt: skip
    assert balance(api, "alice") == 200  # a new month; an unverified review earns nothing
    # the same review sent again is a replay
    event(api, "review-4", "review.created", "alice", "2026-04-01T10:00:00Z",
          verified_purchase=True)  # fmt: skip
    assert balance(api, "alice") == 200
    assert ledger_ok(tenant[0]) == []


def test_featured_ugc_bonus(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("ugc"))
    event(api, "ugc-1", "ugc.submitted", "bob", "2026-03-02T10:00:00Z", kind="photo")
    event(api, "ugc-2", "ugc.submitted", "bob", "2026-03-02T11:00:00Z", kind="text")
    assert balance(api, "bob") == 20  # only photos and videos
    featured = event(api, "featured-ugc-1", "ugc.featured", "bob", "2026-03-05T10:00:00Z",
                     content_id="ugc-1", featured=True)  # fmt: skip
    assert featured["rules_applied"] == ["ugc-featured"]
    assert balance(api, "bob") == 220
    # featuring the same content again is a replay; an unfeature earns nothing
    event(api, "featured-ugc-1", "ugc.featured", "bob", "2026-03-05T10:00:00Z",
          content_id="ugc-1", featured=True)  # fmt: skip
    event(api, "unfeatured-ugc-1", "ugc.featured", "bob", "2026-03-06T10:00:00Z",
          content_id="ugc-1", featured=False)  # fmt: skip
    assert balance(api, "bob") == 220
    for n in range(3, 9):  # 5 submissions a week
        event(api, f"ugc-{n}", "ugc.submitted", "bob", f"2026-03-0{n - 1}T12:00:00Z",
              kind="video")  # fmt: skip
    assert balance(api, "bob") == 220 + 4 * 20  # week of 2 March: ugc-1 and four more
    assert ledger_ok(tenant[0]) == []


def test_social_shares(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("shares"))
    event(api, "s1", "social.shared", "carol", "2026-03-02T10:00:00Z", network="instagram")
    event(api, "s2", "social.shared", "carol", "2026-03-02T18:00:00Z", network="facebook")
    event(api, "s3", "social.shared", "carol", "2026-03-03T10:00:00Z", network="myspace")
    event(api, "s4", "social.shared", "carol", "2026-03-03T11:00:00Z", network="x")
    assert balance(api, "carol") == 10  # once a day, known networks only


def test_recycling_into_impact_wallet(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("recycling"))
    event(api, "r1", "packaging.recycled", "dave", "2026-03-02T10:00:00Z", amount=2500)
    assert balance(api, "dave", "impact") == 25
    assert balance(api, "dave", "points") == 0  # impact points stay apart
    for n in range(2, 6):
        event(api, f"r{n}", "packaging.recycled", "dave", f"2026-03-0{n + 1}T10:00:00Z",
              amount=1000)  # fmt: skip
    assert balance(api, "dave", "impact") == 25 + 3 * 10  # 4 drop-offs a month
    event(api, "r6", "packaging.recycled", "dave", "2026-04-01T10:00:00Z", amount=0)
    assert balance(api, "dave", "impact") == 55
    assert ledger_ok(tenant[0]) == []


def test_mentoring(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("mentoring"))
    for n in range(1, 8):
        at = f"2026-0{n + 1}-01T10:00:00Z"
        event(api, f"mentee-new{n}", "mentoring.completed", "erin", at,
              mentee_id=f"new{n}", mentee_first_order=True)  # fmt: skip
    assert balance(api, "erin") == 5 * 300  # 5 mentees a year
    # the same mentee again (the shop resends) is a replay
    event(api, "mentee-new1", "mentoring.completed", "erin", "2026-02-01T10:00:00Z",
          mentee_id="new1", mentee_first_order=True)  # fmt: skip
    event(api, "mentee-x", "mentoring.completed", "frank", "2026-02-01T10:00:00Z",
          mentee_id="x", mentee_first_order=False)  # fmt: skip
    assert (balance(api, "erin"), balance(api, "frank")) == (1500, 0)


def test_feedback_surveys(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("surveys"))
    event(api, "survey-s1-gil", "survey.completed", "gil", "2026-03-02T10:00:00Z",
          topic="product-feedback", answers=7)  # fmt: skip
    event(api, "survey-s2-gil", "survey.completed", "gil", "2026-03-20T10:00:00Z",
          topic="product-feedback", answers=7)  # fmt: skip
    event(api, "survey-s3-gil", "survey.completed", "gil", "2026-04-02T10:00:00Z",
          topic="product-feedback", answers=2)  # fmt: skip
    event(api, "survey-s4-gil", "survey.completed", "gil", "2026-04-03T10:00:00Z",
          topic="delivery", answers=9)  # fmt: skip
    assert balance(api, "gil") == 25  # one a month; too short or another topic earns nothing


def test_early_adoption(api: Api, tenant: tuple[str, str]) -> None:
    apply_program(api, example("early-adoption"))

    def book(order_id: str, member_id: str, at: str, *skus: str) -> list[str]:
        api.now = at
        body = order(order_id, member_id, *["10.00"] * len(skus), placed_at=at)
        for item, sku in zip(body["items"], skus, strict=True):
            item["sku"] = sku
        response = api.post("/v1/orders", json=body)
        assert response.status_code == 201, response.text
        return list(response.json()["rules_applied"])

    assert book("o0", "hana", "2026-08-31T10:00:00Z", "NEW-1") == ["base"]  # before launch
    assert book("o1", "hana", "2026-09-02T10:00:00Z", "OLD-9") == ["base"]  # no new SKU
    assert book("o2", "hana", "2026-09-03T10:00:00Z", "OLD-9", "NEW-1") == [
        "base", "early-adopter",
    ]  # fmt: skip
    assert book("o3", "hana", "2026-09-04T10:00:00Z", "NEW-1") == ["base"]  # first order only
    assert book("o4", "ivan", "2026-10-01T10:00:00Z", "NEW-1") == ["base"]  # after 30 days
    assert balance(api, "hana") == 10 + 10 + 20 + 200 + 10
    assert ledger_ok(tenant[0]) == []
