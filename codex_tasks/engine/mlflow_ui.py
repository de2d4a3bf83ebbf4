"""`codex-tasks mlflow`: the MLflow UI on the workspace's local store, in the foreground.

The store is the one `train` steps log to by default: `sqlite:///<workspace>/.codex/mlflow.db`,
artifacts in `.codex/mlartifacts`. The server listens on 127.0.0.1, on the first free port from
5000 (MLflow's own default, so a bookmark keeps working) unless `--port` is given; its own log goes
to `.codex/logs/mlflow-server.log`, and the command prints one line: the URL. Ctrl-C / SIGTERM stop
the server and every worker it started.
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


DEFAULT_PORT = 5000


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(start: int = DEFAULT_PORT, tries: int = 100) -> int:
    """The first free port on 127.0.0.1 from `start`: stable from one session to the next."""
    for port in range(start, start + tries):
        if _port_free(port):
            return port
    raise UsageError(f"no free port in {start}..{start + tries - 1} on 127.0.0.1", hint="pass --port PORT")


def serve_mlflow(workspace: Path, *, port: int = 0, ready_timeout: float = 90.0) -> int:
    """Run the MLflow UI on the workspace's store until Ctrl-C / SIGTERM; print its URL once it answers."""
    db = workspace / ".codex" / "mlflow.db"
    if not db.exists():
        raise UsageError(f"no MLflow store in {workspace / '.codex'}", hint="run a sequence with a train step first")
    if port and not _port_free(port):
        raise UsageError(f"port {port} on 127.0.0.1 is in use", hint="pass another --port, or leave it out")
    port = port or choose_port()
    log_path = workspace / ".codex" / "logs" / "mlflow-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the server writes to it for as long as it runs
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri(workspace),
           "--default-artifact-root", str((workspace / ".codex" / "mlartifacts").resolve()),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=workspace, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT,
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
        ready = False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    ready = True
            except OSError:
                time.sleep(0.3)  # poll until it answers or the deadline passes
        if proc.poll() is not None:
            raise UsageError(f"the MLflow server exited with code {proc.returncode}", hint=f"see {log_path}")
        if not ready:
            raise UsageError(f"the MLflow server did not answer within {ready_timeout:.0f} s", hint=f"see {log_path}")
        print(f"MLflow UI at {url}  (Ctrl-C stops it; server log {log_path})", flush=True)
        proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop()
        log.close()
        signal.signal(signal.SIGTERM, old)
