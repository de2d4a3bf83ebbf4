"""One pattern dialect (gitignore's, through pathspec) for deps, outputs, corpus, audit and scans."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tasks.core.patterns import glob_match, has_magic, match_any, walk_matches
from codex_tasks.engine.corpus import find_files
from codex_tasks.runs.hashing import expand


@pytest.mark.parametrize(("path", "pattern", "matched"), [
    ("setup.py", "*.py", True),
    ("pkg/mod.py", "*.py", True),  # no `/`: any depth (the old corpus dialect said no)
    ("pkg/mod.py", "/*.py", False),  # a leading `/` anchors it
    ("src/a.py", "src/*.py", True),
    ("src/sub/a.py", "src/*.py", False),  # `*` stays inside one part
    ("src/sub/a.py", "src/**/*.py", True),
    ("docs/a.md", "docs/**/*.md", True),  # `**/` also matches no folder
    ("build/x/y.o", "build/", True),  # a folder pattern matches what is in it
    ("a/__pycache__/m.pyc", "**/__pycache__/**", True),
    ("src/a.py", "./src/*.py", True),  # a pattern may start with ./
])
def test_glob_match(path: str, pattern: str, matched: bool) -> None:
    assert glob_match(path, pattern) is matched


def test_last_match_wins_and_bang_negates() -> None:
    pats = ["*.py", "!test_*.py"]
    assert match_any("pkg/mod.py", pats)
    assert not match_any("pkg/test_mod.py", pats)
    assert match_any("pkg/test_mod.py", [*pats, "pkg/test_mod.py"])
    assert not match_any("a.txt", [])
    assert has_magic("*.py") and has_magic("a/[ab].py") and not has_magic("src/a.py")


def _tree(root: Path) -> None:
    for rel in ("a.py", "src/b.py", "src/sub/c.py", "data/x/f.bin", "data/g.bin", ".venv/lib/d.py",
                "docs/guide.md", "docs/api/ref.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)


def test_walk_and_expand_agree_on_one_meaning(tmp_path: Path) -> None:
    _tree(tmp_path)

    def rel(paths: list[Path]) -> list[str]:
        return [p.relative_to(tmp_path).as_posix() for p in paths]

    assert rel(expand("*.py", tmp_path)) == ["a.py", "src/b.py", "src/sub/c.py"]  # .venv skipped
    assert rel(expand("src/*.py", tmp_path)) == ["src/b.py"]
    assert rel(expand("data/*", tmp_path)) == ["data/g.bin", "data/x"]  # a folder counts once
    assert rel(expand(str(tmp_path / "src" / "*.py"), tmp_path)) == ["src/b.py"]  # absolute
    assert rel(expand("src/b.py", tmp_path)) == ["src/b.py"] and expand("nope.py", tmp_path) == []
    assert rel(list(walk_matches(tmp_path, "**/*.md"))) == ["docs/guide.md", "docs/api/ref.md"]
    # the tokenizer's corpus: the same dialect, with its exclude list pruning folders
    assert rel(find_files(tmp_path, ["*.py"])) == ["a.py", "src/b.py", "src/sub/c.py"]
    assert rel(find_files(tmp_path, ["**/*.md"], exclude=["docs/api/"])) == ["docs/guide.md"]
