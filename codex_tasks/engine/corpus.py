"""Finding a corpus: gitignore-style patterns (core/patterns.py) over a folder, excluded folders
pruned while walking."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codex_tasks.core.patterns import match_any

DEFAULT_CORPUS = ["**/*.py", "docs/**/*.md"]
DEFAULT_EXCLUDE = [
    ".codex/**",
    ".venv/**",
    "venv/**",
    ".git/**",
    "**/__pycache__/**",
    "**/node_modules/**",
    "**/site-packages/**",
]


def find_files(root: Path, patterns: list[str], exclude: list[str] | None = None) -> list[Path]:
    """Files under `root` matching any pattern and no exclude pattern, sorted by path.

    An absolute pattern or one naming an existing file is taken as is.
    """
    exclude = DEFAULT_EXCLUDE if exclude is None else exclude
    found: set[Path] = set()
    rel_patterns = []
    for pat in patterns:
        p = Path(pat)
        if p.is_absolute() and p.is_file():
            found.add(p)
        elif (root / pat).is_file():
            found.add(root / pat)
        else:
            rel_patterns.append(pat)
    if rel_patterns:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            # prune excluded folders before descending (a .venv holds gigabytes)
            dirnames[:] = sorted(d for d in dirnames if not match_any(f"{rel_dir}{d}/", exclude))
            for name in filenames:
                rel = rel_dir + name
                if match_any(rel, rel_patterns) and not match_any(rel, exclude):
                    found.add(Path(dirpath) / name)
    return sorted(found)


@dataclass
class Document:
    path: str
    text: str


def read_documents(files: list[Path], root: Path) -> tuple[list[Document], list[str]]:
    """Read UTF-8 text files; returns the documents and the paths skipped (not UTF-8, empty)."""
    docs: list[Document] = []
    skipped: list[str] = []
    for f in files:
        try:
            rel = str(f.relative_to(root))
        except ValueError:
            rel = str(f)
        try:
            # newline="" keeps \r\n as written: the tokenizer must round-trip the file exactly
            with open(f, encoding="utf-8", newline="") as fh:
                text = fh.read()
        except (UnicodeDecodeError, OSError):
            skipped.append(rel)
            continue
        if not text:
            skipped.append(rel)
            continue
        docs.append(Document(rel, text))
    return docs, skipped


def split_documents(docs: list[Document], eval_fraction: float, seed: int) -> tuple[list[Document], list[Document]]:
    """A seeded document-level train/eval split (a lone document is split at a line boundary)."""
    if eval_fraction <= 0 or not docs:
        return docs, []
    if len(docs) == 1:
        text = docs[0].text
        cut = text.rfind("\n", 0, int(len(text) * (1 - eval_fraction))) + 1
        if cut <= 0 or cut >= len(text):
            return docs, []
        return [Document(docs[0].path, text[:cut])], [Document(docs[0].path, text[cut:])]
    n_eval = min(len(docs) - 1, max(1, round(len(docs) * eval_fraction)))
    import numpy as np  # here, not at the top: the tokenize `with:` model imports this module

    chosen = set(np.random.default_rng(seed).permutation(len(docs))[:n_eval].tolist())
    train = [d for i, d in enumerate(docs) if i not in chosen]
    evals = [d for i, d in enumerate(docs) if i in chosen]
    return train, evals
