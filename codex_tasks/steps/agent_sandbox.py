"""How agent processes are started and ended: the one spawn primitive (`core/process.py`) applied.

- The generic agent (`--agent CMD`) and the test gate over agent-written code run in the strict
  sandbox: the filesystem read-only except the scratch copy, a private /tmp, no network unless
  `network: true`, their own PID namespace, killed with their parent.
- The Codex CLI sandboxes its own commands (`-s workspace-write`); it runs in a PID namespace only,
  so every process it started goes when it ends.
Where bubblewrap or user namespaces are missing, agents refuse to run (`AgentUnavailable`, exit 2)
unless the user opted out (`--unsandboxed-agents`, `with.sandbox_required: false`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from codex_tasks.core.process import Sandbox, kill_tree, sandbox_unavailable_reason, spawn
from codex_tasks.errors import AgentUnavailable

SANDBOX_HINT = ("install bubblewrap (apt-get install bubblewrap) and allow user namespaces, or opt out "
                "explicitly: run --unsandboxed-agents / with: {sandbox_required: false}")


def check_sandbox(required: bool) -> None:
    """Refuse to run an agent without a sandbox, unless the user opted out."""
    reason = sandbox_unavailable_reason()
    if reason and required:
        raise AgentUnavailable(f"agents run only inside a sandbox, and none is available: {reason}", hint=SANDBOX_HINT)


def spawn_strict(argv: list[str], *, cwd: Path, env: dict[str, str], writable: tuple[Path, ...], network: bool,
                 required: bool, **stdio: Any) -> subprocess.Popen[bytes]:
    """Start `argv` in the strict sandbox (see the module docstring)."""
    return spawn(argv, cwd=cwd, env=env, sandbox=Sandbox("strict", writable=writable, network=network),
                 allow_unsandboxed=not required, **stdio)


def spawn_pid(argv: list[str], *, cwd: Path, env: dict[str, str], **stdio: Any) -> subprocess.Popen[bytes]:
    """Start `argv` in its own PID namespace (filesystem untouched): for the Codex CLI."""
    return spawn(argv, cwd=cwd, env=env, sandbox=Sandbox("pid"), **stdio)


def end(proc: subprocess.Popen[bytes]) -> None:
    """End `proc` and every process it started."""
    kill_tree(proc, grace=2.0)
