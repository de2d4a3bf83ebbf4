"""patch_parse and globs: the pure parts."""

from __future__ import annotations

import pytest

from codex_tasks.core.patterns import glob_match, match_any
from codex_tasks.errors import PatchConflict
from codex_tasks.repo.patch_parse import parse_patch


def test_git_headers():
    text = (
        'diff --git "a/sp ace.txt" "b/sp ace.txt"\nnew file mode 100755\nindex 0000000..1111111\n'
        '--- /dev/null\n+++ "b/sp ace.txt"\n@@ -0,0 +1 @@\n+x\n'
        "diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\nrename to new.py\n"
    )
    add, move = parse_patch(text)
    assert (add.op, add.path, add.new_mode) == ("add", "sp ace.txt", "100755")
    assert (move.op, move.path, move.new_path, move.hunks) == ("update", "old.py", "new.py", [])


def test_wrong_counts_are_an_error():
    with pytest.raises(PatchConflict, match="ends early|wrong line counts"):
        parse_patch("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n")


def test_begin_patch_parts():
    fps = parse_patch("*** Begin Patch\n*** Update File: a.py\n*** Move to: b.py\n@@ def f():\n-x\n+y\n*** End of File\n\n*** End Patch\n")
    (fp,) = fps
    assert fp.new_path == "b.py" and fp.hunks[0].anchor == "def f():" and fp.hunks[0].at_eof


@pytest.mark.parametrize(
    ("path", "pattern", "hit"),
    [
        (".env", ".env", True), ("svc/.env", ".env", True), (".env.local", ".env.*", True),
        (".github/workflows/ci.yml", ".github/workflows/**", True), ("a/.github/workflows/x", ".github/workflows/**", False),
        ("tests/fixtures/a/b.py", "tests/fixtures/**", True), ("pkg/x.py", "**/*.py", True), ("x.py", "**/*.py", True),
        ("pkg/x.pyc", "*.py", False), ("pkg/sub", "pkg", True),
    ],
)
def test_globs(path, pattern, hit):
    assert glob_match(path, pattern) is hit


def test_negation():
    pats = [".env", ".env.*", "!.env.example"]
    assert match_any(".env.local", pats) and not match_any(".env.example", pats)
