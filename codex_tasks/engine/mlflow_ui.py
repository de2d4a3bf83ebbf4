"""`codex-tasks mlflow`: the MLflow UI on the workspace's local store, in the foreground.

The store is the one `train` steps log to by default: `sqlite:///<workspace>/.codex/mlflow.db`,
artifacts in `.codex/mlartifacts`. The server listens on 127.0.0.1 (a free port unless given),
and Ctrl-C / SIGTERM stop it and every worker it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from codex_tasks.errors import UsageError


def store_uri(workspace: Path) -> str:
    return f"sqlite:///{(workspace / '.codex' / 'mlflow.db').resolve()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_mlflow(workspace: Path, *, port: int = 0, ready_timeout: float = 90.0) -> int:
    db = workspace / ".codex" / "mlflow.db"
    if not db.exists():
        raise UsageError(f"no MLflow store in {workspace / '.codex'}", hint="run a sequence with a train step first")
    port = port or _free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri(workspace),
           "--default-artifact-root", str((workspace / ".codex" / "mlartifacts").resolve()),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=workspace, start_new_session=True,
                            env={**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"})
    url = f"http://127.0.0.1:{port}"

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop()
        sys.exit(0)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        if proc.poll() is not None:
            raise UsageError(f"the MLflow server exited with code {proc.returncode}")
        print(f"MLflow UI at {url} (store {store_uri(workspace)}); Ctrl-C stops it", flush=True)
        proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
        signal.signal(signal.SIGTERM, old)
