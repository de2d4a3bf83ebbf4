"""Small text statistics: a regex tokenizer, word counts, type/token ratio, top n-grams."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[^\sA-Za-z\d]")


def tokenize(text: str, lower: bool = True) -> list[str]:
    """Words, numbers and single punctuation marks, in order."""
    if lower:
        text = text.lower()
    return WORD.findall(text)


def ngrams(tokens: list[str], n: int) -> Iterator[tuple[str, ...]]:
    if n < 1:
        raise ValueError("n must be at least 1")
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i : i + n])


def type_token_ratio(tokens: list[str]) -> float:
    """Distinct tokens over all tokens: near 1 for varied text, low for repetitive text."""
    return len(set(tokens)) / len(tokens) if tokens else 0.0


def top_ngrams(texts: Iterable[str], n: int = 2, k: int = 10) -> list[tuple[tuple[str, ...], int]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        counts.update(ngrams(tokenize(text), n))
    return counts.most_common(k)


def summary(text: str) -> dict[str, float]:
    tokens = tokenize(text)
    lines = text.splitlines()
    return {
        "characters": len(text),
        "lines": len(lines),
        "tokens": len(tokens),
        "types": len(set(tokens)),
        "type_token_ratio": round(type_token_ratio(tokens), 4),
        "mean_line_length": round(sum(map(len, lines)) / len(lines), 2) if lines else 0.0,
    }


if __name__ == "__main__":
    sample = "It was the best of times, it was the worst of times.\nIt was the age of wisdom."
    print(summary(sample))
    print(top_ngrams([sample], n=2, k=3))
