"""Study ``overoptimization``: reward-model over-optimisation in the exact bandit (issue 7; DESIGN §5;
Gao, Schulman & Hilton 2022, "Scaling laws for reward model overoptimization").

The world. A linear bandit whose gold reward is r*(x,a) = ⟨φ(x,a), θ*⟩, with ``n_hack`` *hacking*
actions per context: rare under π0 (log-weight lowered by ``hack_rarity``), bad under the gold reward
(φ points against θ*), and maximal on a spurious feature s(x,a) that, on every other action, tracks
the gold reward (s = 0.5 · standardised r* + noise). The proxy reward is a Bradley–Terry MLE fitted
on π0-vs-π0 comparisons labelled by the gold reward, on proxy features φ̃ = [φ_{1..d'}, s]:

- ``limited``: all of φ plus s (d' = d), but only ``n_limited`` comparisons — noise puts weight on s;
- ``misspecified``: ``n_ample`` comparisons, but φ̃ omits ``n_missing`` gold features, so s soaks up
  their signal (the proxy cannot represent r*);
- ``ample``: all of φ plus s and ``n_ample`` comparisons (the control).

The optimisers, each measured by the gold and proxy reward gains over π0 against
d = √(E_x KL(π‖π0)) (Gao et al.'s x-axis):

- ``gibbs``: the exact oracle O(r̂, η, π0) on an η grid (10 → 1e-3);
- ``best_of_n``: the exact best-of-N policy on r̂, N = 1 … 2^16;
- ``ppo``: tabular PPO on r̂ (k1 KL penalty in the reward, one run per η ∈ {0.01, 0.1}), checkpoints along
  training — sampled (practice: it must *find* the rare hacking actions by sampling them) and with exact
  expected updates (which reach the Gibbs policy of r̂, hacking included).

The report (benchmarks/overoptimization_report.py) fits Gao et al.'s functional forms to the gold gain,
R_bon(d) = d(α − βd) and R_RL(d) = d(α − β log d), tests them out of sample (fit on d ≤ median, predict
larger d), follows α and β along a sweep of the proxy's data (``n_limited``) and misspecification
(``n_missing``), counts the hacking actions sampled PPO draws, and compares optimisers at equal proxy gain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from rlbandit._checks import check_positive_float, check_positive_ints
from rlbandit.study import Study, deferred

PROXIES = ("limited", "misspecified", "ample")
OPTIMIZERS = ("gibbs", "best_of_n", "ppo")


@dataclass(frozen=True)
class OveroptConfig:
    """One run: one proxy × optimiser, vectorised over ``n_seeds`` problems.

    Attributes:
        proxy: ``limited``, ``misspecified`` or ``ample`` (module docstring).
        optimizer: ``gibbs``, ``best_of_n`` or ``ppo``.
        scenario: base scenario of rlbandit.SCENARIOS (features, θ*, π0) before the hacking actions.
        n_seeds, n_contexts, n_actions, dim, theta_norm: the problems.
        n_hack, hack_rarity: hacking actions per context and how much their π0 log-weight is lowered.
        n_limited, n_ample: comparisons of the ``limited`` and the other proxies.
        n_missing: gold features the ``misspecified`` proxy omits.
        reg: ridge λ of the proxy MLE.
        max_log2_n: best-of-N up to N = 2^max_log2_n.
        ppo_eta: η of the PPO run (its KL penalty); ppo_steps: its length.
        ppo_mode: ``sampled`` (practice) or ``exact`` (the expected update; no exploration failure).
        base_seed: seeds problems, data and sampling.
        sweep: a point of the scaling sweep (``n_limited`` or ``n_missing`` varied; the report's
            α(n), β(n)) rather than of the main comparison.
    """

    proxy: str = "misspecified"
    optimizer: str = "gibbs"
    scenario: str = "random"
    n_seeds: int = 32
    n_contexts: int = 16
    n_actions: int = 32
    dim: int = 6
    theta_norm: float = 3.0
    n_hack: int = 2
    hack_rarity: float = 4.0
    n_limited: int = 64
    n_ample: int = 4096
    n_missing: int = 2
    reg: float = 1.0
    max_log2_n: int = 16
    ppo_eta: float = 0.01
    ppo_mode: str = "sampled"
    ppo_steps: int = 400
    base_seed: int = 0
    sweep: bool = False

    def __post_init__(self):
        if self.proxy not in PROXIES:
            raise ValueError(f"proxy: must be one of {PROXIES}, got {self.proxy!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check_positive_ints(self, ("n_seeds", "n_contexts", "n_actions", "dim", "n_hack", "n_limited", "n_ample",
                                   "max_log2_n", "ppo_steps"), numpy_ints=False)
        if not 0 <= self.n_missing < self.dim:
            raise ValueError(f"n_missing: must lie in [0, dim), got {self.n_missing}")
        if self.n_hack >= self.n_actions:
            raise ValueError(f"n_hack: must be < n_actions, got {self.n_hack}")
        if not self.hack_rarity >= 0 or not self.theta_norm > 0 or not self.reg > 0:
            raise ValueError("hack_rarity >= 0, theta_norm > 0 and reg > 0 are required")
        if self.ppo_mode not in ("sampled", "exact"):
            raise ValueError(f"ppo_mode: must be 'sampled' or 'exact', got {self.ppo_mode!r}")
        check_positive_float(self.ppo_eta, "ppo_eta", finite=False)


def make_world(config: OveroptConfig):
    """(problems with hacking actions, proxy features (S, X, K, d'+1), seeds) — see the module docstring."""
    from rlbandit.problem import LinearBandit, ProblemConfig, make_problems

    seeds = config.base_seed * 1000 + np.arange(config.n_seeds)
    base = make_problems(ProblemConfig(scenario=config.scenario, n_contexts=config.n_contexts,
                                       n_actions=config.n_actions, dim=config.dim, theta_norm=config.theta_norm), seeds)
    rng = np.random.default_rng([config.base_seed, 11])
    s, x, k, d = base.features.shape
    unit = base.theta / np.linalg.norm(base.theta, axis=-1, keepdims=True)
    hack = np.argsort(rng.random((s, x, k)), axis=-1)[..., :config.n_hack]  # (S, X, H)
    is_hack = np.zeros((s, x, k), dtype=bool)
    np.put_along_axis(is_hack, hack, True, -1)
    features = base.features.copy()
    noise = 0.2 * rng.standard_normal((s, x, k, d))
    bad = -0.7 * unit[:, None, None, :] + noise
    bad /= np.maximum(1.0, np.linalg.norm(bad, axis=-1, keepdims=True))
    features = np.where(is_hack[..., None], bad, features)
    ref = np.where(is_hack, base.ref_logprobs - config.hack_rarity, base.ref_logprobs)
    ref = ref - np.log(np.exp(ref).sum(-1, keepdims=True))
    problems = LinearBandit(features, base.theta, ref)
    gold = problems.rewards
    normal = ~is_hack
    mean = np.where(normal, gold, 0).sum(-1, keepdims=True) / normal.sum(-1, keepdims=True)
    var = np.where(normal, (gold - mean) ** 2, 0).sum(-1, keepdims=True) / normal.sum(-1, keepdims=True)
    spurious = 0.5 * (gold - mean) / np.sqrt(var + 1e-12) + 0.3 * rng.standard_normal((s, x, k))
    spurious = np.clip(spurious, -1.5, 1.5)
    spurious = np.where(is_hack, 2.0, spurious)
    kept = config.dim - (config.n_missing if config.proxy == "misspecified" else 0)
    proxy_features = np.concatenate([features[..., :kept], spurious[..., None]], axis=-1)
    return problems, proxy_features, seeds, is_hack


def proxy_reward(config: OveroptConfig, problems, proxy_features):
    """r̂ = φ̃ θ̂ with θ̂ the ridge BT MLE on π0-vs-π0 comparisons (size per the proxy kind)."""
    from rlbandit.reward import fit_bt

    n = config.n_limited if config.proxy == "limited" else config.n_ample
    rng = np.random.default_rng([config.base_seed, 5, PROXIES.index(config.proxy)])
    data = problems.sample_preferences(problems.ref_logprobs, problems.ref_logprobs, n, rng)
    theta_hat = fit_bt(data.diffs(proxy_features), data.labels, config.reg)
    return np.einsum("sxkd,sd->sxk", proxy_features, theta_hat), theta_hat


def _hack_mass(problems, logprobs, is_hack) -> np.ndarray:
    """E_x π(hacking actions | x), per seed."""
    from rlbandit import kernels

    return kernels.weigh_contexts(np.where(is_hack, np.exp(logprobs), 0.0).sum(-1), problems.context_probs)


def _rows(problems, logprobs_list, proxy, seeds, knobs: dict[str, list], is_hack):
    from rlbandit import kernels
    from rlbandit.oracle import expected_reward

    gold0 = problems.gold_reward(problems.ref_logprobs)
    proxy0 = kernels.weigh_contexts(expected_reward(problems.ref_logprobs, proxy), problems.context_probs)
    rows = []
    for i, lp in enumerate(logprobs_list):
        kl = problems.kl_to_ref(lp)
        gold = problems.gold_reward(lp) - gold0
        prox = kernels.weigh_contexts(expected_reward(lp, proxy), problems.context_probs) - proxy0
        hack = _hack_mass(problems, lp, is_hack)
        for j, seed in enumerate(seeds):
            row = {"seed": int(seed), "kl_to_ref": float(kl[j]), "d": float(np.sqrt(max(kl[j], 0.0))),
                   "gold_gain": float(gold[j]), "proxy_gain": float(prox[j]), "hack_mass": float(hack[j])}
            row.update({key: values[i] for key, values in knobs.items()})
            rows.append(row)
    return rows


def _gibbs(config, problems, proxy, seeds, is_hack):
    from rlbandit.oracle import gibbs

    etas = list(10.0 ** np.linspace(1.0, -3.0, 25))
    return _rows(problems, [gibbs(proxy, problems.ref_logprobs, eta) for eta in etas], proxy, seeds,
                 {"knob": etas, "eta": etas, "N": [np.nan] * len(etas), "step": [np.nan] * len(etas),
                  "curve": ["gibbs"] * len(etas)}, is_hack)


def _best_of_n(config, problems, proxy, seeds, is_hack):
    from rlbandit.sampling_oracles import best_of_n

    ns = [2 ** i for i in range(config.max_log2_n + 1)]
    return _rows(problems, [best_of_n(proxy, problems.ref_logprobs, n) for n in ns], proxy, seeds,
                 {"knob": ns, "eta": [np.nan] * len(ns), "N": ns, "step": [np.nan] * len(ns),
                  "curve": ["best_of_n"] * len(ns)}, is_hack)


class _HackDraws:
    """An ``on_batch`` callback of train_policy_gradient: per step and seed, the hacking actions
    drawn (``drawn``), the expected number Σ_batch π_old(hack | x) (``expected``; sampled mode) and
    the sample-weighted π_old mass on them (``mass``; the exact mode enumerates every action with
    weight π_old, so this is its analogue of a draw)."""

    def __init__(self, is_hack):
        self.is_hack = np.asarray(is_hack, dtype=bool)
        self.out = {"drawn": [], "expected": [], "mass": []}

    def __call__(self, *, step, old_logprobs, contexts, actions, weights, exact):
        hack, s = self.is_hack, self.is_hack.shape[0]
        ctx = np.broadcast_to(contexts[..., None], actions.shape)
        drawn = hack[np.arange(s)[:, None, None], ctx, actions]  # (S, B, G)
        p_hack = np.where(hack, np.exp(old_logprobs), 0.0).sum(-1)  # (S, X)
        per_prompt = np.take_along_axis(p_hack, contexts, axis=1)  # (S, B)
        self.out["drawn"].append(np.zeros(s) if exact else drawn.sum((1, 2)).astype(float))
        self.out["expected"].append(np.zeros(s) if exact else per_prompt.sum(1) * actions.shape[-1])
        self.out["mass"].append((weights * drawn).sum((1, 2)))

    def arrays(self) -> dict:
        s = self.is_hack.shape[0]
        return {k: np.stack(v) if v else np.zeros((0, s)) for k, v in self.out.items()}


def ppo_curve(mode: str, eta: float) -> str:
    """The curve (hue) name of a PPO run: ``ppo (η=0.01)`` sampled, ``ppo_exact (η=0.01)`` exact."""
    return f"ppo{'_exact' if mode == 'exact' else ''} (η={eta:g})"


def _ppo(config, problems, proxy, seeds, is_hack):
    from rlbandit.policy_gradient import PGConfig, train_policy_gradient

    rows = []
    for eta in (config.ppo_eta,):
        if config.ppo_mode == "sampled":
            pg = PGConfig(algorithm="ppo", policy="tabular", eta=eta, mode="sampled", steps=config.ppo_steps,
                          batch_contexts=32, group_size=4, lr=0.05, optimizer="adam", epochs=2, minibatches=2,
                          log_every=max(1, config.ppo_steps // 25), seed=config.base_seed)
        else:
            pg = PGConfig(algorithm="ppo", policy="tabular", eta=eta, mode="exact", steps=config.ppo_steps,
                          lr=0.02, optimizer="adam", epochs=2, minibatches=1,
                          log_every=max(1, config.ppo_steps // 40), seed=config.base_seed)
        counter = _HackDraws(is_hack)
        result = train_policy_gradient(problems, pg, rewards=proxy, on_batch=counter)
        draws = counter.arrays()
        history = result.history
        final_hack = _hack_mass(problems, result.logprobs, is_hack)
        drawn, expected, mass = (np.concatenate([np.zeros((1, len(seeds))), np.cumsum(draws[key], 0)])
                                 for key in ("drawn", "expected", "mass"))
        gold0 = problems.gold_reward(problems.ref_logprobs)
        from rlbandit import kernels
        from rlbandit.oracle import expected_reward

        proxy0 = kernels.weigh_contexts(expected_reward(problems.ref_logprobs, proxy), problems.context_probs)
        for _, h in history.iterrows():
            i = int(h["seed"])
            rows.append({"seed": int(seeds[i]), "kl_to_ref": h["kl_to_ref"],
                         "d": float(np.sqrt(max(h["kl_to_ref"], 0))), "gold_gain": h["gold_reward"] - gold0[i],
                         "proxy_gain": h["train_reward"] - proxy0[i],
                         "hack_mass": float(final_hack[i]) if h["step"] == config.ppo_steps else np.nan,
                         "hack_draws": drawn[int(h["step"]), i], "hack_draws_expected": expected[int(h["step"]), i],
                         "hack_mass_cum": mass[int(h["step"]), i], "kl_to_target": h["kl_to_target"],
                         "knob": h["step"], "eta": eta, "N": np.nan, "step": h["step"],
                         "curve": ppo_curve(config.ppo_mode, eta)})
    return rows


#: optimiser → (config, problems, proxy reward, seeds, hacking-action mask) → rows.
OPTIMIZER_RUNS: dict[str, Callable] = {"gibbs": _gibbs, "best_of_n": _best_of_n, "ppo": _ppo}


def configs(smoke: bool) -> list[OveroptConfig]:
    """Full: 3 proxies × (Gibbs, best-of-N, PPO sampled / exact at η ∈ {0.01, 0.1}) on 32 problems
    (X = 16, K = 32, d = 6): enough seeds for the paired drop's confidence interval to decide.
    Smoke: tiny."""
    if smoke:
        small = dict(n_seeds=2, n_contexts=3, n_actions=6, dim=3, n_limited=16, n_ample=128, n_missing=1,
                     max_log2_n=4, ppo_steps=20, ppo_eta=0.1)
        return ([OveroptConfig(proxy=p, optimizer=o, **small) for p in PROXIES for o in OPTIMIZERS]
                + [OveroptConfig(proxy="misspecified", optimizer="ppo", ppo_mode="exact", **small)]
                + _sweep({**small, "n_limited": 64}, (16,), ("gibbs", "best_of_n"), (0,))
                + _sweep({**small, "n_missing": 0}, (64,), ("best_of_n",), (2,)))
    runs = [OveroptConfig(proxy=p, optimizer=o) for p in PROXIES for o in ("gibbs", "best_of_n")]
    runs += [OveroptConfig(proxy=p, optimizer="ppo", ppo_eta=e, ppo_mode=m) for p in PROXIES for e in (0.01, 0.1)
             for m in ("sampled", "exact")]
    return runs + _sweep({}, SWEEP_N, ("gibbs", "best_of_n", "ppo"), SWEEP_MISSING)


#: The scaling sweep (besides the main runs' n_limited = 64 and n_missing = 2): the limited proxy's
#: number of comparisons, and how many gold features the misspecified proxy misses.
SWEEP_N = (32, 128, 256, 1024, 4096)
SWEEP_MISSING = (0, 1, 3, 4)


def _sweep(base: dict, ns, optimizers, missing) -> list[OveroptConfig]:
    """Sweep points: Gibbs and best-of-N (cheap, vectorised) and exact-update PPO at η = 0.01."""
    extra = {"ppo_mode": "exact", "ppo_eta": 0.01}
    def one(proxy, optimizer, **knob):
        return OveroptConfig(proxy=proxy, optimizer=optimizer, sweep=True,
                             **{**base, **knob, **(extra if optimizer == "ppo" else {})})

    return ([one("limited", o, n_limited=n) for n in ns for o in optimizers]
            + [one("misspecified", o, n_missing=m) for m in missing for o in optimizers])


def run(config: OveroptConfig) -> pd.DataFrame:
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    problems, proxy_features, seeds, is_hack = make_world(config)
    proxy, theta_hat = proxy_reward(config, problems, proxy_features)
    frame = pd.DataFrame(OPTIMIZER_RUNS[config.optimizer](config, problems, proxy, seeds, is_hack))
    frame["spurious_weight"] = theta_hat[:, -1][np.searchsorted(seeds, frame["seed"].to_numpy())]
    frame["wall_s"] = time.perf_counter() - start
    print(f"[overoptimization] {config.proxy} {config.optimizer}: {frame['wall_s'].iloc[0]:.1f}s", flush=True)
    return frame


# ---------------------------------------------------------------------------------------------
# Analysis helpers (the report's, in benchmarks/overoptimization_report.py)

#: functional form name → g(d) with gain ≈ d (α − β g(d)) (Gao et al. 2022, Eq. 1–2).
FORMS = {"BoN d(α − βd)": lambda d: d, "RL d(α − β log d)": np.log}
#: A drop of the gold gain from its peak counts as over-optimisation only when the 95 % confidence
#: interval of the paired (per-seed) drop lies entirely above this threshold.
DROP_THRESHOLD = 0.05


def fit_form(d, gain, form: str) -> tuple[float, float]:
    """Least squares for gain ≈ α d − β d g(d) over points with d > 10⁻⁶; (α, β), NaN with < 3 points."""
    d, gain = np.asarray(d, float), np.asarray(gain, float)
    keep = (d > 1e-6) & np.isfinite(gain)
    d, gain = d[keep], gain[keep]
    if len(d) < 3:
        return np.nan, np.nan
    design = np.stack([d, -d * FORMS[form](d)], axis=1)
    coef, *_ = np.linalg.lstsq(design, gain, rcond=None)
    return float(coef[0]), float(coef[1])


def predict(d, alpha: float, beta: float, form: str) -> np.ndarray:
    d = np.asarray(d, float)
    return d * (alpha - beta * FORMS[form](np.maximum(d, 1e-12)))


def heldout_error(d, gain, form: str) -> float:
    """Fit on the points with d ≤ median(d), predict the points beyond: RMSE of the prediction."""
    d, gain = np.asarray(d, float), np.asarray(gain, float)
    keep = d > 1e-6
    d, gain = d[keep], gain[keep]
    if len(d) < 6:
        return np.nan
    small = d <= np.median(d)
    alpha, beta = fit_form(d[small], gain[small], form)
    return float(np.sqrt(np.mean((predict(d[~small], alpha, beta, form) - gain[~small]) ** 2)))


def drop_interval(curve: pd.DataFrame, final_knob) -> tuple[float, float, float]:
    """The paired per-seed drop from the seed-mean curve's peak knob to the final knob: its mean and
    95 % t interval across seeds."""
    from rlbandit.stats import t_interval

    peak_knob = curve.groupby("knob")["gold_gain"].mean().idxmax()
    per_seed = curve.pivot_table(index="seed", columns="knob", values="gold_gain", aggfunc="mean")
    drops = (per_seed[peak_knob] - per_seed[final_knob]).dropna()
    return t_interval(drops)


def seed_curve(g: pd.DataFrame, curve: str) -> tuple[np.ndarray, np.ndarray]:
    """(proxy gain, gold gain) of one seed's curve in optimisation order up to its proxy-gain maximum,
    sorted by proxy gain (for interpolation)."""
    if g.empty:
        return np.zeros(0), np.zeros(0)
    g = g.sort_values("knob", ascending=curve != "gibbs")  # Gibbs optimises as η falls
    g = g.iloc[:int(np.argmax(g["proxy_gain"].to_numpy())) + 1]
    order = np.argsort(g["proxy_gain"].to_numpy(), kind="stable")
    return g["proxy_gain"].to_numpy()[order], g["gold_gain"].to_numpy()[order]


def matched_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Per proxy and η: sampled PPO's gold gain minus exact-update PPO's and minus Gibbs's, per seed at
    the largest proxy gain both curves of that seed reach (paired; mean and 95 % CI over seeds)."""
    from rlbandit.stats import t_interval

    rows = []
    for proxy, p in frame.groupby("proxy", sort=False):
        for sampled in sorted(c for c in p["curve"].unique() if c.startswith("ppo (")):
            for other in (sampled.replace("ppo (", "ppo_exact ("), "gibbs"):
                gaps, levels = [], []
                for _, s in p[p["curve"].isin([sampled, other])].groupby("seed"):
                    a = seed_curve(s[s["curve"] == sampled], sampled)
                    b = seed_curve(s[s["curve"] == other], other)
                    if len(a[0]) == 0 or len(b[0]) == 0:
                        continue
                    level = min(a[0].max(), b[0].max())
                    gaps.append(np.interp(level, *a) - np.interp(level, *b))
                    levels.append(level)
                if not gaps:
                    continue
                m, low, high = t_interval(np.array(gaps))
                rows.append({"proxy": proxy, "sampled": sampled, "against": other,
                             "matched proxy gain": float(np.mean(levels)), "gold gap": m, "gap CI lo": low,
                             "gap CI hi": high})
    return pd.DataFrame(rows)


STUDY = Study(
    name="overoptimization",
    description=(
        "Reward over-optimisation in the exact bandit: a Bradley–Terry proxy learned from limited or misspecified "
        "data (with rare reward-hacking actions) is optimised by the Gibbs oracle (η sweep), best-of-N (N sweep) "
        "and PPO; gold and proxy reward against d = √KL(π‖π0), with Gao et al. (2022)'s forms tested out of sample, "
        "α and β along proxy-data and misspecification sweeps, and sampled PPO's hack draws."
    ),
    configs=configs,
    run=run,
    report=deferred("benchmarks.overoptimization_report:report"),
    timing_columns=("wall_s",),  # stored apart: result files stay bit-reproducible
    symbols={
        "d": r"$d = \sqrt{\mathbb{E}_x \mathrm{KL}(\pi\|\pi_0)}$",
        "gold_gain": "gold reward gain over π0",
        "proxy_gain": "proxy reward gain over π0",
    },
    tags=("bandit", "oracles"),
)
