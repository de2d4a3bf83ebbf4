"""Environment faults a user can hit are one message and exit 2, never a traceback; a real bug
still shows its traceback (the mapping is per fault, not a catch-all)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CODEX, run_cli

SEQ = textwrap.dedent("""\
    version: "1.0"
    title: "Env faults"
    phases:
      - name: A
        id: P1
        steps:
          - id: P1.1
            description: "Say hi."
            commands: ["echo hi"]
    """)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "seq.yaml").write_text(SEQ)
    return tmp_path


@pytest.fixture
def not_prefect() -> Iterator[str]:
    """A port on 127.0.0.1 that answers HTTP, but not as Prefect (a plain file server)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on exit: nothing listens there


def _assert_fault(proc: subprocess.CompletedProcess[str], *names: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    for name in names:
        assert name in proc.stderr, proc.stderr
    assert "hint:" in proc.stderr


def test_unreachable_api_url(ws: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    proc = run_cli("run", "seq.yaml", cwd=ws, env={"PREFECT_API_URL": url})
    _assert_fault(proc, url, "no Prefect server reachable", "unset PREFECT_API_URL")
    assert not (ws / ".codex" / "runs").exists()  # nothing half-written


def test_api_url_that_is_not_prefect(ws: Path, not_prefect: str) -> None:
    proc = run_cli("run", "seq.yaml", cwd=ws, env={"PREFECT_API_URL": not_prefect})
    _assert_fault(proc, not_prefect, "not as a Prefect API", "prefect server start")


def test_codex_is_a_file(ws: Path) -> None:
    (ws / ".codex").write_text("not a folder\n")
    proc = run_cli("run", "seq.yaml", cwd=ws)
    _assert_fault(proc, str(ws / ".codex"), "is not a folder", "writable folder")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap for a read-only bind")
def test_codex_read_only(ws: Path) -> None:
    (ws / ".codex").mkdir()
    probe = subprocess.run(["bwrap", "--bind", "/", "/", "--dev", "/dev", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"bubblewrap cannot make namespaces here: {probe.stderr.decode()[:200]}")
    proc = subprocess.run(["bwrap", "--bind", "/", "/", "--dev", "/dev", "--ro-bind", str(ws / ".codex"), str(ws / ".codex"),
                           "--chdir", str(ws), CODEX, "run", "seq.yaml"],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    _assert_fault(proc, str(ws / ".codex"), "cannot write in", "Read-only file system")


def test_missing_git_is_recorded_not_fatal(ws: Path) -> None:
    """provenance needs git only for the git state: without git on PATH the run goes on and the
    record says so (no traceback)."""
    (ws / "seq.yaml").write_text(SEQ.replace('commands: ["echo hi"]', "uses: provenance"))
    bin_dir = ws / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "env", "python3"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    proc = run_cli("run", "seq.yaml", cwd=ws, env={"PATH": str(bin_dir)})
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((ws / ".codex" / "runs").glob("*/steps/P1.1/provenance.json")).read_text())
    assert record["git"]["commit"] is None


def test_a_real_bug_still_shows_its_traceback(ws: Path) -> None:
    """A plain bug (here ZeroDivisionError raised where the workspace check runs) is not mapped."""
    code = textwrap.dedent("""\
        import sys
        import codex_tasks.orchestrate.runner as runner
        def broken(workspace):
            return 1 / 0
        runner.check_codex_writable = broken
        from codex_tasks.cli import main
        sys.exit(main(["run", "seq.yaml"]))
        """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ws, capture_output=True, text=True, timeout=300)
    assert proc.returncode not in (0, 2), proc.stderr
    assert "Traceback" in proc.stderr
    assert "ZeroDivisionError" in proc.stderr


def test_missing_agent_binary(ws: Path) -> None:
    """An optional tool a step needs (the Codex CLI) that is not there: named, with how to install it."""
    missing = ws / "no-such-codex"
    (ws / "seq.yaml").write_text(SEQ.replace('commands: ["echo hi"]', f"uses: agent\n        with: {{bin: {missing}}}"))
    proc = run_cli("run", "seq.yaml", cwd=ws)
    _assert_fault(proc, str(missing), "does not exist")
