"""The scripted model server (tests/fixtures/model_server.py) drives the real `codex` binary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fixtures.model_server import exec_command, http_error, message


def codex_exec(codex_bin: Path, codex_home: Path, cwd: Path, prompt: str) -> tuple[int, list[dict]]:
    proc = subprocess.run(
        [str(codex_bin), "exec", "--json", "--ephemeral", "--skip-git-repo-check", "-s", "workspace-write", "-"],
        input=prompt, cwd=cwd, env={**os.environ, "CODEX_HOME": str(codex_home)},
        capture_output=True, text=True, timeout=120)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_a_scripted_command_runs_and_every_request_is_recorded(codex_bin, codex_home, model_server):
    work = codex_home / "work"  # outside /tmp, like the CODEX_HOME (FACTS.md)
    work.mkdir()
    model_server.add_turns([exec_command("echo hello > f.txt")], [message("I wrote f.txt")])
    code, events = codex_exec(codex_bin, codex_home, work, "please write f.txt")
    assert code == 0
    assert (work / "f.txt").read_text() == "hello\n"
    commands = [e["item"] for e in events if e["type"] == "item.completed"
                and e["item"]["type"] == "command_execution"]
    assert len(commands) == 1 and commands[0]["exit_code"] == 0 and "f.txt" in commands[0]["command"]
    assert events[-1]["type"] == "turn.completed" and events[-1]["usage"]["output_tokens"] > 0
    assert len(model_server.requests) == 2
    assert "please write f.txt" in model_server.all_text()
    assert "function_call_output" in json.dumps(model_server.requests[1])


def test_an_http_error_fails_the_turn(codex_bin, codex_home, model_server):
    work = codex_home / "work"
    work.mkdir()
    model_server.add_turns(http_error(400, "the scripted model refuses"))
    code, events = codex_exec(codex_bin, codex_home, work, "anything")
    failed = [e for e in events if e["type"] == "turn.failed"]
    assert failed and "the scripted model refuses" in failed[0]["error"]["message"]
    assert code == 1
