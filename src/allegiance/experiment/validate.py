"""Apply-time checks of the ``experiments`` section and of benefits tied to experiments.

The schema checks each experiment on its own (holdout range, positive weights, unique and
non-reserved variant keys); this checks what needs the whole document.
"""

from __future__ import annotations

from typing import Any

from allegiance.config import get_settings
from allegiance.kit.expression import ExpressionError, check_expression
from allegiance.program.schema import HOLDOUT, ExperimentScope, Program


def experiment_errors(
    program: Program, sample: dict[str, Any], member_roots: frozenset[str]
) -> list[dict[str, Any]]:
    """``{loc, msg}`` errors: duplicate experiment keys, invalid ``when``, and restrictions
    (``experiment: {key, variants}``) naming unknown experiments or variants."""
    errors: list[dict[str, Any]] = []
    declared: dict[str, set[str]] = {}
    for index, experiment in enumerate(program.experiments):
        loc: list[str | int] = ["experiments", index]
        if experiment.key in declared:
            errors.append(
                {"loc": [*loc, "key"], "msg": f"duplicate experiment key {experiment.key!r}"}
            )
        declared[experiment.key] = {v.key for v in experiment.variants}
        if experiment.when is not None:
            # ``when`` decides enrolment, so it cannot look at the member's assignments
            when_sample = {**sample, "member": {**sample["member"], "experiments": {}}}
            try:
                check_expression(
                    experiment.when,
                    when_sample,
                    allowed_roots=member_roots,
                    max_length=get_settings().max_expression_length,
                )
            except ExpressionError as exc:
                errors.append({"loc": [*loc, "when"], "msg": f"invalid CEL expression: {exc}"})
    sections: list[tuple[str, list[Any]]] = [
        ("rules", program.rules),
        ("campaigns", program.campaigns),
        ("rewards", program.rewards),
        ("promotions", program.promotions),
    ]
    for section, entries in sections:
        for index, entry in enumerate(entries):
            scope: ExperimentScope | None = entry.experiment
            if scope is not None:
                errors += _scope_errors(scope, declared, [section, index, "experiment"])
    return errors


def _scope_errors(
    scope: ExperimentScope, declared: dict[str, set[str]], loc: list[str | int]
) -> list[dict[str, Any]]:
    variants = declared.get(scope.key)
    if variants is None:
        known = ", ".join(sorted(declared)) or "none"
        return [
            {"loc": [*loc, "key"], "msg": f"unknown experiment {scope.key!r}; declared: {known}"}
        ]
    errors: list[dict[str, Any]] = []
    for number, variant in enumerate(scope.variants):
        if variant == HOLDOUT:
            errors.append(
                {
                    "loc": [*loc, "variants", number],
                    "msg": "the holdout gets no experiment benefit; name variants only",
                }
            )
        elif variant not in variants:
            errors.append(
                {
                    "loc": [*loc, "variants", number],
                    "msg": f"experiment {scope.key!r} has no variant {variant!r}; "
                    f"it has {', '.join(sorted(variants))}",
                }
            )
    return errors
