"""Shared fixtures. Real components only: tiny sizes, temp folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODEX = str(Path(sys.executable).parent / "codex-tasks")


def examples_dir() -> Path:
    """The shared example sequences: `shared/examples` beside the checkout (or inside it, in a copy
    made for another machine), else the copy of three of them kept in tests/fixtures/examples."""
    for shared in (ROOT.parent / "shared" / "examples", ROOT / "shared" / "examples"):
        if (shared / "legacy_v1_0.yaml").is_file() and (shared / "typed.yaml").is_file():
            return shared
    return ROOT / "tests" / "fixtures" / "examples"


EXAMPLES = examples_dir()

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


def wait_for(cond: Any, what: str, timeout: float = 120.0) -> Any:
    """Poll `cond()` until it returns something true (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cli():
    return run_cli


# --- the real Codex CLI against a scripted model server (tests/fixtures/model_server.py) ---

CODEX_PROJECT_BIN = ROOT / ".tools" / "node_modules" / ".bin" / "codex"


@pytest.fixture
def codex_bin() -> Path:
    """The project's copy of the Codex CLI (`make install`). Missing: a skip, a failure under CI=1."""
    if not CODEX_PROJECT_BIN.exists():
        msg = f"the Codex CLI is not installed at {CODEX_PROJECT_BIN}: run `scripts/install.sh --codex-only`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return CODEX_PROJECT_BIN


@pytest.fixture
def model_server():
    """A scripted model server on 127.0.0.1; add turns with `model_server.add_turns(...)`."""
    from fixtures.model_server import ModelServer

    server = ModelServer([]).start()
    yield server
    server.stop()


@pytest.fixture
def codex_home(model_server) -> Path:
    """A CODEX_HOME pointing at `model_server`, under ~/.cache (Codex's sandbox breaks under /tmp)."""
    import uuid

    home = Path.home() / ".cache" / "codex-tasks-tests" / uuid.uuid4().hex[:12]
    model_server.write_codex_home(home)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def codex_env(codex_bin: Path, codex_home: Path) -> dict[str, str]:
    """Environment for a process that should run the real `codex` against the scripted server."""
    return {"CODEX_HOME": str(codex_home), "CODEX_TASKS_CODEX_BIN": str(codex_bin)}
