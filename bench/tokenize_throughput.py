"""Encode MB/s of the `tokenize` step vs the library's own batch encoder, same corpus and threads.

The corpus is Python source from the installed packages (a few MB). The tokenizer is trained
once; then, interleaved: the library encoding the texts already in memory, and the step (reusing
that tokenizer) encoding the corpus into `train.bin` / `eval.bin` (its encode phase, and its whole
wall time with file discovery and reading).

    .venv/bin/python bench/tokenize_throughput.py [--mb 5] [--rounds 3] [--threads 2] [--kind sentencepiece]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def collect(src: Path, dest: Path, mb: float) -> int:
    """Copy .py files from `src` into `dest` until `mb` megabytes."""
    total = 0
    for f in sorted(src.rglob("*.py")):
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text:
            continue
        out = dest / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        total += len(text.encode("utf-8"))
        if total >= mb * 1e6:
            break
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kind", default="sentencepiece", choices=["sentencepiece", "bpe"])
    a = ap.parse_args()
    import os

    if a.kind == "bpe":
        os.environ["TOKENIZERS_PARALLELISM"] = "true"  # let the Rust encoder use its threads
        os.environ["RAYON_NUM_THREADS"] = str(a.threads)

    from codex_tasks.engine.corpus import find_files, read_documents
    from codex_tasks.engine.prepare import PrepareSpec, prepare_token_data
    from codex_tasks.engine.tokenizer import load_tokenizer

    src = next(p for p in (Path(sys.prefix) / "lib").glob("python3*/site-packages/transformers"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        size = collect(src, root, a.mb)
        docs, _ = read_documents(find_files(root, ["**/*.py"]), root)
        texts = [d.text for d in docs]

        def spec(out: Path, tokenizer: Path | None) -> PrepareSpec:
            return PrepareSpec(root=root, corpus=["**/*.py"], exclude=None, kind=a.kind, vocab_size=8000,
                               tokenizer=tokenizer, block_size=128, eval_fraction=0.0, seed=0, out=out,
                               threads=a.threads)

        tok_dir = Path(tmp) / "tok"
        t = time.perf_counter()
        prepare_token_data(spec(tok_dir, None), lambda line: None, lambda *x, **k: None)
        train_s = time.perf_counter() - t
        tok = load_tokenizer(tok_dir)
        lib, step_encode, step_wall = [], [], []
        for r in range(a.rounds):
            for which in (["lib", "step"] if r % 2 == 0 else ["step", "lib"]):
                if which == "lib":
                    t = time.perf_counter()
                    if tok.kind == "sentencepiece":
                        tok.backend.encode(texts, out_type=int, num_threads=a.threads)
                    else:
                        tok.backend.encode_batch(texts, add_special_tokens=False)
                    lib.append(size / 1e6 / (time.perf_counter() - t))
                else:
                    out = Path(tmp) / f"step{r}"
                    t = time.perf_counter()
                    meta = prepare_token_data(spec(out, tok_dir), lambda line: None, lambda *x, **k: None)
                    step_wall.append(size / 1e6 / (time.perf_counter() - t))
                    step_encode.append(size / 1e6 / meta["encode_seconds"])
                    shutil.rmtree(out)
    lib_m, enc_m, wall_m = statistics.median(lib), statistics.median(step_encode), statistics.median(step_wall)
    print(f"{a.kind}, {size / 1e6:.1f} MB of Python ({len(texts)} files), {a.threads} threads, "
          f"{a.rounds} rounds (medians); tokenizer training {train_s:.1f}s")
    print(f"library batch encoder: {lib_m:.2f} MB/s")
    print(f"tokenize step, encode + write .bin: {enc_m:.2f} MB/s  ratio {enc_m / lib_m:.3f}x")
    print(f"tokenize step, whole (find, read, encode, write): {wall_m:.2f} MB/s  ratio {wall_m / lib_m:.3f}x")


if __name__ == "__main__":
    main()
