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
    occurs, and for every input row the index of its distinct row. Each column is coded by
    its distinct values first, so the rows are grouped by one integer key."""
    arrays = [np.asarray(c, dtype=np.float64) for c in columns]
    key = np.zeros(len(arrays[0]), dtype=np.int64)
    for column in arrays:
        values, codes = np.unique(column, return_inverse=True)
        key = key * len(values) + codes.reshape(-1)  # < n^3 ≤ 2^63 for n ≤ 2 million
    _, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    return [a[first] for a in arrays], counts.astype(np.float64), inverse.reshape(-1)


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
    """Mean negative log-likelihood and its gradient in log-parameter space. Terms that
    depend on x alone (the gamma functions) are evaluated once per distinct x, logarithms of
    alpha + T and alpha + t_x once per distinct age and recency."""
    total = float(weights.sum())
    ux, xi = np.unique(x, return_inverse=True)
    xi = xi.reshape(-1)
    weight_x = np.bincount(xi, weights=weights, minlength=len(ux))
    uT, Ti = np.unique(T, return_inverse=True)
    ut, ti = np.unique(t_x, return_inverse=True)
    Ti, ti = Ti.reshape(-1), ti.reshape(-1)
    buyer = x > 0
    ux_or_one = np.where(ux > 0, ux, 1.0)
    w_buyer = weights * buyer

    def value_and_grad(log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = (float(v) for v in np.exp(log_params))
        # per distinct x
        a12 = (
            special.gammaln(r + ux)
            - special.gammaln(r)
            + r * math.log(alpha)
            + special.gammaln(a + b)
            + special.gammaln(b + ux)
            - special.gammaln(b)
            - special.gammaln(a + b + ux)
        )
        log_b_x = np.log(b + ux_or_one - 1.0)
        # per row
        log_alpha_T = np.log(alpha + uT)[Ti]
        log_alpha_tx = np.log(alpha + ut)[ti]
        rx = r + x
        a3 = -rx * log_alpha_T
        a4 = math.log(a) - log_b_x[xi] - rx * log_alpha_tx
        # log(e^a3 + e^a4) for buyers, a3 for the others
        gap = np.where(buyer, a4 - a3, -np.inf)
        tail = np.logaddexp(0.0, gap)
        w4 = np.exp(gap - tail)  # share of the "dropped out after t_x" term
        w3 = 1.0 - w4
        value = float(weight_x @ a12) + float(weights @ (a3 + tail))
        if not math.isfinite(value):
            return 1e10, np.zeros(4)
        psi_ab = special.digamma(a + b)
        psi_abx = special.digamma(a + b + ux)
        d_r = float(
            weight_x @ (special.digamma(r + ux) - special.digamma(r) + math.log(alpha))
        ) - float(weights @ (w3 * log_alpha_T + w4 * log_alpha_tx))
        inv_T = (1.0 / (alpha + uT))[Ti]
        inv_tx = (1.0 / (alpha + ut))[ti]
        d_alpha = total * r / alpha - float(weights @ (rx * (w3 * inv_T + w4 * inv_tx)))
        d_a = float(weight_x @ (psi_ab - psi_abx)) + float(w_buyer @ w4) / a
        d_b = float(
            weight_x @ (psi_ab + special.digamma(b + ux) - special.digamma(b) - psi_abx)
        ) - float(w_buyer @ (w4 / (b + ux_or_one - 1.0)[xi]))
        grads = np.array([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
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
    # the terms linear in p, and the gamma functions per distinct x
    ux, xi = np.unique(x, return_inverse=True)
    weight_x = np.bincount(xi.reshape(-1), weights=weights, minlength=len(ux))
    log_m = np.log(m)
    sum_log_m = float(weights @ log_m)
    sum_x_log_m = float(weights @ (x * log_m))
    sum_x_log_x = float(weight_x @ (ux * np.log(ux)))
    xm = x * m
    wx = weights * x

    def value_and_grad(log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = (float(val) for val in np.exp(log_params))
        pux = p * ux
        log_xmv = np.log(xm + v)
        ll = (
            float(weight_x @ (special.gammaln(pux + q) - special.gammaln(pux)))
            - total * special.gammaln(q)
            + total * q * math.log(v)
            + p * sum_x_log_m
            - sum_log_m
            + p * sum_x_log_x
            - p * float(wx @ log_xmv)
            - q * float(weights @ log_xmv)
        )
        if not math.isfinite(ll):
            return 1e10, np.zeros(3)
        psi_puxq = special.digamma(pux + q)
        d_p = (
            float(weight_x @ (ux * (psi_puxq - special.digamma(pux))))
            + sum_x_log_m
            + sum_x_log_x
            - float(wx @ log_xmv)
        )
        d_q = (
            float(weight_x @ psi_puxq)
            - total * special.digamma(q)
            + total * math.log(v)
            - float(weights @ log_xmv)
        )
        d_v = total * q / v - float(weights @ ((p * x + q) / (xm + v)))
        grads = np.array([p * d_p, q * d_q, v * d_v])
        return -ll / total, -grads / total

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
