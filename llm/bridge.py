"""The bridge: a single-token world where an LM's next-token distribution IS a bandit policy.

The vocabulary has exactly K tokens ``t0 … t{K−1}`` (the last one doubles as EOS and pad), a
context x is the prompt of ``prompt_length`` tokens spelling x in base K, and a response is one
token — an action. So

    π_LM(a | x) = softmax(logits of the LM after prompt(x))[a],   a ∈ {0 … K−1}

is a policy of shape (X, K) and every exact quantity of ``rlbandit`` (Gibbs oracle, value, KL,
suboptimality) applies to it. π0 is the LM at initialisation (optionally fitted to a random
reference policy first). Features and θ* come from an ``rlbandit`` scenario, so
``world.problem`` is a :class:`rlbandit.LinearBandit` whose ``ref_logprobs`` are the LM's.

The same trainers as on text run here unchanged (``generate`` with ``max_new_tokens=1``,
``dpo_loss``, ``policy_gradient``), which is what makes the bridge tests meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BridgeConfig", "SingleTokenWorld", "bt_pair_population", "context_indices", "dpo_exact",
           "exact_preference_pairs", "fit_reference", "make_world", "train_full_batch"]


@dataclass(frozen=True)
class BridgeConfig:
    """Sizes of the single-token world and of its LM."""

    n_contexts: int = 4
    n_actions: int = 6
    dim: int = 3
    theta_norm: float = 2.0
    hidden_size: int = 32
    n_layers: int = 1
    ref_fit_steps: int = 60  # fit π0 to a random reference policy first (0 = the LM at init)
    ref_scale: float = 1.0  # std of the random reference logits
    seed: int = 0

    def __post_init__(self):
        for name in ("n_contexts", "n_actions", "dim", "hidden_size", "n_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.n_actions < 2:
            raise ValueError(f"n_actions: need at least 2 actions (tokens), got {self.n_actions}")
        if self.ref_fit_steps < 0:
            raise ValueError(f"ref_fit_steps: must be >= 0, got {self.ref_fit_steps}")

    @property
    def prompt_length(self) -> int:
        return max(1, int(np.ceil(np.log(self.n_contexts) / np.log(self.n_actions) - 1e-12)))


def _tokenizer(k: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(k)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=f"t{k - 1}"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=f"t{k - 1}", pad_token=f"t{k - 1}",
                                      unk_token=f"t{k - 1}")
    wrapped.padding_side = "left"
    return wrapped


@dataclass(eq=False)
class SingleTokenWorld:
    """A trained-from-scratch LM over K tokens plus the exact bandit it defines."""

    config: BridgeConfig
    policy: object  # llm.models.LanguageModel (trained)
    ref: object  # llm.models.LanguageModel (frozen π0)
    problem: object  # rlbandit.LinearBandit with the LM's π0
    prompts: list  # prompt text of each context

    def prompt_ids(self) -> list[list[int]]:
        return [self.context_tokens(x) for x in range(self.config.n_contexts)]

    def context_tokens(self, x: int) -> list[int]:
        k, length = self.config.n_actions, self.config.prompt_length
        return [(x // k ** i) % k for i in reversed(range(length))]

    def policy_logprobs(self, lm=None) -> np.ndarray:
        """log π_LM(a|x) for every context and token, shape (X, K), float64, exact."""
        return _next_token_logprobs((lm or self.policy).model, self.prompt_ids())

    def contexts_of(self, prompts) -> np.ndarray:
        return context_indices(self.prompts, prompts)

    def reward_fn(self, prompts, responses, samples) -> np.ndarray:
        """r*(x, a) for sampled one-token responses (reads the token ids, since EOS decodes to '')."""
        actions = samples.batch.responses[:, 0].cpu().numpy()
        return self.problem.rewards[self.contexts_of(prompts), actions]


def context_indices(world_prompts, prompts) -> np.ndarray:
    """(n,) int64 context index x of each prompt text among a world's ``world_prompts``."""
    index = {p: i for i, p in enumerate(world_prompts)}
    try:
        return np.array([index[p] for p in prompts], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"prompts: {error.args[0]!r} is not a prompt of this world") from None


def _next_token_logprobs(model, prompt_ids) -> np.ndarray:
    import torch

    ids = torch.as_tensor(prompt_ids, dtype=torch.long, device=next(model.parameters()).device)
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[:, -1].double()
    return torch.log_softmax(logits, -1).cpu().numpy()


def fit_reference(model, logprobs_fn, target, *, steps: int, lr: float) -> None:
    """Fit a bridge LM to a target policy, full batch: Adam on mean_x KL(target(·|x) ‖ π(·|x)) =
    mean_x Σ_a target (log target − log π), exact because the world is enumerable.

    Args: ``logprobs_fn(model)`` → log π of shape (X, A) with gradients; ``target`` (X, A) log-probs.
    """
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        logp = logprobs_fn(model).double()
        loss = (target.exp() * (target - logp)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def make_world(config: BridgeConfig = BridgeConfig()) -> SingleTokenWorld:
    """Build the LM (vocabulary = K actions), fit π0, and the LinearBandit with the LM's π0."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm.models import LanguageModel
    from rlbandit import LinearBandit, ProblemConfig, make_problem

    k = config.n_actions
    tok = _tokenizer(k)
    hf = LlamaConfig(vocab_size=k, hidden_size=config.hidden_size, intermediate_size=2 * config.hidden_size,
                     num_hidden_layers=config.n_layers, num_attention_heads=2, num_key_value_heads=2,
                     max_position_embeddings=config.prompt_length + 2, tie_word_embeddings=False,
                     eos_token_id=k - 1, pad_token_id=k - 1, bos_token_id=k - 1)
    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(hf)
    world_problem = make_problem(ProblemConfig(scenario="random", n_contexts=config.n_contexts, n_actions=k,
                                               dim=config.dim, theta_norm=config.theta_norm, seed=config.seed))
    lm = LanguageModel(model, tok)
    world = SingleTokenWorld(config, lm, None, None, [])
    world.prompts = [" ".join(f"t{t}" for t in world.context_tokens(x)) for x in range(config.n_contexts)]
    if config.ref_fit_steps:
        rng = np.random.default_rng(config.seed + 1)
        target = torch.log_softmax(torch.as_tensor(config.ref_scale * rng.standard_normal((config.n_contexts, k))), -1)
        ids = torch.as_tensor(world.prompt_ids())
        fit_reference(model, lambda m: torch.log_softmax(m(input_ids=ids, use_cache=False).logits[:, -1].double(), -1),
                      target, steps=config.ref_fit_steps, lr=3e-2)
    model.eval()
    world.ref = lm.frozen()
    world.problem = LinearBandit(world_problem.features, world_problem.theta, world.policy_logprobs(world.ref),
                                 world_problem.context_probs)
    return world


def bt_pair_population(problem, *, ref_weighted: bool = False):
    """Every ordered pair (x, a, b), a ≠ b, of a bandit with its Bradley–Terry weight for "a ≻ b",
    d0(x) σ(r*(x,a) − r*(x,b)) — times π0(a|x) π0(b|x) with ``ref_weighted`` (pairs drawn from π0
    instead of uniformly). Returns index arrays (x, a, b) and weights, each (P,)."""
    from scipy.special import expit

    x, a, b = np.meshgrid(np.arange(problem.n_contexts), np.arange(problem.n_actions), np.arange(problem.n_actions),
                          indexing="ij")
    keep = a != b
    x, a, b = x[keep], a[keep], b[keep]
    pair = np.exp(problem.ref_logprobs[x, a] + problem.ref_logprobs[x, b]) if ref_weighted else 1.0
    return x, a, b, problem.context_probs[x] * pair * expit(problem.rewards[x, a] - problem.rewards[x, b])


def exact_preference_pairs(world: SingleTokenWorld):
    """Every ordered pair (x, a, b), a ≠ b, with weight d0(x) · σ(r*(x,a) − r*(x,b)) for "a ≻ b".

    The DPO loss with these weights is the population loss of Bradley–Terry preferences on the
    uniform pair distribution; its minimiser satisfies β(ρ_a − ρ_b) = r*(a) − r*(b), i.e. the
    Gibbs policy O(r*, β, π0). Returns (prompt_ids, chosen_ids, rejected_ids, weights).
    """
    x, a, b, weights = bt_pair_population(world.problem)
    prompt_ids = [world.context_tokens(int(i)) for i in x]
    return prompt_ids, [[int(i)] for i in a], [[int(i)] for i in b], weights


def train_full_batch(model, loss_fn, *, steps: int, lr: float) -> list[float]:
    """Minimise a full-batch loss ``loss_fn()`` (a scalar tensor) with Adam at ``lr``, cosine-decayed
    to lr/100, every step through the NaN guard (:class:`llm.trainers.Guard`, no clipping); the model
    ends in eval mode. Returns the loss per step."""
    import torch

    from llm.trainers import Guard

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.01)
    guard = Guard(model)
    curve = []
    for step in range(steps):
        loss = loss_fn()
        guard.step(loss, opt, step, 0.0, sched)
        curve.append(loss.item())
    model.eval()
    return curve


def dpo_exact(world: SingleTokenWorld, beta: float, *, steps: int = 300, lr: float = 3e-2,
              loss_type: str = "sigmoid", progress: bool = False):
    """Full-batch DPO on the exact preference population; returns the loss curve."""
    from llm.trainers import DPOConfig, dpo_loss, reference_logprobs

    prompt_ids, chosen, rejected, weights = exact_preference_pairs(world)
    ref_c = reference_logprobs(world.ref, prompt_ids, chosen)
    ref_r = reference_logprobs(world.ref, prompt_ids, rejected)
    config = DPOConfig(beta=beta, loss_type=loss_type, steps=steps, lr=lr, batch_size=len(prompt_ids))
    model, pad = world.policy.model, world.policy.tokenizer.pad_token_id
    return train_full_batch(model, lambda: dpo_loss(model, pad, prompt_ids, chosen, rejected, ref_c, ref_r, config,
                                                    weights=weights)[0], steps=steps, lr=lr)
