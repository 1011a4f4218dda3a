"""The sequence-level bridge: a world where every response an LM can sample is enumerable.

A response is 1 … L content tokens from a vocabulary of V words, followed by EOS when it stops
before the length cap L (``SamplingConfig(max_new_tokens=L)``); EOS is barred at the first
position, so the sampler can produce exactly

    c₁ EOS, c₁c₂ EOS, …, c₁…c_{L−1} EOS   (finished)   and   c₁…c_L   (unfinished, no EOS),

N = Σ_{l=1}^{L} V^l responses per prompt, each content string once. The LM's probability of a
response is the product of its next-token probabilities, EOS included,

    log π(y|x) = Σ_t log π(y_t | x, y_<t),                                   (1)

so π over the N responses is a bandit policy of shape (X, N) and the sequence-level Gibbs policy
π*(y|x) ∝ π0(y|x) exp(r(x,y)/η) and KL(π̂‖π*) are exact (DESIGN §6, "Sequence-level bridge").
Unlike the single-token bridge (:mod:`llm.bridge`) this checks what only sequences have: credit
assignment across tokens, the per-token KL summed over a response (E_π Σ_t k1_t = KL(π‖π0)) and
EOS handling (an unfinished response is scored without EOS; a finished one with it).

How EOS-after-the-first and the closed output set are enforced exactly: the LM is a Llama whose
output layer sets to −inf the logits of every token that is not a response token (pad, unk, the
prompt tokens) and, where the *input* token is a prompt token (the position that predicts a
response's first token), the logit of EOS. The trunk appends that "after the prompt" flag to its
last hidden state as one extra channel, so the rule holds on every path that turns hidden states
into logits — the forward pass, cached generation and the padding-free packed path of the DPO
trainer — and the enumerated probabilities sum to one up to float32 rounding.

Contexts are single prompt tokens ``x0 … x{X−1}``; features φ(x, y) and θ* come from an
``rlbandit`` scenario over the N responses, so ``world.problem`` is a :class:`rlbandit.LinearBandit`
whose ``ref_logprobs`` are the LM's π0.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from rlbandit._checks import check_eta, check_int, check_positive_float

__all__ = [
    "SEQUENCE_METHODS",
    "SequenceBridgeConfig",
    "SequenceWorld",
    "dpo_exact_sequences",
    "exact_sequence_preference_pairs",
    "make_sequence_world",
    "method_target",
    "run_method",
    "sampled_sequence_kl",
    "token_level_fixed_point",
]

#: the most responses per prompt the enumeration accepts (Σ_l V^l); keeps the exact world exact *and* cheap.
MAX_RESPONSES = 4096


@dataclass(frozen=True)
class SequenceBridgeConfig:
    """Sizes of the sequence world and of its LM.

    Attributes:
        n_contexts: X prompts (one token each).
        n_tokens: V content tokens (EOS and pad come on top).
        max_length: L, the response length cap (``max_new_tokens``); N = Σ_{l≤L} V^l responses.
        dim, theta_norm: d and ‖θ*‖ of the linear reward over the N responses (rlbandit "random").
        hidden_size, n_layers, n_heads: the Llama LM.
        ref_fit_steps: full-batch steps fitting π0 to a random autoregressive reference first
            (0 = the LM at initialisation).
        ref_scale: std of that reference's next-token logits; eos_bias: added to its EOS logit.
        seed: seeds the LM, the reference target and the reward scenario.
    """

    n_contexts: int = 3
    n_tokens: int = 3
    max_length: int = 3
    dim: int = 4
    theta_norm: float = 2.0
    hidden_size: int = 32
    n_layers: int = 1
    n_heads: int = 2
    ref_fit_steps: int = 200
    ref_scale: float = 1.0
    eos_bias: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("n_contexts", "n_tokens", "max_length", "dim", "hidden_size", "n_layers", "n_heads"):
            check_int(getattr(self, name), name)
        check_int(self.ref_fit_steps, "ref_fit_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        check_positive_float(self.theta_norm, "theta_norm")
        check_positive_float(self.ref_scale, "ref_scale", allow_zero=True)
        if not np.isfinite(self.eos_bias):
            raise ValueError(f"eos_bias: must be finite, got {self.eos_bias}")
        if self.hidden_size % self.n_heads:
            raise ValueError(f"n_heads: must divide hidden_size = {self.hidden_size}, got {self.n_heads}")
        if self.n_responses > MAX_RESPONSES:
            raise ValueError(f"max_length: {self.n_tokens} tokens and length {self.max_length} give "
                             f"{self.n_responses} responses per prompt, more than {MAX_RESPONSES} to enumerate")

    @property
    def n_responses(self) -> int:
        """N = Σ_{l=1}^{L} V^l."""
        return sum(self.n_tokens ** length for length in range(1, self.max_length + 1))


# ----------------------------------------------------------------------------------------------
# Vocabulary and the masked Llama


@dataclass(frozen=True)
class _Vocab:
    """Token ids: content 0 … V−1, then EOS, pad, unk, then the X prompt tokens."""

    n_tokens: int
    n_contexts: int

    @property
    def eos(self) -> int:
        return self.n_tokens

    @property
    def pad(self) -> int:
        return self.n_tokens + 1

    @property
    def unk(self) -> int:
        return self.n_tokens + 2

    def context(self, x: int) -> int:
        return self.n_tokens + 3 + x

    @property
    def size(self) -> int:
        return self.n_tokens + 3 + self.n_contexts

    def words(self) -> dict:
        names = {f"w{i}": i for i in range(self.n_tokens)}
        names.update({"<eos>": self.eos, "<pad>": self.pad, "<unk>": self.unk})
        names.update({f"x{x}": self.context(x) for x in range(self.n_contexts)})
        return names


def _tokenizer(vocab: _Vocab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=vocab.words(), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    wrapped.padding_side = "left"
    return wrapped


_CLASSES: dict = {}


def _model_classes():
    """The masked Llama classes, built on first use (transformers imports lazily); module-level
    names through ``__getattr__`` so the models pickle."""
    if _CLASSES:
        return _CLASSES
    import torch
    from transformers import LlamaForCausalLM, LlamaModel

    class SequenceBridgeTrunk(LlamaModel):
        """A Llama trunk whose last hidden state carries one extra channel: 1 where the input token is
        a prompt token (so the next token is a response's first), 0 elsewhere. ``hidden_states`` (the
        value head's input) keep the width H: transformers ties their last entry before the flag is added."""

        def __init__(self, config):
            super().__init__(config)
            after = torch.zeros(config.vocab_size, dtype=torch.bool)
            after[list(config.prompt_token_ids)] = True
            self.register_buffer("after_prompt", after, persistent=False)

        def forward(self, input_ids=None, **kwargs):
            if input_ids is None:
                raise ValueError("input_ids: the sequence-bridge LM reads token ids (its EOS rule depends on them); "
                                 "inputs_embeds are not supported")
            out = super().forward(input_ids=input_ids, **kwargs)
            flag = self.after_prompt[input_ids].to(out.last_hidden_state.dtype)[..., None]
            out.last_hidden_state = torch.cat([out.last_hidden_state, flag], dim=-1)
            return out

    class MaskedHead(torch.nn.Module):
        """logits = W h, then −inf on non-response tokens everywhere and on EOS after a prompt token."""

        def __init__(self, config):
            super().__init__()
            self.hidden_size = config.hidden_size
            self.weight = torch.nn.Parameter(torch.empty(config.vocab_size, config.hidden_size))
            torch.nn.init.normal_(self.weight, std=config.initializer_range)
            barred = torch.ones(config.vocab_size, dtype=torch.bool)
            barred[list(config.response_token_ids)] = False
            first = barred.clone()
            first[config.eos_token_id] = True
            self.register_buffer("barred", barred, persistent=False)
            self.register_buffer("barred_first", first, persistent=False)

        def forward(self, hidden):
            if hidden.shape[-1] != self.hidden_size + 1:
                raise ValueError(f"hidden: expected the trunk's {self.hidden_size} channels plus the prompt flag, "
                                 f"got width {hidden.shape[-1]}")
            logits = torch.nn.functional.linear(hidden[..., :self.hidden_size], self.weight)
            first = hidden[..., self.hidden_size:] > 0.5
            barred = torch.where(first, self.barred_first, self.barred)
            return logits.masked_fill(barred, float("-inf"))

    class SequenceBridgeLM(LlamaForCausalLM):
        """Llama with the flagged trunk and the masked head (see the module docstring)."""

        def __init__(self, config):
            super().__init__(config)
            self.model = SequenceBridgeTrunk(config)
            self.lm_head = MaskedHead(config)

    for cls in (SequenceBridgeTrunk, MaskedHead, SequenceBridgeLM):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
        _CLASSES[cls.__name__] = cls
    return _CLASSES


def __getattr__(name: str):
    if name in ("SequenceBridgeTrunk", "MaskedHead", "SequenceBridgeLM"):
        return _model_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_model(config: SequenceBridgeConfig, vocab: _Vocab):
    import torch
    from transformers import LlamaConfig

    hf = LlamaConfig(vocab_size=vocab.size, hidden_size=config.hidden_size, intermediate_size=2 * config.hidden_size,
                     num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
                     num_key_value_heads=config.n_heads, max_position_embeddings=1 + config.max_length,
                     tie_word_embeddings=False, eos_token_id=vocab.eos, pad_token_id=vocab.pad, bos_token_id=None)
    hf.prompt_token_ids = [vocab.context(x) for x in range(config.n_contexts)]
    hf.response_token_ids = list(range(vocab.n_tokens + 1))  # content tokens and EOS
    torch.manual_seed(config.seed)  # HF initialisers draw from the global generator
    return _model_classes()["SequenceBridgeLM"](hf)


# ----------------------------------------------------------------------------------------------
# The world


@dataclass(eq=False)
class SequenceWorld:
    """An LM over V content tokens, the enumeration of its responses and the exact bandit it defines.

    ``responses[n]`` is the token-id tuple of response n (EOS included where it stops early), in
    the order: length 1, 2, …, L, lexicographic within a length. Shapes: X contexts, N responses.
    """

    config: SequenceBridgeConfig
    policy: object  # llm.models.LanguageModel, trainable (π0 until a trainer updates it)
    ref: object  # frozen π0
    problem: object  # rlbandit.LinearBandit over (X, N) with the LM's π0
    prompts: list  # prompt text of each context
    responses: list  # N token-id tuples
    vocab: _Vocab = field(repr=False)

    # -- structure ------------------------------------------------------------------------------
    @property
    def n_responses(self) -> int:
        return len(self.responses)

    @property
    def finished(self) -> np.ndarray:
        """(N,) bool: the response ends with EOS (shorter than L content tokens)."""
        return np.array([r[-1] == self.vocab.eos for r in self.responses])

    @property
    def lengths(self) -> np.ndarray:
        """(N,) tokens per response, EOS included (what the trainers' masks count)."""
        return np.array([len(r) for r in self.responses])

    def prompt_ids(self) -> list[list[int]]:
        return [[self.vocab.context(x)] for x in range(self.config.n_contexts)]

    def response_index(self, tokens) -> int:
        """Index n of a response given its token ids (padding removed)."""
        try:
            return self._index[tuple(int(t) for t in tokens)]
        except KeyError:
            raise ValueError(f"tokens: {list(tokens)} is not a response this world's sampler can produce") from None

    def contexts_of(self, prompts) -> np.ndarray:
        index = {p: i for i, p in enumerate(self.prompts)}
        try:
            return np.array([index[p] for p in prompts], dtype=np.int64)
        except KeyError as error:
            raise ValueError(f"prompts: {error.args[0]!r} is not a prompt of this world") from None

    def responses_of(self, samples) -> np.ndarray:
        """(n,) enumeration index of each sampled response (read from the token ids, since EOS and
        pad decode to nothing)."""
        ids = samples.batch.responses.cpu().numpy()
        lengths = samples.batch.response_mask.sum(-1).cpu().numpy()
        return np.array([self.response_index(row[:n]) for row, n in zip(ids, lengths)], dtype=np.int64)

    def reward_fn(self, prompts, responses, samples) -> np.ndarray:
        """r*(x, y) of sampled responses, the ``reward_fn`` of :func:`llm.trainers.policy_gradient`."""
        return self.problem.rewards[self.contexts_of(prompts), self.responses_of(samples)]

    # -- exact log-probabilities ----------------------------------------------------------------
    def enumeration_batch(self, device=None):
        """The batch of every (x, y): row x·N + n holds prompt x and response n (layout of
        :mod:`llm.generation`)."""
        from llm.generation import make_batch

        prompts = [p for p in self.prompt_ids() for _ in self.responses]
        responses = [list(r) for _ in range(self.config.n_contexts) for r in self.responses]
        return make_batch(prompts, responses, self.vocab.pad, device)

    def _logprobs(self, model, per_token: bool = False):
        """Torch log π(y|x) (X, N) through :func:`llm.generation.sequence_logprobs` (gradients flow);
        with ``per_token`` also the (X, N, L) per-token terms of (1)."""
        from llm.generation import sequence_logprobs

        batch = self.enumeration_batch(next(model.parameters()).device)
        total, tokens = sequence_logprobs(model, batch, per_token=True)
        shape = (self.config.n_contexts, self.n_responses)
        total = total.reshape(shape)
        return (total, tokens.reshape(shape + (tokens.shape[-1],))) if per_token else total

    def _model(self, lm):
        lm = self.policy if lm is None else lm
        # a LanguageModel, or the causal LM itself (whose own ``.model`` is its trunk)
        return lm.model if hasattr(lm, "tokenizer") else lm

    def sequence_logprobs(self, lm=None) -> np.ndarray:
        """Exact log π(y|x) for every context and response, shape (X, N), float64 (computed in float32
        by the trainers' masked sum, EOS included). ``lm``: a LanguageModel or its model (default: the policy)."""
        import torch

        model = self._model(lm)
        with torch.no_grad():
            return self._logprobs(model).double().cpu().numpy()

    def token_logprobs(self, lm=None) -> np.ndarray:
        """log π(y_t | x, y_<t) of every response token, shape (X, N, L), 0 past a response's end."""
        import torch

        model = self._model(lm)
        with torch.no_grad():
            return self._logprobs(model, per_token=True)[1].double().cpu().numpy()

    def kl_to_optimal(self, eta, lm=None) -> float:
        """E_x KL(π(·|x) ‖ π*(·|x)) with π* = O(r*, η, π0) over the N responses."""
        from rlbandit import kl

        return _weighted(self.problem.context_probs, kl(self.sequence_logprobs(lm), self.problem.optimal_policy(eta)))

    def __post_init__(self):
        self._index = {r: n for n, r in enumerate(self.responses)}


def _weighted(context_probs, per_context) -> float:
    return float(np.asarray(context_probs) @ np.asarray(per_context))


def _enumerate_responses(n_tokens: int, max_length: int, eos: int) -> list[tuple]:
    out = []
    for length in range(1, max_length + 1):
        for content in itertools.product(range(n_tokens), repeat=length):
            out.append(content + ((eos,) if length < max_length else ()))
    return out


def _random_reference(config: SequenceBridgeConfig, responses, eos: int) -> np.ndarray:
    """log-probs (X, N) of a random autoregressive policy: at every prefix, softmax of
    ref_scale·N(0,1) logits over the allowed next tokens (EOS gets + eos_bias, and no mass first)."""
    from scipy.special import log_softmax

    rng = np.random.default_rng([config.seed, 1])
    v, length = config.n_tokens, config.max_length
    nodes = {}
    for x in range(config.n_contexts):
        for t in range(length):
            for prefix in itertools.product(range(v), repeat=t):
                logits = config.ref_scale * rng.standard_normal(v + 1)
                logits[v] = logits[v] + config.eos_bias if t > 0 else -np.inf
                nodes[(x, prefix)] = log_softmax(logits)
    out = np.zeros((config.n_contexts, len(responses)))
    for x in range(config.n_contexts):
        for n, resp in enumerate(responses):
            for t, tok in enumerate(resp):
                out[x, n] += nodes[(x, tuple(resp[:t]))][v if tok == eos else tok]
    return out


def make_sequence_world(config: SequenceBridgeConfig = SequenceBridgeConfig()) -> SequenceWorld:
    """Build the vocabulary, the masked LM, fit π0 (optionally), and the LinearBandit over the N
    enumerated responses with the LM's exact π0."""
    import torch

    from llm.bridge import fit_reference
    from llm.models import LanguageModel
    from rlbandit import LinearBandit, ProblemConfig, make_problem

    vocab = _Vocab(config.n_tokens, config.n_contexts)
    responses = _enumerate_responses(config.n_tokens, config.max_length, vocab.eos)
    model = _build_model(config, vocab)
    lm = LanguageModel(model, _tokenizer(vocab))
    scenario = make_problem(ProblemConfig(scenario="random", n_contexts=config.n_contexts,
                                          n_actions=len(responses), dim=config.dim, theta_norm=config.theta_norm,
                                          seed=config.seed))
    world = SequenceWorld(config, lm, None, None, [f"x{x}" for x in range(config.n_contexts)], responses, vocab)
    if config.ref_fit_steps:
        # Fit π0 by KL(target ‖ π) over whole responses: full batch, exact (the enumeration is small).
        target = torch.as_tensor(_random_reference(config, responses, vocab.eos))
        # lr 1e-2: 3e-2 breaks attention (a bigram LM)
        fit_reference(model, world._logprobs, target, steps=config.ref_fit_steps, lr=1e-2)
    model.eval()
    world.ref = lm.frozen()
    world.problem = LinearBandit(scenario.features, scenario.theta, world.sequence_logprobs(world.ref),
                                 scenario.context_probs)
    return world


# ----------------------------------------------------------------------------------------------
# Exact preferences and DPO


def exact_sequence_preference_pairs(world: SequenceWorld):
    """Every ordered pair (x, y, y′), y ≠ y′, weighted by d0(x) π0(y|x) π0(y′|x) σ(r*(x,y) − r*(x,y′)).

    The population of BT preferences on pairs drawn from π0: both orders of a pair carry
    d0 π0(y)π0(y′) in total. Returns index arrays (x, chosen, rejected) and weights, each (P,).
    """
    from scipy.special import expit

    problem = world.problem
    x, a, b = np.meshgrid(np.arange(problem.n_contexts), np.arange(problem.n_actions), np.arange(problem.n_actions),
                          indexing="ij")
    keep = a != b
    x, a, b = x[keep], a[keep], b[keep]
    ref = problem.ref_logprobs
    r = problem.rewards
    weights = problem.context_probs[x] * np.exp(ref[x, a] + ref[x, b]) * expit(r[x, a] - r[x, b])
    return x, a, b, weights


def dpo_exact_sequences(world: SequenceWorld, beta: float, *, policy=None, steps: int = 600, lr: float = 5e-3,
                        loss_type: str = "sigmoid") -> list[float]:
    """Full-batch DPO on the exact preference population of :func:`exact_sequence_preference_pairs`.

    The loss Σ_p w_p ℓ(β(ρ_chosen − ρ_rejected)) / Σ_p w_p (ρ = log π/π0,
    ``rlbandit.losses.preference_loss``, as :func:`llm.trainers.dpo_loss`) needs log π only for the
    X·N enumerated responses: one forward pass per step, then gathered into all P = X·N(N−1) pairs.
    Its minimiser over a class that can represent every π(·|x) is O(r*, β, π0). Trains ``policy``
    (default ``world.policy``) in place; returns the loss per step.
    """
    import torch

    from llm.trainers import Guard
    from rlbandit.losses import preference_loss

    lm = world.policy if policy is None else policy
    check_eta(beta)
    x, a, b, weights = exact_sequence_preference_pairs(world)
    ref = torch.from_numpy(np.array(world.problem.ref_logprobs))
    w = torch.as_tensor(weights / weights.sum())
    xt, at, bt = (torch.as_tensor(i) for i in (x, a, b))
    lengths = torch.as_tensor(world.lengths, dtype=torch.float64)
    model = lm.model
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.01)
    guard = Guard(model)
    curve = []
    for step in range(steps):
        logp = world._logprobs(model).double().cpu()
        per = preference_loss(logp[xt, at], logp[xt, bt], ref[xt, at], ref[xt, bt], beta, loss_type,
                              chosen_lengths=lengths[at], rejected_lengths=lengths[bt])
        loss = (w * per).sum()
        guard.step(loss, opt, step, 0.0, sched)
        curve.append(loss.item())
    model.eval()
    return curve


# ----------------------------------------------------------------------------------------------
# Exact fixed points of token-level policy gradient


def _nodes(world: SequenceWorld):
    """The prefix tree: for depth t, node index of each response's token t and its child slot.

    Returns (node (N, L), child (N, L), mask (N, L), widths [V, V+1, …]): node = index of the prefix
    y_<t among the V^t content prefixes of length t, child = y_t (EOS in slot V).
    """
    v, length, eos = world.config.n_tokens, world.config.max_length, world.vocab.eos
    n = world.n_responses
    node, child, mask = (np.zeros((n, length), dtype=np.int64) for _ in range(3))
    for i, resp in enumerate(world.responses):
        for t, tok in enumerate(resp):
            node[i, t] = int(np.ravel_multi_index(resp[:t], (v,) * t)) if t else 0
            child[i, t] = v if tok == eos else tok
            mask[i, t] = 1
    widths = [v] + [v + 1] * (length - 1)
    return node, child, mask.astype(bool), widths


def _node_tables(world: SequenceWorld, token_logprobs: np.ndarray):
    """Conditional log-probs at every node, list over depth t of (X, V^t, width_t), from the per-token
    log-probs (X, N, L) of the enumerated responses (every edge lies on some response)."""
    node, child, mask, widths = _nodes(world)
    x_count, v = world.config.n_contexts, world.config.n_tokens
    tables = [np.full((x_count, v ** t, w), -np.inf) for t, w in enumerate(widths)]
    for t, table in enumerate(tables):
        rows = np.flatnonzero(mask[:, t])
        table[:, node[rows, t], child[rows, t]] = token_logprobs[:, rows, t]
    return tables


def _compose(world: SequenceWorld, tables) -> np.ndarray:
    """log π(y|x) = Σ_t log π(y_t | node_t), shape (X, N), from node tables (equation (1))."""
    node, child, mask, _ = _nodes(world)
    out = np.zeros((world.config.n_contexts, world.n_responses))
    for t, table in enumerate(tables):
        rows = np.flatnonzero(mask[:, t])
        out[:, rows] += table[:, node[rows, t], child[rows, t]]
    return out


def token_level_fixed_point(world: SequenceWorld, rewards, eta, kl_kind: str = "k1", kl_mode: str = "reward",
                            temperature_scale=None) -> np.ndarray:
    """The exact fixed point (tabular policy per prefix, exact expected gradients) of token-level
    policy gradient on sequence rewards r(x, y) (X, N) with the per-token KL estimator ``kl_kind``:

    - ``kl_mode="reward"`` (R = r − η Σ_t k1_t, any unbiased baseline): ∇ of E r − η KL(π‖π0) of
      whole responses, so the sequence Gibbs policy O(r, η, π0) (``rlbandit.gibbs``).
    - ``kl_mode="loss"``: the loss adds η Σ_t k(log π(y_t|s_t), log π0(y_t|s_t)) with the states s_t
      sampled from π and not differentiated. At each prefix s the stationarity condition is that of a
      bandit over the next token with reward Q(s, a) = E_π[r | s, a] — the expected *reward* to go,
      with no future KL — and the KL option of ``rlbandit.policy_gradient.fixed_point``:
      k3 → the forward-KL policy π(a|s) = η π0(a|s)/(λ − Q(s,a)) (``forward_kl_policy``); k2 →
      Gibbs over the next token, O(Q(s,·), η, π0(·|s)) — which is *not* the sequence Gibbs policy,
      since Q misses the future KL; k1 → greedy (E_π ∇ log π = 0: no regularisation). Solved by
      backward induction from the last token, Q(s, a) = r(x, s·a) at a response's end and
      Σ_b π(b|s·a) Q(s·a, b) otherwise.

    ``temperature_scale`` (X,) multiplies η per context (advantages divided by a per-prompt σ_x
    act as η σ_x, since each rule is invariant to (r, η) → (r/c, η/c)).
    Returns log-probs over the responses, shape (X, N).
    """
    from rlbandit import gibbs
    from rlbandit.policy_gradient import fixed_point

    eta = check_eta(eta)
    rewards = np.asarray(rewards, dtype=np.float64)
    x_count, v = world.config.n_contexts, world.config.n_tokens
    if rewards.shape != (x_count, world.n_responses):
        raise ValueError(f"rewards: expected shape {(x_count, world.n_responses)}, got {rewards.shape}")
    scale = np.ones(x_count) if temperature_scale is None else np.asarray(temperature_scale, dtype=np.float64)
    if scale.shape != (x_count,) or not np.all(np.isfinite(scale)) or (scale <= 0).any():
        raise ValueError(f"temperature_scale: expected {x_count} finite numbers > 0, got {temperature_scale!r}")
    if kl_mode == "reward":
        if kl_kind != "k1":
            raise ValueError(f"kl_kind: the trainers put the sequence k1 in the reward; no fixed point for "
                             f"{kl_kind!r} in the reward")
        return gibbs(rewards / scale[:, None], world.problem.ref_logprobs, eta)
    if kl_mode != "loss":
        raise ValueError(f"kl_mode: expected 'reward' or 'loss', got {kl_mode!r}")
    # per-context temperature η·c_x ≡ rewards r/c_x at η (every rule is invariant to that rescaling)
    scaled = rewards / scale[:, None]
    ref_tables = _node_tables(world, world.token_logprobs(world.ref))
    node, child, mask, widths = _nodes(world)
    length = world.config.max_length
    tables = [None] * length
    q_next = None  # expected reward to go at the nodes of depth t + 1, (X, V^(t+1))
    for t in reversed(range(length)):
        q = np.full((x_count, v ** t, widths[t]), np.nan)
        ends = np.flatnonzero(mask[:, t] & ((t + 1 == length) | ~mask[:, min(t + 1, length - 1)]))
        q[:, node[ends, t], child[ends, t]] = scaled[:, ends]
        if t + 1 < length:
            q[:, :, :v] = q_next.reshape(x_count, v ** t, v)  # a content token leads to node s·a
        ref = ref_tables[t]
        flat_q, flat_ref = q.reshape(-1, widths[t]), ref.reshape(-1, widths[t])
        flat_q = np.where(np.isfinite(flat_ref), flat_q, 0.0)
        logp = fixed_point(flat_q, flat_ref, eta, kl_kind, "loss").reshape(ref.shape)
        tables[t] = logp
        q_next = (np.exp(logp) * np.where(np.isfinite(ref), q, 0.0)).sum(-1)
    return _compose(world, tables)


def _std_under(logprobs, rewards) -> np.ndarray:
    p = np.exp(logprobs)
    mean = (p * rewards).sum(-1, keepdims=True)
    return np.sqrt(np.maximum((p * (rewards - mean) ** 2).sum(-1), 0.0))


def method_target(world: SequenceWorld, config) -> tuple[str, np.ndarray | None]:
    """(name, log-probs (X, N)) of the exact fixed point a PG config converges to, or (name, None)
    where there is no closed form here. Exact-moment approximation of group statistics (as
    ``rlbandit.policy_gradient``):

    - the reward the trainer sees is r* − missing_eos_penalty on unfinished responses;
    - KL in the reward: Gibbs for every advantage (LOO, GAE, group mean, std-normalised: a
      per-prompt positive rescaling of the exact gradient keeps its zeros);
    - KL in the loss: :func:`token_level_fixed_point` with η scaled per prompt by the advantage's
      scale relative to the exact R − E_π R: G/(G−1) for a group mean that includes the sample
      itself (E[(R_i − R̄)∇log π_i] = (G−1)/G E[(R_i − μ)∇log π_i]), times σ_x(π) for GRPO's std
      division, solved self-consistently (σ ← std of r under the fixed point at η σ, from σ_{π0});
      with ``bias_correction_kl`` (the KL term weighted by ρ = π/π_old, trl's GRPO default) k1 and k3
      act as k2 (next-token Gibbs, "token_gibbs");
    - no closed form: loss_type "grpo" (a 1/|y| weight per response), GAE with the KL in the loss
      (its whitening divides by a batch std of advantages) and the adaptive KL controller.
    """
    rewards = world.problem.rewards - config.missing_eos_penalty * (~world.finished)[None, :]
    if config.target_kl is not None:
        return "adaptive_eta", None
    if config.loss_type == "grpo":
        return "length_weighted", None
    if config.kl_mode == "reward":
        return "gibbs", token_level_fixed_point(world, rewards, config.eta, "k1", "reward")
    if config.advantage == "gae":
        return "whitened", None  # the batch std of GAE advantages rescales η, and it has no closed form
    kind = config.kl_kind
    if getattr(config, "bias_correction_kl", False):
        # E_{a∼π}[∇(ρ k(a))] at ρ = 1 is ∇ Σ_a π(a) k(a): = ∇ KL(π(·|s)‖π0(·|s)) for k1 and k3 — the
        # k2-in-the-loss rule (next-token Gibbs) — and no KL at all for k2
        if kind == "k2":
            return "ratio_weighted_k2", None
        kind = "k2"
    name = {"k1": "greedy", "k2": "token_gibbs", "k3": "token_forward_kl"}[kind]
    group = config.samples_per_prompt
    scale = np.ones(world.config.n_contexts)
    if config.advantage in ("grpo", "dr_grpo") and group > 1:
        scale = scale * group / (group - 1)
    if config.advantage != "grpo":
        return name, token_level_fixed_point(world, rewards, config.eta, kind, "loss", scale)
    sigma = _std_under(world.problem.ref_logprobs, rewards)
    for _ in range(2000):
        logp = token_level_fixed_point(world, rewards, config.eta, kind, "loss", scale * np.maximum(sigma, 1e-12))
        new = _std_under(logp, rewards)
        if np.max(np.abs(new - sigma)) < 1e-12:
            break
        sigma = new
    return f"{name}_std_normalised", logp


# ----------------------------------------------------------------------------------------------
# Sampled KL and the method runner


def sampled_sequence_kl(world: SequenceWorld, lm=None, *, samples_per_prompt: int = 1000, seed: int = 0) -> dict:
    """Σ_t per-token k1 over responses y ∼ π (prompts uniform, as d0), against the exact KL(π‖π0).

    E_π Σ_t [log π(y_t|s_t) − log π0(y_t|s_t)] = KL(π‖π0) over whole responses, so the sample mean
    is unbiased. Also the per-token k3 summed (E_π Σ_t k3_t = Σ_t E KL(π(·|s_t)‖π0(·|s_t)), the
    chain rule: unbiased too). Keys: k1, k1_se, k3, k3_se, exact, n.
    """
    import torch

    from llm.generation import SamplingConfig, generate, sequence_logprobs
    from rlbandit import kl
    from rlbandit.losses import kl_estimate

    lm = world.policy if lm is None else lm
    check_int(samples_per_prompt, "samples_per_prompt", minimum=2)
    prompts = [p for p in world.prompts for _ in range(samples_per_prompt)]
    samples = generate(lm, prompts, SamplingConfig(max_new_tokens=world.config.max_length),
                       torch.Generator().manual_seed(int(seed)))
    with torch.no_grad():
        _, tok = sequence_logprobs(lm.model, samples.batch, per_token=True)
        _, ref_tok = sequence_logprobs(world.ref.model, samples.batch, per_token=True)
    mask = samples.batch.response_mask.bool()
    out = {"n": len(prompts)}
    for kind in ("k1", "k3"):
        per = torch.where(mask, kl_estimate(tok.double(), ref_tok.double(), kind), 0.0).sum(-1).cpu().numpy()
        out[kind], out[f"{kind}_se"] = float(per.mean()), float(per.std(ddof=1) / np.sqrt(per.size))
    d0 = np.full(world.config.n_contexts, 1.0 / world.config.n_contexts)  # the prompts above are uniform
    out["exact"] = _weighted(d0, kl(world.sequence_logprobs(lm), world.problem.ref_logprobs))
    return out


#: method → defaults of :func:`run_method` (PG methods: PGConfig fields; dpo_exact: steps, lr).
SEQUENCE_METHODS: dict[str, dict] = {
    "dpo_exact": {"steps": 600, "lr": 5e-3},
    "ppo": {"algorithm": "ppo", "advantage": "loo", "kl_mode": "reward"},
    "ppo_gae": {"algorithm": "ppo", "advantage": "gae", "kl_mode": "reward"},
    "rloo": {"algorithm": "rloo", "advantage": "loo", "kl_mode": "reward"},
    # trl's GRPO (std-normalised group advantages, k3 per token in the loss), the loss summed over tokens
    "grpo": {"algorithm": "ppo", "advantage": "grpo", "kl_mode": "loss", "kl_kind": "k3"},
    "dr_grpo": {"algorithm": "ppo", "advantage": "dr_grpo", "kl_mode": "loss", "kl_kind": "k3"},
}

#: PG defaults of run_method, tuned on the default world at η = 0.5: PPO reaches KL(π̂‖π*) ≈ 0.6–1.8 % of
#: KL(π0‖π*) over 3 worlds × 3 seeds; lr 1e-2 is noisier (≈ 16 %), 3e-3 × 150 steps ≈ 2–3 %.
_PG_DEFAULTS = {"steps": 300, "prompts_per_step": 16, "samples_per_prompt": 8, "epochs": 2, "lr": 3e-3,
                "max_grad_norm": 0.0, "missing_eos_penalty": 0.0}


def run_method(world: SequenceWorld, method: str, eta: float, *, policy=None, seed: int = 0,
               kl_samples_per_prompt: int = 1000, **overrides) -> dict:
    """Train a fresh copy of π0 (or ``policy``, in place) with ``method`` at KL coefficient η and
    measure it exactly against π* = O(r*, η, π0) and against the method's own fixed point.

    Args:
        method: a key of :data:`SEQUENCE_METHODS` ("grpo"/"dr_grpo" need those keys in
            ``llm.trainers.ADVANTAGES``).
        overrides: ``steps``/``lr``/``loss_type`` for dpo_exact (full batch, deterministic: ``seed``
            only seeds the KL samples); any ``PGConfig`` field for the PG methods (defaults
            :data:`_PG_DEFAULTS`; ``sampling`` is always max_new_tokens = L).

    Returns a flat dict: method, eta, seed, steps, seconds (training wall time), kl_ref_to_optimal
    (KL(π0‖π*)), kl_to_optimal (KL(π̂‖π*)), kl_ratio (their ratio), target (the method's fixed
    point: "gibbs", "token_forward_kl", …, or one with no closed form), kl_to_target (KL(π̂‖target),
    NaN without one), kl_target_to_optimal (KL(target‖π*)), kl_to_ref (exact KL(π̂‖π0)),
    sampled_kl_k1 / sampled_kl_k1_se (Σ_t per-token k1 over samples of π̂, mean ± SE) and
    sampled_kl_k3 / _se, suboptimality (J*(π*) − J*(π̂)), gold_reward (E r* under π̂).
    """
    from rlbandit import kl

    if method not in SEQUENCE_METHODS:
        raise ValueError(f"method: expected one of {sorted(SEQUENCE_METHODS)}, got {method!r}")
    eta = check_eta(eta)
    lm = world.policy.copy() if policy is None else policy
    lm.model.requires_grad_(True)
    problem = world.problem
    star = problem.optimal_policy(eta)
    start = time.perf_counter()
    if method == "dpo_exact":
        settings = {**SEQUENCE_METHODS[method], **overrides}
        dpo_exact_sequences(world, eta, policy=lm, **settings)
        steps = settings["steps"]
        # the BT-logistic loss is BT maximum likelihood, whose minimiser is Gibbs; IPO & co. have other ones
        loss_type = settings.get("loss_type", "sigmoid")
        target, target_logp = ("gibbs", star) if loss_type == "sigmoid" else (f"dpo_{loss_type}", None)
    else:
        from llm.generation import SamplingConfig
        from llm.trainers import ADVANTAGES, PGConfig, policy_gradient

        spec = dict(SEQUENCE_METHODS[method])
        if spec["advantage"] not in ADVANTAGES:
            raise ValueError(f"method: {method!r} needs the {spec['advantage']!r} advantage, which this "
                             f"llm.trainers does not offer (has {sorted(ADVANTAGES)})")
        fields = {**_PG_DEFAULTS, **spec, **overrides, "eta": eta, "seed": seed,
                  "sampling": SamplingConfig(max_new_tokens=world.config.max_length)}
        config = PGConfig(**fields)
        policy_gradient(lm, world.ref, world.prompts, world.reward_fn, config, progress=False)
        target, target_logp = method_target(world, config)
        steps = config.steps
    seconds = time.perf_counter() - start
    logp = world.sequence_logprobs(lm)
    d0 = problem.context_probs
    ref_to_star = _weighted(d0, kl(problem.ref_logprobs, star))
    to_star = _weighted(d0, kl(logp, star))
    sampled = sampled_sequence_kl(world, lm, samples_per_prompt=kl_samples_per_prompt, seed=seed + 1)
    return {
        "method": method, "eta": eta, "seed": seed, "steps": steps, "seconds": seconds,
        "kl_ref_to_optimal": ref_to_star, "kl_to_optimal": to_star, "kl_ratio": to_star / ref_to_star,
        "target": target,
        "kl_to_target": float("nan") if target_logp is None else _weighted(d0, kl(logp, target_logp)),
        "kl_target_to_optimal": float("nan") if target_logp is None else _weighted(d0, kl(target_logp, star)),
        "kl_to_ref": float(problem.kl_to_ref(logp)),
        "sampled_kl_k1": sampled["k1"], "sampled_kl_k1_se": sampled["k1_se"],
        "sampled_kl_k3": sampled["k3"], "sampled_kl_k3_se": sampled["k3_se"],
        "suboptimality": float(problem.suboptimality(logp, eta)), "gold_reward": float(problem.gold_reward(logp)),
    }
