"""Speed of the exact core, as ratios against a reference measured in the same run.

    .venv/bin/python benchmarks/speed_core.py [--repeats 7] [--threads 1]

1. ``gibbs`` on X = 10⁴ contexts × K = 10³ actions (float64), validation included, against one
   ``np.exp`` over an array of the same size (goal ≤ 2×). Also the kernel alone
   (``kernels.gibbs``), the exact shifted path used at extreme η, and η = 1e-8.
2. ``fit_bt`` at n = 10⁵, d = 32 against scikit-learn's ``LogisticRegression(solver="lbfgs",
   fit_intercept=False, C=1/λ)`` (goal ≤ 1×). scikit-learn's ``tol`` bounds the max-norm of
   the gradient of the *mean* loss; ``fit_bt`` stops on the Newton decrement at machine precision.
   The table prints both solvers' final mean-loss gradient, so "the same tolerance" can be read
   off: scikit-learn is timed at tol = 1e-4 (its default) and 1e-10 (tight), and fit_bt at its
   default (machine precision, far tighter than either) and at tol = 1e-16 on the decrement
   (a mean-loss gradient still ≲ scikit-learn's tight run).

Timings on a shared machine are noisy, so every measurement is the median of interleaved
repeats (reference, candidate, reference, …), and only ratios are reported. ``--threads`` caps
the BLAS threads of both solvers alike (threadpoolctl); on an oversubscribed machine one thread
is both faster and steadier (fit_bt's matrix-vector products never use BLAS threads; its Gram
matrices and all of scikit-learn's products do).

What limits gibbs: the reference reads one array and writes one; gibbs reads two (r and log π0)
and writes one, and the validation needs a second exponential pass — the normalisation check
exp(log π0) in float32 — besides the Gibbs exp. The kernel alone is ≈ 1.6–2.0× np.exp; the
validation adds ≈ 0.6–0.9×.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import numpy as np
from scipy.special import expit, logsumexp


def _interleaved(functions: dict, repeats: int) -> dict:
    """Median seconds of each function, run round-robin ``repeats`` times (after one warm-up)."""
    for f in functions.values():
        f()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def bench_gibbs(repeats: int) -> None:
    import rlbandit as rb
    from rlbandit import kernels

    rng = np.random.default_rng(0)
    x, k = 10_000, 1_000
    rewards = rng.standard_normal((x, k))
    ref = rng.standard_normal((x, k))
    ref -= logsumexp(ref, axis=-1, keepdims=True)
    print(f"gibbs: X={x}, K={k}, float64 ({rewards.nbytes / 2**20:.0f} MiB per array); {repeats} interleaved "
          "repeats", flush=True)
    t = _interleaved({
        "np.exp (reference)": lambda: np.exp(rewards),
        "gibbs, η=1 (validated)": lambda: rb.gibbs(rewards, ref, 1.0),
        "gibbs kernel only, η=1": lambda: kernels.gibbs(rewards, ref, 1.0),
        "gibbs, η=1e-8 (validated)": lambda: rb.gibbs(rewards, ref, 1e-8),
        "exact shifted path, η=1": lambda: kernels.gibbs_exact_rows(rewards, ref, 1.0),
        "naive: r/η + log π0 − logsumexp": lambda: (rewards + ref) - logsumexp(rewards + ref, axis=-1, keepdims=True),
    }, repeats)
    base = t["np.exp (reference)"]
    print(f"  {'':36s} {'ms':>8s} {'× np.exp':>9s}")
    for name, seconds in t.items():
        print(f"  {name:36s} {1e3 * seconds:8.1f} {seconds / base:9.2f}")
    exact = kernels.gibbs_exact_rows(rewards, ref, 1.0)
    print(f"  max |fast − exact| log-prob: {np.abs(rb.gibbs(rewards, ref, 1.0) - exact).max():.1e}")


def bench_fit_bt(repeats: int) -> None:
    import warnings

    from sklearn.linear_model import LogisticRegression

    import rlbandit as rb

    rng = np.random.default_rng(1)
    n, d, reg = 100_000, 32, 1.0
    diffs = rng.uniform(-1.0, 1.0, (n, d)) / np.sqrt(d / 3.0) * 0.7  # ‖z‖ ≈ 0.7, like φ¹ − φ² in the unit ball
    theta_star = 2.0 * rng.standard_normal(d) / np.sqrt(d) * 2
    labels = (rng.random(n) < expit(diffs @ theta_star)).astype(np.int64)
    print(f"fit_bt: n={n}, d={d}, λ={reg}; {repeats} interleaved repeats", flush=True)

    def sklearn(tol):
        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = LogisticRegression(fit_intercept=False, C=1.0 / reg, tol=tol, max_iter=10_000)
                return model.fit(diffs, labels).coef_[0]
        return fit

    def mean_gradient(theta):
        return float(np.abs(diffs.T @ (expit(diffs @ theta) - labels) + reg * theta).max() / n)

    candidates = {
        "sklearn lbfgs tol=1e-4 (default)": sklearn(1e-4),
        "sklearn lbfgs tol=1e-10": sklearn(1e-10),
        "rlbandit.fit_bt": lambda: rb.fit_bt(diffs, labels, reg),
        "rlbandit.fit_bt tol=1e-16": lambda: rb.fit_bt(diffs, labels, reg, tol=1e-16),
    }
    t = _interleaved(candidates, repeats)
    solutions = {name: f() for name, f in candidates.items()}
    best = solutions["rlbandit.fit_bt"]
    print(f"  {'':34s} {'ms':>8s} {'÷ sklearn 1e-10':>15s} {'|∇ mean loss|∞':>15s} {'‖θ − θ_fit_bt‖∞':>16s}")
    for name, seconds in t.items():
        print(f"  {name:34s} {1e3 * seconds:8.1f} {seconds / t['sklearn lbfgs tol=1e-10']:15.2f} "
              f"{mean_gradient(solutions[name]):15.1e} {np.abs(solutions[name] - best).max():16.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="cap BLAS threads (0 = library default)")
    parser.add_argument("--only", choices=["gibbs", "fit_bt"], default=None)
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        context = threadpool_limits(args.threads)
        print(f"BLAS threads capped at {args.threads}")
    else:
        context = nullcontext()
    with context:
        if args.only in (None, "gibbs"):
            bench_gibbs(args.repeats)
        if args.only in (None, "fit_bt"):
            bench_fit_bt(args.repeats)


if __name__ == "__main__":
    main()
