"""The sequence-level bridge's world: an LM whose every response is enumerable, and the exact
bandit it defines (the overview and the methods are in :mod:`llm.seq_bridge`).

A response is 1 … L content tokens from a vocabulary of V words, followed by EOS when it stops
before the length cap L (``SamplingConfig(max_new_tokens=L)``); EOS is barred at the first
position, so the sampler can produce exactly

    c₁ EOS, c₁c₂ EOS, …, c₁…c_{L−1} EOS   (finished)   and   c₁…c_L   (unfinished, no EOS),

N = Σ_{l=1}^{L} V^l responses per prompt, each content string once. The LM's probability of a
response is the product of its next-token probabilities, EOS included,

    log π(y|x) = Σ_t log π(y_t | x, y_<t),                                   (1)

so π over the N responses is a bandit policy of shape (X, N).

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
from dataclasses import dataclass, field

import numpy as np

from llm.bridge import context_indices, fit_reference
from rlbandit._checks import check_int, check_positive_float

__all__ = [
    "MAX_RESPONSES",
    "MODEL_CLASSES",
    "SequenceBridgeConfig",
    "SequenceWorld",
    "context_mean",
    "make_sequence_world",
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


#: the masked Llama's classes, module-level names of this module (built on first use, see ``__getattr__``)
MODEL_CLASSES = ("SequenceBridgeTrunk", "MaskedHead", "SequenceBridgeLM")
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
    if name in MODEL_CLASSES:
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
        return context_indices(self.prompts, prompts)

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
        :mod:`llm.logprobs`)."""
        from llm.logprobs import make_batch

        prompts = [p for p in self.prompt_ids() for _ in self.responses]
        responses = [list(r) for _ in range(self.config.n_contexts) for r in self.responses]
        return make_batch(prompts, responses, self.vocab.pad, device)

    def torch_logprobs(self, model, per_token: bool = False):
        """Torch log π(y|x) (X, N) through :func:`llm.logprobs.sequence_logprobs` (gradients flow);
        with ``per_token`` also the (X, N, L) per-token terms of (1)."""
        from llm.logprobs import sequence_logprobs

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
            return self.torch_logprobs(model).double().cpu().numpy()

    def token_logprobs(self, lm=None) -> np.ndarray:
        """log π(y_t | x, y_<t) of every response token, shape (X, N, L), 0 past a response's end."""
        import torch

        model = self._model(lm)
        with torch.no_grad():
            return self.torch_logprobs(model, per_token=True)[1].double().cpu().numpy()

    def kl_to_optimal(self, eta, lm=None) -> float:
        """E_x KL(π(·|x) ‖ π*(·|x)) with π* = O(r*, η, π0) over the N responses."""
        from rlbandit import kl

        star = self.problem.optimal_policy(eta)
        return context_mean(self.problem.context_probs, kl(self.sequence_logprobs(lm), star))

    def __post_init__(self):
        self._index = {r: n for n, r in enumerate(self.responses)}


def context_mean(context_probs, per_context) -> float:
    """E_{x∼d0} of a per-context quantity (X,), as a float."""
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
        fit_reference(model, world.torch_logprobs, target, steps=config.ref_fit_steps, lr=1e-2)
    model.eval()
    world.ref = lm.frozen()
    world.problem = LinearBandit(scenario.features, scenario.theta, world.sequence_logprobs(world.ref),
                                 scenario.context_probs)
    return world
