"""The direct evaluator agrees with CEL wherever it answers (and gives up elsewhere)."""

from __future__ import annotations

from typing import Any

import cel
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.kit.fastpath import GiveUp, compile_fast

FIELDS = {
    "order.total": st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-100, 100)),
    "order.channel": st.sampled_from(["web", "pos", ""]),
    "item.quantity": st.one_of(st.integers(0, 10), st.floats(0, 10, allow_nan=False)),
    "item.labels": st.lists(st.sampled_from(["promo", "red", "new"]), max_size=3),
    "member.vip": st.booleans(),
    "member.tags": st.lists(st.sampled_from(["a", "b"]), max_size=2),
}
LITERALS = st.one_of(
    st.integers(-10, 200).map(str),
    st.floats(-10, 200, allow_nan=False).map(lambda f: repr(round(f, 2))),
    st.sampled_from(["'web'", "'promo'", "'a'", "true", "false", "null", "''"]),
)
OPERATORS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


@st.composite
def comparison(draw: Any) -> str:
    field = draw(st.sampled_from(sorted(FIELDS)))
    if draw(st.booleans()):
        return f"{draw(LITERALS)} in {field}"
    return f"{field} {draw(OPERATORS)} {draw(LITERALS)}"


@st.composite
def condition(draw: Any, depth: int = 0) -> str:
    if depth >= 2 or draw(st.booleans()):
        return draw(comparison())
    left = draw(condition(depth + 1))
    right = draw(condition(depth + 1))
    joined = f"({left}) {draw(st.sampled_from(['&&', '||']))} ({right})"
    return f"!({joined})" if draw(st.booleans()) else joined


@st.composite
def context(draw: Any) -> dict[str, Any]:
    values = {name: draw(strategy) for name, strategy in FIELDS.items()}
    ctx: dict[str, Any] = {"order": {}, "item": {}, "member": {}}
    for path, value in values.items():
        root, field = path.split(".")
        if draw(st.integers(0, 9)) > 0:  # now and then a field is missing
            ctx[root][field] = value
    return ctx


@settings(max_examples=1500, deadline=None)
@given(source=condition(), ctx=context())
def test_fast_evaluator_agrees_with_cel(source: str, ctx: dict[str, Any]) -> None:
    fast = compile_fast(source)
    if fast is None:  # e.g. a negative literal: not in the subset, CEL evaluates it
        assert source.count("-") > 0, source
        return
    try:
        expected: Any = cel.compile(source).execute(ctx)
    except Exception:
        expected = "error"
    try:
        got = fast(ctx)
    except GiveUp:
        return  # CEL decides: the caller falls back
    assert got == expected, (source, ctx)
    assert isinstance(got, bool)


def test_outside_the_subset_is_left_to_cel() -> None:
    for source in (
        "order.items.exists(i, i.sku == '000')",
        "size(order.items) > 2",
        "order.total - 2.0 > 1.0",
        "order.placed_at > timestamp('2026-01-01T00:00:00Z')",
        "'a\\'b' == order.channel",
    ):
        assert compile_fast(source) is None, source
