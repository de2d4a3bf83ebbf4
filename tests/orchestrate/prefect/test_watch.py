"""ServerWatch: a closed port or a dead managed-server process is reported once, with its reason;
a live one is not."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from codex_tasks.orchestrate.prefect.watch import ServerWatch


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def test_a_port_that_closes_is_reported_once() -> None:
    sock = _listener()
    port = sock.getsockname()[1]
    lost: list[str] = []
    called = threading.Event()

    def on_lost(why: str) -> None:
        lost.append(why)
        called.set()

    with ServerWatch(f"http://127.0.0.1:{port}/api", on_lost, interval=0.05):
        assert not called.wait(0.5)  # open port: ten probes, no report
        sock.close()
        assert called.wait(30)
    assert lost == [f"the Prefect server at http://127.0.0.1:{port}/api refuses connections"]


def test_the_managed_servers_process_exiting_is_reported() -> None:
    sock = _listener()
    port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    called = threading.Event()
    lost: list[str] = []
    try:
        with ServerWatch(f"http://127.0.0.1:{port}/api", lambda why: (lost.append(why), called.set()),
                         pid=proc.pid, interval=0.05):
            assert not called.wait(0.3)
            proc.communicate(b"")  # it exits (and is reaped): its pid is gone
            assert called.wait(30)
    finally:
        sock.close()
    assert lost == [f"the managed Prefect server (pid {proc.pid}) exited"]


def test_stopped_watch_reports_nothing() -> None:
    sock = _listener()
    port = sock.getsockname()[1]
    called = threading.Event()
    watch = ServerWatch(f"http://127.0.0.1:{port}/api", lambda why: called.set(), interval=0.05).start()
    watch.stop()
    sock.close()
    assert not called.wait(0.5)
