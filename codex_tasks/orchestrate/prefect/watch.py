"""Notice within seconds that the Prefect server a run talks to is gone.

Prefect's client retries a failed request 5 times with exponential back-off (2 + 4 + 8 + 16 + 32 s),
and a run makes several requests in a row: when the server dies mid-run, a run used to stall about
3.5 minutes and then die with an `httpx.ConnectError` traceback. A `ServerWatch` thread probes the
server's port every half second (a TCP connect: cheap, and a busy server still accepts it) and the
managed server's process; when the port refuses twice in a row, or the managed server's process is
gone, it calls `on_lost` once with a one-line reason.

A hung server (accepting, never answering) is not "lost" here: Prefect's own timeouts handle it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from codex_tasks.core.process import is_alive

PROBE_INTERVAL = 0.5  # seconds between probes
REFUSALS = 2  # consecutive refused connects that mean "gone"


class ServerWatch:
    """A daemon thread that calls `on_lost(reason)` once when the server at `api_url` is gone."""

    def __init__(self, api_url: str, on_lost: Callable[[str], None], *, pid: int | None = None,
                 interval: float = PROBE_INTERVAL) -> None:
        parts = urlsplit(api_url)
        self.url = api_url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.pid = pid
        self.interval = interval
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="codex-tasks-server-watch", daemon=True)

    def start(self) -> ServerWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> ServerWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        refused = 0
        while not self._stop.wait(self.interval):
            if self.pid is not None and not is_alive(self.pid):
                reason = f"the managed Prefect server (pid {self.pid}) exited"
            elif self._refused():
                refused += 1
                if refused < REFUSALS:
                    continue
                reason = f"the Prefect server at {self.url} refuses connections"
            else:
                refused = 0
                continue
            if not self._stop.is_set():
                self.on_lost(reason)
            return

    def _refused(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2.0):
                return False
        except (ConnectionRefusedError, ConnectionResetError):
            return True
        except OSError:  # a timeout or an unreachable network: not proof that it is gone
            return False


__all__ = ["ServerWatch"]
