"""A synthetic corpus of short product reviews, generated in code (no download).

Each document is ``prompt + response``: the prompt names a product ("Review of the kettle:"),
the response is one to three templated sentences whose sentiment (positive, negative, mixed)
and length vary. It is varied, real English text, so a tiny language model pretrained on it
writes readable reviews and a reward (sentiment, length) has something to judge.

    prompts(n, rng)          → n prompts
    reviews(n, rng)          → (prompts, responses, sentiment ∈ {-1, 0, 1}) of n documents
    sentiment_score(texts)   → (#positive − #negative sentiment words) per text, a programmatic reward
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["NEGATIVE", "POSITIVE", "PRODUCTS", "corpus_text", "prompt_for", "prompts", "reviews", "sentiment_score"]

PRODUCTS = (
    "kettle", "lamp", "backpack", "phone case", "coffee maker", "desk chair", "blender", "headphones",
    "umbrella", "water bottle", "keyboard", "toaster", "jacket", "tent", "camera", "notebook",
    "frying pan", "bicycle light", "alarm clock", "sofa",
)
ASPECTS = ("handle", "design", "price", "color", "battery", "lid", "button", "sound", "size", "finish", "strap",
           "cable", "box", "manual", "weight")
POSITIVE = ("great", "excellent", "lovely", "reliable", "sturdy", "wonderful", "perfect", "solid", "pleasant",
            "superb")
NEGATIVE = ("terrible", "awful", "flimsy", "cheap", "noisy", "broken", "poor", "ugly", "useless", "disappointing")
ADVERBS = ("really", "quite", "very", "surprisingly", "truly", "rather")
PEOPLE = ("my sister", "my father", "a friend", "my neighbour", "my son", "our team")

_POSITIVE_TEMPLATES = (
    "The {aspect} is {adv} {pos}.",
    "I love it, the {aspect} feels {pos}.",
    "It works well and the {aspect} is {pos}.",
    "Would buy again, {adv} {pos}.",
    "I gave one to {person} and it was {pos}.",
    "Five stars, a {pos} {product}.",
)
_NEGATIVE_TEMPLATES = (
    "The {aspect} is {adv} {neg}.",
    "Sadly the {aspect} feels {neg}.",
    "It stopped working and the {aspect} is {neg}.",
    "I returned it, {adv} {neg}.",
    "I gave one to {person} and it was {neg}.",
    "One star, a {neg} {product}.",
)
_NEUTRAL_TEMPLATES = (
    "It arrived on {day}.",
    "I use it every {time}.",
    "The {aspect} is {colour}.",
    "It came in a small box.",
    "I bought it for {person}.",
)
_DAYS = ("Monday", "Tuesday", "Friday", "Sunday", "time")
_TIMES = ("morning", "evening", "day", "week")
_COLOURS = ("black", "white", "blue", "red", "grey")


def prompt_for(product: str) -> str:
    """The prompt of a review of ``product``."""
    return f"Review of the {product}:"


def prompts(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` review prompts, products drawn uniformly."""
    return [prompt_for(PRODUCTS[i]) for i in rng.integers(len(PRODUCTS), size=n)]


def _sentence(kind: str, product: str, rng: np.random.Generator) -> str:
    templates = {"pos": _POSITIVE_TEMPLATES, "neg": _NEGATIVE_TEMPLATES, "neutral": _NEUTRAL_TEMPLATES}[kind]
    template = templates[rng.integers(len(templates))]
    pick = lambda words: words[rng.integers(len(words))]
    return template.format(aspect=pick(ASPECTS), adv=pick(ADVERBS), pos=pick(POSITIVE), neg=pick(NEGATIVE),
                           person=pick(PEOPLE), product=product, day=pick(_DAYS), time=pick(_TIMES),
                           colour=pick(_COLOURS))


def reviews(n: int, rng: np.random.Generator) -> tuple[list[str], list[str], np.ndarray]:
    """``n`` reviews: prompts, responses (each starting with a space) and their sentiment (−1, 0, +1).

    A review has 1–3 sentences; positive reviews draw mostly positive sentences, negative ones
    mostly negative, mixed ones both, and every kind has neutral filler.
    """
    sentiment = rng.integers(-1, 2, size=n)
    products = rng.integers(len(PRODUCTS), size=n)
    lengths = rng.integers(1, 4, size=n)
    out_prompts, out_responses = [], []
    for s, p, length in zip(sentiment, products, lengths):
        product = PRODUCTS[p]
        mix = {1: ("pos", "pos", "neutral"), -1: ("neg", "neg", "neutral"), 0: ("pos", "neg", "neutral")}[int(s)]
        sentences = [_sentence(mix[rng.integers(len(mix))], product, rng) for _ in range(length)]
        out_prompts.append(prompt_for(product))
        out_responses.append(" " + " ".join(sentences))
    return out_prompts, out_responses, sentiment


def corpus_text(n: int, seed: int = 0) -> list[str]:
    """``n`` whole documents ``prompt + response`` for pretraining and for training a tokenizer."""
    p, r, _ = reviews(n, np.random.default_rng(seed))
    return [a + b for a, b in zip(p, r)]


_WORD = re.compile(r"[a-z]+")
_POS_SET, _NEG_SET = frozenset(POSITIVE), frozenset(NEGATIVE)


def sentiment_score(texts) -> np.ndarray:
    """(#positive − #negative sentiment words) per text: a programmatic gold reward, shape (n,)."""
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        out[i] = sum(w in _POS_SET for w in words) - sum(w in _NEG_SET for w in words)
    return out
