"""Fixtures for the ML engine: a small code corpus and its token data, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_fixtures import prepare, write_corpus


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def token_data(corpus_dir, tmp_path_factory) -> Path:
    """A sentencepiece data folder (vocab ~400, block 32) shared by the training tests."""
    out = tmp_path_factory.mktemp("data") / "tok"
    prepare(corpus_dir, out)
    return out
