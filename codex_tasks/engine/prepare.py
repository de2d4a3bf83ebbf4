"""Corpus -> tokenizer -> `train.bin` / `eval.bin` / `meta.json`: what the `tokenize` step runs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_tasks.core.files import sha256_file, write_json_atomic
from codex_tasks.engine.corpus import Document, find_files, read_documents, split_documents
from codex_tasks.engine.data import META_FILE, TokenWriter, dtype_for_vocab
from codex_tasks.engine.tokenizer import CodeTokenizer, load_tokenizer, train_bpe, train_sentencepiece
from codex_tasks.errors import StepFailed

ENCODE_CHUNK_BYTES = 4 << 20  # encode in ~4 MB batches: bounded memory, big enough for the batch encoder


@dataclass
class PrepareSpec:
    root: Path  # where corpus globs resolve
    corpus: list[str]
    exclude: list[str] | None
    kind: str
    vocab_size: int
    tokenizer: Path | None  # reuse this tokenizer instead of training one
    block_size: int
    eval_fraction: float
    seed: int
    out: Path
    threads: int | None = None


def corpus_sha256(docs: list[Document]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(d.path.encode() + b"\0" + d.text.encode("utf-8") + b"\0")
    return h.hexdigest()


def encode_split(
    tok: CodeTokenizer,
    docs: list[Document],
    path: Path,
    threads: int | None,
    on_bytes: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Encode documents in chunks into one `.bin` file, each followed by eos."""
    writer = TokenWriter(path, dtype_for_vocab(tok.vocab_size))
    eos = tok.special.get("eos")
    try:
        chunk: list[str] = []
        size = 0
        for i, doc in enumerate(docs):
            chunk.append(doc.text)
            size += len(doc.text)
            if size >= ENCODE_CHUNK_BYTES or i == len(docs) - 1:
                writer.write_many(tok.encode_batch(chunk, threads), sep=eos)
                if on_bytes:
                    on_bytes(size)
                chunk, size = [], 0
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return {"tokens": writer.tokens, "documents": len(docs), "sha256": writer.sha256}


def prepare_token_data(spec: PrepareSpec, log: Callable[[str], None], progress: Callable[..., None]) -> dict[str, Any]:
    """Find and read the corpus, train or load the tokenizer, write the data folder; returns meta."""
    files = find_files(spec.root, spec.corpus, spec.exclude)
    docs, skipped = read_documents(files, spec.root)
    if skipped:
        log(f"skipped {len(skipped)} file(s) that are empty or not UTF-8: {', '.join(skipped[:5])}")
    if not docs:
        raise StepFailed(
            f"the corpus is empty: no readable file matches {spec.corpus} under {spec.root}",
            hint="check the `corpus` globs (they are relative to the workspace)",
        )
    total_bytes = sum(len(d.text.encode("utf-8")) for d in docs)
    log(f"corpus: {len(docs)} file(s), {total_bytes} bytes")
    spec.out.mkdir(parents=True, exist_ok=True)
    train_docs, eval_docs = split_documents(docs, spec.eval_fraction, spec.seed)

    t0 = time.perf_counter()
    if spec.tokenizer is not None:
        tok = load_tokenizer(spec.tokenizer)
        tok.file = tok.save(spec.out)
        log(f"reusing {tok.kind} tokenizer {spec.tokenizer} (vocab {tok.vocab_size})")
    elif spec.kind == "sentencepiece":
        tok = train_sentencepiece([d.text for d in train_docs], spec.vocab_size, spec.out, spec.seed, spec.threads)
    else:
        tok = train_bpe([d.text for d in train_docs], spec.vocab_size, spec.out)
    if spec.tokenizer is None:
        log(f"trained a {tok.kind} tokenizer: vocab {tok.vocab_size} in {time.perf_counter() - t0:.1f}s")

    t1 = time.perf_counter()
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        elapsed = max(time.perf_counter() - t1, 1e-9)
        progress(done, total_bytes, "B", rate=done / elapsed)

    splits = {
        "train": encode_split(tok, train_docs, spec.out / "train.bin", spec.threads, on_bytes),
        "eval": encode_split(tok, eval_docs, spec.out / "eval.bin", spec.threads, on_bytes),
    }
    encode_s = time.perf_counter() - t1
    for name, facts in splits.items():
        log(f"{name}.bin: {facts['tokens']} tokens from {facts['documents']} document(s)")
    if splits["train"]["tokens"] < spec.block_size + 1:
        log(f"warning: train.bin holds fewer tokens than one block of {spec.block_size + 1}")

    special = dict(tok.special)
    special.setdefault("unk", special.get("pad", 0))
    meta = {
        "format": 1,
        "kind": tok.kind,
        "tokenizer_file": tok.file.name,
        "tokenizer_sha256": sha256_file(tok.file),
        "vocab_size": tok.vocab_size,
        "dtype": dtype_for_vocab(tok.vocab_size),
        "special": special,
        "block_size": spec.block_size,
        "eval_fraction": spec.eval_fraction,
        "seed": spec.seed,
        "files": len(docs),
        "corpus_bytes": total_bytes,
        "corpus_sha256": corpus_sha256(docs),
        "chars_per_token": round(
            sum(len(d.text) for d in docs) / max(1, splits["train"]["tokens"] + splits["eval"]["tokens"]), 4
        ),
        **{f"{name}_{k}": v for name, facts in splits.items() for k, v in facts.items()},
    }
    # no timings in it: same input, same bytes
    write_json_atomic(spec.out / META_FILE, meta, redacted=False, sort_keys=True)
    return {**meta, "encode_seconds": round(encode_s, 4)}
