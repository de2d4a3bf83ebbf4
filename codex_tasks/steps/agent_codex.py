"""The Codex CLI driver: find the binary, build `codex exec` argv, run it and read its JSON events live.

`codex exec --json --ephemeral` (prompt on stdin) streams one JSON object a line on stdout
(FACTS.md, "Codex CLI"): `item.completed` items (`command_execution`, `file_change`,
`agent_message`, ...), `turn.completed {usage}`, and failures as `error` / `turn.failed`. Codex
exits 0 after some failures, so success is judged by the events, not only by the exit code.
`--ephemeral` keeps no session files under CODEX_HOME (they would hold unredacted prompts and output).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks.errors import AgentUnavailable, StepFailed, StepTimeout

CODEX_PIN = "0.171.0"  # keep in step with CODEX_VERSION in scripts/install.sh
INSTALL_HINT = "run `make install` (or `scripts/install.sh --codex-only`; needs npm), or set CODEX_TASKS_CODEX_BIN"
PROJECT_BIN = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "codex"
USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def resolve_codex_bin(explicit: str | None = None) -> str:
    """`with.bin`, else `CODEX_TASKS_CODEX_BIN`, else `codex` on PATH, else the project's copy."""
    for candidate, origin in ((explicit, "with.bin"), (os.environ.get("CODEX_TASKS_CODEX_BIN"), "CODEX_TASKS_CODEX_BIN")):
        if candidate:
            found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if not found:
                raise AgentUnavailable(f"the Codex CLI given by {origin} ({candidate}) does not exist", hint=INSTALL_HINT)
            return found
    on_path = shutil.which("codex")
    if on_path:
        return on_path
    if PROJECT_BIN.exists():
        return str(PROJECT_BIN)
    raise AgentUnavailable("the Codex CLI (`codex`) is not installed", hint=INSTALL_HINT)


def toml_value(value: Any) -> str:
    """A Python value as a TOML value, for `-c key=value`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


@dataclass(frozen=True)
class CodexOptions:
    """What `with:` passes to `codex exec`."""

    bin: str
    sandbox: str = "workspace-write"
    model: str | None = None
    profile: str | None = None
    oss: bool = False
    local_provider: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    network: bool = False
    add_dirs: tuple[Path, ...] = ()  # more writable folders (Codex keeps `.codex/` read-only otherwise)


def codex_argv(opts: CodexOptions, workdir: Path, last_message: Path | None) -> list[str]:
    """`codex exec --json --ephemeral ... -` (the prompt comes on stdin)."""
    argv = [opts.bin, "exec", "--json", "--ephemeral", "--skip-git-repo-check", "-C", str(workdir),
            "-s", opts.sandbox]
    if opts.model:
        argv += ["-m", opts.model]
    if opts.profile:
        argv += ["-p", opts.profile]
    if opts.oss:
        argv.append("--oss")
    if opts.local_provider:
        argv += ["--local-provider", opts.local_provider]
    config = dict(opts.config)
    if opts.sandbox == "workspace-write":
        config.setdefault("sandbox_workspace_write.network_access", opts.network)
    for key, value in config.items():
        argv += ["-c", f"{key}={toml_value(value)}"]
    for extra in opts.add_dirs:
        argv += ["--add-dir", str(extra)]
    if last_message is not None:
        argv += ["-o", str(last_message)]
    argv.append("-")
    return argv


@dataclass
class CodexTranscript:
    """What one `codex exec` reported: commands, file changes, messages, usage, failure."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    file_changes: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0))
    turns: int = 0
    failure: str | None = None
    thread_id: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.usage["input_tokens"] + self.usage["output_tokens"]

    def summary(self) -> dict[str, Any]:
        return {"usage": dict(self.usage), "turns": self.turns, "commands": len(self.commands),
                "file_changes": len(self.file_changes)}


Emit = Callable[[str, dict[str, Any]], None]


def read_event(line: str, tx: CodexTranscript, emit: Emit) -> None:
    """Fold one JSON line of `codex exec --json` into `tx`, emitting an `agent` event for what matters."""
    try:
        ev = json.loads(line)
    except ValueError:
        return  # Codex prints a few plain lines (warnings) too
    if not isinstance(ev, dict):
        return
    kind = ev.get("type")
    if kind == "thread.started":
        tx.thread_id = ev.get("thread_id")
    elif kind == "item.completed":
        item = ev.get("item") or {}
        itype = item.get("type")
        if itype == "command_execution":
            rec = {"command": item.get("command", ""), "exit_code": item.get("exit_code"),
                   "status": item.get("status"), "output_tail": str(item.get("aggregated_output", ""))[-500:]}
            tx.commands.append(rec)
            emit("command", rec)
        elif itype == "file_change":
            changes = item.get("changes") or []
            rec = {"changes": [{"path": c.get("path"), "kind": c.get("kind")} for c in changes if isinstance(c, dict)],
                   "status": item.get("status")}
            tx.file_changes.append(rec)
            emit("file_change", rec)
        elif itype == "agent_message":
            tx.messages.append(str(item.get("text", "")))
            emit("message", {"text": str(item.get("text", ""))[:2000]})
        elif itype == "error":
            emit("warning", {"text": str(item.get("message", ""))})  # e.g. unknown model metadata
    elif kind == "turn.completed":
        tx.turns += 1
        usage = ev.get("usage") or {}
        for key in USAGE_KEYS:
            tx.usage[key] += int(usage.get(key) or 0)
        emit("usage", {"turn": tx.turns, **{k: int(usage.get(k) or 0) for k in USAGE_KEYS},
                       "total": dict(tx.usage)})
    elif kind == "turn.failed":
        tx.failure = str((ev.get("error") or {}).get("message") or "the turn failed")
        emit("failed", {"text": tx.failure})
    elif kind == "error":
        tx.failure = tx.failure or str(ev.get("message") or "Codex reported an error")
        emit("error", {"text": str(ev.get("message", ""))})


def run_codex(argv: list[str], *, cwd: Path, prompt: str, env: dict[str, str], log_path: Path, timeout: float,
              emit: Emit, cancelled: Callable[[], bool], max_tokens: int | None,
              spawn: Callable[..., subprocess.Popen[bytes]], kill: Callable[[subprocess.Popen[bytes]], None]
              ) -> tuple[int, CodexTranscript]:
    """Run `codex exec`, reading its events as they arrive; stop it at the timeout, on cancel or
    when the token budget is spent. Returns its exit code and what it reported."""
    tx = CodexTranscript()
    over_budget = threading.Event()
    try:
        proc = spawn(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        raise StepFailed(f"cannot start the Codex CLI {argv[0]!r}: {exc}", hint=INSTALL_HINT) from exc
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(prompt.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    stdout = proc.stdout

    def pump() -> None:
        with open(log_path, "ab") as log:
            for raw in iter(stdout.readline, b""):
                log.write(raw)
                log.flush()
                read_event(raw.decode("utf-8", "replace"), tx, emit)
                if max_tokens is not None and tx.total_tokens > max_tokens:
                    over_budget.set()

    reader = threading.Thread(target=pump, name="codex-events", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            code = proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if over_budget.is_set() or cancelled() or time.monotonic() > deadline:
            kill(proc)
            reader.join(timeout=5)
            if over_budget.is_set():
                raise StepFailed(f"the agent used {tx.total_tokens} tokens, over its budget max_tokens={max_tokens}; "
                                 "nothing was applied", context=json.dumps(tx.usage))
            if cancelled():
                raise StepFailed("the agent was cancelled")
            raise StepTimeout(f"the agent ran past its timeout of {timeout:g} s and was killed")
    reader.join(timeout=30)  # the rest of its output, up to EOF
    return code, tx


def prefect_logger() -> Any:
    """The Prefect task run's logger when this thread runs one, else None. Called in the step's own
    thread: the run context does not follow the thread that reads Codex's events."""
    import sys

    if "prefect" not in sys.modules:  # not inside a Prefect run; importing it would cost seconds
        return None
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return None
