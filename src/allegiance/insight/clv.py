"""Customer lifetime value: BG/NBD for repeat purchases, Gamma-Gamma for spend.

Pure numerics (numpy/scipy), no database. Both models are fitted by maximum likelihood on the
closed-form log-likelihoods, vectorised over customers; identical rows are grouped and
weighted, and the optimiser works on the logarithms of the parameters (which keeps them
positive) with analytic gradients.

References: Fader, Hardie & Lee (2005), "Counting Your Customers" the Easy Way: An
Alternative to the Pareto/NBD Model, Marketing Science 24(2); Fader, Hardie & Lee (2005),
RFM and CLV: Using Iso-Value Curves for Customer Base Analysis, JMR 42(4); Fader & Hardie,
"The Gamma-Gamma Model of Monetary Value" (2013 note). Formulas: docs/analytics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

FloatArray = NDArray[np.float64]

# time units per year, for turning an annual discount rate into one per time unit
UNITS_PER_YEAR = {"day": 365.25, "week": 365.25 / 7.0}
# the discounted sum of a horizon uses at most this many steps (see docs/analytics.md)
MAX_DISCOUNT_STEPS = 260


class FitError(ValueError):
    """The data cannot be fitted (too little of it) or the optimiser did not converge."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float  # gamma, the scale of the spend distribution (``v`` in the note)
    log_likelihood: float
    converged: bool


def group_rows(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray, NDArray[np.intp]]:
    """Identical rows collapsed: the distinct rows (one array per column), how often each
    occurs, and for every input row the index of its distinct row."""
    stacked = np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)
    view = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(
        view, return_index=True, return_inverse=True, return_counts=True
    )
    unique = stacked[first]
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(np.float64), inverse


# ---------------------------------------------------------------- BG/NBD


def bgnbd_log_likelihood(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Per-customer log-likelihood of the BG/NBD model (FHL 2005, equation 6)."""
    r, alpha, a, b = params
    buyer = x > 0
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.where(buyer, x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    top = np.where(buyer, np.maximum(a3, a4), a3)
    tail = np.exp(a3 - top) + np.where(buyer, np.exp(a4 - top), 0.0)
    return np.asarray(a1 + a2 + top + np.log(tail), dtype=np.float64)


def _bgnbd_objective(
    x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    total = float(weights.sum())
    buyer = x > 0
    x_or_one = np.where(buyer, x, 1.0)

    def value_and_grad(log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        log_alpha_T = np.log(alpha + T)
        log_alpha_tx = np.log(alpha + t_x)
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha)
        a2 = (
            special.gammaln(a + b)
            + special.gammaln(b + x)
            - special.gammaln(b)
            - special.gammaln(a + b + x)
        )
        a3 = -(r + x) * log_alpha_T
        a4 = math.log(a) - np.log(b + x_or_one - 1.0) - (r + x) * log_alpha_tx
        top = np.where(buyer, np.maximum(a3, a4), a3)
        e3 = np.exp(a3 - top)
        e4 = np.where(buyer, np.exp(a4 - top), 0.0)
        tail = e3 + e4
        ll = a1 + a2 + top + np.log(tail)
        w3 = e3 / tail
        w4 = 1.0 - w3
        psi_abx = special.digamma(a + b + x)
        d_r = special.digamma(r + x) - special.digamma(r) + math.log(alpha)
        d_r = d_r - w3 * log_alpha_T - w4 * log_alpha_tx
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
        d_a = special.digamma(a + b) - psi_abx + w4 / a
        d_b = (
            special.digamma(a + b)
            + special.digamma(b + x)
            - special.digamma(b)
            - psi_abx
            - w4 / (b + x_or_one - 1.0)
        )
        grads = np.array(
            [
                r * float(weights @ d_r),
                alpha * float(weights @ d_alpha),
                a * float(weights @ d_a),
                b * float(weights @ d_b),
            ]
        )
        value = float(weights @ ll)
        if not math.isfinite(value):
            return 1e10, np.zeros(4)
        # minimise the mean negative log-likelihood (scale-free tolerances)
        return -value / total, -grads / total

    return value_and_grad


def fit_bgnbd(
    x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray | None = None
) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for frequencies ``x`` (repeat purchases),
    recencies ``t_x`` and ages ``T`` (same time unit), each row weighted (default 1)."""
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if weights is None:
        (x, t_x, T), weights, _ = group_rows(x, t_x, T)
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or np.any((x > 0) & (t_x <= 0)):
        raise FitError("inconsistent purchase histories (t_x must lie in (0, T])", code="bad_data")
    if float(weights[x > 0].sum()) < 2:
        raise FitError("at least two repeat buyers are needed to fit", code="not_enough_data")
    objective = _bgnbd_objective(x, t_x, T, weights)
    # start: one purchase per mean age, no dropout preference (a = b = 1)
    mean_T = float(np.average(T, weights=weights)) or 1.0
    start = np.log(np.array([1.0, max(mean_T, 1e-3), 1.0, 1.0]))
    found = _minimise(objective, start)
    r, alpha, a, b = (float(v) for v in np.exp(found.x))
    ll = float(weights @ bgnbd_log_likelihood(np.array([r, alpha, a, b]), x, t_x, T))
    converged = bool(found.success) and math.isfinite(ll) and _interior(found.x)
    return BgNbd(r, alpha, a, b, ll, converged)


# a log-parameter beyond this has run off towards its bound (e.g. no heterogeneity in the
# data): the likelihood has no interior maximum and the fit counts as not converged
LOG_PARAMETER_LIMIT = 15.0


def _interior(log_params: FloatArray) -> bool:
    return bool(np.all(np.abs(log_params) < LOG_PARAMETER_LIMIT))


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]], start: FloatArray
) -> optimize.OptimizeResult:
    bounds = [(-20.0, 20.0)] * len(start)  # e^±20: far beyond any sensible parameter
    found = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-9},
    )
    if not found.success or not np.all(np.isfinite(found.x)):
        # an L-BFGS-B line-search failure near the optimum: polish without derivatives
        polished = optimize.minimize(
            lambda p: objective(p)[0],
            found.x if np.all(np.isfinite(found.x)) else start,
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-9, "fatol": 1e-12},
        )
        return polished
    return found


def conditional_expected_purchases(
    model: BgNbd, t: float | FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, equation 10)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    if abs(a - 1.0) < 1e-8:  # removable singularity of the closed form
        a = 1.0 + 1e-8
    t = np.asarray(t, dtype=np.float64)
    hyp_a = r + x
    hyp_b = b + x
    hyp_c = a + b + x - 1.0
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(special.hyp2f1(hyp_a, hyp_b, hyp_c, z))
        # Euler's transformation when the direct series overflows
        ln_alt = np.log(special.hyp2f1(hyp_c - hyp_a, hyp_c - hyp_b, hyp_c, z)) + (
            hyp_c - hyp_a - hyp_b
        ) * np.log1p(-z)
    ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, ln_alt)
    first = (a + b + x - 1.0) / (a - 1.0)
    second = 1.0 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + T + t)))
    denominator = 1.0 + (x > 0) * (a / (b + np.where(x > 0, x, 1.0) - 1.0)) * (
        (alpha + T) / (alpha + t_x)
    ) ** (r + x)
    return np.asarray(first * second / denominator, dtype=np.float64)


def p_alive(model: BgNbd, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(the customer is still active at T | x, t_x, T) (FHL 2005, equation 11); 1 for x = 0."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    log_odds = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(
        a / (b + np.where(x > 0, x, 1.0) - 1.0)
    )
    return np.asarray(np.where(x > 0, special.expit(-log_odds), 1.0), dtype=np.float64)


# ---------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_log_likelihood(params: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """Per-customer log-likelihood of mean spend ``m`` over ``x`` repeat purchases."""
    p, q, v = params
    px = p * x
    return np.asarray(
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v),
        dtype=np.float64,
    )


def fit_gamma_gamma(x: FloatArray, m: FloatArray, weights: FloatArray | None = None) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from repeat buyers: ``x`` repeat purchases
    (> 0) and ``m`` the mean value of those repeat purchases (> 0)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    if weights is None:
        (x, m), weights, _ = group_rows(x, m)
    weights = np.asarray(weights, dtype=np.float64)
    if np.any(x <= 0) or np.any(m <= 0):
        raise FitError("spend is fitted on repeat buyers with positive spend", code="bad_data")
    if float(weights.sum()) < 2:
        raise FitError("at least two repeat buyers are needed to fit", code="not_enough_data")
    total = float(weights.sum())
    log_m = np.log(m)
    log_x = np.log(x)

    def value_and_grad(log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = np.exp(log_params)
        px = p * x
        log_xmv = np.log(x * m + v)
        psi_pxq = special.digamma(px + q)
        ll = (
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * math.log(v)
            + (px - 1.0) * log_m
            + px * log_x
            - (px + q) * log_xmv
        )
        d_p = x * (psi_pxq - special.digamma(px) + log_m + log_x - log_xmv)
        d_q = psi_pxq - special.digamma(q) + math.log(v) - log_xmv
        d_v = q / v - (px + q) / (x * m + v)
        value = float(weights @ ll)
        if not math.isfinite(value):
            return 1e10, np.zeros(3)
        grads = np.array(
            [p * float(weights @ d_p), q * float(weights @ d_q), v * float(weights @ d_v)]
        )
        return -value / total, -grads / total

    mean_m = float(np.average(m, weights=weights))
    start = np.log(np.array([1.0, 2.0, max(mean_m, 1e-6)]))
    found = _minimise(value_and_grad, start)
    p, q, v = (float(val) for val in np.exp(found.x))
    ll = float(weights @ gamma_gamma_log_likelihood(np.array([p, q, v]), x, m))
    converged = bool(found.success) and math.isfinite(ll) and _interior(found.x) and q > 1.0
    return GammaGamma(p, q, v, ll, converged)


def expected_average_spend(model: GammaGamma, x: FloatArray, m: FloatArray) -> FloatArray:
    """E[M | x, m̄]: a weighted mean of the population mean p·gamma/(q−1) and the customer's own
    mean (weight px/(px+q−1)); customers without repeat purchases get the population mean."""
    p, q, v = model.p, model.q, model.v
    population = v * p / (q - 1.0)
    own = p * x / (p * x + q - 1.0)
    return np.asarray(
        np.where(x > 0, (1.0 - own) * population + own * m, population), dtype=np.float64
    )


# ---------------------------------------------------------------- CLV


def unit_discount_rate(annual_rate: float, time_unit: str) -> float:
    """The discount rate per time unit equivalent to ``annual_rate``: (1 + d)^(1/U) − 1."""
    return float((1.0 + annual_rate) ** (1.0 / UNITS_PER_YEAR[time_unit]) - 1.0)


def discounted_expected_purchases(
    model: BgNbd,
    *,
    horizon: float,
    annual_discount_rate: float,
    time_unit: str,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    """Σ_s [E(N(t_s)) − E(N(t_{s−1}))] / (1 + d)^(t_s) over S equal steps of the horizon
    (t_s = s·H/S, S = min(ceil(H), MAX_DISCOUNT_STEPS), d the rate per time unit): each
    step's expected purchases discounted from the step's end. Without discounting this is
    E(N(H))."""
    if annual_discount_rate <= 0:
        return conditional_expected_purchases(model, horizon, x, t_x, T)
    d = unit_discount_rate(annual_discount_rate, time_unit)
    steps = max(1, min(math.ceil(horizon), MAX_DISCOUNT_STEPS))
    total = np.zeros_like(np.asarray(x, dtype=np.float64))
    previous = np.zeros_like(total)
    for s in range(1, steps + 1):
        t_s = horizon * s / steps
        cumulative = conditional_expected_purchases(model, t_s, x, t_x, T)
        total += (cumulative - previous) / (1.0 + d) ** t_s
        previous = cumulative
    return total
