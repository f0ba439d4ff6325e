"""Member insights: fitting the CLV model, scoring members (RFM, CLV, P(alive), churn risk),
the insights view and the at-risk list. Formulas: docs/analytics.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from allegiance.config import get_settings
from allegiance.errors import DomainError, invalid
from allegiance.insight import clv, history, repository, scoring
from allegiance.insight.models import ClvModel, MemberScore
from allegiance.insight.schemas import ClvFit
from allegiance.kit.clock import parse_timestamp
from allegiance.kit.money import currency_exponent, decimal_places, money_str, to_minor
from allegiance.kit.pagination import BadCursor, decode_cursor, encode_cursor
from allegiance.member.service import get_member
from allegiance.outbox.service import emit
from allegiance.program.compiled import CompiledProgram
from allegiance.program.schema import Analytics
from allegiance.recommendation import service as recommendations

AT_RISK_LEVELS = ("medium", "high")
MAX_MINOR = 2**62  # amounts are BIGINT columns


class ClvFitFailed(DomainError):
    status = 422
    code = "clv_fit_failed"
    title = "The CLV model cannot be fitted"


@dataclass(frozen=True)
class Histories:
    """Every member with a purchase up to ``end_day``, summarised (history.Summary)."""

    member_ids: list[str]
    orders: NDArray[np.int64]  # orders per member (before merging same-day purchases)
    first_at: list[datetime]  # first and last order times per member
    last_at: list[datetime]
    summary: history.Summary
    end_day: int  # date ordinal
    time_unit: str


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The last instant of ``day`` in ``tz`` (purchases up to it count)."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz) - timedelta(
        microseconds=1
    )


def load_histories(
    session: Session, *, tenant_id: str, tz: ZoneInfo, until: datetime, time_unit: str
) -> Histories | None:
    """Purchase histories of the tenant's members up to ``until`` (included), with days
    in the program timezone and ages measured to the local day of ``until``. None when
    nobody bought anything."""
    settings = get_settings()
    index: dict[str, int] = {}
    customers: list[int] = []
    days: list[int] = []
    values: list[int] = []
    first_at: list[datetime] = []
    last_at: list[datetime] = []
    for member_id, placed_at, value in repository.purchases(
        session, tenant_id, until, settings.import_batch_size
    ):
        if len(days) >= settings.insight_max_orders:
            raise ClvFitFailed(
                f"more than {settings.insight_max_orders} purchases "
                "(ALLEGIANCE_INSIGHT_MAX_ORDERS)",
                code="clv_too_much_data",
            )
        at = index.setdefault(member_id, len(index))
        if at == len(first_at):
            first_at.append(placed_at)
            last_at.append(placed_at)
        elif placed_at < first_at[at]:
            first_at[at] = placed_at
        elif placed_at > last_at[at]:
            last_at[at] = placed_at
        customers.append(at)
        days.append(placed_at.astimezone(tz).date().toordinal())
        values.append(value)
    if not index:
        return None
    end_day = local_day(until, tz).toordinal()
    customer = np.asarray(customers, dtype=np.int64)
    summary = history.summarise(
        customer,
        np.asarray(days, dtype=np.int64),
        np.asarray(values, dtype=np.float64),
        customers=len(index),
        end_day=end_day,
        time_unit=time_unit,
    )
    return Histories(
        member_ids=list(index),
        orders=np.bincount(customer, minlength=len(index)),
        first_at=first_at,
        last_at=last_at,
        summary=summary,
        end_day=end_day,
        time_unit=time_unit,
    )


# ---------------------------------------------------------------- fit


def fit_clv(
    session: Session, *, tenant_id: str, program: CompiledProgram, body: ClvFit, now: datetime
) -> dict[str, Any]:
    """Fit BG/NBD and Gamma-Gamma to the tenant's member purchases up to the calibration
    end and store the model (replacing the previous one). Refuses (422) with too little
    data or when either fit does not converge."""
    today = local_day(now, program.tz)
    calibration_end = body.calibration_end or today
    if calibration_end > today:
        raise invalid(["body", "calibration_end"], "calibration_end lies in the future")
    found = load_histories(
        session,
        tenant_id=tenant_id,
        tz=program.tz,
        until=end_of_day(calibration_end, program.tz),
        time_unit=body.time_unit,
    )
    s = found.summary if found else None
    repeat = s.x > 0 if s is not None else np.zeros(0, dtype=bool)
    if s is None or int(repeat.sum()) < 2:
        raise ClvFitFailed(
            f"{int(repeat.sum())} members bought more than once (on different days) by "
            f"{calibration_end}; at least 2 are needed to fit",
            code="clv_not_enough_data",
        )
    exponent = currency_exponent(program.currency)
    scale = 10.0**exponent
    try:
        bg = clv.fit_bgnbd(s.x, s.t_x, s.T)
        gg = clv.fit_gamma_gamma(s.x[repeat], s.repeat_mean[repeat] / scale)
    except clv.FitError as exc:
        raise ClvFitFailed(str(exc), code=f"clv_{exc.code}") from exc
    if not (bg.converged and gg.converged):
        raise ClvFitFailed(
            "the maximum-likelihood fit did not converge"
            + ("" if gg.q > 1 else " (Gamma-Gamma q ≤ 1: mean spend unbounded)"),
            code="clv_fit_not_converged",
            parameters=_parameters(bg, gg),
        )
    model = repository.model_for_update(session, tenant_id)
    model.fitted_at = now
    model.calibration_end = calibration_end
    model.time_unit = body.time_unit
    model.horizon = body.horizon
    model.discount_rate = body.discount_rate
    model.r, model.alpha, model.a, model.b = bg.r, bg.alpha, bg.a, bg.b
    model.bgnbd_log_likelihood = bg.log_likelihood
    model.p, model.q, model.gamma = gg.p, gg.q, gg.v
    model.gamma_gamma_log_likelihood = gg.log_likelihood
    model.customers = s.customers
    model.repeat_buyers = int(repeat.sum())
    margin = clv_margin(program.program.analytics)
    purchases, _, value_minor, alive = predict(model, s, scale=scale, margin=margin)
    model.summary = {
        "expected_purchases": round(float(purchases.sum()), 4),
        "expected_value": money_str(round(float(value_minor.sum())), exponent),
        "mean_p_alive": round(float(alive.mean()), 6),
    }
    # the next scoring run uses the new model at once
    model.scored_at = None
    session.flush()
    return model_view(model, exponent)


def _parameters(bg: clv.BgNbd, gg: clv.GammaGamma) -> dict[str, float]:
    return {
        "r": bg.r,
        "alpha": bg.alpha,
        "a": bg.a,
        "b": bg.b,
        "p": gg.p,
        "q": gg.q,
        "gamma": gg.v,
    }


def clv_margin(analytics: Analytics) -> float:
    """The share of spend counted as value: ``analytics.clv.margin``, else the program's
    gross margin when it has one, else 1 (revenue CLV)."""
    margin = analytics.clv.margin
    if margin is None:
        margin = getattr(analytics, "gross_margin", None)
    return float(margin) if margin is not None else 1.0


def bgnbd_of(model: ClvModel) -> clv.BgNbd:
    assert model.r is not None and model.alpha is not None
    assert model.a is not None and model.b is not None
    return clv.BgNbd(
        model.r, model.alpha, model.a, model.b, model.bgnbd_log_likelihood or 0.0, True
    )


def gamma_gamma_of(model: ClvModel) -> clv.GammaGamma:
    assert model.p is not None and model.q is not None and model.gamma is not None
    return clv.GammaGamma(
        model.p, model.q, model.gamma, model.gamma_gamma_log_likelihood or 0, True
    )


def predict(
    model: ClvModel, s: history.Summary, *, scale: float, margin: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per customer: expected purchases over the horizon, expected spend per purchase
    (minor units), CLV (minor units, discounted, times the margin) and P(alive)."""
    bg = bgnbd_of(model)
    gg = gamma_gamma_of(model)
    purchases = clv.conditional_expected_purchases(bg, model.horizon, s.x, s.t_x, s.T)
    discounted = clv.discounted_expected_purchases(
        bg,
        horizon=model.horizon,
        annual_discount_rate=model.discount_rate,
        time_unit=model.time_unit,
        x=s.x,
        t_x=s.t_x,
        T=s.T,
    )
    spend_minor = clv.expected_average_spend(gg, s.x, s.repeat_mean / scale) * scale
    value_minor = margin * spend_minor * discounted
    return purchases, spend_minor, value_minor, clv.p_alive(bg, s.x, s.t_x, s.T)


def model_view(model: ClvModel, exponent: int) -> dict[str, Any]:
    return {
        "model": "bgnbd+gamma_gamma",
        "fitted_at": model.fitted_at,
        "calibration_end": model.calibration_end,
        "time_unit": model.time_unit,
        "horizon": model.horizon,
        "discount_rate": model.discount_rate,
        "parameters": {
            "r": model.r,
            "alpha": model.alpha,
            "a": model.a,
            "b": model.b,
            "p": model.p,
            "q": model.q,
            "gamma": model.gamma,
        },
        "log_likelihood": {
            "bgnbd": model.bgnbd_log_likelihood,
            "gamma_gamma": model.gamma_gamma_log_likelihood,
        },
        "converged": True,
        "customers": model.customers,
        "repeat_buyers": model.repeat_buyers,
        "summary": dict(model.summary),
    }


def refit_due(session: Session, *, tenant_id: str, program: CompiledProgram, now: datetime) -> bool:
    """Refit a model older than ``clv_refit_days`` with its own settings and today's
    calibration end. A tenant that never fitted is left alone; a refit that fails keeps the
    old model (and is tried again at the next run)."""
    model = repository.get_model(session, tenant_id)
    if model is None or model.fitted_at is None:
        return False
    due_before = now - timedelta(days=get_settings().clv_refit_days)
    failed_at = model.summary.get("refit_failed_at")
    if model.fitted_at > due_before or (
        failed_at is not None and parse_timestamp(failed_at) > due_before
    ):
        return False
    body = ClvFit(
        time_unit=model.time_unit,  # type: ignore[arg-type]
        horizon=model.horizon,
        discount_rate=model.discount_rate,
    )
    try:
        fit_clv(session, tenant_id=tenant_id, program=program, body=body, now=now)
    except ClvFitFailed as exc:
        # keep the old model; try again a full period later
        model.summary = {
            **model.summary,
            "refit_failed_at": now.isoformat(),
            "refit_error": exc.code,
        }
        return False
    return True


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoredMember:
    member_id: str
    values: dict[str, Any]  # MemberScore columns
    clv_text: str | None


def compute_scores(
    histories: Histories,
    *,
    model: ClvModel | None,
    program: CompiledProgram,
    now: datetime,
) -> list[ScoredMember]:
    """RFM, CLV, P(alive) and churn risk of every member in ``histories`` as of ``now``."""
    s = histories.summary
    analytics = program.program.analytics
    exponent = currency_exponent(program.currency)
    scale = 10.0**exponent
    recency = (histories.end_day - s.last_day).astype(np.float64)
    r, f, m = scoring.rfm_scores(recency, s.x + 1, s.total, s.first_day.astype(np.float64))
    fitted = model is not None and model.fitted_at is not None
    if fitted:
        assert model is not None
        # the model's time unit decides how this run's ages are measured
        if model.time_unit != histories.time_unit:
            raise ValueError("histories must use the model's time unit")
        purchases, spend, value, alive = predict(
            model, s, scale=scale, margin=clv_margin(analytics)
        )
    population = (
        float(np.percentile(s.gaps, analytics.churn.gap_percentile)) if len(s.gaps) else None
    )
    segments = analytics.rfm.segments
    out: list[ScoredMember] = []
    for i, member_id in enumerate(histories.member_ids):
        purchase_days = int(s.x[i]) + 1
        judged = scoring.judge_churn(
            purchase_days=purchase_days,
            days_since_last=int(recency[i]),
            own_gaps=s.gaps_of(i),
            p_alive=float(alive[i]) if fitted else None,
            population_threshold_days=population,
            settings=analytics.churn,
        )
        orders = int(histories.orders[i])
        total = round(float(s.total[i]))
        clv_minor = round(float(value[i])) if fitted else None
        out.append(
            ScoredMember(
                member_id=member_id,
                values={
                    "orders_count": orders,
                    "first_order_at": histories.first_at[i],
                    "last_order_at": histories.last_at[i],
                    "recency_days": int(recency[i]),
                    "monetary_minor": total,
                    "aov_minor": total // orders if orders else None,
                    "rfm_r": int(r[i]),
                    "rfm_f": int(f[i]),
                    "rfm_m": int(m[i]),
                    "rfm_segment": scoring.segment_of(int(r[i]), int(f[i]), segments),
                    "expected_purchases": float(purchases[i]) if fitted else None,
                    "expected_spend_minor": round(float(spend[i])) if fitted else None,
                    "clv_minor": clv_minor,
                    "p_alive": float(alive[i]) if fitted else None,
                    "churn_risk": judged.risk,
                    "churn_reason": judged.reason,
                    "churn_threshold_days": judged.threshold_days,
                },
                clv_text=money_str(clv_minor, exponent) if clv_minor is not None else None,
            )
        )
    return out


def store_scores(
    session: Session, *, tenant_id: str, scored: list[ScoredMember], now: datetime
) -> int:
    """Write one batch of scores; emit ``churn.risk_changed`` for every member whose risk
    level differs from the stored one (a first score emits only when it is not low).
    Returns the number of events."""
    existing = repository.scores_for(session, tenant_id, [m.member_id for m in scored])
    events = 0
    for member in scored:
        row = existing.get(member.member_id)
        before = row.churn_risk if row is not None else None
        after = member.values["churn_risk"]
        if row is None:
            row = MemberScore(tenant_id=tenant_id, member_id=member.member_id)
            session.add(row)
        row.computed_at = now
        for key, value in member.values.items():
            setattr(row, key, value)
        if before != after and not (before is None and after in (None, "low")):
            emit(
                session,
                tenant_id=tenant_id,
                type_="churn.risk_changed",
                data={
                    "member_id": member.member_id,
                    "from": before,
                    "to": after,
                    "reason": member.values["churn_reason"],
                    "clv": member.clv_text,
                },
                now=now,
            )
            events += 1
    session.flush()
    return events


# ---------------------------------------------------------------- reads


def member_insights(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    member_id: str,
    now: datetime,
) -> dict[str, Any]:
    """RFM, CLV, churn risk and statistics of one member, as of the latest scoring run
    (``stats.scored_at``); days since the last order are counted to ``now``."""
    get_member(session, tenant_id=tenant_id, member_id=member_id)
    score = repository.scores_for(session, tenant_id, [member_id]).get(member_id)
    model = repository.get_model(session, tenant_id)
    exponent = currency_exponent(program.currency) if program else 2
    tz = program.tz if program else ZoneInfo("UTC")
    fitted = model if model is not None and model.fitted_at is not None else None

    def money(value: int | None) -> str | None:
        return money_str(value, exponent) if value is not None else None

    days_since = None
    if score is not None and score.last_order_at is not None:
        days_since = (local_day(now, tz) - local_day(score.last_order_at, tz)).days
    rfm: dict[str, Any] = {"r": None, "f": None, "m": None, "score": None, "segment": None}
    if score is not None and score.rfm_r is not None:
        rfm = {
            "r": score.rfm_r,
            "f": score.rfm_f,
            "m": score.rfm_m,
            "score": f"{score.rfm_r}{score.rfm_f}{score.rfm_m}",
            "segment": score.rfm_segment,
        }
    suggested = recommendations.for_member(
        session,
        tenant_id=tenant_id,
        member_id=member_id,
        limit=get_settings().insight_recommendations,
        now=now,
        program=program,
    )
    return {
        "member_id": member_id,
        "rfm": rfm,
        "clv": {
            "expected_purchases": score.expected_purchases if score else None,
            "expected_value": money(score.clv_minor) if score else None,
            "expected_spend": money(score.expected_spend_minor) if score else None,
            "horizon": fitted.horizon if fitted else None,
            "time_unit": fitted.time_unit if fitted else None,
            "discount_rate": fitted.discount_rate if fitted else None,
            "p_alive": score.p_alive if score else None,
            "model_fitted_at": fitted.fitted_at if fitted else None,
        },
        "churn": {
            "risk": score.churn_risk if score else None,
            "reason": score.churn_reason if score else None,
            "days_since_last_order": days_since,
            "threshold_days": score.churn_threshold_days if score else None,
        },
        "stats": {
            "orders_count": score.orders_count if score else 0,
            "first_order_at": score.first_order_at if score else None,
            "last_order_at": score.last_order_at if score else None,
            "monetary": money(score.monetary_minor) if score else None,
            "aov": money(score.aov_minor) if score else None,
            "scored_at": score.computed_at if score else None,
        },
        # products to suggest (docs/recommendations.md) and the reward to promote
        "recommendations": suggested["products"],
        "next_best_reward": suggested["next_best_reward"],
    }


def at_risk(
    session: Session,
    *,
    tenant_id: str,
    program: CompiledProgram | None,
    min_value: Decimal | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Members at medium or high churn risk, highest CLV first."""
    exponent = currency_exponent(program.currency) if program else 2
    min_minor = None
    if min_value is not None:
        if not min_value.is_finite() or decimal_places(min_value) > exponent:
            raise invalid(
                ["query", "min_value"], f"a finite amount with at most {exponent} decimals"
            )
        min_minor = to_minor(min_value, exponent)
        if abs(min_minor) > MAX_MINOR:
            raise invalid(["query", "min_value"], "amount out of range")
    after = None
    if cursor:
        try:
            raw = decode_cursor(cursor)
            after = (int(raw[0]), str(raw[1]))
            if abs(after[0]) > MAX_MINOR:
                raise ValueError("out of range")
        except (BadCursor, TypeError, ValueError, IndexError, KeyError) as exc:
            raise invalid(["query", "cursor"], "cursor is not one this API returned") from exc
    rows = repository.at_risk_page(
        session,
        tenant_id=tenant_id,
        levels=AT_RISK_LEVELS,
        min_value_minor=min_minor,
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    return {
        "data": [
            {
                "member_id": row.member_id,
                "risk": row.churn_risk,
                "reason": row.churn_reason,
                "clv": money_str(row.clv_minor, exponent) if row.clv_minor is not None else None,
                "p_alive": row.p_alive,
                "recency_days": row.recency_days,
                "threshold_days": row.churn_threshold_days,
                "orders_count": row.orders_count,
                "last_order_at": row.last_order_at,
                "rfm_segment": row.rfm_segment,
                "scored_at": row.computed_at,
            }
            for row in page
        ],
        "next_cursor": (
            encode_cursor([page[-1].clv_minor or 0, page[-1].member_id])
            if len(rows) > limit
            else None
        ),
    }
