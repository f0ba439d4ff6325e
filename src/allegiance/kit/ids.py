"""Identifiers: sortable random ids for our own objects, secrets for keys."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A time-ordered id such as ``red_01jc8...``: 48-bit milliseconds plus 80 random bits."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{_b32(millis, 10)}{_b32(secrets.randbits(80), 16)}"


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
