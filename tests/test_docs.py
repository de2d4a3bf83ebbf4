"""The docs: mkdocs builds strictly, the generated reference is current, and every command in the
quickstart runs (in a copy of the repository, in order, as a new user would type them)."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CODEX, ROOT

QUICKSTART = ROOT / "docs" / "quickstart.md"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def quickstart_commands() -> list[str]:
    lines = []
    for block in FENCE.findall(QUICKSTART.read_text()):
        lines += [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return lines


def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    proc = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "quickstart" / "index.html").is_file()


def test_reference_and_schema_are_not_stale() -> None:
    proc = subprocess.run([sys.executable, "-m", "codex_tasks.reference.docs", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_quickstart_only_uses_make_and_codex_tasks() -> None:
    cmds = quickstart_commands()
    assert cmds[:2] == ["make run", "make test"]
    assert all(c.split()[0] in ("make", "codex-tasks") for c in cmds), cmds


def test_readme_setup_is_the_two_make_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = FENCE.search(readme)
    assert first_block and first_block.group(1).split() == ["make", "run", "make", "test"]


def test_make_targets_run_what_the_quickstart_says() -> None:
    # test_every_quickstart_command_runs runs `make run`'s command (at a tiny size) and
    # tests/test_flagship.py at full size; `make test` is this suite. Here: the targets run exactly that.
    dry = subprocess.run(["make", "-n", "-W", "pyproject.toml", "run", "test"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert "codex-tasks run codex_ready_task_sequence.yaml" in dry.stdout
    assert "pytest" in dry.stdout


def _copy_repo(dest: Path) -> Path:
    spec = importlib.util.spec_from_file_location("bench_flagship", ROOT / "bench" / "flagship.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.copy_repo(dest)


class Terminal:
    """A command in a pseudo-terminal (for the TUI), its output drained in a thread."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.out = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.out += data

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


def _newest_state(ws: Path) -> dict:
    runs = sorted((ws / ".codex" / "runs").iterdir()) if (ws / ".codex" / "runs").is_dir() else []
    try:
        return json.loads((runs[-1] / "state.json").read_text()) if runs else {}
    except (OSError, ValueError):
        return {}


def _run_closed(run_dir: Path) -> bool:
    events = run_dir / "events.ndjson"
    text = events.read_text(errors="replace") if events.is_file() else ""
    return any(f'"type": "{t}"' in text or f'"type":"{t}"' in text for t in ("run.finished", "run.failed"))


def _wait_drawn(term: Terminal, timeout: float = 60, quiet: float = 0.5) -> None:
    """Until the app has drawn and then stopped drawing for `quiet` seconds: its screen is
    current, so a key pressed now answers the final state."""
    deadline = time.monotonic() + timeout
    last, still_since = len(term.out), time.monotonic()
    while term.proc.poll() is None:
        assert time.monotonic() < deadline, "the TUI did not settle"
        time.sleep(0.05)
        if len(term.out) != last:
            last, still_since = len(term.out), time.monotonic()
        elif last > 0 and time.monotonic() - still_since >= quiet:
            return


def _run_tui(argv: list[str], ws: Path, starts_run: bool) -> None:
    before = len(list((ws / ".codex" / "runs").iterdir()))
    term = Terminal(argv, ws)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if term.proc.poll() is not None:
                break
            if starts_run:
                runs = sorted((ws / ".codex" / "runs").iterdir())
                # the run's last event: after it the run's thread only returns
                if len(runs) > before and _run_closed(runs[-1]):
                    break
            elif len(term.out) > 2000:  # the app has drawn its screen
                break
        _wait_drawn(term)
        term.send("q")
        assert term.proc.wait(timeout=30) == 0, term.out[-2000:].decode(errors="replace")
    finally:
        term.close()
    if starts_run:
        assert _newest_state(ws).get("status") == "succeeded"


def _run_server(argv: list[str], ws: Path) -> None:
    proc = subprocess.Popen(argv, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "http://" in line:
                break
        assert any("http://127.0.0.1" in s for s in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) in (0, 130, -signal.SIGINT), "".join(seen)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_every_quickstart_command_runs(tmp_path: Path, prefect_url: str) -> None:
    ws = _copy_repo(tmp_path / "repo")
    (ws / ".codex" / "runs").mkdir(parents=True)
    for line in quickstart_commands():
        argv = shlex.split(line)
        if argv == ["make", "test"]:
            continue  # this suite
        if argv == ["make", "run"]:
            # what `make run` runs (test_make_targets_run_what_the_quickstart_says), at a tiny size:
            # it leaves the runs and the MLflow store the later commands look at
            argv = ["codex-tasks", "run", "codex_ready_task_sequence.yaml", "--param", "train_steps=10"]
        argv[0] = CODEX
        if "--tui" in argv or argv[1] == "tui":
            _run_tui(argv, ws, starts_run="--tui" in argv)
        elif argv[1] == "mlflow":
            _run_server(argv, ws)
        else:
            proc = subprocess.run(argv, cwd=ws, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "DISPLAY": ""})
            assert proc.returncode == 0, f"{line}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
