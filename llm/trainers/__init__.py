"""Trainers on causal LMs: SFT, reward models, DPO (every loss of ``rlbandit.losses``), PPO/RLOO,
best-of-N and rejection-sampling fine-tuning.

Every trainer updates ``policy.model`` in place, takes a frozen config dataclass and an explicit
seed, shows a progress bar (loss, reward, KL) when ``progress=True``, and returns its history as
a tidy DataFrame (one row per optimisation step). Before every optimiser step the loss and the
gradients are checked: a NaN/inf raises :class:`NonFiniteLossError` *before* the weights change,
so the model still holds the last good weights (and, with ``checkpoint_dir``, the last good
checkpoint on disk is kept, never overwritten by a diverged one).

Sequence-level conventions (as trl): log π(y|x) is the sum of response-token log-probs, EOS
included; DPO's β is DESIGN's η.

Modules: :mod:`._common` (guard, optimiser, tokenisation), :mod:`.sft`, :mod:`.dpo`,
:mod:`.policy_gradient`, :mod:`.sampling` (best-of-N, rejection sampling), :mod:`.reward_model`.
"""

from __future__ import annotations

from llm.trainers._common import Guard, NonFiniteLossError, torch_generator
from llm.trainers.dpo import DPOConfig, DPOData, dpo, dpo_loss, prepare_dpo_data, reference_logprobs
from llm.trainers.policy_gradient import (
    ADVANTAGES,
    KL_MODES,
    PG_ALGORITHMS,
    PGConfig,
    gae_advantages,
    pg_loss,
    policy_gradient,
)
from llm.trainers.reward_model import LMRewardModel, RMConfig, train_lm_reward_model
from llm.trainers.sampling import RSConfig, best_of_n, rejection_sampling_finetune
from llm.trainers.sft import SFTConfig, sft

__all__ = [
    "ADVANTAGES",
    "KL_MODES",
    "PG_ALGORITHMS",
    "DPOConfig",
    "DPOData",
    "Guard",
    "LMRewardModel",
    "NonFiniteLossError",
    "PGConfig",
    "RMConfig",
    "RSConfig",
    "SFTConfig",
    "best_of_n",
    "dpo",
    "dpo_loss",
    "gae_advantages",
    "pg_loss",
    "policy_gradient",
    "prepare_dpo_data",
    "reference_logprobs",
    "rejection_sampling_finetune",
    "sft",
    "torch_generator",
    "train_lm_reward_model",
]
