"""The managed local Prefect server: one per user, started once, reused by every run.

Without `PREFECT_API_URL`, Prefect starts a temporary server in every process (~4.4 s) and loses
most task-run history at exit; against a persistent server all of it is kept. So codex-tasks
uses `PREFECT_API_URL` when the user set it, and otherwise starts (once) a `prefect server start`
in the background with its own `PREFECT_HOME`, on a free port kept in a state file, never :4200.

Home: `$CODEX_TASKS_HOME` or `$XDG_DATA_HOME/codex-tasks` (default `~/.local/share/codex-tasks`);
the server's files are under `<home>/prefect/`, its state in `<home>/prefect/server.json`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from codex_tasks.core.files import write_json_atomic
from codex_tasks.core.process import is_alive
from codex_tasks.errors import ServerError

EVENTS_RETENTION = "P7D"  # Prefect's own default; keeps the SQLite store bounded
START_TIMEOUT = 90.0

# How the managed server writes what runs report. Task runs reach the server as events, and by
# default it records each in a transaction of its own (batch size 1) and persists events 20 at a
# time. SQLite takes one writer at a time, and a request that reads and then writes inside a
# deferred transaction (create_flow_run does) gets SQLITE_BUSY when another writer committed
# meanwhile: the server answers 503 and Prefect's client sleeps ~2 s before it retries (FACTS.md).
# Recording in batches cuts the number of write transactions after a 100-step run from ~400 to
# a handful, at the price of task runs showing up in the UI up to a second later.
# Measured with bench/overhead.py (docs/performance.md). The user's environment wins.
SERVER_TUNING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",  # whole seconds (Prefect truncates)
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "2",
}


def data_home() -> Path:
    """codex-tasks' per-user data folder."""
    if os.environ.get("CODEX_TASKS_HOME"):
        return Path(os.environ["CODEX_TASKS_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "codex-tasks"


def server_home() -> Path:
    return data_home() / "prefect"


def state_file() -> Path:
    return server_home() / "server.json"


def quiet_env() -> dict[str, str]:
    """Settings every Prefect process of ours gets (client and server)."""
    return {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",  # logs still reach the server
        "PREFECT_CLI_PROMPT": "false",
    }


def _read_state() -> dict[str, Any]:
    try:
        data = json.loads(state_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _healthy(url: str, timeout: float = 2.0) -> bool:
    # http.client and ssl load on the first probe: a run that stops at bad input never needs them
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return port if port != 4200 else _free_port()


def status() -> dict[str, Any]:
    """`{"url", "running", "managed", "pid", "home", "port"}`."""
    user_url = os.environ.get("PREFECT_API_URL")
    if user_url:
        return {"url": user_url, "running": _healthy(user_url), "managed": False, "pid": None,
                "home": None, "port": None, "ui_url": user_url.removesuffix("/api")}
    st = _read_state()
    url = st.get("url")
    running = bool(url) and is_alive(st.get("pid")) and _healthy(str(url))
    return {"url": url, "running": running, "managed": True, "pid": st.get("pid") if running else None,
            "home": str(server_home()), "port": st.get("port"),
            "ui_url": url.removesuffix("/api") if url else None}


def managed_pid(url: str) -> int | None:
    """The pid of the managed server that serves `url`; None for a server codex-tasks did not start."""
    st = _read_state()
    return int(st["pid"]) if st.get("url") == url and st.get("pid") else None


def ensure_server() -> str:
    """The API URL of a running server, starting the managed one if needed (once, under a lock)."""
    user_url = os.environ.get("PREFECT_API_URL")
    if user_url:
        return user_url
    st = _read_state()
    if st.get("url") and is_alive(st.get("pid")) and _healthy(st["url"]):
        return str(st["url"])
    from filelock import FileLock

    server_home().mkdir(parents=True, exist_ok=True)
    with FileLock(str(server_home() / "server.lock"), timeout=START_TIMEOUT + 30):
        st = _read_state()  # another process may have started it while we waited
        if st.get("url") and is_alive(st.get("pid")) and _healthy(st["url"]):
            return str(st["url"])
        # ~30 s of silence otherwise on the very first run
        print("codex-tasks: starting the local Prefect server (first run only, ~30 s)", file=sys.stderr, flush=True)
        return start()["url"]  # type: ignore[no-any-return]


def start() -> dict[str, Any]:
    """Start the managed server in the background and wait until it is healthy."""
    st = status()
    if st["running"]:
        return st
    home = server_home()
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        **quiet_env(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": os.environ.get("PREFECT_SERVER_EVENTS_RETENTION_PERIOD", EVENTS_RETENTION),
        "PREFECT_UI_API_URL": url,
        "PREFECT_SERVER_UI_STATIC_DIRECTORY": str(home / "ui"),
        # server.log is a file, not the user's terminal: keep the server's errors in it
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "ERROR",
    }
    for key, value in SERVER_TUNING.items():
        env.setdefault(key, value)
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--analytics-off"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the codex-tasks process; stopped by `server stop`
    )
    log.close()
    state = {"pid": proc.pid, "port": port, "url": url, "home": str(home), "started": time.time()}
    write_json_atomic(state_file(), state)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-600:]
            raise ServerError(f"the Prefect server exited with code {proc.returncode}",
                              hint=f"see {home / 'server.log'}: {tail.strip().splitlines()[-1] if tail.strip() else ''}")
        if _healthy(url, timeout=1.0):
            return {**state, "running": True, "managed": True}
        time.sleep(0.25)
    stop()
    raise ServerError(f"the Prefect server did not become healthy in {START_TIMEOUT:.0f} s",
                      hint=f"see {home / 'server.log'}")


def stop() -> bool:
    """Stop the managed server (SIGTERM to its process group, then SIGKILL). True if one ran."""
    st = _read_state()
    pid = int(st.get("pid") or 0)
    was_running = is_alive(pid)
    if was_running:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and is_alive(pid):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        if is_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        state_file().unlink()
    except FileNotFoundError:
        pass
    return was_running


def client_env(api_url: str) -> dict[str, str]:
    """Environment for a Prefect client process (a run, a Dask worker, a scheduled run)."""
    return {**quiet_env(), "PREFECT_API_URL": api_url}
