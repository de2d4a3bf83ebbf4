"""Tokenizers round-trip source code exactly; sentencepiece output is byte-identical run to run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from engine_fixtures import TRICKY, prepare

from codex_tasks.engine.corpus import find_files, read_documents
from codex_tasks.engine.data import TokenData
from codex_tasks.engine.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def bpe_data(corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bpe") / "tok"
    prepare(corpus_dir, out, kind="bpe", vocab_size=600)
    return out


def _corpus_texts(corpus_dir):
    docs, _ = read_documents(find_files(corpus_dir, ["**/*.py", "docs/**/*.md"]), corpus_dir)
    return [d.text for d in docs]


@pytest.mark.parametrize("which", ["token_data", "bpe_data"])
def test_round_trip_over_the_whole_corpus(which, request, corpus_dir):
    tok = load_tokenizer(request.getfixturevalue(which))
    texts = _corpus_texts(corpus_dir) + [TRICKY, "\t\t\n\n\n", "    x  =  1   \n", "ünïcödé → λ 🚀\n"]
    assert any("\t" in t for t in texts) and any("\r\n" in t for t in texts)
    ids = tok.encode_batch(texts)
    for text, seq in zip(texts, ids, strict=True):
        assert tok.decode(seq) == text


def test_corpus_excludes_venv_and_finds_docs(corpus_dir):
    files = [str(p.relative_to(corpus_dir)) for p in find_files(corpus_dir, ["**/*.py", "docs/**/*.md"])]
    assert "docs/notes.md" in files and "pkg/tricky.py" in files
    assert not any(f.startswith(".venv") for f in files)


def test_data_folder_layout(token_data):
    meta = json.loads((token_data / "meta.json").read_text())
    assert meta["kind"] == "sentencepiece" and meta["dtype"] == "uint16"
    assert {"pad", "eos", "bos"} <= set(meta["special"])
    data = TokenData.open(token_data)
    train = data.tokens("train")
    assert len(train) == meta["train_tokens"] > 0 and meta["eval_tokens"] > 0
    assert int(np.max(train)) < meta["vocab_size"]
    # documents are separated by eos
    assert int(np.sum(train == meta["special"]["eos"])) == meta["train_documents"]


def test_sentencepiece_is_byte_identical(corpus_dir, tmp_path):
    prepare(corpus_dir, tmp_path / "a")
    prepare(corpus_dir, tmp_path / "b")
    for name in ("tokenizer.model", "train.bin", "eval.bin", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_bpe_what_holds(corpus_dir, bpe_data, tmp_path):
    """HF BPE training may order merges differently run to run (upstream); the facts that hold:
    same vocabulary size and specials, exact round-trip, and encoding with one saved tokenizer is
    deterministic."""
    prepare(corpus_dir, tmp_path / "again", kind="bpe", vocab_size=600)
    a = json.loads((bpe_data / "meta.json").read_text())
    b = json.loads((tmp_path / "again" / "meta.json").read_text())
    assert a["vocab_size"] == b["vocab_size"] and a["special"] == b["special"]
    tok = load_tokenizer(bpe_data)
    texts = _corpus_texts(corpus_dir)
    assert tok.encode_batch(texts) == tok.encode_batch(texts)
