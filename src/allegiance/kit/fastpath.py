"""A direct Python evaluator for the simplest CEL conditions, with CEL as the fallback.

Most loyalty conditions are comparisons of fields with literals joined by ``&&``/``||``
(``order.total >= 50.0``, ``'promo' in item.labels``, ``item.category == 'shoes'``).
Converting a Python context to CEL values costs tens of microseconds per order; evaluating
such a condition directly on the Python values costs one. Only this subset is compiled:
literals (int, double, string without escapes, true, false, null), field paths
(``a.b.c``, ``a['key']``), list literals, ``== != < <= > >= in``, ``! && ||`` and parentheses.
Anything else (functions, macros, arithmetic) is left to CEL entirely.

Where CEL would raise or where types differ in a way CEL treats specially (bool against a
number, a missing field, null), the fast evaluator gives up for that evaluation and the
caller runs CEL, so results are always CEL's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Fast = Callable[[dict[str, Any]], Any]


class GiveUp(Exception):
    """This evaluation needs CEL's exact semantics."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d+|\d+)(?![\w.])|(?P<str>'[^'\\]*'|\"[^\"\\]*\")"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|\[|\]|,|\.)|(?P<id>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"true": True, "false": False, "null": None}


class _Unsupported(Exception):
    pass


def compile_fast(source: str) -> Fast | None:
    """A Python function for ``source``, or None when it is outside the simple subset."""
    try:
        tokens = _tokenize(source)
        parser = _Parser(tokens)
        fn = parser.parse_or()
        if parser.pos != len(tokens):
            return None
        return fn
    except _Unsupported:
        return None


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = source.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _Unsupported
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(a: Any, b: Any) -> bool:
    if _number(a) and _number(b):
        return True
    return type(a) is type(b) and isinstance(a, str | bool)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise _Unsupported
        self.pos += 1
        return token

    def parse_or(self) -> Fast:
        left = self.parse_and()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.parse_and()
            left = _or(left, right)
        return left

    def parse_and(self) -> Fast:
        left = self.parse_not()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.parse_not()
            left = _and(left, right)
        return left

    def parse_not(self) -> Fast:
        if self.peek() == ("op", "!"):
            self.take()
            inner = self.parse_not()

            def negate(ctx: dict[str, Any]) -> Any:
                value = inner(ctx)
                if not isinstance(value, bool):
                    raise GiveUp
                return not value

            return negate
        return self.parse_compare()

    def parse_compare(self) -> Fast:
        left = self.parse_operand()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARE:
            self.take()
            right = self.parse_operand()
            return _compare(token[1], left, right)
        if token is not None and token == ("id", "in"):
            self.take()
            right = self.parse_operand()
            return _contains(left, right)
        return left

    def parse_operand(self) -> Fast:
        token = self.take()
        kind, value = token
        if kind == "num":
            number: Any = float(value) if "." in value else int(value)
            return lambda ctx: number
        if kind == "str":
            text = value[1:-1]
            return lambda ctx: text
        if kind == "op" and value == "(":
            inner = self.parse_or()
            self.take(")")
            return inner
        if kind == "op" and value == "[":
            items: list[Fast] = []
            if self.peek() != ("op", "]"):
                items.append(self.parse_operand())
                while self.peek() == ("op", ","):
                    self.take()
                    items.append(self.parse_operand())
            self.take("]")
            return lambda ctx: [item(ctx) for item in items]
        if kind == "id":
            if value in _KEYWORDS:
                constant = _KEYWORDS[value]
                return lambda ctx: constant
            if value == "in" or self.peek() == ("op", "("):
                raise _Unsupported  # a function call or macro: CEL's job
            path: list[str] = [value]
            while True:
                nxt = self.peek()
                if nxt == ("op", "."):
                    self.take()
                    kind2, name = self.take()
                    if kind2 != "id" or self.peek() == ("op", "("):
                        raise _Unsupported
                    path.append(name)
                elif nxt == ("op", "["):
                    self.take()
                    kind2, key = self.take()
                    if kind2 != "str":
                        raise _Unsupported
                    self.take("]")
                    path.append(key[1:-1])
                else:
                    break
            return _path(tuple(path))
        raise _Unsupported


_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


def _path(path: tuple[str, ...]) -> Fast:
    def resolve(ctx: dict[str, Any]) -> Any:
        value: Any = ctx
        for name in path:
            if not isinstance(value, dict) or name not in value:
                raise GiveUp
            value = value[name]
        if value is None or not isinstance(value, int | float | str | bool | list | dict):
            raise GiveUp  # null, timestamps and the like: CEL decides
        return value

    return resolve


def _compare(op: str, left: Fast, right: Fast) -> Fast:
    def compare(ctx: dict[str, Any]) -> bool:
        a = left(ctx)
        b = right(ctx)
        if not _same_kind(a, b):
            raise GiveUp
        if isinstance(a, bool) and op not in ("==", "!="):
            raise GiveUp
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)

    return compare


def _contains(left: Fast, right: Fast) -> Fast:
    def contains(ctx: dict[str, Any]) -> bool:
        needle = left(ctx)
        haystack = right(ctx)
        if isinstance(haystack, dict):
            if not isinstance(needle, str):
                raise GiveUp
            return needle in haystack
        if not isinstance(haystack, list):
            raise GiveUp
        for element in haystack:
            if not _same_kind(needle, element):
                raise GiveUp
            if needle == element:
                return True
        return False

    return contains


def _and(left: Fast, right: Fast) -> Fast:
    def both(ctx: dict[str, Any]) -> bool:
        a = left(ctx)
        if not isinstance(a, bool):
            raise GiveUp
        if not a:
            return False
        b = right(ctx)
        if not isinstance(b, bool):
            raise GiveUp
        return b

    return both


def _or(left: Fast, right: Fast) -> Fast:
    def either(ctx: dict[str, Any]) -> bool:
        a = left(ctx)
        if not isinstance(a, bool):
            raise GiveUp
        if a:
            return True
        b = right(ctx)
        if not isinstance(b, bool):
            raise GiveUp
        return b

    return either
