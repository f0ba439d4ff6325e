"""Bad experiment definitions and restrictions are 422 with located errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BASIC_PROGRAM, Api

GOOD = {"key": "e1", "holdout": 0.1, "variants": [{"key": "a"}, {"key": "b", "weight": 2}]}


def _errors(api: Api, document: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.put("/v1/program", json=document)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["errors"]


@pytest.mark.parametrize(
    ("experiment", "loc", "fragment"),
    [
        ({**GOOD, "holdout": 10}, ["experiments", 0, "holdout"], "fraction"),
        ({**GOOD, "holdout": -0.1}, ["experiments", 0, "holdout"], "greater than or equal"),
        ({**GOOD, "variants": [{"key": "a", "weight": 0}]},
         ["experiments", 0, "variants", 0, "weight"], "greater than 0"),
        ({**GOOD, "variants": [{"key": "a", "weight": -1}]},
         ["experiments", 0, "variants", 0, "weight"], "greater than 0"),
        ({**GOOD, "variants": [{"key": "a"}, {"key": "a"}]},
         ["experiments", 0, "variants"], "duplicate variant key"),
        ({**GOOD, "variants": [{"key": "holdout"}]},
         ["experiments", 0, "variants", 0, "key"], "reserved"),
        ({**GOOD, "variants": []}, ["experiments", 0, "variants"], "at least 1"),
        ({**GOOD, "when": "member.nope == 1"}, ["experiments", 0, "when"], "unknown field"),
        ({**GOOD, "when": "member.experiments.e1 == 'a'"}, ["experiments", 0, "when"], ""),
        ({**GOOD, "starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-01-01T00:00:00Z"},
         ["experiments", 0], "ends_at"),
    ],
)  # fmt: skip
def test_bad_experiment(
    api: Api, experiment: dict[str, Any], loc: list[Any], fragment: str
) -> None:
    errors = _errors(api, {**BASIC_PROGRAM, "experiments": [experiment]})
    assert any(e["loc"] == loc and fragment in e["msg"] for e in errors), errors


def test_duplicate_experiment_keys(api: Api) -> None:
    errors = _errors(api, {**BASIC_PROGRAM, "experiments": [GOOD, GOOD]})
    assert {"loc": ["experiments", 1, "key"], "msg": "duplicate experiment key 'e1'"} in errors


@pytest.mark.parametrize(
    ("scope", "loc", "fragment"),
    [
        ({"key": "e9", "variants": ["a"]}, ["key"], "unknown experiment 'e9'"),
        ({"key": "e1", "variants": ["holdout"]}, ["variants", 0], "holdout"),
        ({"key": "e1", "variants": ["a", "z"]}, ["variants", 1], "no variant 'z'"),
    ],
)
def test_bad_restrictions(api: Api, scope: dict[str, Any], loc: list[Any], fragment: str) -> None:
    document = {
        **BASIC_PROGRAM,
        "experiments": [GOOD],
        "campaigns": [{"key": "c", "experiment": scope}],
        "rules": [{"key": "r", "earn": {"fixed": 1}, "experiment": scope}],
        "rewards": [{"key": "w", "cost": 10, "experiment": scope}],
        "promotions": [{"key": "p", "type": "discount_percent", "value": 5, "experiment": scope}],
    }
    errors = _errors(api, document)
    for section in ("campaigns", "rules", "rewards", "promotions"):
        expected = [section, 0, "experiment", *loc]
        assert any(e["loc"] == expected and fragment in e["msg"] for e in errors), errors


def test_condition_on_an_undeclared_experiment(api: Api) -> None:
    document = {
        **BASIC_PROGRAM,
        "experiments": [GOOD],
        "rules": [{"key": "r", "when": "member.experiments.e2 == 'a'", "earn": {"fixed": 1}}],
    }
    errors = _errors(api, document)
    assert errors[0]["loc"] == ["rules", 0, "when"] and "'e2'" in errors[0]["msg"]


def test_a_good_document_applies(api: Api) -> None:
    document = {
        **BASIC_PROGRAM,
        "experiments": [{**GOOD, "when": "'vip' in member.tags"}],
        "rules": [
            {"key": "r", "when": "member.experiments.e1 == 'b'", "earn": {"fixed": 1},
             "experiment": {"key": "e1", "variants": ["b"]}},
        ],
    }  # fmt: skip
    assert api.put("/v1/program", json=document).status_code == 200
    listed = api.get("/v1/experiments").json()["data"]
    assert listed[0]["key"] == "e1" and listed[0]["state"] == "running"
    assert listed[0]["holdout"] == 0.1
    assert [round(v["share"], 4) for v in listed[0]["variants"]] == [0.3, 0.6]
