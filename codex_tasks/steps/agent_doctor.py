"""What `codex-tasks doctor` reports about agents: the Codex binary and its version against the pin,
bubblewrap and user namespaces, and a CODEX_HOME under /tmp (which silently breaks Codex's own
sandbox when bubblewrap is installed: every command fails with "bwrap: execvp codex-linux-sandbox").
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    hint: str = ""


def codex_version(binary: str) -> str | None:
    """`codex --version` → "0.171.0", or None when it does not run."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.strip().split()[-1] if out.strip() else None


def agent_checks() -> list[Check]:
    """The agent-related checks, each with a hint when it fails."""
    from codex_tasks.core.process import sandbox_unavailable_reason
    from codex_tasks.errors import AgentUnavailable
    from codex_tasks.steps.agent_codex import CODEX_PIN, INSTALL_HINT, resolve_codex_bin

    checks: list[Check] = []
    try:
        binary = resolve_codex_bin()
    except AgentUnavailable as exc:
        checks.append(Check("codex", False, exc.message, INSTALL_HINT))
    else:
        version = codex_version(binary)
        if version is None:
            checks.append(Check("codex", False, f"{binary} does not run", INSTALL_HINT))
        else:
            same = version == CODEX_PIN
            checks.append(Check("codex", same, f"{binary}: {version} (pinned {CODEX_PIN})",
                                "" if same else "tested with the pinned version: scripts/install.sh --codex-only"))
    reason = sandbox_unavailable_reason()
    checks.append(Check("sandbox", reason is None, reason or "bubblewrap and user namespaces work",
                        "" if reason is None else "apt-get install bubblewrap; agents refuse to run without it"))
    home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex").expanduser().resolve()
    under_tmp = home.is_relative_to("/tmp")
    checks.append(Check("CODEX_HOME", not under_tmp, str(home) + (" is under /tmp" if under_tmp else ""),
                        "move CODEX_HOME out of /tmp: Codex's sandbox refuses to link its helper there"
                        if under_tmp else ""))
    return checks
