"""The `patch` step: unified diffs and *** Begin Patch, all files or none, confinement, rollback."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from codex_tasks.errors import PatchConflict, StepFailed
from codex_tasks.steps import patch as patch_step


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file (and symlink target text) under root, as bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if ".codex" in p.relative_to(root).parts:
            continue
        if p.is_symlink():
            out[str(p.relative_to(root))] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "a.py").write_text("def a():\n    return 1\n\n\ndef b():\n    return 2\n")
    (ws / "pkg" / "b.py").write_text("x = 1\ny = 2\nz = 3\n")
    (ws / "README.md").write_text("# Title\n\nSome text.\n")
    return ws


def apply(make_ctx, ws: Path, *patches: str, **kw):
    ctx = make_ctx(workspace=ws, dry_run=kw.pop("dry_run", False))
    return patch_step.run(patch_step.With(patches=list(patches), **kw), ctx), ctx


GOOD_MULTI = """\
diff --git a/pkg/a.py b/pkg/a.py
index 1111111..2222222 100644
--- a/pkg/a.py
+++ b/pkg/a.py
@@ -1,5 +1,5 @@
 def a():
-    return 1
+    return 10


 def b():
--- a/pkg/b.py
+++ b/pkg/b.py
@@ -1,3 +1,4 @@
 x = 1
 y = 2
+w = 4
 z = 3
"""


def test_good_multi_file(make_ctx, ws):
    res, ctx = apply(make_ctx, ws, GOOD_MULTI)
    assert (ws / "pkg" / "a.py").read_text().startswith("def a():\n    return 10\n")
    assert (ws / "pkg" / "b.py").read_text() == "x = 1\ny = 2\nw = 4\nz = 3\n"
    assert res.summary["files"] == 2
    assert (ctx.step_dir / "rollback" / "manifest.json").is_file()


def test_one_bad_hunk_leaves_tree_byte_identical(make_ctx, ws):
    before = snapshot(ws)
    bad = GOOD_MULTI.replace(" y = 2\n+w = 4", " y = 999\n+w = 4")
    with pytest.raises(PatchConflict) as exc:
        apply(make_ctx, ws, bad)
    assert snapshot(ws) == before
    assert "pkg/b.py" in exc.value.message and "hunk 1" in exc.value.message
    assert "nothing was written" in exc.value.message


def test_failure_in_second_patch_file_writes_nothing(make_ctx, ws, tmp_path):
    good = tmp_path / "good.diff"
    good.write_text(GOOD_MULTI)
    bad = "--- a/README.md\n+++ b/README.md\n@@ -1,1 +1,1 @@\n-# Not the title\n+# New\n"
    before = snapshot(ws)
    with pytest.raises(PatchConflict, match="README.md"):
        apply(make_ctx, ws, str(good), bad)
    assert snapshot(ws) == before


def test_all_failures_are_listed_in_context(make_ctx, ws):
    bad = GOOD_MULTI.replace("-    return 1\n", "-    return 7\n").replace(" y = 2\n", " y = 8\n")
    with pytest.raises(PatchConflict) as exc:
        apply(make_ctx, ws, bad)
    assert "pkg/a.py" in exc.value.context and "pkg/b.py" in exc.value.context
    assert "and 1 more" in exc.value.message


def test_add_delete_and_move(make_ctx, ws):
    diff = """\
diff --git a/new/mod.py b/new/mod.py
new file mode 100644
--- /dev/null
+++ b/new/mod.py
@@ -0,0 +1,2 @@
+VALUE = 1
+OTHER = 2
diff --git a/README.md b/README.md
deleted file mode 100644
--- a/README.md
+++ /dev/null
@@ -1,3 +0,0 @@
-# Title
-
-Some text.
diff --git a/pkg/b.py b/pkg/c.py
similarity index 80%
rename from pkg/b.py
rename to pkg/c.py
--- a/pkg/b.py
+++ b/pkg/c.py
@@ -1,3 +1,3 @@
 x = 1
-y = 2
+y = 20
 z = 3
"""
    apply(make_ctx, ws, diff)
    assert (ws / "new" / "mod.py").read_text() == "VALUE = 1\nOTHER = 2\n"
    assert not (ws / "README.md").exists()
    assert not (ws / "pkg" / "b.py").exists()
    assert (ws / "pkg" / "c.py").read_text() == "x = 1\ny = 20\nz = 3\n"


def test_pure_rename_without_hunks(make_ctx, ws):
    diff = "diff --git a/pkg/b.py b/pkg/moved.py\nsimilarity index 100%\nrename from pkg/b.py\nrename to pkg/moved.py\n"
    apply(make_ctx, ws, diff)
    assert (ws / "pkg" / "moved.py").read_text() == "x = 1\ny = 2\nz = 3\n"
    assert not (ws / "pkg" / "b.py").exists()


def test_add_existing_file_is_a_conflict(make_ctx, ws):
    diff = "--- /dev/null\n+++ b/README.md\n@@ -0,0 +1 @@\n+hi\n"
    with pytest.raises(PatchConflict, match="already exists"):
        apply(make_ctx, ws, diff)


def test_delete_of_changed_file_is_a_conflict(make_ctx, ws):
    diff = "--- a/pkg/b.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x = 1\n-y = 2\n"
    before = snapshot(ws)
    with pytest.raises(PatchConflict):
        apply(make_ctx, ws, diff)
    assert snapshot(ws) == before


def test_update_missing_file_is_a_conflict(make_ctx, ws):
    diff = "--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(PatchConflict, match="does not exist"):
        apply(make_ctx, ws, diff)


def test_crlf_file_keeps_crlf(make_ctx, ws):
    f = ws / "win.txt"
    f.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    diff = "--- a/win.txt\n+++ b/win.txt\n@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n+two and a half\n three\n"
    apply(make_ctx, ws, diff)
    assert f.read_bytes() == b"one\r\nTWO\r\ntwo and a half\r\nthree\r\n"


def test_crlf_patch_text_against_crlf_file(make_ctx, ws):
    f = ws / "win.txt"
    f.write_bytes(b"one\r\ntwo\r\n")
    diff = "--- a/win.txt\r\n+++ b/win.txt\r\n@@ -1,2 +1,2 @@\r\n one\r\n-two\r\n+2\r\n"
    apply(make_ctx, ws, diff)
    assert f.read_bytes() == b"one\r\n2\r\n"


def test_mixed_line_endings_untouched_lines_survive(make_ctx, ws):
    f = ws / "mixed.txt"
    f.write_bytes(b"a\r\nb\nc\r\nd\n")
    diff = "--- a/mixed.txt\n+++ b/mixed.txt\n@@ -3,2 +3,2 @@\n c\n-d\n+D\n"
    apply(make_ctx, ws, diff)
    assert f.read_bytes().startswith(b"a\r\nb\nc\r\nD")


def test_no_final_newline_survives_unrelated_change(make_ctx, ws):
    f = ws / "nofinal.txt"
    f.write_bytes(b"first\nsecond\nlast")
    diff = "--- a/nofinal.txt\n+++ b/nofinal.txt\n@@ -1,2 +1,2 @@\n-first\n+FIRST\n second\n"
    apply(make_ctx, ws, diff)
    assert f.read_bytes() == b"FIRST\nsecond\nlast"


def test_no_final_newline_markers(make_ctx, ws):
    f = ws / "nofinal.txt"
    f.write_bytes(b"first\nlast")
    diff = (
        "--- a/nofinal.txt\n+++ b/nofinal.txt\n@@ -1,2 +1,2 @@\n first\n-last\n"
        "\\ No newline at end of file\n+LAST\n\\ No newline at end of file\n"
    )
    apply(make_ctx, ws, diff)
    assert f.read_bytes() == b"first\nLAST"


def test_adding_final_newline(make_ctx, ws):
    f = ws / "nofinal.txt"
    f.write_bytes(b"first\nlast")
    diff = "--- a/nofinal.txt\n+++ b/nofinal.txt\n@@ -1,2 +1,2 @@\n first\n-last\n\\ No newline at end of file\n+last\n"
    apply(make_ctx, ws, diff)
    assert f.read_bytes() == b"first\nlast\n"


@pytest.mark.parametrize("path", ["../outside.txt", "pkg/../../outside.txt", "/etc/passwd", "/tmp/x.txt"])
def test_path_traversal_and_absolute_paths_refused(make_ctx, ws, path):
    before = snapshot(ws)
    diff = f"--- /dev/null\n+++ {path}\n@@ -0,0 +1 @@\n+owned\n"
    with pytest.raises(PatchConflict, match="refused"):
        apply(make_ctx, ws, diff)
    assert snapshot(ws) == before
    assert not (ws.parent / "outside.txt").exists()


def test_begin_patch_traversal_refused(make_ctx, ws):
    text = "*** Begin Patch\n*** Add File: ../evil.txt\n+x\n*** End Patch\n"
    with pytest.raises(PatchConflict, match="refused"):
        apply(make_ctx, ws, text)
    assert not (ws.parent / "evil.txt").exists()


def test_git_dir_refused(make_ctx, ws):
    text = "*** Begin Patch\n*** Add File: .git/hooks/pre-commit\n+#!/bin/sh\n*** End Patch\n"
    with pytest.raises(PatchConflict, match=r"\.git"):
        apply(make_ctx, ws, text)


def test_symlink_escape_refused(make_ctx, ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("secret\n")
    (ws / "link").symlink_to(outside)
    (ws / "filelink.txt").symlink_to(outside / "target.txt")
    before = snapshot(ws)
    for diff in (
        "--- /dev/null\n+++ b/link/new.txt\n@@ -0,0 +1 @@\n+x\n",
        "--- a/link/target.txt\n+++ b/link/target.txt\n@@ -1 +1 @@\n-secret\n+changed\n",
        "--- a/filelink.txt\n+++ b/filelink.txt\n@@ -1 +1 @@\n-secret\n+changed\n",
    ):
        with pytest.raises(PatchConflict, match="symlink"):
            apply(make_ctx, ws, diff)
    assert snapshot(ws) == before
    assert (outside / "target.txt").read_text() == "secret\n"
    assert not (outside / "new.txt").exists()


def test_symlink_inside_root_is_followed(make_ctx, ws):
    (ws / "alias.py").symlink_to(ws / "pkg" / "b.py")
    apply(make_ctx, ws, "--- a/alias.py\n+++ b/alias.py\n@@ -1 +1 @@\n-x = 1\n+x = 11\n")
    assert (ws / "alias.py").is_symlink()
    assert (ws / "pkg" / "b.py").read_text().startswith("x = 11\n")


BEGIN_PATCH = """\
*** Begin Patch
*** Add File: docs/new.md
+# New
+text
*** Update File: pkg/a.py
@@ def b():
-    return 2
+    return 20
*** Update File: pkg/b.py
*** Move to: pkg/renamed.py
@@
 x = 1
-y = 2
+y = 22
*** Delete File: README.md
*** End Patch
"""


def test_begin_patch_format(make_ctx, ws):
    apply(make_ctx, ws, BEGIN_PATCH)
    assert (ws / "docs" / "new.md").read_text() == "# New\ntext\n"
    assert (ws / "pkg" / "a.py").read_text().endswith("def b():\n    return 20\n")
    assert (ws / "pkg" / "renamed.py").read_text() == "x = 1\ny = 22\nz = 3\n"
    assert not (ws / "pkg" / "b.py").exists() and not (ws / "README.md").exists()


def test_begin_patch_bad_chunk_writes_nothing(make_ctx, ws):
    before = snapshot(ws)
    with pytest.raises(PatchConflict, match="pkg/a.py"):
        apply(make_ctx, ws, BEGIN_PATCH.replace("-    return 2\n", "-    return 3\n"))
    assert snapshot(ws) == before


def test_begin_patch_end_of_file_and_trailing_whitespace(make_ctx, ws):
    f = ws / "t.txt"
    f.write_text("keep  \nx\nend\n")
    text = "*** Begin Patch\n*** Update File: t.txt\n@@\n keep\n-x\n+y\n end\n*** End of File\n*** End Patch\n"
    apply(make_ctx, ws, text)
    assert f.read_text() == "keep  \ny\nend\n"


def test_begin_patch_without_end_is_rejected(make_ctx, ws):
    with pytest.raises(PatchConflict, match="End Patch"):
        apply(make_ctx, ws, "*** Begin Patch\n*** Add File: x.txt\n+x\n")


def test_hunk_with_offset_applies(make_ctx, ws):
    f = ws / "pkg" / "b.py"
    f.write_text("# header\n# more\nx = 1\ny = 2\nz = 3\n")
    apply(make_ctx, ws, "--- a/pkg/b.py\n+++ b/pkg/b.py\n@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3\n")
    assert f.read_text() == "# header\n# more\nx = 1\ny = 3\nz = 3\n"


def test_several_hunks_in_one_file(make_ctx, ws):
    f = ws / "long.txt"
    f.write_text("".join(f"line {i}\n" for i in range(1, 31)))
    diff = (
        "--- a/long.txt\n+++ b/long.txt\n"
        "@@ -2,3 +2,4 @@\n line 2\n+inserted\n line 3\n line 4\n"
        "@@ -20,3 +21,2 @@\n line 20\n-line 21\n line 22\n"
    )
    apply(make_ctx, ws, diff)
    lines = f.read_text().splitlines()
    assert lines[2] == "inserted" and "line 21" not in lines and len(lines) == 30


def test_plain_diff_with_timestamps(make_ctx, ws):
    diff = (
        "--- pkg/b.py\t2024-01-01 10:00:00.000000000 +0000\n"
        "+++ pkg/b.py\t2024-01-02 10:00:00.000000000 +0000\n"
        "@@ -1,3 +1,3 @@\n x = 1\n-y = 2\n+y = 5\n z = 3\n"
    )
    apply(make_ctx, ws, diff)
    assert (ws / "pkg" / "b.py").read_text() == "x = 1\ny = 5\nz = 3\n"


def test_patch_file_relative_to_workspace_and_root(make_ctx, ws):
    (ws / "patches").mkdir()
    (ws / "patches" / "fix.diff").write_text("--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n")
    apply(make_ctx, ws, "patches/fix.diff", root="pkg")
    assert (ws / "pkg" / "b.py").read_text().startswith("x = 2\n")


def test_missing_patch_file(make_ctx, ws):
    with pytest.raises(StepFailed, match="not found"):
        apply(make_ctx, ws, "nope.diff")


def test_not_a_patch(make_ctx, ws):
    with pytest.raises(PatchConflict, match="no file changes"):
        apply(make_ctx, ws, "just some\ntext\n")


def test_check_only_and_dry_run_write_nothing(make_ctx, ws):
    before = snapshot(ws)
    res, ctx = apply(make_ctx, ws, GOOD_MULTI, check_only=True)
    assert res.summary == {"files": 2, "applied": False}
    res, ctx = apply(make_ctx, ws, GOOD_MULTI, dry_run=True)
    assert res.summary["applied"] is False
    assert snapshot(ws) == before
    assert not (ctx.step_dir / "rollback").exists()
    # A check still fails on a bad hunk.
    with pytest.raises(PatchConflict):
        apply(make_ctx, ws, GOOD_MULTI.replace(" y = 2", " y = 0"), check_only=True)


def test_executable_mode_preserved(make_ctx, ws):
    f = ws / "run.sh"
    f.write_text("#!/bin/sh\necho hi\n")
    f.chmod(0o755)
    apply(make_ctx, ws, "--- a/run.sh\n+++ b/run.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo hi\n+echo bye\n")
    assert os.stat(f).st_mode & 0o777 == 0o755


def test_non_utf8_bytes_survive(make_ctx, ws):
    f = ws / "latin.txt"
    f.write_bytes(b"caf\xe9\nline\n")
    apply(make_ctx, ws, "--- a/latin.txt\n+++ b/latin.txt\n@@ -1,2 +1,2 @@\n caf\udce9\n-line\n+LINE\n")
    assert f.read_bytes() == b"caf\xe9\nLINE\n"


def test_binary_patch_refused(make_ctx, ws):
    diff = "diff --git a/img.png b/img.png\nindex 1111111..2222222 100644\nBinary files a/img.png and b/img.png differ\n"
    with pytest.raises(PatchConflict, match="binary"):
        apply(make_ctx, ws, diff)


def test_rollback_restores_exact_bytes(make_ctx, ws):
    (ws / "win.txt").write_bytes(b"one\r\ntwo")
    (ws / "pkg" / "b.py").chmod(0o755)
    before = snapshot(ws)
    mode_before = os.stat(ws / "pkg" / "b.py").st_mode
    diff = GOOD_MULTI + "--- a/win.txt\n+++ b/win.txt\n@@ -1,2 +1,2 @@\n-one\n+ONE\n two\n\\ No newline at end of file\n"
    _, ctx = apply(make_ctx, ws, diff, BEGIN_PATCH.replace("*** Update File: pkg/b.py", "*** Update File: pkg/b.py"))
    assert snapshot(ws) != before
    restored = patch_step.rollback(ctx.run_dir, ctx.step_id)
    assert snapshot(ws) == before
    assert os.stat(ws / "pkg" / "b.py").st_mode == mode_before
    assert "docs/new.md" in restored and not (ws / "docs").exists()
    # A second rollback has nothing left to do.
    assert patch_step.rollback(ctx.run_dir, ctx.step_id) == []


def test_rollback_refuses_when_file_changed_after(make_ctx, ws):
    _, ctx = apply(make_ctx, ws, GOOD_MULTI)
    (ws / "pkg" / "b.py").write_text("edited by hand\n")
    with pytest.raises(StepFailed, match="changed after"):
        patch_step.rollback(ctx.run_dir, ctx.step_id)
    patch_step.rollback(ctx.run_dir, ctx.step_id, force=True)
    assert (ws / "pkg" / "b.py").read_text() == "x = 1\ny = 2\nz = 3\n"


def test_rollback_of_unknown_step(make_ctx, ws):
    ctx = make_ctx(workspace=ws)
    with pytest.raises(StepFailed, match="no rollback bundle"):
        patch_step.rollback(ctx.run_dir, "nope")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_real_git_diff_round_trip(make_ctx, ws, tmp_path):
    old = tmp_path / "old"
    new = tmp_path / "new"
    shutil.copytree(ws, old)
    shutil.copytree(ws, new)
    (new / "pkg" / "a.py").write_text("def a():\n    return 'changed'\n")
    (new / "pkg" / "b.py").unlink()
    (new / "added.txt").write_bytes(b"no newline at end")
    (new / "README.md").write_bytes(b"# Title\r\n\r\nCRLF now.\r\n")
    diff = subprocess.run(
        ["git", "diff", "--no-index", "--no-color", "old", "new"], cwd=tmp_path, capture_output=True
    ).stdout.decode()  # bytes: text mode would turn the CRLF lines of the diff into LF
    diff = diff.replace("a/old/", "a/").replace("b/new/", "b/")
    apply(make_ctx, ws, diff)
    assert snapshot(ws) == snapshot(new)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_three_way_merges_a_drifted_file(make_ctx, tmp_path):
    ws = tmp_path / "repo"
    ws.mkdir()
    f = ws / "m.txt"
    f.write_text("".join(f"line {i}\n" for i in range(1, 21)))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "base"]):
        subprocess.run(cmd, cwd=ws, check=True, env=env)
    base = f.read_text()
    f.write_text(base.replace("line 10\n", "line ten\n"))
    diff = subprocess.run(["git", "diff"], cwd=ws, capture_output=True, text=True, check=True).stdout
    # Meanwhile the file drifted: lines added above, and the hunk's own context changed.
    f.write_text(base.replace("line 2\n", "line 2\nextra\n").replace("line 7\n", "line seven\n")
                 .replace("line 19\n", "LINE 19\n"))
    with pytest.raises(PatchConflict):
        apply(make_ctx, ws, diff)
    apply(make_ctx, ws, diff, three_way=True)
    text = f.read_text()
    assert "line ten\n" in text and "line seven\n" in text and "extra\n" in text and "LINE 19\n" in text


def test_unicode_and_hash_of_result(make_ctx, ws):
    f = ws / "u.txt"
    f.write_text("héllo wörld\n", encoding="utf-8")
    apply(make_ctx, ws, "*** Begin Patch\n*** Update File: u.txt\n-héllo wörld\n+hello world ✓\n*** End Patch\n")
    assert hashlib.sha256(f.read_bytes()).hexdigest() == hashlib.sha256("hello world ✓\n".encode()).hexdigest()
