"""Use cases for recommendations: build the item-to-item model, recommend products to a
member, pick the next best reward. Method and formulas: docs/recommendations.md.

Model: every member's recent interactions form a weighted vector over products (bought 1,
only viewed ``recommendation_view_weight``); the similarity of two products is the cosine of
their member columns, ``S_ij = C_ij / sqrt(C_ii * C_jj)`` with ``C = XᵀX``. Each product
keeps its top ``recommendation_neighbours`` neighbours. A member's score for product j is
``Σ_i h_i · S_ij`` over its own history i (same weights); products in its history (bought
or viewed) are not recommended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from scipy import sparse
from sqlalchemy.orm import Session

from allegiance.config import get_settings
from allegiance.errors import NotFound
from allegiance.kit.money import number, to_minor
from allegiance.member import repository as members
from allegiance.program.compiled import CompiledProgram
from allegiance.recommendation import repository


@dataclass
class ItemInfo:
    sku: str
    name: str | None = None
    category: str | None = None
    popularity: float = 0.0


@dataclass
class Model:
    """Products with their popularity and top neighbours."""

    items: dict[str, ItemInfo] = field(default_factory=dict)
    neighbours: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


@dataclass
class History:
    """One member's products: weight per sku (bought 1, viewed only: the view weight)."""

    weights: dict[str, float] = field(default_factory=dict)
    bought: set[str] = field(default_factory=set)
    info: dict[str, ItemInfo] = field(default_factory=dict)


def _note(info: dict[str, ItemInfo], data: dict[str, Any]) -> str | None:
    sku = data.get("sku")
    if not isinstance(sku, str) or not sku:
        return None
    found = info.setdefault(sku, ItemInfo(sku))
    if found.name is None and isinstance(data.get("name"), str):
        found.name = data["name"]
    if found.category is None and isinstance(data.get("category"), str):
        found.category = data["category"]
    return sku


def _histories(
    orders: list[tuple[str, dict[str, Any]]],
    views: list[tuple[str, dict[str, Any]]],
    info: dict[str, ItemInfo],
) -> dict[str, History]:
    """Per member, newest first: bought products weigh 1, products only viewed the view
    weight; at most ``recommendation_items_per_member`` products per member."""
    settings = get_settings()
    cap = settings.recommendation_items_per_member
    found: dict[str, History] = {}
    for member_id, payload in orders:
        h = found.setdefault(member_id, History())
        for item in (payload or {}).get("items") or []:
            sku = _note(info, item) if isinstance(item, dict) else None
            if sku is None:
                continue
            if sku in h.weights or len(h.weights) < cap:
                h.weights[sku] = 1.0
                h.bought.add(sku)
    for member_id, properties in views:
        h = found.setdefault(member_id, History())
        sku = _note(info, properties or {})
        if sku is None or sku in h.weights or len(h.weights) >= cap:
            continue
        h.weights[sku] = settings.recommendation_view_weight
    return found


def build_model(session: Session, *, tenant_id: str, now: datetime) -> Model:
    """Learn the model from the tenant's latest orders and views (bounded by settings)."""
    settings = get_settings()
    since = now - timedelta(days=settings.recommendation_window_days)
    info: dict[str, ItemInfo] = {}
    histories = _histories(
        repository.recent_orders(
            session, tenant_id, since=since, until=now, limit=settings.recommendation_max_orders
        ),
        repository.recent_views(
            session, tenant_id, since=since, until=now, limit=settings.recommendation_max_views
        ),
        info,
    )
    # popularity: the summed weights of the members who bought (1) or viewed (view weight) it
    for h in histories.values():
        for sku, weight in h.weights.items():
            info[sku].popularity += weight
    ranked = sorted(info.values(), key=lambda i: (-i.popularity, i.sku))
    ranked = [i for i in ranked if i.popularity > 0][: settings.recommendation_max_items]
    model = Model(items={i.sku: i for i in ranked})
    if not ranked:
        return model
    index = {i.sku: n for n, i in enumerate(ranked)}
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    for row, h in enumerate(histories.values()):
        for sku, weight in h.weights.items():
            col = index.get(sku)
            if col is not None:
                rows.append(row)
                cols.append(col)
                values.append(weight)
    x = sparse.csr_matrix(
        (np.array(values, dtype=np.float64), (rows, cols)), shape=(len(histories), len(ranked))
    )
    co = (x.T @ x).tocsr()
    norms = np.sqrt(co.diagonal())
    k = settings.recommendation_neighbours
    for i in range(len(ranked)):
        start, end = co.indptr[i], co.indptr[i + 1]
        others = co.indices[start:end]
        if len(others) == 0 or norms[i] == 0:
            continue
        scores = co.data[start:end] / (norms[i] * norms[others])
        keep = others != i
        pairs = sorted(
            ((ranked[j].sku, float(s)) for j, s in zip(others[keep], scores[keep], strict=True)),
            key=lambda p: (-p[1], p[0]),
        )[:k]
        if pairs:
            model.neighbours[ranked[i].sku] = [(sku, round(s, 6)) for sku, s in pairs]
    return model


def rebuild(session: Session, *, tenant_id: str, now: datetime) -> int:
    """Build the model and store it in place of the previous one; returns the product count."""
    model = build_model(session, tenant_id=tenant_id, now=now)
    repository.replace_model(
        session,
        tenant_id,
        [
            {
                "tenant_id": tenant_id,
                "sku": i.sku,
                "name": (i.name or "")[:255] or None,
                "category": (i.category or "")[:255] or None,
                "popularity": i.popularity,
                "built_at": now,
            }
            for i in model.items.values()
            if len(i.sku) <= 255
        ],
        [
            {"tenant_id": tenant_id, "sku": sku, "other_sku": other, "score": score}
            for sku, pairs in model.neighbours.items()
            if len(sku) <= 255
            for other, score in pairs
            if len(other) <= 255
        ],
    )
    return len(model.items)


def model_is_stale(session: Session, *, tenant_id: str, now: datetime) -> bool:
    built = repository.built_at(session, tenant_id)
    hours = get_settings().recommendation_refresh_hours
    return built is None or built <= now - timedelta(hours=hours)


# ---- a member's recommendations -----------------------------------------------------------


def for_member(
    session: Session,
    *,
    tenant_id: str,
    member_id: str,
    limit: int,
    now: datetime,
    program: CompiledProgram | None = None,
) -> dict[str, Any]:
    """``{products: [{sku, name, category, score, reason, because}], next_best_reward}``
    for a member (``GET /v1/members/{id}/recommendations``). Reads only."""
    member = members.get(session, tenant_id, member_id)
    if member is None:
        raise NotFound(f"member {member_id!r} not found", code="member_not_found")
    if program is None:
        from allegiance.program.service import load_program

        program = load_program(session, tenant_id=tenant_id)
    limit = max(1, min(limit, get_settings().recommendation_limit_max))
    return {
        "products": products_for(
            session, tenant_id=tenant_id, member_id=member_id, limit=limit, now=now
        ),
        "next_best_reward": next_best_reward(
            session, tenant_id=tenant_id, program=program, member=member, now=now
        )
        if program is not None
        else None,
    }


def products_for(
    session: Session, *, tenant_id: str, member_id: str, limit: int, now: datetime
) -> list[dict[str, Any]]:
    settings = get_settings()
    since = now - timedelta(days=settings.recommendation_window_days)
    cap = settings.recommendation_items_per_member
    info: dict[str, ItemInfo] = {}
    history = _histories(
        repository.recent_orders(
            session, tenant_id, since=since, until=now, limit=cap, member_id=member_id
        ),
        repository.recent_views(
            session, tenant_id, since=since, until=now, limit=cap, member_id=member_id
        ),
        info,
    ).get(member_id, History())
    stored = repository.built_at(session, tenant_id) is not None
    model: Model | None = None
    if stored:
        neighbours = repository.neighbours(session, tenant_id, list(history.weights))
    else:
        # no model stored yet (the job has not run): learn one now, same bounds
        model = build_model(session, tenant_id=tenant_id, now=now)
        neighbours = {s: model.neighbours.get(s, []) for s in history.weights}
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}  # product -> (largest contribution, from sku)
    for sku, weight in history.weights.items():
        for other, similarity in neighbours.get(sku, []):
            if other in history.weights:  # only products new to the member
                continue
            contribution = weight * similarity
            scores[other] = scores.get(other, 0.0) + contribution
            if other not in best or (contribution, sku) > (best[other][0], best[other][1]):
                best[other] = (contribution, sku)
    chosen = sorted(scores, key=lambda s: (-scores[s], s))[:limit]
    fill: list[ItemInfo] = []
    if len(chosen) < limit:
        want = limit + len(history.weights)
        candidates = (
            [
                ItemInfo(r.sku, r.name, r.category, r.popularity)
                for r in repository.popular(session, tenant_id, want)
            ]
            if model is None
            else sorted(model.items.values(), key=lambda i: (-i.popularity, i.sku))[:want]
        )
        taken = set(chosen) | set(history.weights)
        fill = [c for c in candidates if c.sku not in taken][: limit - len(chosen)]
    if model is None:
        known = repository.items(session, tenant_id, chosen)
        catalog = {s: ItemInfo(s, r.name, r.category, r.popularity) for s, r in known.items()}
    else:
        catalog = model.items
    top = max((c.popularity for c in fill), default=0.0) or 1.0
    result: list[dict[str, Any]] = []
    for sku in chosen:
        item = catalog.get(sku) or info.get(sku) or ItemInfo(sku)
        because = best[sku][1]
        result.append(
            {
                "sku": sku,
                "name": item.name,
                "category": item.category,
                "score": round(scores[sku], 4),
                "reason": "bought_together" if because in history.bought else "viewed_together",
                "because": because,
            }
        )
    for item in fill:
        result.append(
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "score": round(item.popularity / top, 4),
                "reason": "popular",
                "because": None,
            }
        )
    return result


# ---- next best reward ---------------------------------------------------------------------


def next_best_reward(
    session: Session, *, tenant_id: str, program: CompiledProgram, member: Any, now: datetime
) -> dict[str, Any] | None:
    """The reward to promote to the member, from its catalog as ``GET .../rewards`` shows it:
    of the rewards it may redeem now (eligible, available, in stock, within limits, affordable)
    the one of highest cost — the program prices rewards by value, so the most valuable one
    it can have; when none is affordable, the eligible one with the fewest points missing
    (ties: lower cost, then catalog order). None when no reward is eligible."""
    # imported here: redemptions book through the order module, which imports segments
    from allegiance.b2b import service as b2b
    from allegiance.ledger import service as ledger
    from allegiance.redemption.service import catalog

    entries = catalog(session, tenant_id=tenant_id, program=program, member=member, now=now)
    redeemable = [e for e in entries if e["redeemable"]]
    if redeemable:
        pick = max(enumerate(redeemable), key=lambda p: (p[1]["cost"], -p[0]))[1]
        return _reward_view(pick, 0, "best_affordable")
    short = [e for e in entries if e["reasons"] == ["insufficient_points"]]
    if not short:
        return None
    holder = b2b.holder_of(session, tenant_id=tenant_id, member=member)
    balances = ledger.account_balances(session, tenant_id, holder.owner_id, holder.owner_type)
    wallets = program.program.wallets
    ranked = []
    for position, e in enumerate(short):
        precision = wallets[e["wallet"]].precision
        missing = (
            to_minor(Decimal(str(e["cost"])), precision) - balances.get(e["wallet"], (0, 0))[0]
        )
        ranked.append((missing, e["cost"], position, e, precision))
    missing, _, _, pick, precision = min(ranked, key=lambda r: (r[0], r[1], r[2]))
    return _reward_view(pick, number(missing, precision), "closest_to_affordable")


def _reward_view(entry: dict[str, Any], missing: int | float, reason: str) -> dict[str, Any]:
    return {
        "key": entry["key"],
        "name": entry["name"],
        "type": entry["type"],
        "wallet": entry["wallet"],
        "cost": entry["cost"],
        "value": entry["value"],
        "affordable": entry["affordable"],
        "points_missing": missing,
        "reason": reason,
    }
