"""Badges: awarded once (or once per level) when a CEL condition holds after an activity.

A badge's ``when`` (or each level's) is tested after every order or event of the member
(only events of type ``on`` when the badge names one), with the activity's context: the
member (its stats already counting this order), the order or event, the account and ``now``.
Levels are independent conditions listed lowest first; each is awarded once, the member shows
the highest it holds. Badges are never taken back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from allegiance.engagement import badge_repository as repository
from allegiance.engagement.badge_models import MemberBadge
from allegiance.kit.expression import compile_expression
from allegiance.outbox import service as outbox
from allegiance.program.schema import Badge, Program


def held_keys(session: Session, tenant_id: str, member_id: str) -> list[str]:
    """The keys of the badges the member holds, as CEL's ``member.badges`` lists them."""
    return sorted({b.badge for b in repository.badges_of(session, tenant_id, member_id)})


def held_by(
    session: Session, *, tenant_id: str, program: Program, member_ids: list[str]
) -> dict[str, list[str]]:
    """Badge keys per member for CEL; no read when the program has no badges or challenges."""
    if not (program.badges or program.challenges):
        return {}
    return repository.badge_keys_of(session, tenant_id, member_ids)


def award(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    badge: Badge,
    rank: int,
    member_id: str,
    source_type: str,
    source_id: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Award level ``rank`` (1-based; 1 for a badge without levels) unless already held.

    Returns the ``badge_awarded`` effect, and emits ``badge.awarded``; None when held.
    """
    level = badge.levels[rank - 1] if badge.levels else None
    inserted = repository.insert_badge(
        session,
        {
            "tenant_id": tenant_id,
            "member_id": member_id,
            "badge": badge.key,
            "level": level.key if level else "",
            "rank": rank,
            "source_type": source_type,
            "source_id": source_id[:255],
            "awarded_at": now,
        },
    )
    if not inserted:
        return None
    effect = {
        "type": "badge_awarded",
        "badge": badge.key,
        "name": badge.name or badge.key,
        "level": level.key if level else None,
    }
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_="badge.awarded",
        data={
            "member_id": member_id,
            "badge": badge.key,
            "level": level.key if level else None,
            "source_type": source_type,
            "source_id": source_id,
            "awarded_at": now.isoformat(),
        },
        now=now,
    )
    return effect


def evaluate(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    event_type: str,
    held: set[tuple[str, str]],
    context: dict[str, Any],
    source_type: str,
    source_id: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """Award every badge level whose condition now holds; ``held`` is (badge, level) pairs."""
    effects: list[dict[str, Any]] = []
    for badge in program.badges:
        if badge.on is not None and badge.on != event_type:
            continue
        conditions = [lv.when for lv in badge.levels] if badge.levels else [badge.when or "false"]
        for rank, source in enumerate(conditions, 1):
            level = badge.levels[rank - 1].key if badge.levels else ""
            if (badge.key, level) in held:
                continue
            if not compile_expression(source).test(context):
                continue
            effect = award(
                session,
                tenant_id=tenant_id,
                program=program,
                badge=badge,
                rank=rank,
                member_id=member_id,
                source_type=source_type,
                source_id=source_id,
                now=now,
            )
            held.add((badge.key, level))
            if effect is not None:
                effects.append(effect)
    return effects


def badges_view(
    session: Session, *, tenant_id: str, program: Program | None, member_id: str
) -> list[dict[str, Any]]:
    """Each badge the member holds once, at its highest level: key, name, level, awarded_at."""
    best: dict[str, MemberBadge] = {}
    for row in repository.badges_of(session, tenant_id, member_id):
        if row.badge not in best or row.rank > best[row.badge].rank:
            best[row.badge] = row
    defined = {b.key: b for b in program.badges} if program is not None else {}
    out = []
    for row in sorted(best.values(), key=lambda r: (r.awarded_at, r.badge)):
        badge = defined.get(row.badge)
        level = (
            next((lv for lv in badge.levels if lv.key == row.level), None)
            if badge is not None and badge.levels
            else None
        )
        out.append(
            {
                "key": row.badge,
                "name": (badge.name if badge is not None else None) or row.badge,
                "level": row.level or None,
                "level_name": (level.name or level.key) if level is not None else None,
                "awarded_at": row.awarded_at.isoformat(),
            }
        )
    return out


def member_badges(
    session: Session, *, tenant_id: str, program: Program | None, member_id: str
) -> list[dict[str, Any]]:
    """GET /v1/members/{id}/badges: 404 for an unknown member."""
    from allegiance.errors import NotFound
    from allegiance.member import repository as members

    member = members.get(session, tenant_id, member_id)
    if member is None or member.erased_at is not None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    return badges_view(session, tenant_id=tenant_id, program=program, member_id=member_id)
