"""The `changelog` step appends a dated entry rendered from the shipped template."""

from __future__ import annotations

import pytest

from codex_tasks.errors import StepFailed
from codex_tasks.steps import changelog


def test_appends_entries(make_ctx):
    ctx = make_ctx(step_id="log", description="Record the run")
    (ctx.run_dir / "sequence.yaml").write_text("title: Flagship\n")
    ctx.events.emit("step.started", step_id="audit")
    ctx.events.emit("step.finished", step_id="audit", note="12 files")
    ctx.events.emit("step.failed", step_id="tests", error_message="2 tests failed\nmore")
    (ctx.workspace / "model.bin").write_bytes(b"weights")
    res = changelog.run(changelog.With(artifacts=["model.bin"], notes="All good."), ctx)
    text = (ctx.workspace / "CHANGELOG_CODEX.md").read_text()
    assert text.startswith("# Codex changelog")
    assert "Flagship (run `test-run`)" in text
    assert "| `audit` | finished | 12 files |" in text
    assert "| `tests` | failed | 2 tests failed |" in text
    assert "`model.bin` (sha256 `" in text and "All good." in text
    changelog.run(changelog.With(path=".codex/CHANGELOG.md", title="Second"), ctx)
    changelog.run(changelog.With(path=".codex/CHANGELOG.md", title="Third"), ctx)
    second = (ctx.workspace / ".codex" / "CHANGELOG.md").read_text()
    assert second.count("## ") == 2 and second.index("Second") < second.index("Third")
    assert res.outputs


def test_custom_template_and_errors(make_ctx):
    ctx = make_ctx()
    (ctx.workspace / "t.j2").write_text("* {{ title }} {{ steps | length }}\n")
    changelog.run(changelog.With(template="t.j2", title="T"), ctx)
    assert (ctx.workspace / "CHANGELOG_CODEX.md").read_text().endswith("* T 0\n")
    (ctx.workspace / "bad.j2").write_text("{{ nope }}")
    with pytest.raises(StepFailed, match="nope"):
        changelog.run(changelog.With(template="bad.j2"), ctx)
    with pytest.raises(StepFailed, match="not found"):
        changelog.run(changelog.With(artifacts=["missing.bin"]), ctx)
