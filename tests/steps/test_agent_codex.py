"""The `agent` step driving the real `codex` binary against the scripted model server."""

from __future__ import annotations

import json

import pytest
from fixtures.model_server import exec_command, http_error, message

from codex_tasks.errors import StepFailed
from codex_tasks.steps import agent


@pytest.fixture
def codex(monkeypatch, codex_env):
    for k, v in codex_env.items():
        monkeypatch.setenv(k, v)
    return codex_env


def events(ctx) -> list[dict]:
    path = ctx.run_dir / "events.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_codex_writes_the_declared_output(codex, model_server, make_ctx):
    model_server.add_turns([exec_command("mkdir -p logs && echo '# notes' > logs/notes.md")], [message("Wrote it.")])
    ctx = make_ctx(description="Write the notes to {logs_dir}/notes.md", params={"logs_dir": "logs"},
                   declared_outputs=["logs/notes.md"])
    res = agent.run(agent.With(test_args=None), ctx)
    assert (ctx.workspace / "logs" / "notes.md").read_text() == "# notes\n"
    assert res.summary["usage"]["input_tokens"] > 0 and res.summary["usage"]["output_tokens"] > 0
    prompt = (ctx.step_dir / "prompt.md").read_text()
    assert "Write the notes to logs/notes.md" in prompt and "{logs_dir}" not in prompt
    assert "`logs/notes.md`" in prompt  # the contract
    agent_events = [e for e in events(ctx) if e["type"] == "agent"]
    cmds = [e for e in agent_events if e["kind"] == "command"]
    assert len(cmds) == 1 and "notes.md" in cmds[0]["command"] and cmds[0]["exit_code"] == 0
    assert any(e["kind"] == "usage" for e in agent_events)
    assert "Write the notes to logs/notes.md" in model_server.all_text()


def test_model_error_fails_the_step_with_its_message(codex, model_server, make_ctx):
    model_server.add_turns(http_error(400, "the scripted model refuses this task"))
    ctx = make_ctx(description="anything")
    with pytest.raises(StepFailed, match="the scripted model refuses this task"):
        agent.run(agent.With(test_args=None), ctx)
