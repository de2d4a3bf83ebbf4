"""Tokenizers for source code: sentencepiece or HF `tokenizers` byte-level BPE.

Both round-trip code exactly (`decode(encode(text)) == text`): indentation, tabs, blank lines,
unicode. sentencepiece's defaults collapse repeated spaces, so it is trained with identity
normalisation, no dummy prefix, whitespace-only pieces, `"\\n"` as a symbol and byte fallback.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from codex_tasks.errors import StepFailed

SPM_FILE = "tokenizer.model"
BPE_FILE = "tokenizer.json"
KINDS = ("sentencepiece", "bpe")
# Unlikely in source code; a literal occurrence encodes as the special id and decodes back to itself.
BPE_SPECIALS = ["<|pad|>", "<|bos|>", "<|endoftext|>"]


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class CodeTokenizer:
    """A loaded tokenizer: batch encoding, decoding, vocabulary size and special ids."""

    def __init__(self, kind: str, file: Path, backend: Any) -> None:
        self.kind = kind
        self.file = file
        self.backend = backend
        if kind == "sentencepiece":
            sp = backend
            self.vocab_size = int(sp.get_piece_size())
            self.special = {"pad": sp.pad_id(), "unk": sp.unk_id(), "bos": sp.bos_id(), "eos": sp.eos_id()}
        else:
            self.vocab_size = int(backend.get_vocab_size(with_added_tokens=True))
            ids = {name: backend.token_to_id(tok) for name, tok in zip(("pad", "bos", "eos"), BPE_SPECIALS, strict=True)}
            self.special = {k: int(v) for k, v in ids.items() if v is not None}

    def encode_batch(self, texts: list[str], threads: int | None = None) -> list[list[int]]:
        """Token ids of each text, with the library's batch encoder (no bos/eos added)."""
        if not texts:
            return []
        if self.kind == "sentencepiece":
            ids: list[list[int]] = self.backend.encode(texts, out_type=int, num_threads=threads or default_threads())
            return ids
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        if self.kind == "sentencepiece":
            return str(self.backend.decode(ids))
        return str(self.backend.decode(ids, skip_special_tokens=False))

    def save(self, folder: Path) -> Path:
        """Copy the tokenizer file into `folder`; returns the new path."""
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / self.file.name
        if dest.resolve() != self.file.resolve():
            shutil.copyfile(self.file, dest)
        return dest


def _lines(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        for line in text.split("\n"):
            if line:
                yield line


def train_sentencepiece(texts: list[str], vocab_size: int, folder: Path, seed: int, threads: int | None = None) -> CodeTokenizer:
    """Train a code-preserving sentencepiece model; same input and seed give the same bytes."""
    import io

    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=_lines(texts),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="unigram",
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=False,
        allow_whitespace_only_pieces=True,
        split_by_whitespace=True,
        user_defined_symbols=["\n"],
        byte_fallback=True,
        character_coverage=0.9995,
        hard_vocab_limit=False,  # tiny corpora cannot fill a large vocabulary
        max_sentence_length=1 << 16,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        num_threads=threads or default_threads(),
        minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SPM_FILE
    path.write_bytes(buf.getvalue())
    return load_tokenizer(path)


def train_bpe(texts: list[str], vocab_size: int, folder: Path) -> CodeTokenizer:
    """Train a byte-level BPE with HF `tokenizers` (merge order may vary run to run upstream)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BPE_FILE
    tok.save(str(path))
    return load_tokenizer(path)


def find_tokenizer_file(path: Path) -> Path | None:
    """The tokenizer file in a folder (or the file itself)."""
    if path.is_file():
        return path
    for name in (SPM_FILE, BPE_FILE):
        if (path / name).is_file():
            return path / name
    return None


def load_tokenizer(path: Path) -> CodeTokenizer:
    """Load `tokenizer.model` (sentencepiece) or `tokenizer.json` (BPE) from a file or folder."""
    file = find_tokenizer_file(Path(path))
    if file is None:
        raise StepFailed(
            f"no tokenizer ({SPM_FILE} or {BPE_FILE}) at {path}",
            hint="point `tokenizer` at the `out` folder of a `tokenize` step",
        )
    if file.suffix == ".model":
        import sentencepiece as spm

        return CodeTokenizer("sentencepiece", file, spm.SentencePieceProcessor(model_file=str(file)))
    from tokenizers import Tokenizer

    return CodeTokenizer("bpe", file, Tokenizer.from_file(str(file)))
