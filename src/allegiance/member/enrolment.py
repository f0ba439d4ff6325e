"""Enrolment: every way a member comes to exist announces it with ``member.enrolled``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.member import repository
from allegiance.member.models import Member
from allegiance.outbox import service as outbox


def enrolled_data(member: Member) -> dict[str, Any]:
    """Data of the ``member.enrolled`` event."""
    return {
        "member_id": member.member_id,
        "enrolled_at": member.enrolled_at.isoformat() if member.enrolled_at else None,
        "locale": member.locale,
    }


def ensure_enrolled(
    session: Session, tenant_id: str, member_ids: Sequence[str], now: datetime
) -> dict[str, Member]:
    """Create the missing members (enrolled now), lock all of them in id order, and write one
    ``member.enrolled`` event per member created, in the same transaction."""
    created: list[str] = []
    found = repository.ensure_locked(session, tenant_id, member_ids, now, created)
    if created:
        outbox.emit_many(
            session,
            [
                outbox.event_row(tenant_id, "member.enrolled", enrolled_data(found[m]), now)
                for m in created
            ],
        )
    return found
