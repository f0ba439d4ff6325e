"""Assignment: deterministic (same answer twice, in another process, after a re-apply) and
split as declared."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from decimal import Decimal

from scipy import stats

from allegiance.experiment.assignment import bucket, variant_for
from allegiance.program.schema import Experiment
from tests.conftest import BASIC_PROGRAM, Api, apply_program, order

SPLIT = Experiment.model_validate(
    {
        "key": "welcome-bonus",
        "holdout": 0.1,
        "variants": [{"key": "a", "weight": 1}, {"key": "b", "weight": 2}],
    }
)


def test_same_member_same_variant_twice_and_in_another_process() -> None:
    ids = [f"member-{i}" for i in range(200)]
    first = [variant_for(SPLIT, m) for m in ids]
    assert first == [variant_for(SPLIT, m) for m in ids]
    code = (
        "from allegiance.experiment.assignment import variant_for;"
        "from allegiance.program.schema import Experiment;"
        "e = Experiment.model_validate({'key': 'welcome-bonus', 'holdout': 0.1, 'variants': "
        "[{'key': 'a', 'weight': 1}, {'key': 'b', 'weight': 2}]});"
        "print(','.join(variant_for(e, f'member-{i}') for i in range(200)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out.split(",") == first
    # the hash is of the experiment key too: another experiment splits differently
    assert bucket("welcome-bonus", "member-1") != bucket("other", "member-1")


def test_split_matches_the_weights_on_100000_members() -> None:
    n = 100_000
    counts = Counter(variant_for(SPLIT, f"customer-{i}") for i in range(n))
    expected = {"holdout": 0.1 * n, "a": 0.3 * n, "b": 0.6 * n}
    observed = [counts[k] for k in expected]
    assert sum(observed) == n
    result = stats.chisquare(observed, list(expected.values()))
    assert result.pvalue > 0.001, (counts, result)
    for key, value in expected.items():
        assert abs(counts[key] - value) / n < 0.005


def test_no_holdout_and_one_variant_takes_everyone() -> None:
    experiment = Experiment.model_validate({"key": "x", "variants": [{"key": "only"}]})
    assert {variant_for(experiment, str(i)) for i in range(1000)} == {"only"}
    assert experiment.holdout == Decimal(0)


def _bonus_program(name: str) -> dict:
    return {
        **BASIC_PROGRAM,
        "name": name,
        "experiments": [
            {"key": "double", "holdout": 0.2,
             "variants": [{"key": "control"}, {"key": "bonus"}]},
        ],
        "rules": [
            *BASIC_PROGRAM["rules"],
            {"key": "bonus", "when": "member.experiments.double == 'bonus'",
             "earn": {"fixed": 50}},
        ],
    }  # fmt: skip


def _bonus_members(api: Api, ids: list[str]) -> set[str]:
    got = set()
    for member_id in ids:
        body = order("cart", member_id, "10.00")
        del body["id"]
        response = api.post("/v1/evaluate", json=body)
        assert response.status_code == 200, response.text
        if "bonus" in response.json()["rules_applied"]:
            got.add(member_id)
    return got


def test_assignment_survives_a_program_re_apply(api: Api) -> None:
    ids = [f"m{i}" for i in range(40)]
    apply_program(api, _bonus_program("v1"))
    before = _bonus_members(api, ids)
    expected = {m for m in ids if variant_for(_experiment(), m) == "bonus"}
    assert before == expected and 0 < len(before) < len(ids)
    apply_program(api, _bonus_program("v2 with another name"))
    assert _bonus_members(api, ids) == before


def _experiment() -> Experiment:
    return Experiment.model_validate(_bonus_program("x")["experiments"][0])
