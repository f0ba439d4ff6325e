"""SQL for member scores."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from allegiance.insight.models import MemberScore


def scores_for(session: Session, tenant_id: str, member_ids: list[str]) -> dict[str, MemberScore]:
    """The stored scores of these members (members never scored are absent)."""
    if not member_ids:
        return {}
    rows = session.scalars(
        select(MemberScore).where(
            MemberScore.tenant_id == tenant_id, MemberScore.member_id.in_(member_ids)
        )
    )
    return {r.member_id: r for r in rows}
