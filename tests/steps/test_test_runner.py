"""The `test` step runs real pytest processes on a generated project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_tasks.errors import StepFailed
from codex_tasks.steps import test_runner

# Plugins of the dev venv (textual snapshots, hypothesis...) only slow these tiny runs down.
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

PROJECT = {
    "tests/test_ok.py": "def test_a():\n    assert 1\n\ndef test_b():\n    assert 2\n",
    "tests/test_skip.py": "import pytest\n\n@pytest.mark.skip(reason='no')\ndef test_s():\n    pass\n",
    "tests/test_bad.py": "def test_fails():\n    assert 1 == 2\n",
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for rel, text in PROJECT.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    return ws


def test_failures_fail_the_step_with_summary(make_ctx, ws):
    ctx = make_ctx(workspace=ws, env=FAST)
    with pytest.raises(StepFailed, match="1 test\\(s\\) failed; first: tests/test_bad.py::test_fails"):
        test_runner.run(test_runner.With(paths=["tests"]), ctx)
    res = json.loads((ctx.step_dir / "test_results.json").read_text())
    assert (res["passed"], res["failed"], res["skipped"], res["errors"]) == (2, 1, 1, 0)
    assert res["failing"][0]["id"] == "tests/test_bad.py::test_fails"
    assert (ctx.step_dir / "junit.xml").is_file()
    assert all("seconds" in d for d in res["durations"])


def test_allow_failures_and_args(make_ctx, ws):
    ctx = make_ctx(workspace=ws, env=FAST)
    res = test_runner.run(test_runner.With(paths=["tests"], allow_failures=True), ctx)
    assert res.summary["failed"] == 1
    res = test_runner.run(test_runner.With(paths=["tests"], args=["-k", "not fails"]), ctx)
    assert res.summary["passed"] == 2 and res.summary["failed"] == 0


def test_collection_error_counts(make_ctx, ws):
    (ws / "tests" / "test_broken.py").write_text("import nope_not_a_module\n")
    ctx = make_ctx(workspace=ws, env=FAST)
    with pytest.raises(StepFailed):
        test_runner.run(test_runner.With(paths=["tests/test_broken.py"]), ctx)
    res = json.loads((ctx.step_dir / "test_results.json").read_text())
    assert res["errors"] == 1


def test_no_tests_is_not_a_failure(make_ctx, tmp_path):
    ws = tmp_path / "empty"
    (ws / "pkg").mkdir(parents=True)
    ctx = make_ctx(workspace=ws, env=FAST)
    res = test_runner.run(test_runner.With(paths=["pkg"]), ctx)
    assert res.summary["passed"] == 0 and res.summary["exit_code"] == 5
