"""The one way codex-tasks starts a child process: its own session, optionally inside bubblewrap.

Every step's subprocess, every agent and every test gate goes through `spawn`, so that ending a
step (normally, by timeout, by cancel, or by a SIGKILL of the run) ends everything it started:

- mode ``"none"``: a plain child in a new session (its own process group).
- mode ``"pid"``: the child runs in a PID namespace of its own (`bwrap --dev-bind / / --proc /proc
  --unshare-pid --die-with-parent`, filesystem and devices untouched). When the child exits, or the run that started it
  dies, the kernel kills every process left in the namespace — daemons included. Plain steps.
- mode ``"strict"``: as ``"pid"``, plus the whole filesystem read-only except the `writable`
  paths and a private temp folder (`TMPDIR`; `/tmp` itself is read-only), and no network unless `network=True`. Agents and test gates over
  agent-written code.

Where bubblewrap (or unprivileged user namespaces) is missing, ``"pid"`` falls back to a plain
session; ``"strict"`` refuses (`SandboxUnavailable`) unless the caller allows running unsandboxed.
`cgroup.kill` is not available on these machines and `PR_SET_PDEATHSIG` alone covers only the
direct child (and fires when the spawning *thread* exits), hence the namespace.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from codex_tasks.errors import SandboxUnavailable

SandboxMode = Literal["none", "pid", "strict"]

# A probe that exercises everything "strict" uses; if it works, "pid" works too.
_PROBE = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
          "--unshare-pid", "--unshare-net", "--die-with-parent", "--", "true")


@dataclass(frozen=True)
class Sandbox:
    """How a child is confined; see the module docstring for the three modes."""

    mode: SandboxMode = "pid"
    writable: tuple[Path, ...] = field(default_factory=tuple)
    network: bool = True


@functools.lru_cache(maxsize=1)
def sandbox_unavailable_reason() -> str | None:
    """None when bubblewrap works here, else why not (one line)."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        proc = subprocess.run([bwrap, *_PROBE], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not start: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return f"bubblewrap cannot create namespaces here ({detail}); user namespaces may be disabled"
    return None


@functools.lru_cache(maxsize=1)
def _bwrap_path() -> str:
    """Looked up once, as the probe above is: a PATH search per step was a dozen `stat` calls."""
    return shutil.which("bwrap") or "bwrap"


def sandbox_available() -> bool:
    """True when `spawn` can confine children with bubblewrap."""
    return sandbox_unavailable_reason() is None


def bwrap_argv(sandbox: Sandbox) -> list[str]:
    """The bubblewrap prefix for `sandbox` (empty for mode "none")."""
    if sandbox.mode == "none":
        return []
    bwrap = _bwrap_path()
    if sandbox.mode == "pid":
        # --dev-bind keeps the host's /dev (GPUs, ptys): plain steps get no other restriction
        return [bwrap, "--dev-bind", "/", "/", "--proc", "/proc", "--unshare-pid", "--die-with-parent", "--"]
    # No tmpfs over /tmp: a checkout, a venv or the scratch copy may live under /tmp and must stay
    # visible; /tmp is read-only like the rest, and `spawn` gives the child a private TMPDIR.
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in sandbox.writable:
        real = str(Path(path).resolve())
        argv += ["--bind", real, real]
    argv += ["--unshare-pid", "--die-with-parent", "--new-session"]
    if not sandbox.network:
        argv.append("--unshare-net")
    return [*argv, "--"]


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    sandbox: Sandbox = Sandbox("pid"),
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    allow_unsandboxed: bool = True,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session, confined as `sandbox` says; see the module docstring.

    `pass_fds` stay open in the child (bubblewrap passes them through). Every listener in
    `spawn_listeners` is told the new process group (the run lock records it)."""
    mode = sandbox.mode
    if mode != "none" and not sandbox_available():
        if mode == "strict" and not allow_unsandboxed:
            raise SandboxUnavailable(
                f"cannot sandbox {Path(argv[0]).name}: {sandbox_unavailable_reason()}",
                hint="install bubblewrap, or opt out explicitly (see docs/security.md)")
        mode = "none"
    child_env = dict(env) if env is not None else None
    writable = tuple(sandbox.writable)
    private_tmp = None
    if mode == "strict":
        # a private, writable temp folder (TMPDIR), removed once the Popen object is gone
        private_tmp = tempfile.mkdtemp(prefix="codex-tasks-sandbox-tmp-")
        writable += (Path(private_tmp),)
        child_env = dict(os.environ) if child_env is None else child_env
        child_env.update(TMPDIR=private_tmp, TMP=private_tmp, TEMP=private_tmp)
    prefix = bwrap_argv(Sandbox(mode, writable, sandbox.network))
    proc = subprocess.Popen([*prefix, *argv], cwd=cwd, env=child_env,
                            stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True,
                            pass_fds=tuple(pass_fds))
    if private_tmp is not None:
        weakref.finalize(proc, shutil.rmtree, private_tmp, ignore_errors=True)
    for listener in list(spawn_listeners):
        listener(proc.pid)
    return proc


# Called with the process-group id of every child `spawn` starts (a run lock registers itself here,
# so a resume can end what a killed run left behind).
spawn_listeners: list[Callable[[int], None]] = []


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_tree(target: subprocess.Popen[Any] | int, *, grace: float = 3.0) -> None:
    """SIGTERM the process group led by `target`, wait up to `grace` seconds, then SIGKILL it.

    `target` is a `Popen` from `spawn` (its pid leads its group) or a process-group id.
    """
    proc = target if isinstance(target, subprocess.Popen) else None
    pgid = proc.pid if proc is not None else int(target)  # type: ignore[arg-type]
    if not _signal_group(pgid, signal.SIGTERM):
        if proc is not None:
            proc.poll()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None and not group_alive(pgid):
                return
        elif not group_alive(pgid):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def group_alive(pgid: int) -> bool:
    """True while any process of group `pgid` exists (zombies excluded)."""
    try:
        os.killpg(pgid, 0)  # one system call: a group with no process at all (the usual answer) ends here
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's group: it exists; whether only as zombies, /proc says
    except OSError:
        pass
    for pid in _pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def is_alive(pid: object) -> bool:
    """True when process `pid` exists and is not a zombie (anything but a positive int: False).

    The one process-alive probe: run folders, the run lock, the managed server, checkpoints.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the kill probe is all we have
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def processes_with_env(key: str, value: str) -> list[int]:
    """Pids of live processes whose environment has `key=value` (read through /proc)."""
    needle = f"{key}={value}".encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and is_alive(pid):
            found.append(pid)
    return found
