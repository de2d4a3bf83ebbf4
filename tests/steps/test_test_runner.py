"""The `test` step runs real pytest processes on a generated project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codex_tasks.core import redact as redaction
from codex_tasks.errors import DiskFull, StepFailed
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


LEAKY = '''\
TOKEN = "ghp_" + "Qw7eR9tY2uI4oP6aS8dF0gH1jK3lZ5xC7vB9"
PASSWORD = "pa" + "ss&<wOrd>-registered-31"


def test_prints_and_fails_on_secrets():
    print("token", TOKEN, "password", PASSWORD)
    print("-----BEGIN OPENSSH PRIVATE" + " KEY-----")
    print("b3BlbnNzaC1rZXktdjEAAAAA" + "BG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW")
    print("-----END OPENSSH PRIVATE" + " KEY-----")
    assert PASSWORD == TOKEN
'''


def test_pytest_output_and_report_pass_the_redaction_hook(make_ctx, tmp_path):
    """A test that prints a token, a registered value (with characters XML escapes) and a private
    key, and fails on them: pytest.log and junit.xml (written by pytest into a pipe and a FIFO)
    hold none of them, and the report still parses."""
    ws = tmp_path / "ws"
    (ws / "tests").mkdir(parents=True)
    (ws / "tests" / "test_leak.py").write_text(LEAKY)
    token, password = "ghp_" + "Qw7eR9tY2uI4oP6aS8dF0gH1jK3lZ5xC7vB9", "pass&<wOrd>-registered-31"
    redaction.register_values([password])
    try:
        ctx = make_ctx(workspace=ws, env=FAST)
        with pytest.raises(StepFailed, match="1 test\\(s\\) failed"):
            test_runner.run(test_runner.With(paths=["tests"]), ctx)
    finally:
        redaction.clear_values()
    log = (ctx.step_dir / "pytest.log").read_text()
    junit = (ctx.step_dir / "junit.xml").read_text()
    assert "token [REDACTED] password [REDACTED]" in log  # the output is there, masked
    assert f"generated xml file: {ctx.step_dir / 'junit.xml'}" in log  # not the FIFO's name
    res = json.loads((ctx.step_dir / "test_results.json").read_text())
    assert res["failing"][0]["id"] == "tests/test_leak.py::test_prints_and_fails_on_secrets"
    assert "system-out" in junit or "failure" in junit
    written = b"".join(p.read_bytes() for p in ctx.step_dir.rglob("*") if p.is_file())
    for secret in (token, password, "pass&amp;&lt;wOrd&gt;", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"):
        # (the key's body is printed whole; the test's source, which pytest quotes, holds it in two halves)
        assert secret.encode() not in written, secret
    assert not list(ctx.step_dir.glob("*.fifo"))


def test_pytest_without_a_report_fails_at_once(make_ctx, ws):
    """pytest stops before writing its report (a usage error): the FIFO's reader is released."""
    ctx = make_ctx(workspace=ws, env=FAST)
    with pytest.raises(StepFailed, match="exited with code 4 and wrote no report"):
        test_runner.run(test_runner.With(paths=["tests"], args=["--no-such-option"]), ctx)
    assert "no-such-option" in (ctx.step_dir / "pytest.log").read_text()


def test_a_full_disk_under_pytest_log_is_reported_and_never_blocks_pytest():
    """Writing pytest.log fails with ENOSPC (the kernel's /dev/full): the output is still drained,
    so pytest (here, a process printing far more than a pipe holds) never blocks; then DiskFull."""
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("no /dev/full on this system")
    proc = subprocess.Popen([sys.executable, "-c", "for i in range(4000): print('x' * 200)"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    pump = test_runner._LogPump(proc.stdout, full, ("", ""))
    assert proc.wait(timeout=120) == 0  # 800 KB through a 64 KiB pipe: drained
    with pytest.raises(DiskFull, match="disk full at /dev/full"):
        pump.finish()
