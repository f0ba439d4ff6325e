"""SQL for tenants, API keys, program versions and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from allegiance.db import bulk_insert
from allegiance.tenant.models import ApiKey, IdempotencyRecord, ProgramVersion, Tenant


def insert_tenant(session: Session, *, tenant_id: str, name: str, now: datetime) -> None:
    session.execute(insert(Tenant).values(id=tenant_id, name=name, created_at=now))


def tenant_exists(session: Session, tenant_id: str) -> bool:
    return session.execute(select(Tenant.id).where(Tenant.id == tenant_id)).first() is not None


def insert_api_key(session: Session, **values: Any) -> None:
    session.execute(insert(ApiKey).values(**values))


def find_key(session: Session, key_hash: str) -> tuple[str, str, str, str | None] | None:
    """(key id, tenant id, scope, partner) of a live key."""
    row = session.execute(
        select(ApiKey.id, ApiKey.tenant_id, ApiKey.scope, ApiKey.partner).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
        )
    ).first()
    return (row[0], row[1], row[2], row[3]) if row else None


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id)))


def revoke_key(session: Session, *, tenant_id: str, key_id: str, now: datetime) -> int:
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def current_program_version(session: Session, tenant_id: str) -> int | None:
    row = session.connection().execute(_PROGRAM_VERSION, {"tid": tenant_id}).first()
    return row[0] if row else None


def lock_tenant_program(session: Session, tenant_id: str) -> int | None:
    """Row-lock the tenant so program versions are numbered without gaps or races."""
    stmt = select(Tenant.program_version).where(Tenant.id == tenant_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def insert_program_version(
    session: Session, *, tenant_id: str, version: int, document: dict[str, Any], now: datetime
) -> None:
    session.execute(
        insert(ProgramVersion).values(
            tenant_id=tenant_id, version=version, document=document, created_at=now
        )
    )
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(program_version=version))


def get_program_document(session: Session, tenant_id: str, version: int) -> dict[str, Any] | None:
    return session.execute(
        select(ProgramVersion.document).where(
            ProgramVersion.tenant_id == tenant_id, ProgramVersion.version == version
        )
    ).scalar_one_or_none()


def list_program_versions(session: Session, tenant_id: str) -> list[tuple[int, datetime]]:
    rows = session.execute(
        select(ProgramVersion.version, ProgramVersion.created_at)
        .where(ProgramVersion.tenant_id == tenant_id)
        .order_by(ProgramVersion.version.desc())
    )
    return [(r[0], r[1]) for r in rows]


def max_program_version(session: Session, tenant_id: str) -> int:
    value = session.execute(
        select(func.max(ProgramVersion.version)).where(ProgramVersion.tenant_id == tenant_id)
    ).scalar_one_or_none()
    return int(value or 0)


# hot-path statements are built once: building and hashing a statement costs more than
# running it
_IDEMPOTENCY = IdempotencyRecord.__table__
_FIND_IDEMPOTENCY = select(
    _IDEMPOTENCY.c.request_hash, _IDEMPOTENCY.c.status_code, _IDEMPOTENCY.c.response
).where(
    _IDEMPOTENCY.c.tenant_id == bindparam("tid"),
    _IDEMPOTENCY.c.kind == bindparam("kind"),
    _IDEMPOTENCY.c.key == bindparam("key"),
)
_PROGRAM_VERSION = select(Tenant.__table__.c.program_version).where(
    Tenant.__table__.c.id == bindparam("tid")
)


def find_idempotency(session: Session, *, tenant_id: str, kind: str, key: str) -> Any:
    """(request_hash, status_code, response) stored under the id, or None."""
    return (
        session.connection()
        .execute(_FIND_IDEMPOTENCY, {"tid": tenant_id, "kind": kind, "key": key})
        .first()
    )


def insert_idempotency(session: Session, **values: Any) -> None:
    bulk_insert(session, _IDEMPOTENCY, [values])
