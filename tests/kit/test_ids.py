"""Ids: the base32 text of 50 bits of time and 80 random bits, in Crockford's digits."""

from __future__ import annotations

import random

import pytest

from allegiance.kit import ids


def spelled_out(millis: int, bits: int) -> str:
    """The id as the digits are defined: five bits each, most significant first."""
    return f"evt_{ids._b32(millis, 10)}{ids._b32(bits, 16)}"


def test_new_id_writes_the_time_and_the_random_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    cases = [(0, 0), (2**50 - 1, 2**80 - 1), (1_795_000_000_000, 1)]
    cases += [(rng.getrandbits(50), rng.getrandbits(80)) for _ in range(2_000)]
    for millis, bits in cases:
        # ids' own names, not time.time and secrets.randbits: other threads of the process (a
        # live server) use those
        monkeypatch.setattr(ids, "_clock", lambda m=millis: (m + 0.5) / 1000)
        monkeypatch.setattr(ids, "_randbits", lambda k, b=bits: b)
        assert ids.new_id("evt") == spelled_out(millis, bits)


def test_ids_sort_by_time() -> None:
    first = ids.new_id("evt")
    assert len(first) == 4 + 26
    assert set(first[4:]) <= set(ids._ALPHABET)
