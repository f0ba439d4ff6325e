"""SQL for member badges and challenge progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from allegiance.db import dialect_insert
from allegiance.engagement.badge_models import ChallengeProgress, MemberBadge


def badges_of(session: Session, tenant_id: str, member_id: str) -> list[MemberBadge]:
    return list(
        session.scalars(
            select(MemberBadge)
            .where(MemberBadge.tenant_id == tenant_id, MemberBadge.member_id == member_id)
            .order_by(MemberBadge.awarded_at, MemberBadge.badge, MemberBadge.rank)
        )
    )


def insert_badge(session: Session, row: dict[str, Any]) -> bool:
    """Award a badge level once: False when the member already holds it."""
    stmt = (
        dialect_insert(session)(MemberBadge)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "member_id", "badge", "level"])
        .returning(MemberBadge.badge)
    )
    return session.execute(stmt).first() is not None


def progress_of(
    session: Session, tenant_id: str, member_id: str, challenges: Sequence[str]
) -> dict[str, ChallengeProgress]:
    """The member's progress rows for these challenges (the caller holds the member's lock)."""
    if not challenges:
        return {}
    rows = session.scalars(
        select(ChallengeProgress).where(
            ChallengeProgress.tenant_id == tenant_id,
            ChallengeProgress.member_id == member_id,
            ChallengeProgress.challenge.in_(sorted(set(challenges))),
        )
    )
    return {r.challenge: r for r in rows}


def add_progress(session: Session, row: ChallengeProgress) -> None:
    session.add(row)
    session.flush([row])  # the primary key guards a second row for the same challenge


def badge_keys_of(
    session: Session, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The keys of the badges each member holds (sorted), for ``member.badges``."""
    if not member_ids:
        return {}
    found: dict[str, set[str]] = {}
    rows = session.execute(
        select(MemberBadge.member_id, MemberBadge.badge).where(
            MemberBadge.tenant_id == tenant_id,
            MemberBadge.member_id.in_(sorted(set(member_ids))),
        )
    )
    for member_id, badge in rows:
        found.setdefault(member_id, set()).add(badge)
    return {k: sorted(v) for k, v in found.items()}
