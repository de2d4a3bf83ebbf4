"""The `agent` step with scripted agent programs (real external processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codex_tasks.errors import StepFailed, StepTimeout
from codex_tasks.steps import agent, patch

AGENTS = Path(__file__).resolve().parent.parent / "fixtures" / "agents"
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "tests").mkdir(parents=True)
    (ws / "app.py").write_text("def value():\n    return 1\n")
    (ws / "tests" / "test_app.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent.parent))\n"
        "from app import value\n\ndef test_value():\n    assert value() in (1, 2)\n"
    )
    return ws


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".codex" not in p.relative_to(root).parts}


def cfg(script: str, **kw) -> agent.With:
    return agent.With(command=[sys.executable, str(AGENTS / script)], **kw)


def test_agent_edits_come_back_as_a_gated_patch(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="Make value() return 2", env=FAST)
    audit_dir = ctx.run_dir / "steps" / "audit"
    audit_dir.mkdir(parents=True)
    (audit_dir / "stub_scan.json").write_text(json.dumps(
        {"findings": [{"path": "app.py", "line": 2, "kind": "todo", "text": "TODO return 2"}], "unparsed": []}))
    (ctx.run_dir / "error_captures.ndjson").write_text(json.dumps({"step_id": "tests", "error_message": "boom"}) + "\n")
    before = snapshot(ws)
    res = agent.run(cfg("edit_agent.py", apply=False), ctx)
    assert snapshot(ws) == before  # the agent never edits the user's tree
    assert sorted(res.summary["changed_files"]) == ["app.py", "helpers.py", "received_prompt.txt"]
    text = (ctx.step_dir / "agent.patch").read_text()
    assert "+    return 2" in text and "helpers.py" in text
    prompt = (ctx.step_dir / "prompt.md").read_text()
    assert "Make value() return 2" in prompt and "app.py:2 [todo]" in prompt and "[tests] boom" in prompt
    assert json.loads((ctx.step_dir / "gate_tests" / "test_results.json").read_text())["passed"] == 1
    # The patch step applies it to the workspace, with rollback.
    pctx = make_ctx(step_id="apply", workspace=ws)
    patch.run(patch.With(patches=[str(ctx.step_dir / "agent.patch")]), pctx)
    assert "return 2" in (ws / "app.py").read_text() and (ws / "helpers.py").is_file()
    patch.rollback(pctx.run_dir, "apply")
    assert snapshot(ws) == before


def test_apply_true_and_rollback(make_ctx, ws):
    before = snapshot(ws)
    ctx = make_ctx(workspace=ws, description="Make value() return 2", env=FAST)
    agent.run(cfg("edit_agent.py", apply=True, test_args=None), ctx)
    assert "return 2" in (ws / "app.py").read_text()
    patch.rollback(ctx.run_dir, ctx.step_id)
    assert snapshot(ws) == before


def test_failing_agent(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="x")
    with pytest.raises(StepFailed, match="exited with code 3") as exc:
        agent.run(cfg("fail_agent.py"), ctx)
    assert "cannot do this task" in exc.value.context


def test_hanging_agent_is_killed(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="x")
    with pytest.raises(StepTimeout, match="timeout"):
        agent.run(cfg("hang_agent.py", timeout=1.0), ctx)
    # Nothing of the agent is left running.
    ps = subprocess.run(["pgrep", "-f", str(AGENTS / "hang_agent.py")], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_secret_in_patch_fails_the_gate(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="x", env=FAST)
    with pytest.raises(StepFailed, match="secret"):
        agent.run(cfg("secret_agent.py"), ctx)
    assert "ghp_" not in (ctx.step_dir / "gate_findings.json").read_text()


def test_breaking_change_fails_the_test_gate(make_ctx, ws):
    before = snapshot(ws)
    ctx = make_ctx(workspace=ws, description="x", env=FAST)
    with pytest.raises(StepFailed, match="tests fail in the scratch copy"):
        agent.run(cfg("breaking_agent.py", apply=True), ctx)
    assert snapshot(ws) == before


def test_no_task_and_no_changes(make_ctx, ws):
    with pytest.raises(StepFailed, match="no task"):
        agent.run(cfg("edit_agent.py"), make_ctx(workspace=ws))
    ctx = make_ctx(workspace=ws, description="nothing")
    res = agent.run(agent.With(command=[sys.executable, "-c", "pass"]), ctx)
    assert res.note == "the agent made no changes"
    with pytest.raises(StepFailed, match="no changes"):
        agent.run(agent.With(command=[sys.executable, "-c", "pass"], require_changes=True), ctx)


def test_git_workspace_copies_uncommitted_work(make_ctx, ws):
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "i"]):
        subprocess.run(cmd, cwd=ws, check=True, env={**__import__("os").environ, **env})
    (ws / "app.py").write_text("def value():\n    return 1  # uncommitted\n")
    (ws / ".gitignore").write_text("ignored.txt\n")
    (ws / "ignored.txt").write_text("x")
    ctx = make_ctx(workspace=ws, description="x")
    agent.run(cfg("edit_agent.py", apply=True, test_args=None), ctx)
    assert (ws / "app.py").read_text() == "def value():\n    return 2  # uncommitted\n"
    head = subprocess.run(["git", "log", "--oneline"], cwd=ws, capture_output=True, text=True).stdout
    assert len(head.splitlines()) == 1  # the user's repository is untouched


def test_config_for_command():
    c = agent.config_for_command("my-agent --model 'x y' {prompt_file}")
    assert c.command == ["my-agent", "--model", "x y", "{prompt_file}"] and c.apply is True


# --- the generic agent's sandbox: commands that try to escape ---------------------------------

needs_sandbox = pytest.mark.skipif(
    __import__("codex_tasks.core.process", fromlist=["x"]).sandbox_unavailable_reason() is not None
    and not __import__("os").environ.get("CI"), reason="bubblewrap is not usable here")


@pytest.fixture
def escape_target():
    """Where an escape would write: outside /tmp (the sandbox has a private /tmp), removed afterwards."""
    import uuid

    target = Path.home() / ".cache" / "codex-tasks-tests" / f"escape-{uuid.uuid4().hex}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    yield target
    target.unlink(missing_ok=True)


def tagged(target: Path) -> dict[str, str]:
    """The agent's env: the escape target and a tag to find its processes by."""
    import uuid

    return {**FAST, "ESCAPE_TARGET": str(target), "CODEX_TASKS_TEST_TAG": uuid.uuid4().hex}


def leftover(env: dict[str, str]) -> list[int]:
    from codex_tasks.core.process import processes_with_env

    return processes_with_env("CODEX_TASKS_TEST_TAG", env["CODEX_TASKS_TEST_TAG"])


@needs_sandbox
def test_a_write_outside_the_copy_is_read_only(make_ctx, ws, escape_target):
    env = tagged(escape_target)
    ctx = make_ctx(workspace=ws, description="x", env=env)
    agent.run(cfg("escape_agent.py", test_args=None), ctx)
    assert not escape_target.exists()
    assert "Read-only file system" in (ctx.step_dir / "agent.log").read_text()
    assert "return 2" in (ws / "app.py").read_text()  # its legitimate change still came back


@needs_sandbox
def test_a_conftest_writing_outside_during_the_gate_cannot(make_ctx, ws, escape_target):
    env = tagged(escape_target)
    ctx = make_ctx(workspace=ws, description="x", env=env)
    agent.run(cfg("conftest_agent.py", apply=False), ctx)
    assert not escape_target.exists()
    assert not (ws / "tests" / "conftest.py").exists()  # kept, not applied


@needs_sandbox
def test_a_daemon_does_not_outlive_the_step(make_ctx, ws, escape_target):
    env = tagged(escape_target)
    ctx = make_ctx(workspace=ws, description="x", env=env)
    agent.run(cfg("daemon_agent.py", test_args=None), ctx)
    assert (ws / "daemon_started.txt").is_file()
    assert leftover(env) == []


@needs_sandbox
def test_nothing_outlives_a_timeout(make_ctx, ws, escape_target):
    env = tagged(escape_target)
    ctx = make_ctx(workspace=ws, description="x", env=env)
    with pytest.raises(StepTimeout):
        agent.run(cfg("hang_agent.py", timeout=1.0), ctx)
    assert leftover(env) == []


def test_an_absolute_symlink_is_refused(make_ctx, ws):
    before = snapshot(ws)
    ctx = make_ctx(workspace=ws, description="x")
    with pytest.raises(StepFailed, match="symlink pointing outside the workspace"):
        agent.run(cfg("symlink_agent.py", test_args=None), ctx)
    assert snapshot(ws) == before and not (ws / "passwd_link").is_symlink()


def test_deleting_the_tests_fails_the_gate(make_ctx, ws):
    before = snapshot(ws)
    ctx = make_ctx(workspace=ws, description="x", env=FAST)
    with pytest.raises(StepFailed, match="collects 0 test"):
        agent.run(cfg("delete_tests_agent.py"), ctx)
    assert snapshot(ws) == before


def test_a_workflow_write_is_refused_unless_the_sequence_allows_it(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="x")
    with pytest.raises(StepFailed, match=r"\.github/workflows is forbidden"):
        agent.run(cfg("workflow_agent.py", test_args=None), ctx)
    assert not (ws / ".github").exists()
    ctx = make_ctx(step_id="s2", workspace=ws, description="x", params={"forbid_github_workflows": False})
    agent.run(cfg("workflow_agent.py", test_args=None), ctx)
    assert (ws / ".github" / "workflows" / "ci.yml").is_file()


def test_no_tests_before_or_after_skips_the_gate_with_a_note(make_ctx, tmp_path):
    ws = tmp_path / "bare"
    ws.mkdir()
    (ws / "app.py").write_text("def value():\n    return 1\n")
    ctx = make_ctx(workspace=ws, description="x", env=FAST)
    res = agent.run(cfg("edit_agent.py"), ctx)
    assert "skipped" in res.summary["test_gate"]["note"]


def test_secret_files_stay_out_of_the_copy_and_secret_params_out_of_the_env(make_ctx, ws):
    token = "ghp" + "_" + "Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0Kk1Ll2"
    (ws / "creds.py").write_text(f'TOKEN = "{token}"\n')
    from codex_tasks.core.redact import clear_values, register_values

    register_values(["s3cr3t-param-value"])
    try:
        ctx = make_ctx(workspace=ws, description="x", env={**FAST, "CODEX_PARAM_API_KEY": "s3cr3t-param-value"})
        script = ("import os, pathlib; pathlib.Path('seen.txt').write_text("
                  "str(sorted(os.listdir('.'))) + os.environ.get('CODEX_PARAM_API_KEY', 'absent'))")
        agent.run(agent.With(command=[sys.executable, "-c", script], test_args=None), ctx)
    finally:
        clear_values()
    seen = (ws / "seen.txt").read_text()
    assert "creds.py" not in seen and seen.endswith("absent")


def write_cmd(*files: str) -> list[str]:
    """A generic agent (inline) that writes each FILE (creating folders)."""
    body = "; ".join(f"p = pathlib.Path({f!r}); p.parent.mkdir(parents=True, exist_ok=True); p.write_text('x\\n')"
                     for f in files)
    return [sys.executable, "-c", f"import pathlib; {body}"]


def test_a_declared_output_under_codex_comes_back_other_codex_writes_are_refused(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="x", declared_outputs=[".codex/logs/notes.md"])
    agent.run(agent.With(command=write_cmd(".codex/logs/notes.md"), test_args=None), ctx)
    assert (ws / ".codex" / "logs" / "notes.md").read_text() == "x\n"
    ctx = make_ctx(step_id="s2", workspace=ws, description="x")
    with pytest.raises(StepFailed, match=r"inside \.codex/"):
        agent.run(agent.With(command=write_cmd(".codex/other.txt"), test_args=None), ctx)
    assert not (ws / ".codex" / "other.txt").exists()


def test_the_running_sequence_file_may_not_be_edited(make_ctx, ws):
    (ws / "seq.yaml").write_text("title: t\n")
    ctx = make_ctx(workspace=ws, description="x")
    (ctx.run_dir / "state.json").write_text(json.dumps({"sequence_file": str(ws / "seq.yaml")}))
    with pytest.raises(StepFailed, match="the running sequence file"):
        agent.run(agent.With(command=write_cmd("seq.yaml"), test_args=None), ctx)
    assert (ws / "seq.yaml").read_text() == "title: t\n"


def test_earlier_outputs_are_copied_in_even_when_git_ignored(make_ctx, ws):
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    (ws / ".gitignore").write_text("build/\n")
    (ws / "build").mkdir()
    (ws / "build" / "data.json").write_text("{}")
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "i"]):
        subprocess.run(cmd, cwd=ws, check=True, env={**__import__("os").environ, **env})
    ctx = make_ctx(workspace=ws, description="x")
    (ctx.run_dir / "plan.json").write_text(json.dumps({"steps": [{"id": "build"}, {"id": "s1"}]}))
    ctx.outputs_of = lambda sid: [{"path": "build/data.json"}] if sid == "build" else []
    script = "import os, pathlib; pathlib.Path('seen.txt').write_text(str(os.path.exists('build/data.json')))"
    agent.run(agent.With(command=[sys.executable, "-c", script], test_args=None), ctx)
    assert (ws / "seen.txt").read_text() == "True"
    assert "`build/data.json`" in (ctx.step_dir / "prompt.md").read_text()


def test_a_generic_agent_that_misses_its_declared_output_fails(make_ctx, ws):
    ctx = make_ctx(workspace=ws, description="x", declared_outputs=["report.md"])
    with pytest.raises(StepFailed, match="declared output missing: report.md"):
        agent.run(agent.With(command=write_cmd("other.md"), test_args=None), ctx)
    assert not (ws / "other.md").exists()


def test_sandbox_required_refuses_without_bubblewrap(make_ctx, ws, monkeypatch):
    from codex_tasks.errors import AgentUnavailable
    from codex_tasks.steps import agent_sandbox

    # where the agent's sandbox check looks the probe up (it imports it at its top)
    monkeypatch.setattr(agent_sandbox, "sandbox_unavailable_reason", lambda: "bubblewrap is not installed")
    with pytest.raises(AgentUnavailable, match="only inside a sandbox") as exc:
        agent.preflight(agent.With(command=write_cmd("a.txt")))
    assert "--unsandboxed-agents" in (exc.value.hint or "")
    agent.preflight(agent.With(command=write_cmd("a.txt"), sandbox_required=False))  # the explicit opt-out
