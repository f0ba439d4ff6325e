"""Challenges: time-boxed goals with steps (counts of matching activities) or a streak.

An activity (an order, ``order.completed``, or a recorded event) counts for a challenge when
its time (``placed_at`` / ``occurred_at``) is inside ``[starts_at, ends_at)``. A step counts
one per activity of type ``on`` whose ``when`` holds; the challenge completes when every step
reached its ``count``. A streak counts consecutive calendar periods (ISO weeks starting Monday,
or months, in the program's time zone) with at least one qualifying activity: a qualifying
activity in the period right after the last one extends the streak, one in the same period
changes nothing, one after a gap of a whole period or more restarts it at 1, one in an earlier
period (a late delivery) is ignored. The challenge completes when the streak reaches ``length``.

Completion happens once per member: the caller holds the member's row lock, the progress row
is unique per (member, challenge), and a points reward's ledger key is
``challenge/<key>/<member>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from allegiance.coupon.schemas import CouponSettings
from allegiance.engagement import badge_repository as repository
from allegiance.engagement import badges
from allegiance.engagement.badge_models import ChallengeProgress
from allegiance.errors import NotFound
from allegiance.kit.clock import as_utc, zone
from allegiance.kit.expression import compile_expression
from allegiance.kit.money import number, to_minor
from allegiance.ledger.service import Credit
from allegiance.member import repository as members
from allegiance.outbox import service as outbox
from allegiance.program.schema import Challenge, Program


@dataclass
class Advance:
    effects: list[dict[str, Any]] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)  # points rewards, for the caller to book
    awarded: list[str] = field(default_factory=list)  # badge keys given as rewards


def period_index(period: str, at: datetime, timezone: str) -> int:
    """Weeks (ISO, from Monday) or months since year 1 of ``at`` in the program's zone."""
    local = as_utc(at).astimezone(zone(timezone))
    if period == "week":
        monday = local.date() - timedelta(days=local.weekday())
        return monday.toordinal() // 7
    return local.year * 12 + local.month - 1


def _matches(source: str | None, context: dict[str, Any]) -> bool:
    return source is None or compile_expression(source).test(context)


def _active(challenge: Challenge, at: datetime) -> bool:
    return as_utc(challenge.starts_at) <= at < as_utc(challenge.ends_at)


def relevant(program: Program, event_type: str, at: datetime) -> list[Challenge]:
    """Challenges an activity of this type at this time may advance."""
    out = []
    for c in program.challenges:
        if not _active(c, at):
            continue
        types = {s.on for s in c.steps or []} | ({c.streak.on} if c.streak else set())
        if event_type in types:
            out.append(c)
    return out


def advance(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    member_id: str,
    event_type: str,
    context: dict[str, Any],
    at: datetime,
    currency: str,
    now: datetime,
) -> Advance:
    """Count one activity towards the member's challenges; complete and reward those done."""
    result = Advance()
    candidates = relevant(program, event_type, at)
    if not candidates:
        return result
    rows = repository.progress_of(session, tenant_id, member_id, [c.key for c in candidates])
    for challenge in candidates:
        row = rows.get(challenge.key)
        if row is not None and row.completed_at is not None:
            continue
        steps = [
            s for s in challenge.steps or [] if s.on == event_type and _matches(s.when, context)
        ]
        streak = challenge.streak
        streak_hit = (
            streak is not None and streak.on == event_type and _matches(streak.when, context)
        )
        if not steps and not streak_hit:
            continue
        if row is None:
            row = ChallengeProgress(
                tenant_id=tenant_id,
                member_id=member_id,
                challenge=challenge.key,
                steps={},
                streak_current=0,
                streak_best=0,
                streak_last=None,
                completed_at=None,
                updated_at=now,
            )
            repository.add_progress(session, row)
        changed = False
        if steps:
            counts = dict(row.steps or {})
            for s in steps:
                counts[s.key] = min(int(counts.get(s.key, 0)) + 1, s.count)
            changed = counts != row.steps
            row.steps = counts
        if streak_hit and streak is not None:
            index = period_index(streak.period, at, program.timezone)
            last = row.streak_last
            if last is None or index > last:
                row.streak_current = row.streak_current + 1 if last == index - 1 else 1
                row.streak_best = max(row.streak_best, row.streak_current)
                row.streak_last = index
                changed = True
        if not changed:
            continue
        row.updated_at = now
        result.effects.append(
            {
                "type": "challenge_progressed",
                "challenge": challenge.key,
                **_progress(challenge, row),
            }
        )
        if _done(challenge, row):
            row.completed_at = now
            result.effects.append(
                _complete(
                    session,
                    tenant_id=tenant_id,
                    program=program,
                    challenge=challenge,
                    member_id=member_id,
                    currency=currency,
                    result=result,
                    now=now,
                )
            )
    session.flush()
    return result


def _done(challenge: Challenge, row: ChallengeProgress) -> bool:
    if challenge.streak is not None:
        return row.streak_current >= challenge.streak.length
    counts = row.steps or {}
    return all(int(counts.get(s.key, 0)) >= s.count for s in challenge.steps or [])


def _progress(challenge: Challenge, row: ChallengeProgress | None) -> dict[str, Any]:
    if challenge.streak is not None:
        return {
            "streak": {
                "period": challenge.streak.period,
                "length": challenge.streak.length,
                "current": row.streak_current if row is not None else 0,
                "best": row.streak_best if row is not None else 0,
            }
        }
    counts = (row.steps if row is not None else None) or {}
    return {
        "steps": [
            {"key": s.key, "count": s.count, "done": int(counts.get(s.key, 0))}
            for s in challenge.steps or []
        ]
    }


def _complete(
    session: Session,
    *,
    tenant_id: str,
    program: Program,
    challenge: Challenge,
    member_id: str,
    currency: str,
    result: Advance,
    now: datetime,
) -> dict[str, Any]:
    """Give the reward (points credit, badge or coupon) and emit ``challenge.completed``."""
    reward = challenge.reward
    given: dict[str, Any] | None = None
    if reward is not None and reward.points is not None:
        wallet_key = reward.wallet or program.default_wallet
        precision = program.wallets[wallet_key].precision
        amount_minor = to_minor(reward.points, precision)
        if amount_minor > 0:
            result.credits.append(
                Credit(
                    member_id=member_id,
                    wallet=wallet_key,
                    amount_minor=amount_minor,
                    code="earn",
                    source_type="challenge",
                    source_id=challenge.key,
                    idem_key=f"challenge/{challenge.key}/{member_id}",
                    available_at=now,
                    effective_at=now,
                    reason="challenge",
                )
            )
        given = {"points": number(amount_minor, precision), "wallet": wallet_key}
    elif reward is not None and reward.badge is not None:
        badge = next(b for b in program.badges if b.key == reward.badge)
        effect = badges.award(
            session,
            tenant_id=tenant_id,
            program=program,
            badge=badge,
            rank=1,
            member_id=member_id,
            source_type="challenge",
            source_id=challenge.key,
            now=now,
        )
        if effect is not None:
            result.effects.append(effect)
            result.awarded.append(badge.key)
        given = {"badge": badge.key}
    elif reward is not None and reward.reward is not None:
        # imported here: coupons import the order module, which calls this one
        from allegiance.coupon.service import issue_coupon, reward_spec

        catalog = next(r for r in program.rewards if r.key == reward.reward)
        coupon = issue_coupon(
            session,
            tenant_id=tenant_id,
            spec=reward_spec(catalog),
            settings=catalog.coupon or CouponSettings(),
            member_id=member_id,
            source_type="challenge",
            source_id=challenge.key,
            now=now,
            currency=currency,
            kind="reward",
        )
        given = {
            "reward": catalog.key,
            "code": coupon["code"],
            "starts_at": coupon["starts_at"],
            "expires_at": coupon["expires_at"],
        }
    outbox.emit(
        session,
        tenant_id=tenant_id,
        type_="challenge.completed",
        data={
            "member_id": member_id,
            "challenge": challenge.key,
            "completed_at": now.isoformat(),
            "reward": given,
        },
        now=now,
    )
    return {"type": "challenge_completed", "challenge": challenge.key, "reward": given}


def challenges_view(
    session: Session, *, tenant_id: str, program: Program | None, member_id: str, now: datetime
) -> list[dict[str, Any]]:
    """GET /v1/members/{id}/challenges: every challenge of the program with the member's
    progress; a streak whose last period is before the previous one shows ``current`` 0."""
    member = members.get(session, tenant_id, member_id)
    if member is None or member.erased_at is not None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    if program is None or not program.challenges:
        return []
    rows = repository.progress_of(
        session, tenant_id, member_id, [c.key for c in program.challenges]
    )
    out = []
    for c in program.challenges:
        row = rows.get(c.key)
        progress = _progress(c, row)
        if c.streak is not None and row is not None and row.completed_at is None:
            current = period_index(c.streak.period, now, program.timezone)
            if row.streak_last is not None and row.streak_last < current - 1:
                progress["streak"]["current"] = 0
        status = (
            "upcoming"
            if now < as_utc(c.starts_at)
            else "active"
            if now < as_utc(c.ends_at)
            else "ended"
        )
        out.append(
            {
                "key": c.key,
                "name": c.name or c.key,
                "starts_at": as_utc(c.starts_at).isoformat(),
                "ends_at": as_utc(c.ends_at).isoformat(),
                "status": status,
                **progress,
                "completed": row is not None and row.completed_at is not None,
                "completed_at": row.completed_at.isoformat()
                if row is not None and row.completed_at is not None
                else None,
                "reward": c.reward.model_dump(mode="json", exclude_none=True)
                if c.reward is not None
                else None,
            }
        )
    return out
