"""Use cases for segments: evaluate members against the program's segment conditions, keep
``segment_memberships`` current, emit ``segment.entered`` / ``segment.left``, list segments.

A member is evaluated in the transaction that books its order, refund, cancellation, event or
profile upsert (it is locked there, so two evaluations of one member never overlap), and by
the ``segments`` job, which re-evaluates members whose last evaluation is older than
``ALLEGIANCE_SEGMENT_REFRESH_HOURS`` or was made under another program version. See
docs/segments.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.config import get_settings
from allegiance.errors import NotFound, invalid
from allegiance.kit.expression import Scope, compile_expression
from allegiance.kit.money import currency_exponent
from allegiance.kit.pagination import BadCursor, decode_cursor, encode_cursor
from allegiance.member.models import Member
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Segment
from allegiance.segment import repository

SCORE_NAMES = ("clv", "p_alive", "churn_risk", "rfm_segment", "expected_purchases")


Stored = dict[str, dict[str, datetime]]  # member id -> segment key -> entered_at


def stored(
    session: Session, *, tenant_id: str, program: CompiledProgram, member_ids: Sequence[str]
) -> Stored:
    """The members' stored memberships; no read when the program defines no segments."""
    if not program.program.segments or not member_ids:
        return {}
    return repository.memberships_of(session, tenant_id, member_ids)


def keys_of(program: CompiledProgram, found: Stored) -> dict[str, list[str]]:
    """Segment keys per member, of the segments the program defines."""
    defined = {s.key for s in program.program.segments}
    return {m: sorted(k for k in keys if k in defined) for m, keys in found.items()}


def held(
    session: Session, *, tenant_id: str, program: CompiledProgram, member_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Segment keys per member as stored (for ``member.segments`` in conditions); no read
    when the program defines no segments."""
    return keys_of(
        program, stored(session, tenant_id=tenant_id, program=program, member_ids=member_ids)
    )


def segments_of(
    session: Session, *, tenant_id: str, program: CompiledProgram | None, member_id: str
) -> list[str]:
    """The member's segment keys (the member view's ``segments``)."""
    if program is None:
        return []
    return held(session, tenant_id=tenant_id, program=program, member_ids=[member_id]).get(
        member_id, []
    )


def refresh_members(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    member_ids: Sequence[str],
    now: datetime,
    force: bool = False,
    current: Stored | None = None,
) -> dict[str, list[str]]:
    """Re-evaluate the members' segments as of ``now``, store what changed and emit one
    ``segment.entered`` / ``segment.left`` per change. The caller holds the members' locks
    (a booking) or claimed them (the job). Returns each member's segment keys.

    Nothing is read when the program has no segments (unless ``force``: the job then
    removes memberships of segments the program no longer defines). ``current``: the
    members' stored memberships when the caller has read them already (``stored``)."""
    segments = program.program.segments
    if not member_ids or (not segments and not force):
        return {}
    if current is None:
        current = repository.memberships_of(session, tenant_id, member_ids)
    if not segments and not current:
        return {}
    members_ = repository.load_members(session, tenant_id, member_ids)
    contexts = member_contexts(
        session, tenant_id=tenant_id, program=program, members_=members_, now=now
    )
    compiled = [(s, compile_expression(s.condition)) for s in segments]
    inserts: list[dict[str, Any]] = []
    removals: list[tuple[str, str]] = []
    events: list[dict[str, Any]] = []
    names = {s.key: s.name for s in segments}
    result: dict[str, list[str]] = {}
    for member in members_:
        scope = Scope({"member": contexts[member.member_id], "now": now})
        target = {s.key for s, expression in compiled if scope.test(expression)}
        before = set(current.get(member.member_id, {}))
        for key in sorted(target - before):
            inserts.append(
                {
                    "tenant_id": tenant_id,
                    "segment_key": key,
                    "member_id": member.member_id,
                    "entered_at": now,
                }
            )
            events.append(
                outbox.event_row(
                    tenant_id,
                    "segment.entered",
                    {"member_id": member.member_id, "segment": key, "name": names[key]},
                    now,
                )
            )
        for key in sorted(before - target):
            removals.append((key, member.member_id))
            events.append(
                outbox.event_row(
                    tenant_id,
                    "segment.left",
                    {"member_id": member.member_id, "segment": key, "name": names.get(key)},
                    now,
                )
            )
        result[member.member_id] = sorted(target)
    repository.delete_memberships(session, tenant_id, removals)
    repository.insert_memberships(session, inserts)
    outbox.emit_many(session, events)
    return result


def member_contexts(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    members_: list[Member],
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """``member`` as segment conditions see it: the profile conditions see elsewhere (tags,
    tier, plan, perks, badges, attributes...) plus ``stats`` (recency, frequency, monetary,
    AOV, model scores) and ``affinity`` (category -> share). A few reads per batch."""
    # imported here: order booking calls this module
    from allegiance.b2b import service as b2b
    from allegiance.engagement import badges
    from allegiance.insight.repository import scores_for
    from allegiance.order import service as orders
    from allegiance.tier import repository as tier_repo
    from allegiance.tier import service as tiers

    if not members_:
        return {}
    ids = [m.member_id for m in members_]
    exponent = currency_exponent(program.currency)
    found_holders = b2b.holders(session, tenant_id=tenant_id, members_=members_, lock=False)
    plans = orders.memberships(
        session, tenant_id=tenant_id, program=program, member_ids=ids, now=now
    )
    perks = orders.reward_perks(
        session, tenant_id=tenant_id, program=program, member_ids=ids, now=now
    )
    held_badges = badges.held_by(
        session, tenant_id=tenant_id, program=program.program, member_ids=ids
    )
    ladder = tiers.ladder(program)
    states = (
        tier_repo.load_states(
            session, tenant_id, sorted({h.owner for h in found_holders.values()}), lock=False
        )
        if ladder is not None
        else {}
    )
    sources = " ".join(s.condition for s in program.program.segments)
    scores = scores_for(session, tenant_id, ids) if any(n in sources for n in SCORE_NAMES) else {}
    affinity = (
        affinities(session, tenant_id=tenant_id, member_ids=ids, now=now)
        if "affinity" in sources
        else {}
    )
    contexts: dict[str, dict[str, Any]] = {}
    for member in members_:
        holder = found_holders[member.member_id]
        membership = plans.get(member.member_id)
        tier = (
            ladder.held(states.get(holder.owner), now, orders.plan_floor(holder, membership))
            if ladder is not None
            else tiers.NO_TIER
        )
        context = orders.member_context(
            member,
            exponent,
            held=tier,
            membership=membership,
            extra_perks=perks.get(member.member_id, ()),
            badges=held_badges.get(member.member_id, ()),
        )
        context["stats"].update(
            member_stats(member, scores.get(member.member_id), exponent=exponent, now=now)
        )
        context["affinity"] = affinity.get(member.member_id, {})
        contexts[member.member_id] = context
    return contexts


def member_stats(member: Member, score: Any, *, exponent: int, now: datetime) -> dict[str, Any]:
    """Recency, frequency, monetary value and AOV from the member's own running totals (net
    of refunds, current with every booking); CLV, P(alive), churn risk and RFM segment from
    the last scoring run. Unknown values are null (strings: empty), and a comparison with
    null is false, so a member without data matches no threshold."""
    frequency = int(member.orders_count or 0)
    monetary = float(Decimal(member.spend_minor or 0).scaleb(-exponent))
    recency = None
    if member.last_order_at is not None:
        recency = max((now - member.last_order_at) // timedelta(days=1), 0)

    def scaled(minor: int | None) -> float | None:
        return None if minor is None else float(Decimal(minor).scaleb(-exponent))

    return {
        "recency_days": recency,
        "frequency": frequency,
        "monetary": monetary,
        "aov": round(monetary / frequency, exponent) if frequency > 0 else None,
        "clv": scaled(score.clv_minor) if score is not None else None,
        "expected_purchases": score.expected_purchases if score is not None else None,
        "p_alive": score.p_alive if score is not None else None,
        "churn_risk": (score.churn_risk or "") if score is not None else "",
        "rfm_segment": (score.rfm_segment or "") if score is not None else "",
    }


def affinities(
    session: Session, *, tenant_id: str, member_ids: Sequence[str], now: datetime
) -> dict[str, dict[str, float]]:
    """Category affinity per member: each order line bought in the window weighs 1, each
    ``product.viewed`` event ``segment_affinity_view_weight``; a category's affinity is its
    share of the member's total weight (0..1, the values sum to 1). Bounded by the latest
    ``segment_affinity_orders`` orders and ``segment_affinity_views`` views per member."""
    settings = get_settings()
    since = now - timedelta(days=settings.segment_affinity_days)
    weights: dict[str, dict[str, float]] = {}
    known: dict[str, str] = {}  # sku -> category, from the lines read
    for member_id, payload in repository.recent_order_payloads(
        session, tenant_id, member_ids, since=since, until=now,
        per_member=settings.segment_affinity_orders,
    ):  # fmt: skip
        for item in (payload or {}).get("items") or []:
            category = item.get("category")
            if isinstance(item.get("sku"), str) and isinstance(category, str):
                known[item["sku"]] = category
            if isinstance(category, str) and category:
                w = weights.setdefault(member_id, {})
                w[category] = w.get(category, 0.0) + 1.0
    views = repository.recent_events(
        session, tenant_id, member_ids, type_="product.viewed", since=since, until=now,
        per_member=settings.segment_affinity_views,
    )  # fmt: skip

    def view_of(properties: Any) -> tuple[str | None, str | None]:
        """(category, sku) of a view event's properties, when they are strings."""
        props = properties if isinstance(properties, dict) else {}
        category, sku = props.get("category"), props.get("sku")
        return (
            category if isinstance(category, str) else None,
            sku if isinstance(sku, str) else None,
        )

    unresolved = {
        sku for category, sku in (view_of(p) for _, p in views) if category is None and sku
    } - set(known)
    if unresolved:
        # imported here: recommendations read segments' neighbours, not the other way round
        from allegiance.recommendation import repository as catalog

        known.update(catalog.categories(session, tenant_id, sorted(unresolved)))
    for member_id, properties in views:
        category, sku = view_of(properties)
        if category is None and sku is not None:
            category = known.get(sku)
        if category:
            w = weights.setdefault(member_id, {})
            w[category] = w.get(category, 0.0) + settings.segment_affinity_view_weight
    result: dict[str, dict[str, float]] = {}
    for member_id, w in weights.items():
        total = sum(w.values())
        result[member_id] = {c: round(v / total, 4) for c, v in sorted(w.items())}
    return result


# ---- the refresh job ------------------------------------------------------------------------


def refresh_due(
    session: Session, *, tenant_id: str, program: CompiledProgram, now: datetime, limit: int
) -> int:
    """Re-evaluate up to ``limit`` members whose evaluation is stale (age or program
    version); returns how many. The job commits after each batch."""
    settings = get_settings()
    ids = repository.due_for_check(
        session,
        tenant_id,
        stale_before=now - timedelta(hours=settings.segment_refresh_hours),
        version=program.version,
        limit=limit,
    )
    refresh_members(
        session, tenant_id=tenant_id, program=program, member_ids=ids, now=now, force=True
    )
    repository.mark_checked(session, tenant_id, ids, now, program.version)
    return len(ids)


def job_applies(session: Session, *, tenant_id: str, program: CompiledProgram) -> bool:
    """Segments to keep current, or memberships left over from segments since removed."""
    return bool(program.program.segments) or repository.any_membership(session, tenant_id)


# ---- reads ---------------------------------------------------------------------------------


def list_segments(
    session: Session, *, tenant_id: str, program: CompiledProgram | None
) -> dict[str, Any]:
    """Every segment of the program with its current member count (``GET /v1/segments``)."""
    defined: list[Segment] = list(program.program.segments) if program is not None else []
    counts = repository.counts(session, tenant_id)
    return {
        "data": [
            {
                "key": s.key,
                "name": s.name,
                "description": s.description,
                "condition": s.condition,
                "member_count": counts.get(s.key, 0),
            }
            for s in defined
        ]
    }


def find_segment(program: CompiledProgram | None, key: str) -> Segment:
    for s in program.program.segments if program is not None else []:
        if s.key == key:
            return s
    raise NotFound(f"segment {key!r} not found", code="segment_not_found")


def segment_members(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    key: str,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Members of a segment in member id order, ``limit`` per page; ``next_cursor`` is null
    on the last page."""
    find_segment(program, key)
    after: str | None = None
    if cursor:
        try:
            after = decode_cursor(cursor)
        except BadCursor as exc:
            raise invalid(["query", "cursor"], "cursor is not one this API returned") from exc
        if not isinstance(after, str):
            raise invalid(["query", "cursor"], "cursor is not one this API returned")
    rows = repository.members_page(session, tenant_id, key, limit + 1, after)
    page = rows[:limit]
    return {
        "data": [{"member_id": m, "entered_at": at.isoformat()} for m, at in page],
        "next_cursor": encode_cursor(page[-1][0]) if len(rows) > limit else None,
    }
