"""Colours of the report figures: one palette, and one colour per method in every report."""

from __future__ import annotations

__all__ = ["COLORS", "PALETTE", "register_color"]

#: The palette of every report (colour-blind safe).
PALETTE = "colorblind"

#: One method, one colour, in every figure of every report (seaborn's colour-blind palette
#: hex codes, then its dark variant). Keys are the hue levels the studies use; a study adds its own
#: with :func:`register_color`.
_CB = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494", "#ece133",
       "#56b4e9")
_DARK = ("#001c7f", "#b1400d", "#12711c", "#8c0800", "#591e71", "#592f0d", "#a23582", "#3c3c3c", "#b8850a",
         "#006374")
COLORS: dict[str, str] = {
    # exact and offline RLHF
    "gibbs": _CB[7], "exact": _CB[7], "mle": _CB[0], "lcb": _CB[1], "lcb_policy": _CB[2],
    "ensemble_min": _CB[3], "ensemble_mean_std": _CB[4], "offline": "#000000", "offline (π0 data)": "#000000",
    # online enhancers
    "optimistic": _CB[2], "ucb": _CB[1], "uncertainty": _CB[9], "reference": _CB[5], "rejection": _CB[4],
    "self": _CB[0], "uniform": _CB[8],
    # Nash
    "nash_true": _CB[7], "nash_learned": _CB[2], "bt_rlhf": _CB[0], "bt_infinite": _CB[9],
    "fixed_point": _DARK[0], "nash_md": _DARK[1], "extragradient": _DARK[2], "cvxpy": _DARK[3],
    # the oracles practice uses
    "best_of_n": _CB[6], "rejection_sampling": _DARK[4], "reinforce": _DARK[5], "rloo": _DARK[6], "ppo": _CB[3],
    "grpo": _DARK[8], "dr_grpo": _DARK[9], "dpo": _DARK[0], "dpo_offline": _DARK[0], "dpo_online": _DARK[1],
    "ipo": _DARK[2], "xpo": _DARK[3], "kl_options": _DARK[7], "sft": _CB[8],
}


def register_color(name: str, color: str) -> None:
    """Give hue level ``name`` a fixed colour (a matplotlib colour) in every report figure."""
    from matplotlib.colors import is_color_like

    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    if not is_color_like(color):
        raise ValueError(f"color: not a matplotlib colour: {color!r}")
    COLORS[name] = color
