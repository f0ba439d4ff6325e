"""Tiers (DESIGN.md §4 step 0 and 8): metric, window, upgrades, downgrades, manual floors.

A holder (a member, or a B2B account with a pooled wallet) has one state row. The metric
(spend, orders or points earned, net of refunds) is the sum of the holder's facts inside the
window. Upgrades happen right after the qualifying order; downgrades follow the policy:
``never`` keeps the highest tier reached, ``immediate`` follows the metric after every order,
refund or cancellation, ``period_end`` decides at reviews (every ``review_days`` from the day
the tier was reached, else at the end of the calendar year) and drops after ``grace_days``.
A manual assignment (and a paid plan's tier) is a floor: the member holds the better of it
and the earned tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from allegiance.errors import NotFound, invalid
from allegiance.kit.clock import end_of_year
from allegiance.kit.money import currency_exponent, money_str, number
from allegiance.kit.pagination import encode_cursor
from allegiance.outbox import service as outbox
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import TierLevel, Tiers
from allegiance.tier import repository
from allegiance.tier.repository import Owner, StateRow

ONE = Decimal(1)
MAX_CATCH_UP_REVIEWS = 10_000


@dataclass(frozen=True)
class Held:
    """The tier a holder holds at a moment, with its benefits."""

    key: str | None
    level: TierLevel | None
    source: str | None  # earned | manual | plan
    multiplier: Decimal = ONE
    perks: tuple[str, ...] = ()


NO_TIER = Held(key=None, level=None, source=None)


@dataclass
class _Fact:
    at: datetime
    spend: int
    orders: int
    points: int


class Ladder:
    """The levels of a program, ranked, with the metric arithmetic."""

    def __init__(self, program: CompiledProgram) -> None:
        tiers = program.program.tiers
        assert tiers is not None
        self.program = program
        self.tiers: Tiers = tiers
        self.levels = {level.key: level for level in tiers.levels}
        self.rank = {level.key: i for i, level in enumerate(tiers.levels)}
        base = tiers.levels[0]
        self.base_key: str | None = base.key if base.threshold == 0 else None
        self.exponent = currency_exponent(program.currency)
        wallet_key = tiers.wallet or program.program.default_wallet
        self.wallet = wallet_key
        self.precision = program.program.wallets[wallet_key].precision

    def rank_of(self, key: str | None) -> int:
        if key is None:
            return -1
        return self.rank.get(key, -1)  # a key the current program no longer has ranks lowest

    def better(self, *keys: str | None) -> str | None:
        best: str | None = None
        for key in keys:
            if key in self.rank and self.rank_of(key) > self.rank_of(best):
                best = key
        return best

    def level_for(self, value: Decimal) -> str | None:
        found: str | None = None
        for level in self.tiers.levels:
            if value >= level.threshold:
                found = level.key
        return found

    def value(self, spend: int, orders: int, points: int) -> Decimal:
        metric = self.tiers.metric
        if metric == "spend":
            return Decimal(spend).scaleb(-self.exponent)
        if metric == "orders":
            return Decimal(orders)
        return Decimal(points).scaleb(-self.precision)

    def window_start(self, at: datetime, period_start: datetime | None) -> datetime | None:
        window = self.tiers.window
        start: datetime | None = None
        if window.mode == "rolling_days":
            assert window.days is not None
            start = at - timedelta(days=window.days)
        elif window.mode == "calendar_year":
            local = at.astimezone(self.program.tz)
            start = datetime(local.year, 1, 1, tzinfo=self.program.tz).astimezone(UTC)
        if self.tiers.downgrade.reset_at_review and period_start is not None:
            start = period_start if start is None else max(start, period_start)
        return start

    def next_review(self, after: datetime) -> datetime:
        days = self.tiers.downgrade.review_days
        if days is not None:
            return after + timedelta(days=days)
        return end_of_year(after, self.program.tz)

    def reviews_needed(self, achieved: str | None) -> bool:
        downgrade = self.tiers.downgrade
        if downgrade.mode != "period_end":
            return False
        return downgrade.reset_at_review or self.rank_of(achieved) > self.rank_of(self.base_key)

    def held(self, state: StateRow | None, at: datetime, floor: str | None = None) -> Held:
        achieved = (state.achieved_key if state else None) or self.base_key
        manual = None
        if (
            state is not None
            and state.manual_key
            and (state.manual_until is None or state.manual_until > at)
        ):
            manual = state.manual_key
        key = self.better(achieved, manual, floor)
        if key is None:
            return NO_TIER
        level = self.levels[key]
        source = "earned"
        if key != achieved or self.rank_of(achieved) < self.rank_of(key):
            source = "manual" if key == manual else "plan"
        return Held(
            key=key,
            level=level,
            source=source,
            multiplier=level.benefits.earn_multiplier,
            perks=tuple(level.benefits.perks),
        )

    def format_value(self, value: Decimal) -> str | int | float:
        metric = self.tiers.metric
        if metric == "spend":
            return money_str(int(value.scaleb(self.exponent)), self.exponent)
        if metric == "orders":
            return int(value)
        return number(int(value.scaleb(self.precision)), self.precision)


def ladder(program: CompiledProgram | None) -> Ladder | None:
    if program is None or program.program.tiers is None:
        return None
    return Ladder(program)


def _new_state(tenant_id: str, owner: Owner, ladder_: Ladder, at: datetime) -> StateRow:
    state = StateRow(
        tenant_id=tenant_id,
        owner_type=owner[0],
        owner_id=owner[1],
        achieved_key=ladder_.base_key,
        shown_key=ladder_.base_key,
        shown_since=at,
        updated_at=at,
    )
    if ladder_.reviews_needed(ladder_.base_key):
        state.next_review_at = ladder_.next_review(at)
    _set_due(state)
    return state


def _set_due(state: StateRow) -> None:
    moments = [
        m
        for m in (
            state.next_review_at,
            state.downgrade_at,
            state.manual_until if state.manual_key else None,
        )
        if m is not None
    ]
    state.due_at = min(moments) if moments else None


@dataclass
class _Changes:
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _show(
    tenant_id: str,
    ladder_: Ladder,
    state: StateRow,
    changes: _Changes,
    *,
    at: datetime,
    now: datetime,
    reason: str,
    value: Decimal | None,
    source_id: str | None,
    floor: str | None = None,
) -> dict[str, Any] | None:
    """Record a change of the effective tier (history, event); returns a ``tier_changed``."""
    held = ladder_.held(state, at, floor)
    before = state.shown_key
    if held.key == before:
        return None
    state.shown_key = held.key
    state.shown_since = at
    up = ladder_.rank_of(held.key) > ladder_.rank_of(before)
    formatted = ladder_.format_value(value) if value is not None else None
    changes.history.append(
        {
            "tenant_id": tenant_id,
            "owner_type": state.owner_type,
            "owner_id": state.owner_id,
            "at": at,
            "from_key": before,
            "to_key": held.key,
            "reason": reason,
            "value": None if formatted is None else str(formatted),
            "source_id": source_id,
        }
    )
    data = {
        _id_field(state.owner_type): state.owner_id,
        "from": before,
        "to": held.key,
        "reason": reason,
        "at": at.isoformat(),
    }
    changes.events.append(
        outbox.event_row(tenant_id, "tier.upgraded" if up else "tier.downgraded", data, now)
    )
    return {"type": "tier_changed", "from": before, "to": held.key, "reason": reason}


def _id_field(owner_type: str) -> str:
    return "account_id" if owner_type == "account" else "member_id"


def _flush(session: Session, changes: _Changes) -> None:
    repository.insert_history(session, changes.history)
    outbox.emit_many(session, changes.events)
    changes.history.clear()
    changes.events.clear()


class TierBook:
    """Tier states and metric facts of the holders of one booking, kept in memory so that a
    batch of orders (an import) moves tiers order by order without a query per order.

    Facts are loaded from the earliest window start the batch needs; a holder's metric at a
    moment is the sum of its facts from the window start on (orders arrive in time order; a
    late-arriving older order counts from when it is booked).
    """

    def __init__(
        self,
        session: Session,
        *,
        tenant_id: str,
        program: CompiledProgram,
        owners: list[Owner],
        earliest: datetime,
        now: datetime,
        floors: dict[Owner, str] | None = None,
    ) -> None:
        ladder_ = ladder(program)
        assert ladder_ is not None
        self.session = session
        self.tenant_id = tenant_id
        self.ladder = ladder_
        self.now = now
        self.floors = floors or {}
        self.states = repository.load_states(session, tenant_id, owners, lock=True)
        self.new_states: dict[Owner, StateRow] = {}
        self.changed: set[Owner] = set()
        self.facts: dict[Owner, list[_Fact]] = {o: [] for o in owners}
        self.base: dict[Owner, tuple[int, int, int]] = {}
        self.fact_rows: list[dict[str, Any]] = []
        self.changes = _Changes()
        self.touched: set[Owner] = set()
        starts = [s.period_start for s in self.states.values()]
        bound = ladder_.window_start(earliest, min((s for s in starts if s), default=None))
        self.listed = bound is not None
        if bound is not None:
            for row in repository.facts_since(session, tenant_id, owners, bound):
                self.facts[(row[0], row[1])].append(_Fact(row[2], row[3], row[4], row[5]))
        else:
            self.base = repository.sum_facts(session, tenant_id, owners, None)

    def state(self, owner: Owner, at: datetime) -> StateRow:
        found = self.states.get(owner)
        if found is None:
            found = self.new_states[owner] = self.states[owner] = _new_state(
                self.tenant_id, owner, self.ladder, at
            )
        return found

    def held(self, owner: Owner, at: datetime) -> Held:
        return self.ladder.held(self.states.get(owner), at, self.floors.get(owner))

    def record(
        self,
        owner: Owner,
        *,
        at: datetime,
        source_type: str,
        source_id: str,
        spend_minor: int = 0,
        orders: int = 0,
        points_minor: int = 0,
    ) -> None:
        if not (spend_minor or orders or points_minor):
            return
        self.facts.setdefault(owner, []).append(_Fact(at, spend_minor, orders, points_minor))
        self.fact_rows.append(
            {
                "tenant_id": self.tenant_id,
                "owner_type": owner[0],
                "owner_id": owner[1],
                "at": at,
                "source_type": source_type,
                "source_id": source_id,
                "spend_minor": spend_minor,
                "orders": orders,
                "points_minor": points_minor,
            }
        )

    def value(self, owner: Owner, at: datetime) -> Decimal:
        state = self.states.get(owner)
        start = self.ladder.window_start(at, state.period_start if state else None)
        spend, orders, points = self.base.get(owner, (0, 0, 0))
        for f in self.facts.get(owner, ()):
            if start is None or f.at >= start:
                spend += f.spend
                orders += f.orders
                points += f.points
        return self.ladder.value(spend, orders, points)

    def reassess(
        self, owner: Owner, *, at: datetime, reason: str, source_id: str | None
    ) -> dict[str, Any] | None:
        """Move the holder after a change of its metric: upgrade now; downgrade by policy."""
        ladder_ = self.ladder
        state = self.state(owner, at)
        self.touched.add(owner)
        before = _snapshot(state)
        value = self.value(owner, at)
        computed = ladder_.level_for(value)
        achieved = state.achieved_key or ladder_.base_key
        mode = ladder_.tiers.downgrade.mode
        if ladder_.rank_of(computed) > ladder_.rank_of(achieved):
            state.achieved_key = computed
            if ladder_.reviews_needed(computed):
                state.next_review_at = ladder_.next_review(at)
        elif ladder_.rank_of(computed) < ladder_.rank_of(achieved) and mode == "immediate":
            state.achieved_key = computed
        if state.downgrade_at is not None and ladder_.rank_of(computed) >= ladder_.rank_of(
            state.achieved_key
        ):
            state.downgrade_to = state.downgrade_at = None  # requalified during the grace
        _set_due(state)
        if reason == "qualified" and ladder_.rank_of(state.achieved_key) < ladder_.rank_of(
            achieved
        ):
            reason = "below_threshold"  # immediate: the window moved on since the last change
        effect = _show(
            self.tenant_id,
            ladder_,
            state,
            self.changes,
            at=at,
            now=self.now,
            reason=reason,
            value=value,
            source_id=source_id,
            floor=self.floors.get(owner),
        )
        if _snapshot(state) != before:
            state.updated_at = self.now
            self.changed.add(owner)
        return effect

    def flush(self) -> None:
        repository.insert_facts(self.session, self.fact_rows)
        self.fact_rows = []
        repository.save_states(
            self.session,
            list(self.new_states.values()),
            [self.states[o] for o in sorted(self.changed) if o not in self.new_states],
        )
        self.new_states.clear()
        self.changed.clear()
        _flush(self.session, self.changes)


_SNAPSHOT = ("achieved_key", "shown_key", "shown_since", "next_review_at", "downgrade_to",
             "downgrade_at", "due_at")  # fmt: skip


def _snapshot(state: StateRow) -> tuple[Any, ...]:
    """What ``reassess`` may change."""
    return tuple(getattr(state, name) for name in _SNAPSHOT)


# ---- reads ----------------------------------------------------------------------------------


def current(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    owner: Owner,
    at: datetime,
    floor: str | None = None,
) -> Held:
    """The tier a holder holds at ``at`` (no lock; for context and views)."""
    ladder_ = ladder(program)
    if ladder_ is None:
        return NO_TIER
    state = repository.load_states(session, tenant_id, [owner], lock=False).get(owner)
    return ladder_.held(state, at, floor)


def tier_view(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    owner: Owner,
    now: datetime,
    floor: str | None = None,
) -> dict[str, Any] | None:
    """``tier {key, name, since, source, benefits, progress, ...}`` of the member view."""
    ladder_ = ladder(program)
    if ladder_ is None:
        return None
    state = repository.load_states(session, tenant_id, [owner], lock=False).get(owner)
    held = ladder_.held(state, now, floor)
    start = ladder_.window_start(now, state.period_start if state else None)
    spend, orders, points = repository.sum_facts(session, tenant_id, [owner], start, now).get(
        owner, (0, 0, 0)
    )
    value = ladder_.value(spend, orders, points)
    next_level = None
    for level in ladder_.tiers.levels:
        if ladder_.rank_of(level.key) > ladder_.rank_of(held.key):
            next_level = level
            break
    progress: dict[str, Any] = {
        "metric": ladder_.tiers.metric,
        "window": ladder_.tiers.window.mode,
        "window_start": start.isoformat() if start else None,
        "value": ladder_.format_value(value),
        "next_tier": next_level.key if next_level else None,
        "next_threshold": ladder_.format_value(next_level.threshold) if next_level else None,
        "remaining": ladder_.format_value(max(next_level.threshold - value, Decimal(0)))
        if next_level
        else None,
    }
    view: dict[str, Any] = {
        "key": held.key,
        "name": (held.level.name or held.level.key) if held.level else None,
        "since": state.shown_since.isoformat() if state and state.shown_since else None,
        "source": held.source,
        "earned": (state.achieved_key if state else None) or ladder_.base_key,
        "benefits": {
            "earn_multiplier": float(held.multiplier),
            "perks": list(held.perks),
        },
        "progress": progress,
        "manual": None,
        "review_at": None,
        "downgrade": None,
    }
    if state is not None:
        if state.manual_key and (state.manual_until is None or state.manual_until > now):
            view["manual"] = {
                "tier": state.manual_key,
                "until": state.manual_until.isoformat() if state.manual_until else None,
                "reason": state.manual_reason,
            }
        if state.next_review_at is not None:
            view["review_at"] = state.next_review_at.isoformat()
        if state.downgrade_at is not None:
            view["downgrade"] = {"to": state.downgrade_to, "at": state.downgrade_at.isoformat()}
    return view


def history_view(
    session: Session, *, tenant_id: str, owner: Owner, limit: int, cursor: int | None
) -> dict[str, Any]:
    rows = repository.history(session, tenant_id, owner, limit=limit + 1, before_id=cursor)
    page = rows[:limit]
    return {
        "data": [
            {
                "at": r.at.isoformat(),
                "from": r.from_key,
                "to": r.to_key,
                "reason": r.reason,
                "value": r.value,
                "source_id": r.source_id,
            }
            for r in page
        ],
        "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
    }


# ---- manual assignment ------------------------------------------------------------------------


def assign_manual(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    owner: Owner,
    tier: str | None,
    until: datetime | None,
    reason: str | None,
    now: datetime,
    floor: str | None = None,
) -> None:
    """Set (``tier``) or remove (None) a manual tier: a floor until ``until`` (open-ended)."""
    ladder_ = ladder(program)
    if ladder_ is None:
        raise invalid(["body", "tier"], "the program has no tiers")
    if tier is not None and tier not in ladder_.levels:
        raise invalid(["body", "tier"], f"unknown tier; tiers: {', '.join(ladder_.levels)}")
    if until is not None and until <= now:
        raise invalid(["body", "until"], "must be in the future")
    state = repository.load_states(session, tenant_id, [owner], lock=True).get(owner)
    if tier is None and (state is None or state.manual_key is None):
        raise NotFound("no manual tier is assigned", code="manual_tier_not_found")
    new = state is None
    if state is None:
        state = _new_state(tenant_id, owner, ladder_, now)
    state.manual_key = tier
    state.manual_until = until if tier else None
    state.manual_reason = reason if tier else None
    _set_due(state)
    state.updated_at = now
    changes = _Changes()
    _show(
        tenant_id,
        ladder_,
        state,
        changes,
        at=now,
        now=now,
        reason="manual" if tier else "manual_removed",
        value=None,
        source_id=None,
        floor=floor,
    )
    repository.save_states(session, [state] if new else [], [] if new else [state])
    _flush(session, changes)


# ---- the review job ---------------------------------------------------------------------------


def review_state(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram,
    state: StateRow,
    now: datetime,
    floor: str | None = None,
) -> None:
    """Run what is due for one locked state: reviews (catching up), grace ends, manual ends."""
    ladder_ = ladder(program)
    assert ladder_ is not None
    owner = (state.owner_type, state.owner_id)
    changes = _Changes()
    mode = ladder_.tiers.downgrade.mode
    grace = ladder_.tiers.downgrade.grace_days
    if mode != "period_end":
        state.next_review_at = None
    for _ in range(MAX_CATCH_UP_REVIEWS):
        review_at = state.next_review_at
        if review_at is None or review_at > now:
            break
        value = _value_at(session, tenant_id, ladder_, state, owner, review_at)
        computed = ladder_.level_for(value)
        achieved = state.achieved_key or ladder_.base_key
        if ladder_.rank_of(computed) < ladder_.rank_of(achieved):
            if grace > 0:
                if state.downgrade_at is None:
                    state.downgrade_at = review_at + timedelta(days=grace)
                    changes.events.append(
                        outbox.event_row(
                            tenant_id,
                            "tier.downgrade_scheduled",
                            {
                                _id_field(state.owner_type): state.owner_id,
                                "from": achieved,
                                "to": computed,
                                "at": state.downgrade_at.isoformat(),
                                "value": str(ladder_.format_value(value)),
                            },
                            now,
                        )
                    )
                state.downgrade_to = computed
            else:
                state.achieved_key = computed
                _show(
                    tenant_id, ladder_, state, changes, at=review_at, now=now,
                    reason="review", value=value, source_id=None, floor=floor,
                )  # fmt: skip
        else:
            state.downgrade_to = state.downgrade_at = None
        if ladder_.tiers.downgrade.reset_at_review:
            state.period_start = review_at
        state.next_review_at = (
            ladder_.next_review(review_at)
            if ladder_.reviews_needed(state.achieved_key or ladder_.base_key)
            else None
        )
    if state.downgrade_at is not None and state.downgrade_at <= now:
        at = state.downgrade_at
        value = _value_at(session, tenant_id, ladder_, state, owner, at)
        computed = ladder_.level_for(value)
        achieved = state.achieved_key or ladder_.base_key
        if ladder_.rank_of(computed) < ladder_.rank_of(achieved):
            # the metric when the grace ends decides (a partial requalification counts)
            state.achieved_key = computed
            _show(
                tenant_id, ladder_, state, changes, at=at, now=now,
                reason="grace_ended", value=value, source_id=None, floor=floor,
            )  # fmt: skip
        state.downgrade_to = state.downgrade_at = None
    if state.manual_key and state.manual_until is not None and state.manual_until <= now:
        at = state.manual_until
        state.manual_key = state.manual_until = state.manual_reason = None
        _show(
            tenant_id, ladder_, state, changes, at=at, now=now,
            reason="manual_ended", value=None, source_id=None, floor=floor,
        )  # fmt: skip
    _set_due(state)
    state.updated_at = now
    repository.save_states(session, [], [state])
    _flush(session, changes)


def _value_at(
    session: Session,
    tenant_id: str,
    ladder_: Ladder,
    state: StateRow,
    owner: Owner,
    at: datetime,
) -> Decimal:
    start = ladder_.window_start(at, state.period_start)
    spend, orders, points = repository.sum_facts(session, tenant_id, [owner], start, at).get(
        owner, (0, 0, 0)
    )
    return ladder_.value(spend, orders, points)
