"""Token files: `train.bin` / `eval.bin` (flat token ids) plus `meta.json`, memory-mapped.

A data folder is what the `tokenize` step writes. The trainer reads it through `TokenData`
(a read-only memmap) and draws batches with `BlockSampler`, whose position is one integer, so a
checkpoint can record exactly where in the data training stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks.errors import StepFailed

if TYPE_CHECKING:  # numpy loads with the first array, not on import: validate imports the step kinds
    import numpy as np

META_FILE = "meta.json"
SPLITS = ("train", "eval")


def dtype_for_vocab(vocab_size: int) -> str:
    """The smallest unsigned dtype that holds every id of a vocabulary."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


class TokenWriter:
    """Appends token ids to a `.bin` file (written to a temp name, renamed on `close`)."""

    def __init__(self, path: Path, dtype: str) -> None:
        import numpy as np

        self.path = path
        self.dtype = np.dtype(dtype)
        self._tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self._fh = open(self._tmp, "wb")
        self._sha = hashlib.sha256()
        self.tokens = 0

    def write(self, ids: Sequence[int] | np.ndarray) -> None:
        import numpy as np

        arr = np.asarray(ids, dtype=self.dtype)
        data = arr.tobytes()
        self._fh.write(data)
        self._sha.update(data)
        self.tokens += int(arr.size)

    def write_many(self, docs: Iterable[Sequence[int]], sep: int | None) -> int:
        """Write documents one after another, each followed by `sep` (the eos id) when given."""
        import numpy as np

        n_docs = 0
        chunks: list[np.ndarray] = []
        tail = np.asarray([sep], dtype=self.dtype) if sep is not None else None
        for ids in docs:
            chunks.append(np.asarray(ids, dtype=self.dtype))
            if tail is not None:
                chunks.append(tail)
            n_docs += 1
        if chunks:
            self.write(np.concatenate(chunks))
        return n_docs

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


@dataclass
class TokenData:
    """A data folder: its meta and the memory-mapped token arrays."""

    root: Path
    meta: dict[str, Any]

    @classmethod
    def open(cls, root: Path) -> TokenData:
        """Open a data folder (or the folder holding a `.bin` file); fail with a one-line reason."""
        root = Path(root)
        if root.is_file() and root.suffix == ".bin":
            root = root.parent
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise StepFailed(
                f"no {META_FILE} in {root}",
                hint="point `data` at the `out` folder of a `tokenize` step",
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return cls(root=root, meta=meta)

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def special(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.meta.get("special", {}).items()}

    def path(self, split: str) -> Path:
        return self.root / f"{split}.bin"

    def tokens(self, split: str) -> np.ndarray:
        """The split's token ids as a read-only memmap (an empty array when the file is empty)."""
        import numpy as np

        path = self.path(split)
        if not path.is_file():
            raise StepFailed(f"missing data file {path}", hint="run the `tokenize` step first")
        dtype = np.dtype(self.meta.get("dtype", dtype_for_vocab(self.vocab_size)))
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r")


def n_blocks(tokens: np.ndarray, block_size: int) -> int:
    """How many (input, target) blocks of `block_size` the stream holds (blocks overlap by 1 token)."""
    return max(0, (len(tokens) - 1) // block_size)


def block(tokens: np.ndarray, index: int, block_size: int) -> np.ndarray:
    import numpy as np

    start = index * block_size
    return np.asarray(tokens[start : start + block_size + 1], dtype=np.int64)


class BlockSampler:
    """Shuffled blocks, epoch after epoch; the whole state is `position` (blocks consumed).

    Epoch `e` visits every block once in the order of a permutation seeded by `(seed, e)`, so the
    sequence of batches depends only on the seed and the position: nothing else to save.
    """

    def __init__(self, tokens: np.ndarray, block_size: int, seed: int, position: int = 0) -> None:
        import numpy as np

        self.tokens = tokens
        self.block_size = block_size
        self.seed = seed
        self.position = position
        self.n_blocks = n_blocks(tokens, block_size)
        if self.n_blocks == 0:
            raise StepFailed(
                f"the training data has {len(tokens)} tokens, fewer than one block of {block_size + 1}",
                hint="use a smaller block_size or a larger corpus",
            )
        self._epoch = -1
        self._perm = np.zeros(0, dtype=np.int64)

    def _order(self, epoch: int) -> np.ndarray:
        import numpy as np

        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_blocks)
            self._epoch = epoch
        return self._perm

    @property
    def epoch(self) -> float:
        return self.position / self.n_blocks

    def next_batch(self, batch_size: int, world_size: int = 1, rank: int = 0) -> np.ndarray:
        """A `(batch_size, block_size + 1)` int64 array; advances the position.

        Under data parallelism every rank holds the same sampler: one call draws the global batch of
        `batch_size * world_size` blocks (the position advances by all of them) and returns rank
        `rank`'s contiguous slice, so the union over ranks is exactly what one process drawing
        `batch_size * world_size` would see, and the position stays one shared integer.
        """
        import numpy as np

        out = np.empty((batch_size, self.block_size + 1), dtype=np.int64)
        lo = rank * batch_size
        for j in range(batch_size * world_size):
            if lo <= j < lo + batch_size:
                epoch, i = divmod(self.position, self.n_blocks)
                start = int(self._order(epoch)[i]) * self.block_size
                out[j - lo] = self.tokens[start : start + self.block_size + 1]
            self.position += 1
        return out


def sequential_batches(
    tokens: np.ndarray, block_size: int, batch_size: int, max_batches: int | None = None
) -> Iterator[np.ndarray]:
    """Non-overlapping blocks in order (for evaluation: no randomness, every token once)."""
    import numpy as np

    total = n_blocks(tokens, block_size)
    done = 0
    for start in range(0, total, batch_size):
        if max_batches is not None and done >= max_batches:
            return
        idx = range(start, min(start + batch_size, total))
        yield np.stack([block(tokens, i, block_size) for i in idx])
        done += 1
