"""Quizzes, polls and surveys/NPS through the HTTP API (docs/engagement.md)."""

from __future__ import annotations

from typing import Any

from tests.conftest import BASIC_PROGRAM, Api, apply_program, ledger_ok

PROGRAM: dict[str, Any] = {
    **BASIC_PROGRAM,
    "tiers": {
        "metric": "points_earned",
        "levels": [{"key": "silver", "threshold": 0}, {"key": "gold", "threshold": 1000}],
    },
    "quizzes": [
        {
            "key": "coffee",
            "name": "Know your coffee",
            "questions": [
                {
                    "key": "origin",
                    "text": "Where does Arabica come from?",
                    "choices": [
                        {"key": "eth", "text": "Ethiopia"},
                        {"key": "br", "text": "Brazil"},
                    ],
                    "answer": "eth",
                },
                {
                    "key": "milk",
                    "text": "Which drinks contain milk?",
                    "choices": [
                        {"key": "latte", "text": "Latte"},
                        {"key": "flat", "text": "Flat white"},
                        {"key": "espresso", "text": "Espresso"},
                    ],
                    "answer": ["latte", "flat"],
                },
                {
                    "key": "roast",
                    "text": "Darker roasts have...",
                    "choices": [
                        {"key": "more", "text": "More caffeine"},
                        {"key": "less", "text": "Less"},
                    ],
                    "answer": "less",
                },
            ],
            "pass_score": 2,
            "attempts": 2,
            "reward": {"points": 50},
        }
    ],
    "polls": [
        {
            "key": "next-blend",
            "question": "Which blend next?",
            "options": [{"key": "kenya", "text": "Kenya AA"}, {"key": "java", "text": "Java"}],
            "eligible": "member.tier == 'gold'",
            "closes_at": "2026-02-01T00:00:00Z",
        },
        {
            "key": "mug",
            "question": "Mug colour?",
            "options": [{"key": "red", "text": "Red"}, {"key": "blue", "text": "Blue"}],
            "changeable": True,
        },
    ],
    "surveys": [
        {"key": "nps", "name": "How likely...", "period": "month", "reward": {"points": 5}},
        {"key": "onboarding", "name": "Onboarding", "period": "once"},
    ],
}


def setup(api: Api) -> None:
    apply_program(api, PROGRAM)
    api.now = "2026-01-10T10:00:00Z"
    for member in ("m1", "m2", "m3"):
        assert (
            api.put(f"/v1/members/{member}", json={"email": f"{member}@x.com"}).status_code == 201
        )


def balance(api: Api, member_id: str) -> int:
    response = api.get(f"/v1/members/{member_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["balances"]["points"]["active"])


def test_quiz_hides_answers_scores_rewards_once_and_limits_attempts(
    api: Api, tenant: tuple[str, str]
) -> None:
    setup(api)
    shown = api.get("/v1/quizzes/coffee")
    assert shown.status_code == 200, shown.text
    assert "answer" not in shown.text and "eth" in shown.text
    assert shown.json()["questions"][1]["multiple"] is True

    failed = api.post(
        "/v1/quizzes/coffee/attempts",
        json={"id": "a1", "member_id": "m1", "answers": {"origin": "br", "milk": ["latte"]}},
    )
    assert failed.status_code == 201, failed.text
    assert failed.json()["score"] == 0 and failed.json()["passed"] is False
    assert failed.json()["reward"] is None and failed.json()["attempts_left"] == 1

    body = {"id": "a2", "member_id": "m1", "answers": {"origin": "eth", "milk": ["flat", "latte"]}}
    passed = api.post("/v1/quizzes/coffee/attempts", json=body)
    assert passed.status_code == 201, passed.text
    assert passed.json()["score"] == 2 and passed.json()["passed"] is True
    assert passed.json()["reward"] == {"wallet": "points", "points": 50}
    replay = api.post("/v1/quizzes/coffee/attempts", json=body)
    assert replay.status_code in (200, 201) and replay.headers["Idempotent-Replayed"] == "true"
    assert balance(api, "m1") == 50

    third = api.post(
        "/v1/quizzes/coffee/attempts",
        json={"id": "a3", "member_id": "m1", "answers": {"origin": "eth"}},
    )
    assert third.status_code == 409, third.text
    assert third.json()["code"] == "attempt_limit_reached"
    assert balance(api, "m1") == 50
    assert ledger_ok(tenant[0]) == []


def test_quiz_second_pass_earns_nothing_and_bad_answers_are_422(api: Api) -> None:
    setup(api)
    good = {"origin": "eth", "milk": ["latte", "flat"], "roast": "less"}
    first = api.post(
        "/v1/quizzes/coffee/attempts", json={"id": "b1", "member_id": "m2", "answers": good}
    )
    assert first.json()["score"] == 3 and first.json()["reward"]["points"] == 50
    second = api.post(
        "/v1/quizzes/coffee/attempts", json={"id": "b2", "member_id": "m2", "answers": good}
    )
    assert second.json()["passed"] is True and second.json()["reward"] is None
    assert balance(api, "m2") == 50
    bad = api.post(
        "/v1/quizzes/coffee/attempts",
        json={"id": "b3", "member_id": "m3", "answers": {"origin": "mars"}},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == [
        "body",
        "answers",
        "origin",
    ]
    assert (
        api.post("/v1/quizzes/nope/attempts", json={"id": "x", "member_id": "m3"}).status_code
        == 404
    )


def test_quiz_program_is_checked(api: Api) -> None:
    quiz = PROGRAM["quizzes"][0]
    broken = {**quiz, "pass_score": 4, "questions": [{**quiz["questions"][0], "answer": "zz"}]}
    response = api.put("/v1/program", json={**PROGRAM, "quizzes": [broken]})
    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["quizzes", 0, "questions", 0, "answer"] in locs and ["quizzes", 0, "pass_score"] in locs
    poll = {**PROGRAM["polls"][0], "eligible": "order.total > 1"}
    response = api.put("/v1/program", json={**PROGRAM, "polls": [poll]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["polls", 0, "eligible"]


def test_poll_eligibility_one_vote_changeable_closed_and_results(api: Api) -> None:
    setup(api)
    assert api.put("/v1/members/m1/tier", json={"tier": "gold"}).status_code == 200
    vote = api.post("/v1/polls/next-blend/votes", json={"member_id": "m1", "option": "kenya"})
    assert vote.status_code == 201, vote.text
    again = api.post("/v1/polls/next-blend/votes", json={"member_id": "m1", "option": "java"})
    assert again.status_code == 409 and again.json()["code"] == "already_voted"
    silver = api.post("/v1/polls/next-blend/votes", json={"member_id": "m2", "option": "java"})
    assert silver.status_code == 403, silver.text
    assert silver.json()["code"] == "not_eligible" and "gold" in silver.json()["reason"]
    results = api.get("/v1/polls/next-blend/results").json()
    assert results["total"] == 1
    assert [(o["key"], o["votes"]) for o in results["options"]] == [("kenya", 1), ("java", 0)]

    assert (
        api.post("/v1/polls/mug/votes", json={"member_id": "m2", "option": "red"}).status_code
        == 201
    )
    changed = api.post("/v1/polls/mug/votes", json={"member_id": "m2", "option": "blue"})
    assert changed.status_code == 200 and changed.json()["changed"] is True
    assert (
        api.post("/v1/polls/mug/votes", json={"member_id": "m3", "option": "blue"}).status_code
        == 201
    )
    mug = api.get("/v1/polls/mug/results").json()
    assert [(o["key"], o["votes"]) for o in mug["options"]] == [("red", 0), ("blue", 2)]
    wrong = api.post("/v1/polls/mug/votes", json={"member_id": "m3", "option": "green"})
    assert wrong.status_code == 422

    api.now = "2026-02-01T00:00:00Z"
    closed = api.post("/v1/polls/next-blend/votes", json={"member_id": "m1", "option": "java"})
    assert closed.status_code == 409 and closed.json()["code"] == "poll_closed"


def test_survey_one_response_per_period_with_reward(api: Api, tenant: tuple[str, str]) -> None:
    setup(api)
    first = api.post(
        "/v1/surveys/nps/responses", json={"member_id": "m1", "score": 9, "comment": "great"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["period"] == "m2026-01" and first.json()["category"] == "promoter"
    assert first.json()["reward"] == {"wallet": "points", "points": 5}
    second = api.post("/v1/surveys/nps/responses", json={"member_id": "m1", "score": 3})
    assert second.status_code == 409 and second.json()["code"] == "already_answered"
    api.now = "2026-02-03T10:00:00Z"
    assert (
        api.post("/v1/surveys/nps/responses", json={"member_id": "m1", "score": 6}).status_code
        == 201
    )
    assert balance(api, "m1") == 10
    once = api.post("/v1/surveys/onboarding/responses", json={"member_id": "m1", "score": 8})
    assert once.status_code == 201 and once.json()["reward"] is None
    api.now = "2027-05-01T10:00:00Z"
    again = api.post("/v1/surveys/onboarding/responses", json={"member_id": "m1", "score": 8})
    assert again.status_code == 409
    assert (
        api.post("/v1/surveys/nps/responses", json={"member_id": "m1", "score": 11}).status_code
        == 422
    )
    assert ledger_ok(tenant[0]) == []


def test_nps_from_a_hand_computed_sample(api: Api) -> None:
    apply_program(api, {**PROGRAM, "surveys": [{"key": "nps", "name": "NPS", "period": "month"}]})
    api.now = "2026-03-05T10:00:00Z"
    scores = [10] * 40 + [9] * 30 + [8] * 5 + [7] * 5 + [6] * 10 + [0] * 10
    for number, score in enumerate(scores):
        member = f"p{number:03d}"
        if number < 10:  # ten gold promoters
            api.put(f"/v1/members/{member}", json={"email": f"{member}@x.com", "tags": ["vip"]})
            assert api.put(f"/v1/members/{member}/tier", json={"tier": "gold"}).status_code == 200
        response = api.post("/v1/surveys/nps/responses", json={"member_id": member, "score": score})
        assert response.status_code == 201, response.text
    api.now = "2026-04-02T10:00:00Z"
    for member in ("p000", "p099"):  # a promoter and a detractor in April
        assert (
            api.post(
                "/v1/surveys/nps/responses", json={"member_id": member, "score": 10}
            ).status_code
            == 201
        )

    march = api.get(
        "/v1/surveys/nps/nps", params={"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    )
    assert march.status_code == 200, march.text
    found = march.json()
    assert (found["responses"], found["promoters"], found["passives"], found["detractors"]) == (
        100,
        70,
        10,
        20,
    )
    assert found["nps"] == 50
    everything = api.get("/v1/surveys/nps/nps").json()
    assert [(p["period"], p["nps"]) for p in everything["periods"]] == [
        ("m2026-03", 50),
        ("m2026-04", 100),
    ]
    assert everything["nps"] == round(100 * (72 - 20) / 102, 1)
    gold = api.get("/v1/surveys/nps/nps", params={"tier": "gold"}).json()
    assert (gold["responses"], gold["nps"]) == (11, 100)
    vip = api.get("/v1/surveys/nps/nps", params={"tag": "vip"}).json()
    assert vip["responses"] == 11
    assert api.get("/v1/surveys/nope/nps").status_code == 404


def test_an_earning_rule_can_reward_answering_a_survey(api: Api, tenant: tuple[str, str]) -> None:
    """The answer is also a `survey.answered` event: rules, badges and challenges see it."""
    program = {
        **PROGRAM,
        "surveys": [{"key": "nps", "name": "NPS", "period": "month"}],
        "rules": [
            {
                "key": "thanks-for-feedback",
                "on": "survey.answered",
                "when": "event.properties.survey == 'nps' && event.properties.score <= 6",
                "earn": {"fixed": 20},
            }
        ],
    }
    apply_program(api, program)
    api.put("/v1/members/m1", json={})
    api.put("/v1/members/m2", json={})
    low = api.post("/v1/surveys/nps/responses", json={"member_id": "m1", "score": 4}).json()
    assert low["effects"] == [
        {"type": "points_earned", "wallet": "points", "amount": 20, "rule": "thanks-for-feedback"}
    ]
    high = api.post("/v1/surveys/nps/responses", json={"member_id": "m2", "score": 10}).json()
    assert high["effects"] == []
    assert api.get("/v1/members/m1").json()["balances"]["points"]["active"] == 20
    assert ledger_ok(tenant[0]) == []
