"""API keys: the key decides the tenant (never a header or a body field) and the scope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from allegiance.config import get_settings
from allegiance.db import get_engine, read_session
from allegiance.errors import Forbidden, Unauthorized, invalid
from allegiance.kit.clock import parse_timestamp, utcnow
from allegiance.tenant import repository
from allegiance.tenant.service import hash_key

# which scopes may call what: admin may do everything
SCOPE_RANK = {
    "admin": {"admin", "ingest", "storefront"},
    "ingest": {"ingest"},
    "storefront": {"storefront"},
    # a coalition partner's key: its own orders, refunds and settlement (see require())
    "partner": {"partner"},
}


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    scope: str
    key_id: str
    now: datetime
    partner: str | None = None  # set for scope ``partner``: the partner key it acts for


_cache: dict[str, tuple[float, tuple[str, str, str, str | None] | None]] = {}
_cache_lock = threading.Lock()


def _lookup(key_hash: str) -> tuple[str, str, str, str | None] | None:
    ttl = get_settings().auth_cache_seconds
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
    with read_session(get_engine()) as session:
        found = repository.find_key(session, key_hash)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        # a key that is not found is not cached: a freshly created key works at once
        if found is not None:
            _cache[key_hash] = (now + ttl, found)
    return found


def forget_cached_keys() -> None:
    with _cache_lock:
        _cache.clear()


def request_time(request: Request) -> datetime:
    """Now, or the ``X-Allegiance-Now`` time when the clock override is switched on."""
    header = request.headers.get("x-allegiance-now")
    if header and get_settings().clock_override:
        try:
            return parse_timestamp(header)
        except ValueError as exc:
            raise invalid(["header", "X-Allegiance-Now"], str(exc)) from exc
    return utcnow()


def require(*scopes: str) -> Callable[[Request], Caller]:
    """Dependency: a caller whose key has one of ``scopes`` (admin always passes)."""

    def dependency(request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "send an API key as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        found = _lookup(hash_key(token.strip()))
        if found is None:
            raise Unauthorized("the API key is not valid", code="invalid_api_key")
        key_id, tenant_id, scope, partner = found
        if not any(s in SCOPE_RANK.get(scope, set()) for s in scopes):
            raise Forbidden(
                f"a {scope} key cannot do this; it needs scope {' or '.join(scopes)}",
                code="insufficient_scope",
            )
        return Caller(
            tenant_id=tenant_id,
            scope=scope,
            key_id=key_id,
            now=request_time(request),
            partner=partner,
        )

    return dependency
