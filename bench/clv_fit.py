#!/usr/bin/env python3
"""Fit BG/NBD + Gamma-Gamma to a million synthetic customers: ours against ``lifetimes``.

The customers are simulated (numpy, seeded, vectorised) from the model fitted to the CDNOW
sample (r = 0.2426, alpha = 4.4136, a = 0.7929, b = 2.4259; p = 6.25, q = 3.74,
gamma = 15.44), time in weeks, first purchases spread over the first 12 weeks and ages measured
to the end of week 39 on a daily grid, like the CDNOW calibration period:

- purchase rate lambda ~ Gamma(r, 1/alpha), dropout probability p ~ Beta(a, b);
- n ~ Poisson(lambda T) purchases in (0, T]; after each repeat purchase the customer drops
  out with probability p, so x = min(n, D) with D ~ Geometric(p);
- given n purchases in (0, T], the x-th happens at T · Beta(x, n − x + 1) (rounded to a day);
- spend: nu ~ Gamma(q, 1/gamma); the mean of x purchase values ~ Gamma(p x, 1/(nu x)).

Each fitter runs in a fresh child process that loads the same saved data, so times and peak
memory (``ru_maxrss`` of the child, minus its size after loading the data) are measured
alike. ``lifetimes`` is imported only in its child; it needs its own virtualenv
(``bench/requirements-lifetimes.txt``, see bench/README.md) and is never a project dependency.

    python bench/clv_fit.py --lifetimes-python /path/to/lifetimes-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CDNOW = {
    "r": 0.2426,
    "alpha": 4.4136,
    "a": 0.7929,
    "b": 2.4259,
    "p": 6.25,
    "q": 3.74,
    "gamma": 15.44,
}
BG_KEYS = ("r", "alpha", "a", "b")
GG_KEYS = ("p", "q", "gamma")


def simulate(customers: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = CDNOW
    rate = rng.gamma(c["r"], 1.0 / c["alpha"], customers)
    dropout = rng.beta(c["a"], c["b"], customers)
    first_day = rng.integers(0, 84, customers)
    age_days = 273 - first_day  # to the end of week 39
    T = age_days / 7.0
    n = rng.poisson(rate * T)
    lives = rng.geometric(dropout)  # repeat purchases up to and including the dropout one
    x = np.minimum(n, lives)
    buyer = x > 0
    share = np.zeros(customers)
    share[buyer] = rng.beta(x[buyer], n[buyer] - x[buyer] + 1)
    recency_days = np.where(buyer, np.clip(np.rint(share * age_days), 1, age_days), 0)
    nu = rng.gamma(c["q"], 1.0 / c["gamma"], customers)
    monetary = np.zeros(customers)
    monetary[buyer] = rng.gamma(c["p"] * x[buyer], 1.0 / (nu[buyer] * x[buyer]))
    return {
        "x": x.astype(np.float64),
        "t_x": recency_days / 7.0,
        "T": T,
        "m": monetary,
    }


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_ours(data: dict[str, np.ndarray]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    from allegiance.insight import clv

    started = time.perf_counter()
    bg = clv.fit_bgnbd(data["x"], data["t_x"], data["T"])
    bg_seconds = time.perf_counter() - started
    repeat = data["x"] > 0
    started = time.perf_counter()
    gg = clv.fit_gamma_gamma(data["x"][repeat], data["m"][repeat])
    gg_seconds = time.perf_counter() - started
    return {
        "params": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b}
        | {"p": gg.p, "q": gg.q, "gamma": gg.v},
        "converged": bg.converged and gg.converged,
        "bg_seconds": bg_seconds,
        "gg_seconds": gg_seconds,
    }


def child_lifetimes(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import lifetimes

    repeat = data["x"] > 0
    started = time.perf_counter()
    bg = lifetimes.BetaGeoFitter().fit(data["x"], data["t_x"], data["T"])
    bg_seconds = time.perf_counter() - started
    started = time.perf_counter()
    gg = lifetimes.GammaGammaFitter().fit(data["x"][repeat], data["m"][repeat])
    gg_seconds = time.perf_counter() - started
    bp = bg.params_
    gp = gg.params_
    return {
        "params": {k: float(bp[k]) for k in BG_KEYS}
        | {"p": float(gp["p"]), "q": float(gp["q"]), "gamma": float(gp["v"])},
        "converged": True,
        "bg_seconds": bg_seconds,
        "gg_seconds": gg_seconds,
        "lifetimes": lifetimes.__version__,
    }


def run_child(python: str, which: str, data_file: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    # one BLAS thread for both fitters: the same conditions, and no oversubscription on
    # small machines
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    done = subprocess.run(
        [python, __file__, "--child", which, "--data", str(data_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{which} fit failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2005)
    parser.add_argument(
        "--lifetimes-python",
        help="python of a virtualenv with lifetimes 0.11.3 (bench/requirements-lifetimes.txt)",
    )
    parser.add_argument("--child", choices=["ours", "lifetimes"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        loaded = np.load(args.data)
        data = {k: loaded[k] for k in ("x", "t_x", "T", "m")}
        base = peak_rss_mib()
        result = child_ours(data) if args.child == "ours" else child_lifetimes(data)
        result["peak_rss_mib"] = peak_rss_mib()
        result["fit_rss_mib"] = result["peak_rss_mib"] - base
        print(json.dumps(result))
        return 0

    started = time.perf_counter()
    data = simulate(args.customers, args.seed)
    simulate_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="clv-bench-") as tmp:
        data_file = Path(tmp) / "customers.npz"
        np.savez(data_file, **data)
        ours = run_child(sys.executable, "ours", data_file)
        theirs = (
            run_child(args.lifetimes_python, "lifetimes", data_file)
            if args.lifetimes_python
            else None
        )

    sys.path.insert(0, str(ROOT / "src"))
    from allegiance.insight import clv

    (gx, gt, gT), weights, _ = clv.group_rows(data["x"], data["t_x"], data["T"])
    for result in (ours, theirs):
        if result is not None:
            params = np.array([result["params"][k] for k in BG_KEYS])
            result["log_likelihood"] = float(weights @ clv.bgnbd_log_likelihood(params, gx, gt, gT))
    repeat = int((data["x"] > 0).sum())
    print(f"## CLV fit: {args.customers:,} simulated customers (seed {args.seed})\n")
    print(
        f"simulated in {simulate_seconds:.1f} s; {repeat:,} repeat buyers; "
        f"mean x {data['x'].mean():.3f}\n"
    )
    print("| parameter | true (CDNOW) | ours | lifetimes | ours vs lifetimes |")
    print("|---|---:|---:|---:|---:|")
    worst = 0.0
    for key in BG_KEYS + GG_KEYS:
        mine = ours["params"][key]
        cell = "—"
        diff = "—"
        if theirs:
            other = theirs["params"][key]
            rel = abs(mine - other) / abs(other)
            worst = max(worst, rel)
            cell = f"{other:.5f}"
            diff = f"{rel * 100:.4f} %"
        print(f"| {key} | {CDNOW[key]} | {mine:.5f} | {cell} | {diff} |")
    print()
    print("| | ours | lifetimes |")
    print("|---|---:|---:|")

    def row(label: str, key: str, fmt: str) -> None:
        other = format(theirs[key], fmt) if theirs else "—"
        print(f"| {label} | {format(ours[key], fmt)} | {other} |")

    row("BG/NBD fit (s)", "bg_seconds", ".2f")
    row("Gamma-Gamma fit (s)", "gg_seconds", ".2f")
    row("log-likelihood (BG/NBD)", "log_likelihood", ".2f")
    row("peak RSS of the fitting process (MiB)", "peak_rss_mib", ".0f")
    row("peak RSS added by the fit (MiB)", "fit_rss_mib", ".0f")
    print()
    ok = ours["converged"]
    if theirs:
        total_ours = ours["bg_seconds"] + ours["gg_seconds"]
        total_theirs = theirs["bg_seconds"] + theirs["gg_seconds"]
        ratio = total_theirs / total_ours
        print(
            f"total: ours {total_ours:.2f} s, lifetimes {total_theirs:.2f} s → "
            f"{ratio:.1f}× faster (target ≥ 5×); largest parameter difference "
            f"{worst * 100:.4f} % (target ≤ 0.1 %)"
        )
        ok = ok and ratio >= 5 and worst <= 0.001
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
