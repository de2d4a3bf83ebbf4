"""A character-level bigram language model in plain Python.

The model is a table of counts: how often character `b` follows character `a` in the training
text. Probabilities are the counts of a row, smoothed and normalised. It is the smallest model
that still shows the whole loop: fit, evaluate (negative log-likelihood), sample.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from itertools import pairwise

BOS = "\x02"  # start of text
EOS = "\x03"  # end of text


class BigramModel:
    """Counts of character pairs, with add-k smoothing."""

    def __init__(self, smoothing: float = 1.0) -> None:
        if smoothing <= 0:
            raise ValueError("smoothing must be positive; use 1.0 for Laplace smoothing")
        self.smoothing = smoothing
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.vocab: set[str] = {BOS, EOS}

    def fit(self, texts: list[str]) -> BigramModel:
        for text in texts:
            chars = [BOS, *text, EOS]
            self.vocab.update(text)
            for a, b in pairwise(chars):
                self.counts[a][b] += 1
        return self

    def prob(self, a: str, b: str) -> float:
        row = self.counts.get(a, {})
        total = sum(row.values()) + self.smoothing * len(self.vocab)
        return (row.get(b, 0) + self.smoothing) / total

    def nll(self, text: str) -> float:
        """Mean negative log-likelihood per character (lower is better)."""
        chars = [BOS, *text, EOS]
        pairs = list(pairwise(chars))
        return -sum(math.log(self.prob(a, b)) for a, b in pairs) / len(pairs)

    def perplexity(self, text: str) -> float:
        return math.exp(self.nll(text))

    def sample(self, max_len: int = 200, seed: int | None = None) -> str:
        rng = random.Random(seed)
        out, prev = [], BOS
        symbols = sorted(self.vocab - {BOS})
        for _ in range(max_len):
            weights = [self.prob(prev, s) for s in symbols]
            nxt = rng.choices(symbols, weights=weights)[0]
            if nxt == EOS:
                break
            out.append(nxt)
            prev = nxt
        return "".join(out)


def train_eval_split(texts: list[str], eval_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split by document, so no line of an evaluation text was seen in training."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(texts) * eval_fraction)) if len(texts) > 1 else 0
    held = set(order[:n_eval])
    train = [t for i, t in enumerate(texts) if i not in held]
    evals = [t for i, t in enumerate(texts) if i in held]
    return train, evals


if __name__ == "__main__":
    corpus = [
        "the cat sat on the mat",
        "the dog sat on the log",
        "a cat and a dog met on a mat",
        "the log was by the mat",
    ]
    train, held_out = train_eval_split(corpus, eval_fraction=0.25, seed=1)
    model = BigramModel(smoothing=0.5).fit(train)
    for text in held_out:
        print(f"{text!r}: perplexity {model.perplexity(text):.2f}")
    print("sample:", model.sample(seed=7))
