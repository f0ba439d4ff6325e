"""Use cases for tenants and API keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from allegiance.errors import NotFound, invalid
from allegiance.kit.ids import new_id, new_secret
from allegiance.tenant import repository

SCOPES = ("admin", "ingest", "storefront", "partner")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    api_key: str
    scope: str
    partner: str | None = None

    def view(self) -> dict[str, str | None]:
        shown: dict[str, str | None] = {"id": self.key_id, "scope": self.scope}
        if self.partner:
            shown["partner"] = self.partner
        shown["api_key"] = self.api_key
        return shown


def hash_key(api_key: str) -> str:
    # keys are 256-bit random secrets: a plain SHA-256 is enough, no slow hash is needed
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_tenant(session: Session, *, name: str, now: datetime) -> tuple[str, IssuedKey]:
    """Create a tenant and its first admin key (the key is shown only here)."""
    if not name.strip():
        raise invalid(["name"], "a tenant needs a name")
    tenant_id = new_id("ten")
    repository.insert_tenant(session, tenant_id=tenant_id, name=name.strip(), now=now)
    key = create_api_key(session, tenant_id=tenant_id, scope="admin", name="initial", now=now)
    return tenant_id, key


def create_api_key(
    session: Session,
    *,
    tenant_id: str,
    scope: str,
    name: str | None,
    now: datetime,
    partner: str | None = None,
) -> IssuedKey:
    """Issue a key; a ``partner`` key is bound to a partner the current program declares."""
    if scope not in SCOPES:
        raise invalid(["body", "scope"], f"scope must be one of {', '.join(SCOPES)}")
    if not repository.tenant_exists(session, tenant_id):
        raise NotFound(f"tenant {tenant_id} does not exist", code="tenant_not_found")
    if scope == "partner":
        _check_partner(session, tenant_id, partner)
    elif partner is not None:
        raise invalid(["body", "partner"], "only keys of scope partner name a partner")
    secret = f"alg_{scope[:2]}_{new_secret(32)}"
    key_id = new_id("key")
    repository.insert_api_key(
        session,
        id=key_id,
        tenant_id=tenant_id,
        key_hash=hash_key(secret),
        prefix=secret[:10],
        scope=scope,
        name=name,
        created_at=now,
        partner=partner,
    )
    return IssuedKey(key_id=key_id, api_key=secret, scope=scope, partner=partner)


def _check_partner(session: Session, tenant_id: str, partner: str | None) -> None:
    # imported here: the program package depends on this one
    from allegiance.program.coalition import find_partner
    from allegiance.program.service import load_program

    if not partner:
        raise invalid(["body", "partner"], "a partner key needs the partner's key")
    compiled = load_program(session, tenant_id=tenant_id)
    if compiled is None or find_partner(compiled.program, partner) is None:
        raise invalid(
            ["body", "partner"], f"unknown partner {partner!r}; declare it under 'partners'"
        )


def revoke_api_key(session: Session, *, tenant_id: str, key_id: str, now: datetime) -> None:
    if repository.revoke_key(session, tenant_id=tenant_id, key_id=key_id, now=now) == 0:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
