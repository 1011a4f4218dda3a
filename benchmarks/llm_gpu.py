"""Study ``llm_gpu``: the ``llm`` study at GPU scale (one GPU, bf16, full fine-tuning of SmolLM2-135M).

The same runs, rows and report as :mod:`benchmarks.llm` — only the scale changes: 512 comparisons
over 64 training prompts, 32 held-out prompts × 4 responses, 48-token responses, 40 policy-gradient
rollouts of 16 prompts × 4 samples, 3 seeds, η ∈ {0.05, 0.2}, full fine-tuning instead of LoRA.
``bash benchmarks/llm_gpu.sh`` runs it (spawned workers share the one GPU) and writes
``reports/llm_gpu/``; sized to finish in under 8 minutes on one H100/H200-class GPU with 6 workers
(an estimate from the CPU timings: it has not yet run on a GPU).
"""

from __future__ import annotations

from benchmarks import llm
from rlbandit.study import Study

_GPU = dict(model="smollm2-135m-instruct", adaptation="full", n_comparisons=512, train_prompts=64, eval_prompts=32,
            eval_samples=4, max_new_tokens=48, pg_steps=40, prompts_per_step=16, samples_per_prompt=4,
            eval_every=10, pg_lr=1e-5, dpo_lr=5e-6, dpo_steps=100, batch_size=32, bon_max=32)


def configs(smoke: bool) -> list[llm.LLMConfig]:
    """Full: the GPU scale above; smoke: the ``llm`` study's smoke sweep (test-size LM)."""
    if smoke:
        return llm.configs(True)
    return llm.sweep(_GPU, llm.ETAS, (0, 1, 2))


STUDY = Study(name="llm_gpu", description=llm.STUDY.description + " GPU scale: full fine-tuning, 512 comparisons, "
              "3 seeds.", configs=configs, run=llm.run, report=llm.report, tags=("llm", "gpu"),
              symbols=llm.STUDY.symbols, timing_columns=llm.STUDY.timing_columns)
