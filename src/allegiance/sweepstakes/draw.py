"""The draw, as a pure function of the seed and the entry list (docs/sweepstakes.md).

No database and no clock here: ``allegiance sweepstakes verify`` and anyone else re-derive
the published result with exactly these steps.

1. ``entries`` is the list of ``(entry_id, member_id)`` sorted by the UTF-8 bytes of
   ``entry_id`` (ids are unique).
2. ``check = sha256(seed || canonical)`` where ``seed`` is the 32 revealed bytes and
   ``canonical`` is the compact JSON of ``[[entry_id, member_id], ...]`` (UTF-8, no spaces,
   ``ensure_ascii=False``).
3. Winners: ``remaining`` starts as the sorted list; for ``i = 0, 1, 2, ...`` while fewer
   than ``winners`` members have won and ``remaining`` is not empty:
   ``h = sha256(seed || i as 8 bytes big-endian)``; ``k = int(h, big-endian) mod
   len(remaining)``; take out ``remaining[k]``; its member wins unless it has won already.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

ALGORITHM = "allegiance-sweepstakes-v1"


def commitment_of(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def sort_entries(entries: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(entries, key=lambda e: e[0].encode())


def canonical(entries: Sequence[tuple[str, str]]) -> bytes:
    return json.dumps(
        [[entry_id, member_id] for entry_id, member_id in entries],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def check_of(seed: bytes, entries: Sequence[tuple[str, str]]) -> str:
    """The published check of the sorted entry list and the seed."""
    return hashlib.sha256(seed + canonical(entries)).hexdigest()


def pick_winners(
    seed: bytes, entries: Sequence[tuple[str, str]], winners: int
) -> list[tuple[str, str]]:
    """The winning ``(entry_id, member_id)`` in draw order; a member wins at most once."""
    remaining = list(entries)
    won: list[tuple[str, str]] = []
    members: set[str] = set()
    i = 0
    # each round removes one entry, so the loop ends after at most len(entries) rounds
    while remaining and len(won) < winners:
        h = hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        entry = remaining.pop(int.from_bytes(h, "big") % len(remaining))
        if entry[1] not in members:
            members.add(entry[1])
            won.append(entry)
        i += 1
    return won


def verify(data: dict[str, Any]) -> list[str]:
    """Re-derive a published draw (``GET /v1/sweepstakes/{key}/draw``); the mismatches found."""
    problems: list[str] = []
    try:
        seed = bytes.fromhex(str(data["seed"]))
        entries = [(str(e["id"]), str(e["member_id"])) for e in data["entries"]]
        claimed = [(str(w["entry_id"]), str(w["member_id"])) for w in data["winners"]]
        count = int(data["winners_count"])
        commitment, check = str(data["commitment"]), str(data["check"])
    except (KeyError, TypeError, ValueError) as exc:
        return [f"not a published draw: {exc!r}"]
    if commitment_of(seed) != commitment:
        problems.append("the seed does not match the commitment")
    if entries != sort_entries(entries) or len({e[0] for e in entries}) != len(entries):
        problems.append("the entry list is not sorted by id or has duplicate ids")
    if check_of(seed, entries) != check:
        problems.append("the check does not match the seed and the entry list")
    if pick_winners(seed, entries, count) != claimed:
        problems.append("the winners do not follow from the seed and the entry list")
    return problems
