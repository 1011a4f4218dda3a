"""Speed of the exact core, as ratios against a reference measured in the same run.

    .venv/bin/python benchmarks/speed_core.py [--repeats 7] [--threads 1] [--quick] [--only gibbs|fit_bt]

1. ``gibbs`` (validation included) against one ``np.exp`` over an array of the same size
   (goal ≤ 2×), on 10⁴ entries (X = 10, K = 10³ and X = 100, K = 100: the fixed overhead of
   validation and dispatch) and on 10⁷ entries (X = 10⁴, K = 10³: the memory-bound regime). On
   the large input also the kernel alone (``kernels.gibbs``), the exact shifted path used at
   extreme η, η = 1e-8, and the naive logsumexp form.
2. ``fit_bt`` against scikit-learn's ``LogisticRegression(solver="lbfgs", fit_intercept=False,
   C=1/λ)`` (goal ≤ 1×) at n = 10⁵ and d = 32, 256, 384 (the language-model world's φ is
   384-dimensional). scikit-learn's ``tol`` bounds the max-norm of the gradient of the *mean*
   loss; ``fit_bt`` stops on the decrement gᵀH⁻¹g ≤ tol·loss (default 1e-26: machine precision).
   The table prints both solvers' final mean-loss gradient, so "the same final gradient norm"
   can be read off: scikit-learn is timed at tol = 1e-10, and fit_bt at its default and at
   tol = 1e-16 (a final gradient still ≲ scikit-learn's), with ``solver="auto"`` (what users get:
   L-BFGS at large d, see ``rlbandit.reward.bt_solver``) and, at large d, ``solver="newton"``
   (the exact/sketched Newton path) for comparison.

``--quick``: 3 repeats (the 10⁴-entry gibbs cases keep their 600 interleaved calls), 10⁶ gibbs
entries instead of 10⁷, and fit_bt at d = 32 and 256 only.

Timings on a shared machine are noisy, so every measurement is the median of interleaved
repeats (reference, candidate, reference, …), and only ratios are reported. ``--threads`` caps
the BLAS threads of both solvers alike (threadpoolctl); on an oversubscribed machine one thread
is both faster and steadier (the Newton path's matrix-vector products never use BLAS threads;
its Gram matrices, L-BFGS's products and all of scikit-learn's do).

What limits gibbs: the reference reads one array and writes one; gibbs reads two (r and log π0)
and writes one, and its validation needs a second exponential per entry (the normalisation check
Σ exp(log π0) per row) besides the Gibbs one. ``kernels.gibbs`` is one compiled pass
(``rlbandit.compiled.gibbs_rows``: an inlined, vectorised exp; the check fused into the same
loop), so what is left above the two exponentials on 10⁴ entries is the Python boundary: argument
checks, two allocations and the numba dispatch, ≈ 2–3 µs against np.exp's ≈ 7 µs. The table's
"compiled pass only" and "unchecked compiled pass" rows separate the two.
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


def _gibbs_case(x: int, k: int, repeats: int, *, details: bool) -> None:
    import rlbandit as rb
    from rlbandit import compiled, kernels

    rng = np.random.default_rng(0)
    rewards = rng.standard_normal((x, k))
    ref = rng.standard_normal((x, k))
    ref -= logsumexp(ref, axis=-1, keepdims=True)
    print(f"gibbs: X={x}, K={k} ({x * k:.0e} entries, float64); {repeats} interleaved repeats", flush=True)
    candidates = {
        "np.exp (reference)": lambda: np.exp(rewards),
        "gibbs, η=1 (validated)": lambda: rb.gibbs(rewards, ref, 1.0),
        "gibbs, η=0.3 (validated)": lambda: rb.gibbs(rewards, ref, 0.3),
    }
    flat_rewards, flat_ref, out, exact = rewards.reshape(-1), ref.reshape(-1), np.empty(x * k), np.empty(x, dtype=bool)
    candidates.update({  # the compiled pass alone, into preallocated arrays: gibbs less its Python boundary
        "compiled pass only, validating": lambda: compiled.gibbs_rows(flat_rewards, flat_ref, 1.0, True, out, exact),
        "unchecked compiled pass": lambda: compiled.gibbs_rows(flat_rewards, flat_ref, 1.0, False, out, exact),
    })
    if details:
        candidates.update({
            "gibbs kernel only, η=1": lambda: kernels.gibbs(rewards, ref, 1.0),
            "gibbs, η=1e-8 (validated)": lambda: rb.gibbs(rewards, ref, 1e-8),
            "exact shifted path, η=1": lambda: kernels.gibbs_exact_rows(rewards, ref, 1.0),
            "naive: r/η + log π0 − logsumexp": lambda: (rewards + ref) - logsumexp(rewards + ref, axis=-1,
                                                                                    keepdims=True),
        })
    t = _interleaved(candidates, repeats)
    base = t["np.exp (reference)"]
    unit, factor = ("µs", 1e6) if x * k < 10**6 else ("ms", 1e3)
    print(f"  {'':36s} {unit:>8s} {'× np.exp':>9s}")
    for name, seconds in t.items():
        print(f"  {name:36s} {factor * seconds:8.1f} {seconds / base:9.2f}")
    if details:
        exact = kernels.gibbs_exact_rows(rewards, ref, 1.0)
        print(f"  max |fast − exact| log-prob: {np.abs(rb.gibbs(rewards, ref, 1.0) - exact).max():.1e}")


def bench_gibbs(repeats: int, quick: bool = False) -> None:
    small = max(repeats, 15) * 40  # 10⁴ entries take microseconds: many more repeats for a stable median
    _gibbs_case(10, 1_000, small, details=False)
    _gibbs_case(100, 100, small, details=False)
    if quick:
        _gibbs_case(1_000, 1_000, repeats, details=True)
    else:
        _gibbs_case(10_000, 1_000, repeats, details=True)


def _bt_case(n: int, d: int, repeats: int) -> None:
    import warnings

    from sklearn.linear_model import LogisticRegression

    import rlbandit as rb
    from rlbandit.reward import bt_solver

    rng = np.random.default_rng(1)
    reg = 1.0
    diffs = rng.uniform(-1.0, 1.0, (n, d)) / np.sqrt(d / 3.0) * 0.7  # ‖z‖ ≈ 0.7, like φ¹ − φ² in the unit ball
    theta_star = 2.0 * rng.standard_normal(d) / np.sqrt(d) * 2
    labels = (rng.random(n) < expit(diffs @ theta_star)).astype(np.int64)
    auto = bt_solver(n, d)
    print(f"fit_bt: n={n}, d={d}, λ={reg}; solver='auto' → {auto!r}; {repeats} interleaved repeats", flush=True)

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
        "sklearn lbfgs tol=1e-10": sklearn(1e-10),
        "rlbandit.fit_bt": lambda: rb.fit_bt(diffs, labels, reg),
        "rlbandit.fit_bt tol=1e-16": lambda: rb.fit_bt(diffs, labels, reg, tol=1e-16),
    }
    if auto != "newton":
        candidates["fit_bt solver='newton'"] = lambda: rb.fit_bt(diffs, labels, reg, solver="newton")
    t = _interleaved(candidates, repeats)
    solutions = {name: f() for name, f in candidates.items()}
    best = solutions["rlbandit.fit_bt"]
    print(f"  {'':34s} {'ms':>8s} {'÷ sklearn 1e-10':>15s} {'|∇ mean loss|∞':>15s} {'‖θ − θ_fit_bt‖∞':>16s}")
    for name, seconds in t.items():
        print(f"  {name:34s} {1e3 * seconds:8.1f} {seconds / t['sklearn lbfgs tol=1e-10']:15.2f} "
              f"{mean_gradient(solutions[name]):15.1e} {np.abs(solutions[name] - best).max():16.1e}")


def bench_fit_bt(repeats: int, quick: bool = False) -> None:
    for d in (32, 256) if quick else (32, 256, 384):
        _bt_case(100_000, d, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="cap BLAS threads (0 = library default)")
    parser.add_argument("--only", choices=["gibbs", "fit_bt"], default=None)
    parser.add_argument("--quick", action="store_true", help="3 repeats, smaller gibbs input, d = 32 and 256 only")
    args = parser.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 3)
    if args.threads:
        from threadpoolctl import threadpool_limits

        context = threadpool_limits(args.threads)
        print(f"BLAS threads capped at {args.threads}")
    else:
        context = nullcontext()
    with context:
        if args.only in (None, "gibbs"):
            bench_gibbs(args.repeats, args.quick)
        if args.only in (None, "fit_bt"):
            bench_fit_bt(args.repeats, args.quick)


if __name__ == "__main__":
    main()
