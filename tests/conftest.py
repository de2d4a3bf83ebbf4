"""Shared fixtures. Real components only: tiny sizes, temp folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODEX = str(Path(sys.executable).parent / "codex-tasks")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def make_ctx(tmp_path: Path):
    """Build a StepContext for calling a step kind's `run` directly (no Prefect)."""
    from codex_tasks.runs.events import EventLog
    from codex_tasks.steps.base import StepContext

    def _make(step_id: str = "s1", workspace: Path | None = None, **kw):
        ws = workspace or (tmp_path / "ws")
        ws.mkdir(parents=True, exist_ok=True)
        run_dir = ws / ".codex" / "runs" / "test-run"
        step_dir = run_dir / "steps" / step_id
        step_dir.mkdir(parents=True, exist_ok=True)
        events = EventLog(run_dir / "events.ndjson", "test-run")
        return StepContext(
            step_id=step_id,
            phase_id=kw.pop("phase_id", "p1"),
            workspace=ws,
            step_dir=step_dir,
            run_dir=run_dir,
            run_id="test-run",
            params=kw.pop("params", {}),
            events=events,
            **kw,
        )

    return _make


# One Prefect server for the whole session, in a home of its own, stopped at the end, so a CI
# run leaves nothing running. Set here (controller and xdist workers inherit the environment).
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if not os.environ.get("CODEX_TEST_KEEP_HOME"):
        home = tempfile.mkdtemp(prefix="codex-tasks-test-home-")
        os.environ["CODEX_TASKS_HOME"] = home
        config._codex_home = home  # type: ignore[attr-defined]
    # matplotlib (report charts) keeps its font cache here, not in the user's ~/.config
    home_dir = os.environ.get("CODEX_TASKS_HOME") or tempfile.mkdtemp(prefix="codex-tasks-test-")
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(home_dir, "matplotlib"))
    os.environ.pop("PREFECT_API_URL", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    from codex_tasks.orchestrate.prefect import server

    server.stop()
    home = getattr(config, "_codex_home", None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_url() -> str:
    """The managed server's API URL (started once for the session)."""
    from codex_tasks.orchestrate.prefect.server import ensure_server

    return ensure_server()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
            check: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `codex-tasks` console script."""
    proc = subprocess.run([CODEX, *args], cwd=cwd, env={**os.environ, **(env or {})}, text=True,
                          capture_output=True, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture
def cli():
    return run_cli
