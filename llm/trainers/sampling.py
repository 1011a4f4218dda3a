"""Best-of-N and rejection-sampling fine-tuning (RAFT / ReST-style)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llm.generation import SamplingConfig, generate, missing_eos_penalty
from llm.trainers._common import torch_generator
from llm.trainers.sft import SFTConfig, sft
from rlbandit._checks import check_int, check_positive_float, check_positive_ints

__all__ = ["RSConfig", "best_of_n", "rejection_sampling_finetune"]


def best_of_n(policy, prompts: Sequence[str], n: int, reward_fn: Callable, sampling: SamplingConfig, generator,
              *, missing_eos_penalty_value: float = 1.0):
    """For each prompt draw ``n`` responses and keep the one of highest reward (ties: the first).

    Returns (responses, rewards (m,), all_rewards (m, n)). Its KL to the sampler is at most
    log n − (n − 1)/n (Beirami et al. 2024), the bound the study prints beside the estimate.
    """
    check_int(n, "n")
    prompts = list(prompts)
    flat = [p for p in prompts for _ in range(n)]
    samples = generate(policy, flat, sampling, generator)
    rewards = np.asarray(reward_fn(flat, samples.responses, samples), dtype=np.float64)
    rewards = missing_eos_penalty(rewards, samples.finished, missing_eos_penalty_value).reshape(len(prompts), n)
    best = rewards.argmax(-1)
    picked = [samples.responses[i * n + b] for i, b in enumerate(best)]
    return picked, rewards[np.arange(len(prompts)), best], rewards


@dataclass(frozen=True)
class RSConfig:
    """Rejection-sampling fine-tuning (RAFT / ReST-style): best-of-n samples → SFT, ``rounds`` times."""

    rounds: int = 2
    n: int = 4
    prompts_per_round: int = 32
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(steps=20, lr=5e-4))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    missing_eos_penalty: float = 1.0  # subtracted from unfinished responses' rewards before selection (trl's rule)
    seed: int = 0

    def __post_init__(self):
        check_positive_ints(self, ("rounds", "n", "prompts_per_round"))
        check_positive_float(self.missing_eos_penalty, "missing_eos_penalty", allow_zero=True)


def rejection_sampling_finetune(policy, prompts: Sequence[str], reward_fn: Callable, config: RSConfig, *,
                                progress: bool = True) -> pd.DataFrame:
    """Each round: best-of-n responses of the current policy on fresh prompts, then SFT on them."""
    from dataclasses import replace

    rng = np.random.default_rng(config.seed)
    gen = torch_generator(config.seed, policy.device)
    rows = []
    for r in range(config.rounds):
        batch_prompts = [prompts[i] for i in rng.integers(len(prompts), size=config.prompts_per_round)]
        picked, best, all_r = best_of_n(policy, batch_prompts, config.n, reward_fn, config.sampling, gen,
                                        missing_eos_penalty_value=config.missing_eos_penalty)
        keep = [i for i, text in enumerate(picked) if text.strip()]
        if not keep:
            raise ValueError("reward_fn: every selected response is empty; nothing to fine-tune on")
        losses = sft(policy, [batch_prompts[i] for i in keep], [picked[i] for i in keep],
                     replace(config.sft, seed=config.seed + r), progress=progress, desc=f"rs round {r}")
        rows.append({"round": r, "best_reward": float(best.mean()), "sample_reward": float(all_r.mean()),
                     "sft_loss": losses[-1] if losses else float("nan")})
    return pd.DataFrame(rows)


