"""Conflicting preferences on language models (DESIGN §6b in the ``llm`` world): two gold objectives
on MiniLM features, the user-type prompt prefix, and policy soups of trained LMs.

Objectives. On φ(x, y) = all-MiniLM-L6-v2 embedding of prompt + response (:mod:`llm.features`):

    r_1(x, y) = ⟨φ(x, y), θ_pos⟩     θ_pos ∝ the sentiment direction (positivity)
    r_2(x, y) = ⟨φ(x, y), θ_brief⟩   θ_brief = ridge head on φ fitted to −(number of words)

Both are linear in φ by construction; brevity itself (−length) is *not* a function of φ, so the
head is a proxy whose quality is measured (:func:`head_transfer`: leave-one-prompt-out correlation
with −length). Each θ_i is rescaled so that r_i has a given spread over the responses.

Soups of k trained policies π_i at weights w ∈ Δ_k (shapes: k policies, X contexts, N responses):

- sequence-level geometric soup ``normalise_y Σ_i w_i log π_i(y|x)`` (:func:`sequence_soup`): exact
  only where responses are enumerable (:mod:`llm.seq_bridge`); it equals O(Σ_i w_i r_i, η, π0)
  when every π_i = O(r_i, η, π0);
- token-level geometric soup ``log_softmax_v Σ_i w_i log π_i(v|x, y_<t)`` (:func:`token_soup_logits`,
  :func:`token_soup_model`): what a real LM can decode; its sequence distribution is *not* the
  sequence-level soup (each step renormalises);
- parameter average Σ_i w_i θ_i of the weights ("rewarded soups", Ramé et al. 2023;
  :func:`average_state_dicts`, :func:`parameter_soup`), meaningful when the π_i share an initialisation.

User types enter a text prompt as a prefix (:func:`conditioned_prompt`). In the enumerable
sequence world (:func:`make_conflict_world`) a prompt is one token, so the prefixed prompt
"[user: ν] x" is its own prompt token whose input embedding starts as a copy of the plain prompt's
(:func:`tie_prompt_embeddings`): π0 is then exactly the same for every user type, and only
training on user-labelled data can make a conditioned policy tell the types apart.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from rlbandit._checks import check_int, check_positive_float

__all__ = [
    "OBJECTIVES",
    "SIMPLEX_TOL",
    "ConflictWorld",
    "ConflictWorldConfig",
    "make_conflict_world",
    "sample_reference_pairs",
    "tie_prompt_embeddings",
    "average_state_dicts",
    "check_weights",
    "conditioned_prompt",
    "conditioned_prompts",
    "fit_linear_head",
    "head_transfer",
    "parameter_soup",
    "rescale_direction",
    "sequence_soup",
    "token_soup_logits",
    "token_soup_model",
]

#: Tolerance on |Σ_i w_i − 1| for soup weights.
SIMPLEX_TOL = 1e-8


def check_weights(weights, k: int | None = None, name: str = "weights") -> np.ndarray:
    """Soup weights w ∈ Δ_k: a finite 1-d vector, entries ≥ 0, summing to 1 (k ≥ 1; length k when given)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"{name}: expected a non-empty vector (k,), got shape {w.shape}")
    if k is not None and w.size != k:
        raise ValueError(f"{name}: expected {k} weights (one per policy), got {w.size}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"{name}: entries must be finite and >= 0, got {w.tolist()}")
    if abs(w.sum() - 1.0) > SIMPLEX_TOL:
        raise ValueError(f"{name}: must sum to 1, got sum {w.sum():.10g}")
    return w


# ----------------------------------------------------------------------------------------------
# The user-type prefix


def conditioned_prompt(prompt: str, user: str) -> str:
    """The prompt a user-aware policy reads: ``"[user: {user}] {prompt}"``."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt: expected a string, got {type(prompt).__name__}")
    if not isinstance(user, str) or not user.strip() or any(c in user for c in "[]\n"):
        raise ValueError(f"user: expected a non-empty one-line name without brackets, got {user!r}")
    return f"[user: {user}] {prompt}"


def conditioned_prompts(prompts, users) -> list[str]:
    """:func:`conditioned_prompt` of each (prompt, user) pair; ``users`` one name or one per prompt."""
    prompts = list(prompts)
    users = [users] * len(prompts) if isinstance(users, str) else list(users)
    if len(users) != len(prompts):
        raise ValueError(f"users: {len(users)} user types for {len(prompts)} prompts")
    return [conditioned_prompt(p, u) for p, u in zip(prompts, users)]


# ----------------------------------------------------------------------------------------------
# Objectives on φ


def _features_targets(features, targets, groups):
    phi = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if phi.ndim != 2 or not np.all(np.isfinite(phi)):
        raise ValueError(f"features: expected a finite (n, d) array, got shape {phi.shape}")
    if y.shape != (phi.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(f"targets: expected {phi.shape[0]} finite values, got shape {y.shape}")
    g = np.zeros(len(y), dtype=np.int64) if groups is None else np.asarray(groups)
    if g.shape != y.shape:
        raise ValueError(f"groups: expected one group label per row ({len(y)}), got shape {g.shape}")
    return phi, y, g


def _centre(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """values minus their group mean (rows of one group = one prompt)."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size,) + values.shape[1:])
    np.add.at(sums, inverse, values)
    return values - (sums / counts.reshape((-1,) + (1,) * (values.ndim - 1)))[inverse]


def fit_linear_head(features, targets, groups=None, reg: float = 1e-2) -> np.ndarray:
    """θ = argmin Σ_n (⟨φ̃_n, θ⟩ − ỹ_n)² + reg ‖θ‖² (ridge), shape (d,).

    φ̃, ỹ are centred within each group (one group = one prompt; None = one group), because a
    reward is identified only up to a per-prompt shift c(x) (DESIGN §1, fact 3): the head must
    rank the responses of a prompt, not the prompts. features (n, d), targets (n,), groups (n,).
    """
    phi, y, g = _features_targets(features, targets, groups)
    if not (np.isfinite(reg) and reg > 0):
        raise ValueError(f"reg: the ridge coefficient must be finite and > 0, got {reg}")
    phi_c, y_c = _centre(phi, g), _centre(y, g)
    return np.linalg.solve(phi_c.T @ phi_c + reg * np.eye(phi.shape[1]), phi_c.T @ y_c)


def head_transfer(features, targets, groups, reg: float = 1e-2) -> np.ndarray:
    """Leave-one-group-out check of :func:`fit_linear_head`: for each group (prompt) g, the head
    fitted on the other groups, and the Pearson correlation of ⟨φ, θ_{−g}⟩ with the target over the
    rows of g. Returns (G,) in the order of ``np.unique(groups)``; needs ≥ 2 groups."""
    phi, y, g = _features_targets(features, targets, groups)
    labels = np.unique(g)
    if labels.size < 2:
        raise ValueError("groups: leave-one-group-out needs at least 2 groups")
    out = []
    for label in labels:  # one fit per prompt (a handful), not per sample
        held = g == label
        theta = fit_linear_head(phi[~held], y[~held], g[~held], reg)
        out.append(float(np.corrcoef(phi[held] @ theta, y[held])[0, 1]))
    return np.array(out)


def rescale_direction(features, theta, spread: float, groups=None) -> np.ndarray:
    """θ · spread / std(⟨φ̃, θ⟩): the same direction, scaled so that the reward ⟨φ, θ⟩ centred within
    each group (prompt) has standard deviation ``spread`` over the rows. features (n, d), theta (d,)."""
    phi, _, g = _features_targets(features, np.zeros(np.shape(features)[0]), groups)
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (phi.shape[1],) or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta: expected a finite vector ({phi.shape[1]},), got shape {theta.shape}")
    if not (np.isfinite(spread) and spread > 0):
        raise ValueError(f"spread: must be finite and > 0, got {spread}")
    std = _centre(phi @ theta, g).std()
    if std <= 0:
        raise ValueError("theta: the reward ⟨φ, θ⟩ is constant within every group; nothing to rescale")
    return theta * (spread / std)


# ----------------------------------------------------------------------------------------------
# Soups


def sequence_soup(logprobs_k, weights) -> np.ndarray:
    """Sequence-level geometric soup log normalise_y Π_i π_i(y|x)^{w_i}, shape (X, N).

    logprobs_k (k, X, N): log π_i over an enumerated response set (rows normalised); w ∈ Δ_k.
    Exact only where every response is enumerated (the normaliser is a sum over all y). Equals
    O(Σ_i w_i r_i, η, π0) when π_i = O(r_i, η, π0) (DESIGN §6b; :func:`rlbandit.multiobjective.geometric_soup`).
    """
    from rlbandit.multiobjective import geometric_soup

    logprobs_k = np.asarray(logprobs_k, dtype=np.float64)
    if logprobs_k.ndim != 3:
        raise ValueError(f"logprobs_k: expected shape (k, X, N), got {logprobs_k.shape}")
    return geometric_soup(logprobs_k, check_weights(weights, logprobs_k.shape[0]))


def token_soup_logits(logits_k, weights):
    """Token-level geometric soup: log_softmax_v(Σ_i w_i log_softmax_v(logits_i)), a torch tensor.

    logits_k: a sequence of k tensors of one shape (..., V) (or one tensor (k, ..., V)); w ∈ Δ_k.
    A policy with w_i = 0 does not enter (0·(−inf) = 0); a token any policy with w_i > 0 bars
    (logit −inf) stays barred. Raises ValueError where no token is left.
    """
    import torch

    logits_k = list(logits_k)
    w = check_weights(weights, len(logits_k))
    shapes = {tuple(t.shape) for t in logits_k}
    if len(shapes) != 1:
        raise ValueError(f"logits_k: the policies' logits differ in shape: {sorted(shapes)}")
    total = None
    for wi, logits in zip(w, logits_k):
        if wi == 0:
            continue
        # float64: a weight below float32's range (1e-136) would round to 0 and make 0·(−inf) = NaN
        term = float(wi) * torch.log_softmax(logits.double(), dim=-1)
        total = term if total is None else total + term
    if not torch.isfinite(total).any(dim=-1).all():
        raise ValueError("logits_k: the soup has no allowed token at some position (supports are disjoint)")
    return torch.log_softmax(total, dim=-1)


def token_soup_model(models, weights):
    """A torch module whose ``forward(**batch).logits`` is :func:`token_soup_logits` of the ``models``'
    logits on the same inputs: the token-level soup as one causal LM for scoring (every model gets
    ``use_cache``-free full forwards; no generation cache). ``models``: k causal LMs (or
    ``LanguageModel`` s) with one vocabulary."""
    import types

    import torch

    models = [m.model if hasattr(m, "tokenizer") else m for m in models]
    w = check_weights(weights, len(models))

    class TokenSoup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.members = torch.nn.ModuleList(models)

        def forward(self, **inputs):
            logits = [m(**inputs).logits for m in self.members]
            return types.SimpleNamespace(logits=token_soup_logits(logits, w))

    soup = TokenSoup()
    soup.eval()
    return soup


def average_state_dicts(state_dicts, weights) -> dict:
    """Σ_i w_i θ_i entry by entry: floating tensors averaged (in float64, cast back to their dtype);
    any other tensor (integer buffers) must be equal in every dict and is kept. Same keys and shapes."""
    import torch

    state_dicts = list(state_dicts)
    w = check_weights(weights, len(state_dicts))
    keys = list(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], 1):
        if list(sd) != keys:
            raise ValueError(f"state_dicts: dict {i} has other keys than dict 0 (different architectures)")
    out = {}
    for key in keys:
        tensors = [sd[key] for sd in state_dicts]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ValueError(f"state_dicts: {key!r} differs in shape: {[tuple(t.shape) for t in tensors]}")
        if tensors[0].is_floating_point():
            mixed = sum(float(wi) * t.detach().double() for wi, t in zip(w, tensors))
            out[key] = mixed.to(tensors[0].dtype)
        else:
            if any(not torch.equal(t, tensors[0]) for t in tensors[1:]):
                raise ValueError(f"state_dicts: non-floating entry {key!r} differs between dicts; cannot average")
            out[key] = tensors[0].clone()
    return out


def parameter_soup(models, weights):
    """A new model (a deep copy of the first) with weights Σ_i w_i θ_i ("rewarded soups").

    ``models``: k ``LanguageModel`` s (→ a ``LanguageModel``) or k torch modules (→ a module) of one
    architecture, fine-tuned from one initialisation (otherwise the average is meaningless).
    """
    models = list(models)
    if not models:
        raise ValueError("models: expected at least one model")
    wrapped = hasattr(models[0], "tokenizer")
    modules = [m.model if wrapped else m for m in models]
    mixed = average_state_dicts([m.state_dict() for m in modules], weights)
    clone = copy.deepcopy(modules[0])
    clone.load_state_dict(mixed)
    clone.eval()
    if wrapped:
        from llm.models import LanguageModel

        return LanguageModel(clone, models[0].tokenizer)
    return clone


# ----------------------------------------------------------------------------------------------
# The enumerable world with two objectives and user types

#: the two gold objectives, in the order of ``rewards_k``
OBJECTIVES = ("positivity", "brevity")


@dataclass(frozen=True)
class ConflictWorldConfig:
    """The sequence-level world of :func:`make_conflict_world`.

    Attributes:
        prompts: X prompt texts (what MiniLM reads before the response).
        words: V words; content token i of the LM is ``words[i]`` in the texts MiniLM reads.
        users: U user-type names (each gets its own copy of every prompt).
        max_length: L, responses of 1 … L words (N = Σ_l V^l per prompt).
        spread: std of each r_i over the responses of a prompt (centred per prompt).
        head_reg: ridge coefficient of the brevity head.
        hidden_size, ref_fit_steps, seed: the tiny Llama of :class:`llm.seq_world.SequenceBridgeConfig`.
    """

    prompts: tuple[str, ...] = ("Review of the film:", "How was the hotel?", "Describe the meal.",
                                "What about the concert?")
    words: tuple[str, ...] = ("great", "awful", "fine", "very", "boring")
    users: tuple[str, ...] = ("positive", "brief")
    max_length: int = 3
    spread: float = 1.0
    head_reg: float = 1e-2
    hidden_size: int = 32
    ref_fit_steps: int = 100
    seed: int = 0

    def __post_init__(self):
        for name in ("prompts", "words", "users"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError(f"{name}: expected a tuple of non-empty strings, got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"{name}: entries must be distinct, got {value!r}")
        if len(self.prompts) < 2:
            raise ValueError(f"prompts: need at least 2 (the brevity head is checked leave-one-prompt-out), "
                             f"got {len(self.prompts)}")
        if len(self.words) < 2:
            raise ValueError(f"words: need at least 2 words, got {len(self.words)}")
        for user in self.users:
            if any(c in user for c in "[]\n"):
                raise ValueError(f"users: a name goes into the prefix '[user: …]' and must not contain brackets "
                                 f"or newlines, got {user!r}")
        check_int(self.max_length, "max_length", minimum=2)
        check_int(self.hidden_size, "hidden_size", minimum=2)
        check_int(self.ref_fit_steps, "ref_fit_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        check_positive_float(self.spread, "spread")
        check_positive_float(self.head_reg, "head_reg")


@dataclass(eq=False)
class ConflictWorld:
    """A sequence world with (1 + U)·X prompt tokens: the plain prompts x, then each user type's
    copies "[user: ν] x"; π0 is identical on all copies. Shapes: X prompts, N responses, d = 384.

    ``world.problem`` is the :class:`rlbandit.LinearBandit` over all (1 + U)·X contexts with θ* = θ_pos;
    use ``rewards_k`` for both objectives (they ignore the user prefix).
    """

    config: ConflictWorldConfig
    world: object  # llm.seq_world.SequenceWorld
    texts: list  # X lists of N prompt + response texts (what MiniLM embeds)
    features: np.ndarray  # φ (X, N, d)
    thetas: np.ndarray  # (2, d): θ_pos, θ_brief (rescaled)
    rewards_k: np.ndarray  # (2, X, N)
    n_words: np.ndarray  # (N,) words per response
    transfer: np.ndarray  # (X,) leave-one-prompt-out corr(brevity head, −length)

    @property
    def n_prompts(self) -> int:
        return len(self.config.prompts)

    def contexts(self, user: int | None = None) -> np.ndarray:
        """Context (prompt-token) indices (X,) of the plain prompts (None) or of user type ``user``."""
        if user is None:
            return np.arange(self.n_prompts)
        check_int(user, "user", minimum=0)
        if user >= len(self.config.users):
            raise ValueError(f"user: expected an index below {len(self.config.users)}, got {user}")
        return (1 + user) * self.n_prompts + np.arange(self.n_prompts)

    def prompts_for(self, contexts) -> list[str]:
        """The LM's prompt strings of context indices."""
        return [self.world.prompts[int(c)] for c in np.asarray(contexts).ravel()]

    @property
    def ref_logprobs(self) -> np.ndarray:
        """log π0(y|x) on the plain prompts, (X, N)."""
        return self.world.problem.ref_logprobs[: self.n_prompts]

    def policy_logprobs(self, lm, user: int | None = None) -> np.ndarray:
        """Exact log π(y|x) (X, N) of an LM (or a model) read on the plain or the user's prompts."""
        return self.world.sequence_logprobs(lm)[self.contexts(user)]


def tie_prompt_embeddings(model, source_ids, target_ids) -> None:
    """Copy the input-embedding rows of ``source_ids`` onto ``target_ids`` (in place), so that a
    one-token prompt t reads exactly as s: the LM's distribution after t equals that after s."""
    import torch

    source, target = np.asarray(source_ids, dtype=np.int64), np.asarray(target_ids, dtype=np.int64)
    if source.shape != target.shape or source.ndim != 1:
        raise ValueError(f"target_ids: expected as many ids as source_ids, got {target.shape} and {source.shape}")
    weight = model.get_input_embeddings().weight
    if source.size and (min(source.min(), target.min()) < 0 or max(source.max(), target.max()) >= weight.shape[0]):
        raise ValueError(f"source_ids: token ids must lie in [0, {weight.shape[0]})")
    with torch.no_grad():
        weight[torch.as_tensor(target)] = weight[torch.as_tensor(source)]


def make_conflict_world(config: ConflictWorldConfig = ConflictWorldConfig(), embedder=None) -> ConflictWorld:
    """Build the sequence world (:func:`llm.seq_world.make_sequence_world` with (1 + U)·X prompt
    tokens), tie the user copies' prompt embeddings to the plain prompts', embed every prompt +
    response text with MiniLM and define r_1 (positivity) and r_2 (brevity head) on φ."""
    from llm.features import Embedder, sentiment_direction
    from llm.seq_world import SequenceBridgeConfig, make_sequence_world
    from rlbandit import LinearBandit

    embedder = Embedder() if embedder is None else embedder
    n_prompts, n_users = len(config.prompts), len(config.users)
    world = make_sequence_world(SequenceBridgeConfig(
        n_contexts=(1 + n_users) * n_prompts, n_tokens=len(config.words), max_length=config.max_length, dim=2,
        hidden_size=config.hidden_size, ref_fit_steps=config.ref_fit_steps, seed=config.seed))
    ids = np.asarray(world.policy.tokenizer.convert_tokens_to_ids(world.prompts))
    tie_prompt_embeddings(world.policy.model, np.tile(ids[:n_prompts], n_users), ids[n_prompts:])
    world.ref = world.policy.frozen()
    n_tokens = len(config.words)
    words = [" ".join(config.words[t] for t in r if t < n_tokens) for r in world.responses]
    n_words = np.array([sum(t < n_tokens for t in r) for r in world.responses])
    texts = [[f"{p} {w}" for w in words] for p in config.prompts]
    flat = embedder([t for row in texts for t in row])
    flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)  # unit norm in float64 (MiniLM's is float32)
    features = flat.reshape(n_prompts, len(words), -1)
    groups = np.repeat(np.arange(n_prompts), len(words))
    target = -np.tile(n_words, n_prompts).astype(np.float64)
    thetas = np.stack([
        rescale_direction(flat, sentiment_direction(embedder), config.spread, groups),
        rescale_direction(flat, fit_linear_head(flat, target, groups, config.head_reg), config.spread, groups)])
    transfer = head_transfer(flat, target, groups, config.head_reg)
    ref_all = world.sequence_logprobs(world.ref)
    world.problem = LinearBandit(np.tile(features, (1 + n_users, 1, 1)), thetas[0], ref_all)
    return ConflictWorld(config, world, texts, features, thetas, np.einsum("xnd,id->ixn", features, thetas),
                         n_words, transfer)


def sample_reference_pairs(ref_logprobs, n: int, rng: np.random.Generator):
    """n comparisons (x, a, b): x uniform over the X prompts, a, b ∼ π0(·|x) independently, redrawn
    until a ≠ b (a tie carries no preference). ref_logprobs (X, N); returns three int64 arrays (n,)."""
    from rlbandit._checks import check_logprobs

    logp = np.asarray(ref_logprobs, dtype=np.float64)
    if logp.ndim != 2 or logp.shape[1] < 2:
        raise ValueError(f"ref_logprobs: expected shape (X, N) with N >= 2, got {logp.shape}")
    check_logprobs(logp, "ref_logprobs")
    check_int(n, "n")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator, got {type(rng).__name__}")
    cdf = np.cumsum(np.exp(logp), axis=1)
    cdf /= cdf[:, -1:]

    def draw(rows):
        u = rng.random(rows.size)
        return np.minimum((cdf[rows] < u[:, None]).sum(axis=1), logp.shape[1] - 1)

    x = rng.integers(logp.shape[0], size=n)
    a, b = draw(x), draw(x)
    for _ in range(10_000):  # rejection rounds, each vectorised over the ties
        tie = a == b
        if not tie.any():
            break
        b[tie] = draw(x[tie])
    else:
        raise ValueError("ref_logprobs: π0 puts (almost) all its mass on one response; cannot draw a ≠ b")
    return x.astype(np.int64), a.astype(np.int64), b.astype(np.int64)
