"""Identifiers: sortable random ids for our own objects, secrets for keys."""

from __future__ import annotations

import base64
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# RFC 4648 base32 digits -> ours: the C encoder does the work (ids are made per event)
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
# the module's own names for them: a test replaces these, never the shared modules' functions
_clock = time.time
_randbits = secrets.randbits


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A time-ordered id such as ``red_01jc8...``: 48-bit milliseconds plus 80 random bits."""
    millis = int(_clock() * 1000)
    # 26 digits of 5 bits: the low 50 bits of the time, then 80 random bits (as _b32 would
    # write them); 20 bytes make 32 digits of which the first 6 are the 30 zero bits on top
    value = (millis & ((1 << 50) - 1)) << 80 | _randbits(80)
    digits = base64.b32encode(value.to_bytes(20, "big")).translate(_FROM_RFC4648)
    return f"{prefix}_{digits[6:].decode()}"


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
