"""Secrets at rest: column types that encrypt with the keys of ``ALLEGIANCE_SECRET_KEYS``
(docs/operations.md#secrets-at-rest).

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``): the first key encrypts, every
key decrypts, so keys rotate by putting a new one first and running ``allegiance secrets
reencrypt``. A stored value carries the prefix ``fernet:``; a value without it is plaintext
(written before a key was configured) and is read as it is, then encrypted by the next write
or by ``reencrypt``. Without keys, values are written as plaintext.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Column, Engine, Table, Text, select, tuple_, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from allegiance.config import get_settings
from allegiance.kit.orm import JSONType

PREFIX = "fernet:"
# set while ``reencrypt(plaintext=True)`` writes: the keys still read, nothing is encrypted
_plaintext: ContextVar[bool] = ContextVar("allegiance_secrets_plaintext", default=False)


class SecretKeyError(RuntimeError):
    """The keys configured cannot read a stored secret (or are not valid keys)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


@functools.lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet | None:
    if not keys:
        return None
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise SecretKeyError(
            "ALLEGIANCE_SECRET_KEYS: every key must be 32 url-safe base64-encoded bytes "
            "(make one with `allegiance secrets new-key`)"
        ) from exc


def configured_keys() -> tuple[str, ...]:
    raw = get_settings().secret_keys or ""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def encrypt(value: str) -> str:
    """The stored form of ``value``: encrypted with the first key, or as it is without keys."""
    fernet = _fernet(configured_keys())
    if fernet is None or _plaintext.get():
        return value
    return PREFIX + fernet.encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before a key was configured
    fernet = _fernet(configured_keys())
    if fernet is None:
        raise SecretKeyError(
            "the database holds encrypted secrets but ALLEGIANCE_SECRET_KEYS is not set"
        )
    try:
        return fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretKeyError(
            "a stored secret was encrypted with a key that is not in ALLEGIANCE_SECRET_KEYS"
        ) from exc


class EncryptedText(TypeDecorator[str]):
    """A string stored encrypted (see the module)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(value)


class EncryptedJSON(TypeDecorator[dict[str, Any]]):
    """A JSON object stored as ``{"fernet": <token>}`` when a key is configured."""

    impl = JSONType
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not configured_keys() or _plaintext.get():
            return value
        return {"fernet": encrypt(orjson.dumps(value).decode())}

    def process_result_value(self, value: Any, dialect: Dialect) -> dict[str, Any] | None:
        if isinstance(value, dict) and set(value) == {"fernet"}:
            return dict(orjson.loads(decrypt(str(value["fernet"]))))
        return value


def secret_columns() -> list[tuple[Table, list[Column[Any]]]]:
    """Every table with encrypted columns, with those columns."""
    import allegiance.models  # noqa: F401  (every table registered)
    from allegiance.kit.orm import Base

    found = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, EncryptedText | EncryptedJSON)]
        if columns:
            found.append((table, columns))
    return found


def reencrypt(engine: Engine, *, plaintext: bool = False, batch: int = 500) -> dict[str, int]:
    """Rewrite every stored secret encrypted with the first key (plaintext rows included), or,
    with ``plaintext``, decrypted (to turn encryption off: the keys must still read them).

    One transaction for all of it (these tables hold a few rows per tenant): a secret the keys
    cannot read stops the run with nothing rewritten, so a wrong key list never leaves some
    secrets under one key and some under another. Returns the rows rewritten per table."""
    from allegiance.db import write_session

    token = _plaintext.set(plaintext)
    try:
        rewritten: dict[str, int] = {}
        with write_session(engine) as session:
            for table, columns in secret_columns():
                key = list(table.primary_key.columns)
                after: tuple[Any, ...] | None = None
                rewritten[table.name] = 0
                while True:
                    query = select(*key, *columns).order_by(*key).limit(batch)
                    if after is not None:
                        query = query.where(tuple_(*key) > tuple_(*after))
                    rows = session.execute(query).all()
                    for row in rows:
                        ids, values = row[: len(key)], row[len(key) :]
                        session.execute(
                            update(table)
                            .where(*(c == v for c, v in zip(key, ids, strict=True)))
                            .values({c.name: v for c, v in zip(columns, values, strict=True)})
                        )
                    rewritten[table.name] += len(rows)
                    if len(rows) < batch:
                        break
                    after = tuple(rows[-1][: len(key)])
        return rewritten
    finally:
        _plaintext.reset(token)
