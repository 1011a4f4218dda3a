"""Learning conflicting preferences (DESIGN §6b, issue 15): multi-head Bradley–Terry heads, the gate
by maximum likelihood, and per-head pessimism / optimism.

Shapes (leading axes ``...`` are seeds and broadcast as in the rest of the core):

    diffs       (..., n, d)      z = φ(x,a¹) − φ(x,a²)
    labels      (..., n)         y ∈ {0, 1}
    attributes  (..., n)         which attribute i ∈ {0..k−1} a comparison judged
    thetas      (..., k, d)      one head θ̂_i per attribute
    covs        (..., k, d, d)   Σ_i = λI + Σ_{n: i_n = i} z_n z_nᵀ, the uncertainty of head i
    margins     (..., n, k)      h_{n,i} = r_i(x_n,a¹_n) − r_i(x_n,a²_n) (e.g. z_n·θ̂_i)
    groups      (..., n)         who labelled: a user type ν (or a cell (ν, x): group ν·X + x)
    gates       (..., G, k)      g ∈ Δ_k per group

**Heads.** Head i is the BT MLE (:func:`rlbandit.reward.fit_bt`) on the comparisons that judged
attribute i; all heads are one call of ``fit_bt`` on the data stacked along a new head axis, the
other attributes' rows masked by zero weights.

**Gate.** A user's labels follow y ∼ BT(Σ_i g_i h_i): the log-likelihood
ℓ(g) = Σ_n w_n [y_n t_n − log(1 + e^{t_n})], t_n = ⟨h_n, g⟩, is concave in g (a logistic loss of a
linear function of g), and g ∈ Δ_k. Solved by a **projected Newton method**: each step minimises
the quadratic model ½(g−g₀)ᵀH(g−g₀) − ∇ℓᵀ(g−g₀) over the simplex exactly (the minimiser lies in the
relative interior of one face; every face's equality-constrained KKT system is solved in one batched
call and the best feasible candidate kept — k ≤ :data:`MAX_HEADS`), followed by an Armijo
backtracking line search on ℓ. It stops on the Frank–Wolfe certificate
gap(g) = max_i ∂_iℓ(g) − ⟨∇ℓ(g), g⟩ ≥ ℓ* − ℓ(g) (concavity), so the returned ĝ is within ``tol`` of the
optimal likelihood. The gate is user-constant (one group per ν) or tabular in the context (one
group per (ν, x)); :func:`fit_user_gates` returns either as (..., V, X, k) for
:func:`rlbandit.multiobjective.user_policies`. The model assumes the user's reward has the heads'
scale (Σ g_i = 1): a user who is noisier than the heads gets a gate that still sums to one.

**Per-head confidence.** If ‖θ̂_i − θ_i*‖_{Σ_i} ≤ β_i for every head, Cauchy–Schwarz gives
|⟨φ(x,a) − ν(x), θ̂_i − θ_i*⟩| ≤ β_i ‖φ(x,a) − ν(x)‖_{Σ_i⁻¹}, and for g ∈ Δ_k (g_i ≥ 0) the triangle
inequality gives, relative to the anchor ν(x),

    Σ_i g_i [⟨φ − ν, θ̂_i⟩ − β_i‖φ − ν‖_{Σ_i⁻¹}] ≤ Σ_i g_i ⟨φ − ν, θ_i*⟩ ≤ Σ_i g_i [⟨φ − ν, θ̂_i⟩ + β_i‖φ − ν‖_{Σ_i⁻¹}],

the gated LCB / UCB; the bound is tight over the product of the k ellipsoids (each term attains its
own minimum). A per-context shift does not change the Gibbs policy, so O(gated LCB) is the
pessimistic policy. The per-head terms are :func:`rlbandit.pessimism.lcb_rewards` and
:func:`rlbandit.pessimism.uncertainty`; the gated policy is :func:`rlbandit.multiobjective.user_policies`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy.special import expit

from rlbandit import geometry, pessimism
from rlbandit._checks import as_float_array, check_finite, check_int, check_logprobs, check_positive_float
from rlbandit.multiobjective import user_policies
from rlbandit.reward import fit_bt

__all__ = ["MAX_HEADS", "HeadBounds", "fit_heads", "head_covariances", "head_margins", "gate_loglik", "fit_gates",
           "fit_user_gates", "head_bounds", "pessimistic_user_policies", "optimistic_user_policies"]

#: The projected Newton step enumerates the 2^k − 1 faces of Δ_k.
MAX_HEADS = 10


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _indices(values, name: str, shape: tuple, size: int) -> np.ndarray:
    """Integer ids of the given shape in [0, size); every id present in every batch element."""
    values = np.asarray(values)
    if values.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (one id per comparison), got {values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name}: expected integer ids, got dtype {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{name}: ids must lie in [0, {size}), got range [{values.min()}, {values.max()}]")
    counts = (values[..., None] == np.arange(size)).sum(axis=-2)
    if (counts == 0).any():
        missing = int(np.argwhere(counts == 0)[0, -1])
        raise ValueError(f"{name}: id {missing} has no comparisons (in some batch element); each of the {size} "
                         f"heads/groups needs data")
    return values


def _labels(labels, shape: tuple) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ValueError(f"labels: expected shape {shape}, got {labels.shape}")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels: every label must be 0 or 1 (1 = first action preferred)")
    return labels.astype(np.float64)


def _weights(weights, shape: tuple) -> np.ndarray:
    if weights is None:
        return np.ones(shape)
    weights = as_float_array(weights, "weights")
    if weights.shape != shape:
        raise ValueError(f"weights: expected shape {shape}, got {weights.shape}")
    check_finite(weights, "weights")
    if (weights < 0).any():
        raise ValueError("weights: must be >= 0")
    return weights


def _masks(ids: np.ndarray, size: int, weights: np.ndarray) -> np.ndarray:
    """w_n·1[id_n = i] stacked on a new axis before n: (..., n) → (..., size, n)."""
    return (ids[..., None, :] == np.arange(size)[:, None]) * weights[..., None, :]


# ---------------------------------------------------------------------------------------------
# Multi-head Bradley–Terry
# ---------------------------------------------------------------------------------------------

def fit_heads(diffs, labels, attributes, k: int, reg: float, weights=None) -> np.ndarray:
    """θ̂_i = argmin_θ Σ_{n: i_n = i} w_n [log(1 + e^{z_nθ}) − y_n z_nθ] + (λ/2)‖θ‖², every head i.

    Args:
        diffs: z, shape (..., n, d); labels: y, shape (..., n); attributes: i_n ∈ [0, k), (..., n).
        k: number of heads (≥ 1); every head needs at least one comparison.
        reg: λ ≥ 0 (λ = 0 needs each head's data to be non-separable).
        weights: optional w_n ≥ 0, shape (..., n).

    Returns:
        θ̂, shape (..., k, d): one ``fit_bt`` call on the data stacked on a head axis (rows of the
        other attributes weigh 0), so head i is exactly ``fit_bt`` on its own comparisons.
    """
    k = check_int(k, "k", minimum=1)
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    labels = _labels(labels, diffs.shape[:-1])
    ids = _indices(attributes, "attributes", diffs.shape[:-1], k)
    masks = _masks(ids, k, _weights(weights, diffs.shape[:-1]))  # (..., k, n)
    stacked = np.broadcast_to(diffs[..., None, :, :], masks.shape + diffs.shape[-1:])
    return fit_bt(stacked, np.broadcast_to(labels[..., None, :], masks.shape), reg, weights=masks)


def head_covariances(diffs, attributes, k: int, reg: float) -> np.ndarray:
    """Σ_i = λI + Σ_{n: i_n = i} z_n z_nᵀ per head (``geometry.covariance`` on masked rows): (..., k, d, d)."""
    k = check_int(k, "k", minimum=1)
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    ids = _indices(attributes, "attributes", diffs.shape[:-1], k)
    masks = _masks(ids, k, np.ones(diffs.shape[:-1]))
    return geometry.covariance(diffs[..., None, :, :] * masks[..., None], reg)


def head_margins(diffs, thetas) -> np.ndarray:
    """h_{n,i} = ⟨z_n, θ_i⟩: diffs (..., n, d), thetas (..., k, d) → (..., n, k)."""
    diffs = as_float_array(diffs, "diffs", min_ndim=2)
    thetas = as_float_array(thetas, "thetas", min_ndim=2)
    check_finite(diffs, "diffs")
    check_finite(thetas, "thetas")
    if thetas.shape[-2] == 0:
        raise ValueError("thetas: k = 0 heads; expected shape (..., k, d) with k >= 1")
    if thetas.shape[-1] != diffs.shape[-1]:
        raise ValueError(f"thetas: expected last axis d = {diffs.shape[-1]}, got shape {thetas.shape}")
    return np.einsum("...nd,...id->...ni", diffs, thetas)


# ---------------------------------------------------------------------------------------------
# The gate by maximum likelihood
# ---------------------------------------------------------------------------------------------

def _loglik(gates, margins, labels, weights):
    t = np.einsum("...nk,...k->...n", margins, gates)
    return (weights * (labels * t - np.logaddexp(0.0, t))).sum(-1), t


def gate_loglik(gates, margins, labels, weights=None) -> np.ndarray:
    """ℓ(g) = Σ_n w_n [y_n ⟨h_n, g⟩ − log(1 + exp⟨h_n, g⟩)]: gates (..., k), margins (..., n, k) → (...,)."""
    margins = _margins(margins)
    labels = _labels(labels, margins.shape[:-1])
    gates = as_float_array(gates, "gates", min_ndim=1)
    if gates.shape[-1] != margins.shape[-1]:
        raise ValueError(f"gates: expected last axis k = {margins.shape[-1]}, got shape {gates.shape}")
    return _loglik(gates, margins, labels, _weights(weights, labels.shape))[0]


def _margins(margins) -> np.ndarray:
    margins = as_float_array(margins, "margins", min_ndim=2)
    check_finite(margins, "margins")
    k = margins.shape[-1]
    if k == 0:
        raise ValueError("margins: k = 0 heads; expected shape (..., n, k) with k >= 1")
    if k > MAX_HEADS:
        raise ValueError(f"margins: k = {k} heads; the exact projected Newton step supports k <= {MAX_HEADS}")
    if margins.shape[-2] == 0:
        raise ValueError("margins: no comparisons (n = 0)")
    return margins


def _faces(k: int) -> np.ndarray:
    """Indicator rows of the 2^k − 1 non-empty faces of Δ_k, shape (F, k)."""
    return np.array([s for s in product((0.0, 1.0), repeat=k) if any(s)])


def _newton_direction(g, grad, hess, faces):
    """argmin over Δ_k of ½(q−g)ᵀH(q−g) − ∇ᵀ(q−g): (B, k) each → (B, k).

    On face S: H_SS q_S + μ1 = (Hg + ∇)_S, Σ q_S = 1, q_{S^c} = 0 (a (k+1)-square KKT system)."""
    k = g.shape[-1]
    # a tiny proximal term keeps every face's KKT system regular (H may be singular: collinear margins)
    ridge = np.maximum(1e-10 * np.trace(hess, axis1=-2, axis2=-1) / k, 1e-12 * (1.0 + np.abs(grad).max(-1)))
    hess = hess + ridge[:, None, None] * np.eye(k)
    p = faces[None, :, :]  # (1, F, k)
    system = np.zeros((g.shape[0], faces.shape[0], k + 1, k + 1))
    system[..., :k, :k] = p[..., :, None] * hess[:, None] * p[..., None, :] + np.eye(k) * (1.0 - p[..., None, :])
    system[..., :k, k] = p
    system[..., k, :k] = p
    rhs = np.concatenate([p * (np.einsum("bij,bj->bi", hess, g) + grad)[:, None, :],
                          np.ones(p.shape[:-1] + (1,)).repeat(g.shape[0], 0)], axis=-1)
    q = np.linalg.solve(system, rhs[..., None])[..., :k, 0]  # (B, F, k)
    step = q - g[:, None, :]
    model = 0.5 * np.einsum("bfi,bij,bfj->bf", step, hess, step) - np.einsum("bfi,bi->bf", step, grad)
    model = np.where((q >= -1e-12).all(-1), model, np.inf)
    best = np.take_along_axis(q, model.argmin(-1)[:, None, None], axis=1)[:, 0]
    best = np.clip(best, 0.0, None)
    return best / best.sum(-1, keepdims=True)


def _fit_simplex_logistic(margins, labels, weights, *, tol, max_iter):
    """Projected Newton on the flattened batch: margins (B, n, k) → (g (B, k), certificate gap (B,))."""
    k = margins.shape[-1]
    faces = _faces(k)
    g = np.full(margins.shape[:1] + (k,), 1.0 / k)
    for iteration in range(max_iter + 1):
        value, t = _loglik(g, margins, labels, weights)
        grad = np.einsum("bn,bnk->bk", weights * (labels - expit(t)), margins)
        gap = grad.max(-1) - (grad * g).sum(-1)
        active = np.flatnonzero(gap > tol * np.maximum(1.0, np.abs(value)))
        if not active.size:
            return g, gap
        if iteration == max_iter:
            raise ValueError(f"max_iter: the projected Newton method did not reach tol = {tol:g} in {max_iter} "
                             f"iterations (largest certificate gap {float(gap.max()):.3g})")
        m, y, w = margins[active], labels[active], weights[active]
        hess = np.einsum("bn,bni,bnj->bij", w * expit(t[active]) * expit(-t[active]), m, m)
        direction = _newton_direction(g[active], grad[active], hess, faces) - g[active]
        slope, base = (grad[active] * direction).sum(-1), value[active]
        slack = 1e-13 * np.maximum(1.0, np.abs(base))  # rounding level of ℓ: accept quadratic-regime steps
        step = np.ones(active.size)
        for _ in range(60):  # Armijo backtracking, vectorised over the batch
            ok = _loglik(g[active] + step[:, None] * direction, m, y, w)[0] >= base + 1e-4 * step * slope - slack
            if ok.all():
                break
            step = np.where(ok, step, 0.5 * step)
        g[active] = np.clip(g[active] + step[:, None] * direction, 0.0, None)
        g /= g.sum(-1, keepdims=True)


def fit_gates(margins, labels, groups=None, n_groups: int | None = None, weights=None, *,
              tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """ĝ_G = argmax_{g ∈ Δ_k} Σ_{n: group_n = G} w_n [y_n⟨h_n, g⟩ − log(1 + e^{⟨h_n, g⟩})] per group.

    Args:
        margins: h, shape (..., n, k) (:func:`head_margins` for learned heads), 1 ≤ k ≤ MAX_HEADS.
        labels: y, shape (..., n).
        groups: integer ids in [0, n_groups), shape (..., n) (user types, or cells ν·X + x for a gate
            tabular in the context); None = one group (output (..., 1, k)). Every group needs data.
        n_groups: the number of groups G (required with ``groups``).
        weights: optional w_n ≥ 0, shape (..., n).
        tol: stop when the Frank–Wolfe gap max_i ∂_iℓ − ⟨∇ℓ, g⟩ (≥ ℓ* − ℓ(g)) ≤ tol·max(1, |ℓ(g)|).
        max_iter: projected Newton iterations (ValueError naming ``max_iter`` if not enough).

    Returns:
        ĝ, shape (..., G, k), each row on Δ_k. All groups are solved together, each on the n rows with the
        other groups' rows weighed 0 (cost O(G·n·k) per Newton step).
    """
    margins = _margins(margins)
    labels = _labels(labels, margins.shape[:-1])
    weights = _weights(weights, labels.shape)
    tol = float(check_positive_float(tol, "tol"))
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if groups is None:
        ids, size = np.zeros(labels.shape, dtype=int), 1
    else:
        if n_groups is None:
            raise ValueError("n_groups: required when groups are given")
        size = check_int(n_groups, "n_groups", minimum=1)
        ids = _indices(groups, "groups", labels.shape, size)
    masks = _masks(ids, size, weights)  # (..., G, n)
    batch, (n, k) = masks.shape[:-1], margins.shape[-2:]
    flat_m = np.broadcast_to(margins[..., None, :, :], batch + (n, k)).reshape(-1, n, k)
    flat_y = np.broadcast_to(labels[..., None, :], batch + (n,)).reshape(-1, n)
    g, _ = _fit_simplex_logistic(flat_m, flat_y, masks.reshape(-1, n), tol=tol, max_iter=max_iter)
    return g.reshape(batch + (k,))


def fit_user_gates(margins, labels, users, n_users: int, contexts=None, n_contexts: int | None = None,
                   weights=None, **options) -> np.ndarray:
    """Gates for :func:`rlbandit.multiobjective.user_policies`, shape (..., V, X, k).

    With ``contexts`` None the gate is user-constant g(ν) (one MLE per ν, repeated over the X =
    ``n_contexts`` contexts, default 1); with ``contexts`` given it is tabular, g(ν, x) = the MLE on the
    comparisons of user ν at context x (groups ν·X + x; every cell needs data). ``options`` go to
    :func:`fit_gates`.
    """
    n_users = check_int(n_users, "n_users", minimum=1)
    n_contexts = 1 if n_contexts is None else check_int(n_contexts, "n_contexts", minimum=1)
    if contexts is None:
        gates = fit_gates(margins, labels, users, n_users, weights, **options)  # (..., V, k)
        return np.repeat(gates[..., :, None, :], n_contexts, axis=-2)
    users = np.asarray(users)
    contexts = np.asarray(contexts)
    if contexts.shape != users.shape or not np.issubdtype(contexts.dtype, np.integer):
        raise ValueError(f"contexts: expected integer ids of shape {users.shape}, got {contexts.shape}")
    if contexts.size and (contexts.min() < 0 or contexts.max() >= n_contexts):
        raise ValueError(f"contexts: ids must lie in [0, {n_contexts})")
    gates = fit_gates(margins, labels, users * n_contexts + contexts, n_users * n_contexts, weights, **options)
    return gates.reshape(gates.shape[:-2] + (n_users, n_contexts, gates.shape[-1]))


# ---------------------------------------------------------------------------------------------
# Per-head pessimism and optimism
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HeadBounds:
    """Per-head confidence bounds relative to the anchor (shapes (..., k, X, K)):
    lower_i = φθ̂_i − β_i‖φ − ν‖_{Σ_i⁻¹}, upper_i = φθ̂_i + β_i‖φ − ν‖_{Σ_i⁻¹}, width_i = β_i‖φ − ν‖_{Σ_i⁻¹}."""

    lower: np.ndarray
    upper: np.ndarray
    width: np.ndarray


def head_bounds(features, thetas, covs, anchor, betas) -> HeadBounds:
    """Per-head LCB/UCB via :func:`rlbandit.pessimism.lcb_rewards` and :func:`~rlbandit.pessimism.uncertainty`.

    Args:
        features: φ, shape (..., X, K, d).
        thetas: θ̂_i, shape (..., k, d).
        covs: Σ_i, shape (..., k, d, d), symmetric positive definite (:func:`head_covariances`).
        anchor: ν(x), shape (..., X, d): φ(x, π0) offline (``geometry.policy_features``), φ(x, π¹) online.
        betas: β_i ≥ 0, shape (k,) or (..., k).

    Returns:
        :class:`HeadBounds`. Combine with a gate through ``user_policies(bounds.lower, gates, ...)``: the
        gated LCB Σ_i g_i lower_i is a valid lower bound on Σ_i g_i r_i* (relative to ν) whenever every
        head's ellipsoid holds (module docstring).
    """
    features = as_float_array(features, "features", min_ndim=3)
    check_finite(features, "features")
    thetas = as_float_array(thetas, "thetas", min_ndim=2)
    check_finite(thetas, "thetas")
    k, d = thetas.shape[-2:]
    if k == 0:
        raise ValueError("thetas: k = 0 heads; expected shape (..., k, d) with k >= 1")
    if d != features.shape[-1]:
        raise ValueError(f"thetas: expected last axis d = {features.shape[-1]}, got shape {thetas.shape}")
    factors = geometry.cholesky(covs)
    if factors.shape[-3:] != (k, d, d):
        raise ValueError(f"covs: expected shape (..., k, d, d) = (..., {k}, {d}, {d}), got {factors.shape}")
    anchor = as_float_array(anchor, "anchor", min_ndim=2)
    check_finite(anchor, "anchor")
    if anchor.shape[-2:] != (features.shape[-3], d):
        raise ValueError(f"anchor: expected shape (..., X, d) = (..., {features.shape[-3]}, {d}), got {anchor.shape}")
    betas = as_float_array(betas, "betas", min_ndim=1)
    if betas.shape[-1] != k or not np.isfinite(betas).all() or (betas < 0).any():
        raise ValueError(f"betas: expected finite β_i >= 0 of shape (..., k) with k = {k}, got {betas}")
    try:
        batch = np.broadcast_shapes(features.shape[:-3], thetas.shape[:-2], factors.shape[:-3],
                                    anchor.shape[:-2], betas.shape[:-1])
    except ValueError:
        raise ValueError("features: leading (seed) axes of features, thetas, covs, anchor and betas do not "
                         "broadcast") from None
    head = batch + (k,)
    feats = np.broadcast_to(features[..., None, :, :, :], head + features.shape[-3:])
    factors = np.broadcast_to(factors, head + (d, d))
    nu = np.broadcast_to(anchor[..., None, :, :], head + anchor.shape[-2:])
    betas = np.broadcast_to(betas, head)
    width = betas[..., None, None] * pessimism.uncertainty(feats, nu, factors)
    lower = pessimism.lcb_rewards(feats, np.broadcast_to(thetas, head + (d,)), factors, nu, betas)
    return HeadBounds(lower=lower, upper=lower + 2.0 * width, width=width)


def _anchor(logprobs, features, name: str) -> np.ndarray:
    """ν(x) = φ(x, π) = Σ_a π(a|x) φ(x,a) for a validated policy: (..., X, K) on (..., X, K, d) → (..., X, d)."""
    features = as_float_array(features, "features", min_ndim=3)
    check_finite(features, "features")
    logprobs = as_float_array(logprobs, name, min_ndim=2)
    check_logprobs(logprobs, name)
    if logprobs.shape[-2:] != features.shape[-3:-1]:
        raise ValueError(f"{name}: expected shape (..., X, K) = (..., {features.shape[-3]}, {features.shape[-2]}), "
                         f"got {logprobs.shape}")
    return geometry.policy_features(logprobs, features)


def pessimistic_user_policies(features, thetas, covs, betas, gates, ref_logprobs, eta) -> np.ndarray:
    """log O(Σ_i g(ν,x)_i LCB_i, η, π0) per user type, anchor ν(x) = φ(x, π0): shape (..., V, X, K).

    ``gates`` (..., V, X, k) on Δ_k (validated by ``user_policies``); other arguments as :func:`head_bounds`."""
    anchor = _anchor(ref_logprobs, features, "ref_logprobs")
    return user_policies(head_bounds(features, thetas, covs, anchor, betas).lower, gates, ref_logprobs, eta)


def optimistic_user_policies(features, thetas, covs, betas, gates, anchor_logprobs, ref_logprobs, eta) -> np.ndarray:
    """log O(Σ_i g(ν,x)_i UCB_i, η, π0) per user type, the per-head UCB exploration policy around the
    main agent: anchor ν(x) = φ(x, π¹) for ``anchor_logprobs`` = log π¹ (..., X, K). Shape (..., V, X, K)."""
    anchor = _anchor(anchor_logprobs, features, "anchor_logprobs")
    return user_policies(head_bounds(features, thetas, covs, anchor, betas).upper, gates, ref_logprobs, eta)
