"""Confidence radii β of the Bradley–Terry MLE (DESIGN §2–3): one registry, distinct names, one
curvature convention.

Each radius bounds ‖θ̂ − θ*‖_{Σ} ≤ β with probability ≥ 1 − δ when ‖θ*‖ ≤ B and ‖φ‖ ≤ 1, for the
ridge MLE θ̂ and the unnormalised Σ_D = λI + Σ_i z_i z_iᵀ (offline) or the batch form
Σ_t = λI + (1/m) Σ_i z_i z_iᵀ (online), z = φ(x,a¹) − φ(x,a²).

Curvature convention. Every radius divides by a lower bound κ on σ′ along the segment between θ*
and θ̂ (the mean-value step of Zhu, Jordan & Jiao 2023, Lemma 3.1). σ′ is evaluated at the reward
*differences* ⟨z, θ⟩ the likelihood sees: with ‖φ‖ ≤ 1, ‖z‖ ≤ 2, so they range over [−2B, 2B] and

    κ_B = σ′(2B) = 1 / (2 + e^{−2B} + e^{2B})                       (:func:`curvature`)

The papers write γ = 1/(2 + e^{−LB} + e^{LB}) with L bounding the *feature difference* norm
(Zhu et al.) or with rewards bounded by B (Xiong et al.); in this toolkit's normalisation
(‖φ‖ ≤ 1, so ‖z‖ ≤ L = 2) both are κ_B. The data-dependent ``self_normalized`` radius uses the
sharper κ = σ′(max_i‖z_i‖ · max(B, ‖θ̂‖)), which is ≥ κ_B whenever ‖θ̂‖ ≤ B.

Radii (constants of the papers' O(·) set to 1):

- ``self_normalized`` — [½√(2 log(1/δ) + log det(Σ_D/λ)) + √λ B] / κ, data-dependent
  (Abbasi-Yadkori, Pál & Szepesvári 2011, Thm 1, through the MLE's first-order condition);
- ``zhu2023`` — √((d + log(1/δ))/κ_B² + λB²): Zhu et al. (2023) Lemma 3.1, whose normalised
  Σ = (1/n)Σzzᵀ + λ′I and radius √((d + log(1/δ))/(γ²n) + λ′B²) become this one with λ = nλ′;
- ``xiong2024`` — √((d + log(T/δ))/(κ_B² m) + λB²): Xiong et al. (ICML 2024), Algorithm 2's
  batch form (m comparisons per round, a union bound over T rounds).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import expit

from rlbandit._checks import check_int, check_positive_float, real_array
from rlbandit.geometry import covariance

__all__ = ["RADII", "curvature", "self_normalized_radius", "xiong2024_radius", "zhu2023_radius"]


def _dsigmoid(s):
    """σ′(s) = σ(s)σ(−s), without the cancellation of σ(1 − σ) for large |s|."""
    return expit(s) * expit(-np.asarray(s))


def _check_common(reg, theta_bound, delta, *, allow_zero_reg: bool = False) -> tuple[float, float, float]:
    reg = float(check_positive_float(reg, "reg", allow_zero=allow_zero_reg))
    theta_bound = float(check_positive_float(theta_bound, "theta_bound"))
    delta = float(check_positive_float(delta, "delta"))
    if not delta < 1.0:
        raise ValueError(f"delta: must be in (0, 1), got {delta}")
    return reg, theta_bound, delta


def curvature(theta_bound) -> float:
    """κ_B = σ′(2B) = 1/(2 + e^{−2B} + e^{2B}): the least slope of σ on reward differences in [−2B, 2B]."""
    return float(_dsigmoid(2.0 * float(check_positive_float(theta_bound, "theta_bound"))))


def self_normalized_radius(diffs, reg, theta_bound, delta, theta_hat=None) -> np.ndarray:
    """β = [½√(2 log(1/δ) + log det(Σ_D/λ)) + √λ B] / κ, κ = σ′(max_i‖z_i‖ · max(B, ‖θ̂‖)).

    Derivation: ∇L(θ̂) = 0 gives G(θ̂ − θ*) = Σ_i ξ_i z_i − λθ* with ξ_i = y_i − σ(z_iθ*) zero-mean
    and ½-sub-Gaussian, and G = Σ_i σ′(·) z_i z_iᵀ + λI ⪰ κΣ_D (κ ≤ 1, mean value theorem on the
    segment [θ*, θ̂]). Hence ‖θ̂ − θ*‖_{Σ_D} ≤ (‖Σ ξ_i z_i‖_{Σ_D⁻¹} + √λB)/κ, and the self-normalised
    bound of Abbasi-Yadkori et al. (2011, Thm 1) controls the first term w.p. ≥ 1 − δ.

    Args:
        diffs: z, shape (..., n, d); reg: λ > 0; theta_bound: B ≥ ‖θ*‖; delta: δ in (0, 1);
        theta_hat: θ̂ (..., d) (None = 0).

    Returns:
        β, shape diffs.shape[:-2].
    """
    diffs = real_array(diffs, "diffs", min_ndim=2, nonempty=False)  # n = 0 comparisons allowed, d = 0 not
    if diffs.shape[-1] == 0:
        raise ValueError(f"diffs: the feature dimension d must be >= 1, got shape {diffs.shape}")
    reg, theta_bound, delta = _check_common(reg, theta_bound, delta)
    if theta_hat is None:
        theta_hat = np.zeros(diffs.shape[:-2] + diffs.shape[-1:])
    else:
        theta_hat = real_array(theta_hat, "theta_hat", min_ndim=1)
        if theta_hat.shape[-1] != diffs.shape[-1]:
            raise ValueError(f"theta_hat: expected shape (..., {diffs.shape[-1]}) to match diffs, "
                             f"got {theta_hat.shape}")
    d = diffs.shape[-1]
    logdet = np.linalg.slogdet(covariance(diffs, reg))[1] - d * np.log(reg)
    radius = np.max(np.linalg.norm(diffs, axis=-1), axis=-1, initial=0.0) * np.maximum(
        theta_bound, np.linalg.norm(theta_hat, axis=-1))
    return (0.5 * np.sqrt(2.0 * np.log(1.0 / delta) + logdet) + np.sqrt(reg) * theta_bound) / _dsigmoid(radius)


def zhu2023_radius(dim: int, reg, theta_bound, delta) -> float:
    """β = √((d + log(1/δ))/κ_B² + λB²) (Zhu, Jordan & Jiao 2023, Lemma 3.1, unnormalised Σ_D)."""
    check_int(dim, "dim")
    reg, theta_bound, delta = _check_common(reg, theta_bound, delta)
    return float(np.sqrt((dim + np.log(1.0 / delta)) / curvature(theta_bound) ** 2 + reg * theta_bound**2))


def xiong2024_radius(dim: int, T: int, m: int, reg, theta_bound, delta) -> float:
    """β = √((d + log(T/δ))/(κ_B² m) + λB²) (Xiong et al. 2024, Algorithm 2, batch Σ_t)."""
    for name, value in (("dim", dim), ("T", T), ("m", m)):
        check_int(value, name)
    reg, theta_bound, delta = _check_common(reg, theta_bound, delta, allow_zero_reg=True)
    return float(np.sqrt((dim + np.log(T / delta)) / (curvature(theta_bound) ** 2 * m) + reg * theta_bound**2))


#: Radius name → function (their inputs differ: data-dependent or design constants; see each).
RADII: dict[str, Callable] = {
    "self_normalized": self_normalized_radius,
    "zhu2023": zhu2023_radius,
    "xiong2024": xiong2024_radius,
}
