"""SQL for e-mail: tenant templates, signing keys, consent changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from allegiance.db import dialect_insert
from allegiance.email.models import EmailKey, EmailTemplate
from allegiance.member.models import Member


def get_template(session: Session, tenant_id: str, name: str, locale: str) -> EmailTemplate | None:
    return session.get(EmailTemplate, (tenant_id, name, locale))


def templates_for(
    session: Session, tenant_id: str, name: str, locales: list[str]
) -> dict[str, EmailTemplate]:
    rows = session.scalars(
        select(EmailTemplate).where(
            EmailTemplate.tenant_id == tenant_id,
            EmailTemplate.name == name,
            EmailTemplate.locale.in_(locales),
        )
    )
    return {row.locale: row for row in rows}


def list_templates(session: Session, tenant_id: str, limit: int) -> list[EmailTemplate]:
    return list(
        session.scalars(
            select(EmailTemplate)
            .where(EmailTemplate.tenant_id == tenant_id)
            .order_by(EmailTemplate.name, EmailTemplate.locale)
            .limit(limit)
        )
    )


def put_template(session: Session, values: dict[str, Any]) -> None:
    stmt = dialect_insert(session)(EmailTemplate).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "name", "locale"],
        set_={k: stmt.excluded[k] for k in ("subject", "html", "text", "updated_at")},
    )
    session.execute(stmt)


def delete_template(session: Session, tenant_id: str, name: str, locale: str) -> bool:
    result = session.execute(
        delete(EmailTemplate).where(
            EmailTemplate.tenant_id == tenant_id,
            EmailTemplate.name == name,
            EmailTemplate.locale == locale,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def signing_key(session: Session, tenant_id: str, new_secret: str, now: datetime) -> str:
    """The tenant's key, created with ``new_secret`` if it has none (first writer wins)."""
    stmt = dialect_insert(session)(EmailKey).values(
        tenant_id=tenant_id, secret=new_secret, created_at=now
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id"]))
    return str(
        session.scalars(select(EmailKey.secret).where(EmailKey.tenant_id == tenant_id)).one()
    )


def existing_key(session: Session, tenant_id: str) -> str | None:
    return session.scalars(select(EmailKey.secret).where(EmailKey.tenant_id == tenant_id)).first()


def withdraw_marketing(session: Session, tenant_id: str, member_id: str, now: datetime) -> bool:
    """Clear marketing consent; False when the member is unknown."""
    result = session.execute(
        update(Member)
        .where(Member.tenant_id == tenant_id, Member.member_id == member_id)
        .values(marketing_consent=False, marketing_consent_at=now, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))
