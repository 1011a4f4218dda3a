"""Instruction prompts for the language-model world: real instructions over many topics, rendered
with the model's chat template, split into training and evaluation prompts **by topic**.

An instruction is a template applied to a topic ("Explain {topic} in one sentence." × "tea"). The
split draws whole topics for evaluation, so no evaluation prompt shares a topic with a training
prompt: evaluation measures how a policy generalises to unseen subjects, not how it memorised
the phrasing of a training prompt (the templates, on the other hand, are shared by both sides).

Everything is seeded and deterministic; nothing here imports transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlbandit._checks import check_int

__all__ = ["TEMPLATES", "TOPICS", "PromptSet", "instruction_prompts", "render", "split_prompts", "topic_instructions"]

# Noun phrases that read naturally in every template below.
TOPICS: tuple[str, ...] = (
    "coffee", "green tea", "chocolate", "fresh bread", "pizza", "sushi", "apples", "honey",
    "the ocean", "the moon", "rain", "snow", "thunderstorms", "volcanoes", "rivers", "deserts",
    "mountains", "forests", "the night sky", "autumn leaves", "sunflowers", "bees", "owls", "dolphins",
    "cats", "dogs", "horses", "penguins", "butterflies", "elephants", "bicycles", "trains",
    "electric cars", "airplanes", "sailboats", "city buses", "public libraries", "museums", "parks",
    "bridges", "lighthouses", "castles", "chess", "football", "swimming", "yoga", "running", "gardening",
    "cooking at home", "baking cakes", "camping", "hiking boots", "board games", "puzzles", "photography",
    "painting", "the piano", "the guitar", "jazz music", "folk songs", "poetry", "fairy tales",
    "science fiction", "comic books", "old maps", "the alphabet", "prime numbers", "fractions",
    "gravity", "magnets", "rainbows", "the human heart", "sleep", "breakfast", "friendship", "kindness",
    "patience", "recycling", "solar panels", "wind turbines", "smartphones", "email", "robots",
    "video calls", "umbrellas", "wooden toys", "candles", "birthdays", "winter coats", "sunglasses",
)

# name → instruction template (a registry: add a variant by adding an entry).
TEMPLATES: dict[str, str] = {
    "review": "Write a short review of {topic}.",
    "one_sentence": "Explain {topic} in one sentence.",
    "tip": "Give one tip about {topic}.",
    "child": "Describe {topic} to a child.",
    "haiku": "Write a haiku about {topic}.",
    "facts": "Tell me two surprising facts about {topic}.",
    "slogan": "Write a cheerful slogan for {topic}.",
    "opinion": "In two sentences, say what you like about {topic}.",
}


@dataclass(frozen=True)
class PromptSet:
    """Training and evaluation prompts: rendered prompts (what the model reads) beside the raw
    instructions they came from, and the topics of each side (disjoint)."""

    train: tuple[str, ...]
    eval: tuple[str, ...]
    train_instructions: tuple[str, ...]
    eval_instructions: tuple[str, ...]
    train_topics: tuple[str, ...]
    eval_topics: tuple[str, ...]

    def __post_init__(self):
        for field in ("train", "eval", "train_instructions", "eval_instructions", "train_topics", "eval_topics"):
            value = getattr(self, field)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{field}: expected a tuple of strings, got {type(value).__name__}")
        if len(self.train) != len(self.train_instructions):
            raise ValueError(f"train_instructions: {len(self.train_instructions)} instructions for "
                             f"{len(self.train)} rendered training prompts")
        if len(self.eval) != len(self.eval_instructions):
            raise ValueError(f"eval_instructions: {len(self.eval_instructions)} instructions for "
                             f"{len(self.eval)} rendered evaluation prompts")
        shared = set(self.train_topics) & set(self.eval_topics)
        if shared:
            raise ValueError(f"eval_topics: shared with the training topics: {sorted(shared)[:5]}")
        overlap = set(self.train) & set(self.eval)
        if overlap:
            raise ValueError(f"eval: {len(overlap)} prompts also appear in train")


def _check_names(topics, templates):
    if isinstance(topics, str) or not topics or not all(isinstance(t, str) and t.strip() for t in topics):
        raise ValueError(f"topics: expected a non-empty sequence of non-empty strings, got {topics!r}")
    if len(set(topics)) != len(topics):
        raise ValueError("topics: contains duplicates")
    templates = tuple(TEMPLATES) if templates is None else templates
    if isinstance(templates, str) or not templates:
        raise ValueError(f"templates: expected a non-empty sequence of names of TEMPLATES, got {templates!r}")
    unknown = [t for t in templates if t not in TEMPLATES]
    if unknown:
        raise ValueError(f"templates: unknown {unknown}; choose from {sorted(TEMPLATES)}")
    return tuple(topics), tuple(dict.fromkeys(templates))


def topic_instructions(topics=TOPICS, templates=None) -> tuple[str, ...]:
    """Every template applied to every topic, topic-major, in the given order (no randomness)."""
    topics, templates = _check_names(topics, templates)
    return tuple(TEMPLATES[name].format(topic=topic) for topic in topics for name in templates)


def instruction_prompts(n: int | None = None, *, topics=TOPICS, templates=None, seed: int = 0) -> tuple[str, ...]:
    """``n`` distinct instructions (all of them when None) in a seeded random order.

    Args:
        n: how many (at most ``len(topics) * len(templates)``).
        topics: noun phrases (default :data:`TOPICS`).
        templates: names of :data:`TEMPLATES` (default all).
        seed: the order.
    """
    pool = topic_instructions(topics, templates)
    check_int(seed, "seed", minimum=0)
    if n is None:
        n = len(pool)
    check_int(n, "n")
    if n > len(pool):
        raise ValueError(f"n: asked for {n} instructions, but only {len(pool)} exist "
                         f"({len(set(topics))} topics × templates)")
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    return tuple(pool[i] for i in order)


def render(tokenizer, instructions, *, system: str | None = None) -> tuple[str, ...]:
    """Prompts as the model reads them: one user turn through the tokenizer's chat template, ending
    where the assistant's answer starts (``add_generation_prompt=True``).

    A tokenizer without a chat template (the tiny model's), or ``tokenizer=None``, gets the plain
    rendering ``"<instruction>\\n"``. ``system`` adds a system turn; without one a template may insert
    its own default (SmolLM2's does: "You are a helpful AI assistant named SmolLM, …").
    """
    if isinstance(instructions, str):
        raise ValueError("instructions: expected a sequence of strings, got one string")
    instructions = tuple(instructions)
    if not all(isinstance(i, str) for i in instructions):
        raise ValueError("instructions: every instruction must be a string")
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return tuple(f"{i}\n" for i in instructions)
    head = [] if system is None else [{"role": "system", "content": system}]
    return tuple(tokenizer.apply_chat_template(head + [{"role": "user", "content": i}], tokenize=False,
                                               add_generation_prompt=True) for i in instructions)


def split_prompts(tokenizer=None, *, eval_fraction: float = 0.2, seed: int = 0, topics=TOPICS, templates=None,
                  system: str | None = None) -> PromptSet:
    """Training and evaluation prompts with disjoint topics (see the module docstring).

    A seeded permutation of the topics puts ``round(eval_fraction · #topics)`` of them (at least
    one, and at least one left for training) on the evaluation side; each side holds every template
    on each of its topics, in a seeded random order, rendered by :func:`render`.
    """
    topics, templates = _check_names(topics, templates)
    check_int(seed, "seed", minimum=0)
    if not isinstance(eval_fraction, (int, float)) or not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction: must be in (0, 1), got {eval_fraction!r}")
    if len(topics) < 2:
        raise ValueError(f"topics: a split by topic needs at least 2 topics, got {len(topics)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(topics))
    n_eval = min(len(topics) - 1, max(1, round(eval_fraction * len(topics))))
    eval_topics = tuple(topics[i] for i in sorted(order[:n_eval]))
    train_topics = tuple(topics[i] for i in sorted(order[n_eval:]))
    train_inst = topic_instructions(train_topics, templates)
    eval_inst = topic_instructions(eval_topics, templates)
    train_inst = tuple(train_inst[i] for i in rng.permutation(len(train_inst)))
    eval_inst = tuple(eval_inst[i] for i in rng.permutation(len(eval_inst)))
    return PromptSet(render(tokenizer, train_inst, system=system), render(tokenizer, eval_inst, system=system),
                     train_inst, eval_inst, train_topics, eval_topics)
