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


def test_a_token_budget_over_spent_fails_without_applying(codex, model_server, make_ctx):
    model_server.add_turns([exec_command("echo x > spent.txt")], [message("done")])
    ctx = make_ctx(description="spend tokens")
    with pytest.raises(StepFailed, match="over its budget max_tokens=100"):
        agent.run(agent.With(test_args=None, max_tokens=100), ctx)
    assert not (ctx.workspace / "spent.txt").exists()


def test_a_timeout_leaves_no_process_behind(codex, model_server, make_ctx):
    import uuid

    from codex_tasks.core.process import processes_with_env
    from codex_tasks.errors import StepTimeout

    tag = uuid.uuid4().hex
    model_server.add_turns([exec_command("echo started > started.txt; sleep 120")], [message("done")])
    ctx = make_ctx(description="hang", env={"CODEX_TASKS_TEST_TAG": tag})
    with pytest.raises(StepTimeout, match="timeout of 8 s"):
        agent.run(agent.With(test_args=None, timeout=8), ctx)
    assert processes_with_env("CODEX_TASKS_TEST_TAG", tag) == []


def test_read_only_sandbox_final_message_is_the_declared_report(codex, model_server, make_ctx):
    model_server.add_turns([message("# Review\nAll good.")])
    ctx = make_ctx(description="Review the code", declared_outputs=["review.md"])
    agent.run(agent.With(test_args=None, sandbox="read-only"), ctx)
    assert (ctx.workspace / "review.md").read_text().startswith("# Review")


def test_an_agent_that_changes_nothing_fails_when_outputs_are_declared(codex, model_server, make_ctx):
    model_server.add_turns([message("I did nothing.")])
    ctx = make_ctx(description="Write out.txt", declared_outputs=["out.txt"])
    with pytest.raises(StepFailed, match="changed nothing"):
        agent.run(agent.With(test_args=None), ctx)


def test_codex_argv_passes_with_fields():
    from codex_tasks.steps.agent_codex import CodexOptions, codex_argv

    argv = codex_argv(CodexOptions(bin="codex", model="m", profile="p", oss=True, local_provider="ollama",
                                   config={"model_reasoning_effort": "low", "a.b": 3}), __import__("pathlib").Path("/w"),
                      None)
    assert argv[:4] == ["codex", "exec", "--json", "--ephemeral"] and argv[-1] == "-"
    joined = " ".join(argv)
    assert "-m m -p p --oss --local-provider ollama" in joined
    assert 'model_reasoning_effort="low"' in joined and "a.b=3" in joined
    assert "sandbox_workspace_write.network_access=false" in joined


def test_missing_binary_names_the_install_command(monkeypatch, tmp_path):
    from codex_tasks.errors import AgentUnavailable
    from codex_tasks.steps import agent_codex

    monkeypatch.delenv("CODEX_TASKS_CODEX_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(agent_codex, "PROJECT_BIN", tmp_path / "absent")
    with pytest.raises(AgentUnavailable) as exc:
        agent_codex.resolve_codex_bin()
    assert exc.value.exit_code == 2 and "make install" in (exc.value.hint or "")


def test_install_script_pins_the_same_version():
    from codex_tasks.steps.agent_codex import CODEX_PIN, PROJECT_BIN

    script = (PROJECT_BIN.parents[3] / "scripts" / "install.sh").read_text()
    assert f"CODEX_VERSION={CODEX_PIN}\n" in script


def test_codex_writes_a_declared_output_under_dot_codex(codex, model_server, make_ctx):
    model_server.add_turns([exec_command("mkdir -p .codex/logs && echo n > .codex/logs/notes.md")], [message("ok")])
    ctx = make_ctx(description="notes", declared_outputs=[".codex/logs/notes.md"])
    agent.run(agent.With(test_args=None), ctx)
    assert (ctx.workspace / ".codex" / "logs" / "notes.md").read_text() == "n\n"
