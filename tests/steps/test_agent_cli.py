"""`codex-tasks run --agent codex` end to end: the real CLI, the real `codex`, the scripted model."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from fixtures.model_server import exec_command, http_error, message

from tests.conftest import run_cli

SEQ = textwrap.dedent("""\
    version: "1.0"
    title: notes
    metadata:
      default_logs_dir: "logs"
      offline_only: true
      forbid_github_workflows: true
    phases:
      - name: Write
        id: P1
        steps:
          - id: P1.1
            description: "Write a short note about the repository to {logs_dir}/notes.md."
            outputs:
              - path: "{logs_dir}/notes.md"
                description: "Notes about the repository."
    """)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh git repository with a sequence whose only step is a description."""
    ws = tmp_path / "repo"
    ws.mkdir()
    (ws / "seq.yaml").write_text(SEQ)
    (ws / "README.md").write_text("# demo\n")
    (ws / ".gitignore").write_text("logs/\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=ws, check=True, capture_output=True, env={**__import__("os").environ, **env})
    return ws


def run_dir(ws: Path) -> Path:
    return sorted((ws / ".codex" / "runs").iterdir())[-1]


def test_run_agent_codex_writes_the_declared_output(repo, codex_env, model_server, prefect_url):
    model_server.add_turns([exec_command("mkdir -p logs && printf '# Notes\\n' > logs/notes.md")],
                           [message("Wrote logs/notes.md.")])
    proc = run_cli("run", "seq.yaml", "--agent", "codex", cwd=repo, env=codex_env, check=0)
    # git-ignored (logs/), so it arrived on its own path, not through the diff
    assert (repo / "logs" / "notes.md").read_text() == "# Notes\n"
    assert "$ /bin/bash -lc" in proc.stdout and "(exit 0)" in proc.stdout
    rd = run_dir(repo)
    events = [json.loads(line) for line in (rd / "events.ndjson").read_text().splitlines()]
    cmds = [e for e in events if e["type"] == "agent" and e["kind"] == "command"]
    assert cmds and "logs/notes.md" in cmds[0]["command"] and cmds[0]["exit_code"] == 0
    summary = json.loads((rd / "summary.json").read_text())
    step = summary["steps"][0]
    assert step["status"] == "succeeded"
    assert step["agent_usage"]["input_tokens"] > 0 and step["agent_usage"]["output_tokens"] > 0
    assert summary["agent_usage"] == step["agent_usage"]
    assert "## Agent tokens" in (rd / "report.md").read_text()
    from codex_tasks.core.process import processes_with_env

    assert processes_with_env("CODEX_RUN_ID", rd.name) == []  # nothing of the step is left running
    request = model_server.all_text()
    assert "logs/notes.md" in request and "{logs_dir}" not in request
    assert "offline" in request.lower() and ".github/workflows" in request
    # the Prefect task run logs each agent command too (logs reach the server asynchronously)
    import time

    from tests.orchestrate.test_runner import _api, _flow_run

    flow_run = _flow_run(prefect_url, rd.name)
    deadline, lines = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        logs = _api(prefect_url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}})
        lines = [entry["message"] for entry in logs if entry["message"].startswith("agent $")]
        if lines:
            break
        time.sleep(0.5)
    assert any("logs/notes.md" in line for line in lines), lines


def test_a_model_error_fails_the_run_with_its_message(repo, codex_env, model_server, prefect_url):
    model_server.add_turns(http_error(400, "model says no: quota exhausted"))
    proc = run_cli("run", "seq.yaml", "--agent", "codex", cwd=repo, env=codex_env, check=1)
    assert "Traceback" not in proc.stdout + proc.stderr
    records = [json.loads(line) for line in (run_dir(repo) / "error_captures.ndjson").read_text().splitlines()]
    assert any("model says no: quota exhausted" in r["error_message"] for r in records)
    assert not (repo / "logs" / "notes.md").exists()


def test_no_secret_reaches_the_model(repo, codex_env, model_server, prefect_url):
    token = "ghp" + "_" + "Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8Oo9Pp0Aa1Ss2"
    param_secret = "param-s3cr3t-0123456789"
    (repo / "creds.py").write_text(f'TOKEN = "{token}"\n')
    (repo / "secret.yaml").write_text(textwrap.dedent("""\
        title: secrets
        params:
          api_key: {type: secret, env: MY_KEY}
        phases:
          - id: p
            steps:
              - id: write
                description: "Write logs/notes.md; the key is {api_key}."
                uses: agent
                with: {test_args: null}
                outputs: [{path: logs/notes.md}]
        """))
    model_server.add_turns([exec_command("cat creds.py; env; mkdir -p logs; echo ok > logs/notes.md")],
                           [message("done")])
    run_cli("run", "secret.yaml", cwd=repo, env={**codex_env, "MY_KEY": param_secret}, check=0)
    sent = model_server.all_text()
    assert "cat creds.py" in sent and "CODEX_RUN_ID" in sent  # the command's output went back to the model
    assert token not in sent
    assert param_secret not in sent
    assert "the key is [REDACTED]" in sent


def test_dry_run_prints_the_prompt_without_calling_the_model(repo, codex_env, model_server, prefect_url):
    proc = run_cli("run", "seq.yaml", "--agent", "codex", "--dry-run", cwd=repo, env=codex_env, check=0)
    assert "--- prompt for P1.1 (codex) ---" in proc.stdout
    assert "Write a short note about the repository to logs/notes.md." in proc.stdout
    assert model_server.requests == []


def test_apply_false_keeps_the_change_for_codex_tasks_apply(repo, codex_env, model_server, prefect_url):
    seq = textwrap.dedent("""\
        title: kept
        phases:
          - id: p
            steps:
              - id: write
                description: "Write hello.txt and the notes."
                uses: agent
                with: {apply: false, test_args: null}
                outputs: [{path: logs/notes.md}]
        """)
    (repo / "kept.yaml").write_text(seq)
    model_server.add_turns([exec_command("echo hi > hello.txt; mkdir -p logs; echo n > logs/notes.md")],
                           [message("done")])
    run_cli("run", "kept.yaml", cwd=repo, env=codex_env, check=0)
    assert not (repo / "hello.txt").exists() and not (repo / "logs" / "notes.md").exists()
    rid = run_dir(repo).name
    shown = run_cli("runs", "show", rid, "--patch", cwd=repo, check=0).stdout
    assert "kept, not applied" in shown and "+hi" in shown and "declared output: logs/notes.md" in shown
    run_cli("apply", rid, "write", cwd=repo, check=0)
    assert (repo / "hello.txt").read_text() == "hi\n" and (repo / "logs" / "notes.md").read_text() == "n\n"
    run_cli("rollback", rid, "write", cwd=repo, check=0)
    assert not (repo / "hello.txt").exists() and not (repo / "logs" / "notes.md").exists()


REPAIR_SEQ = textwrap.dedent("""\
    title: repair
    phases:
      - id: p
        steps:
          - id: check
            description: "The marker file must exist."
            assertions: ["test -f marker.txt"]
            repair: {agent: codex, attempts: 2}
    """)


def test_repair_fixes_a_failing_assertion_on_its_second_attempt(repo, codex_env, model_server, prefect_url):
    (repo / "repair.yaml").write_text(REPAIR_SEQ)
    model_server.add_turns([exec_command("echo wrong > other.txt")], [message("Tried other.txt.")],
                           [exec_command("echo ok > marker.txt")], [message("Created marker.txt.")])
    proc = run_cli("run", "repair.yaml", cwd=repo, env=codex_env, check=0)
    assert "repaired after 2 attempt(s)" in proc.stdout
    assert (repo / "marker.txt").read_text() == "ok\n"
    assert not (repo / "other.txt").exists()  # the first attempt's change was rolled back
    rd = run_dir(repo)
    records = [json.loads(line) for line in (rd / "error_captures.ndjson").read_text().splitlines()]
    assert [r["repair_attempt"] for r in records] == [0, 1]
    assert all("test -f marker.txt" in r["error_message"] or "marker.txt" in r["context"] for r in records)
    first_prompt = json.dumps(model_server.requests[0])
    assert "Question for ChatGPT" in first_prompt and "While performing [check:" in first_prompt
    step = json.loads((rd / "summary.json").read_text())["steps"][0]
    assert step["status"] == "succeeded" and step["summary"]["repair_attempts"] == 2


def test_run_repair_option_applies_to_every_step(repo, codex_env, model_server, prefect_url):
    (repo / "repair.yaml").write_text(REPAIR_SEQ.replace("            repair: {agent: codex, attempts: 2}\n", ""))
    model_server.add_turns([exec_command("echo ok > marker.txt")], [message("Created marker.txt.")])
    proc = run_cli("run", "repair.yaml", "--repair", "codex", cwd=repo, env=codex_env, check=0)
    assert "repaired after 1 attempt(s)" in proc.stdout
    assert "test -f marker.txt" in model_server.all_text()


def test_kill_mid_agent_then_resume(repo, codex_env, model_server, prefect_url):
    import os
    import signal
    import time

    from codex_tasks.core.process import processes_with_env
    from tests.conftest import CODEX

    (repo / "seq.yaml").write_text(SEQ + textwrap.indent(textwrap.dedent("""\
        - name: Check
          id: P2
          steps:
            - id: P2.1
              description: "A later gate."
              assertions: ["test -f go.txt"]
        """), "  "))
    run_cli("validate", "seq.yaml", cwd=repo, check=0)
    model_server.add_turns([exec_command("echo partial > partial.txt && sleep 300")])
    proc = subprocess.Popen([CODEX, "run", "seq.yaml", "--agent", "codex"], cwd=repo, env={**os.environ, **codex_env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    partial: list[Path] = []
    while not partial and time.monotonic() < deadline and proc.poll() is None:
        partial = list((repo / ".codex" / "runs").glob("*/steps/P1.1/scratch/partial.txt"))
        time.sleep(0.2)
    assert partial, "the agent never started its command"
    run_id = partial[0].parents[3].name
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60
    while processes_with_env("CODEX_RUN_ID", run_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_env("CODEX_RUN_ID", run_id) == []  # codex and its sleep died with the run
    model_server.add_turns([exec_command("mkdir -p logs && echo done > logs/notes.md")], [message("done")])
    seen = len(model_server.requests)
    run_cli("run", "seq.yaml", "--agent", "codex", "--resume", cwd=repo, env=codex_env, check=1)  # P2.1 fails
    assert (repo / "logs" / "notes.md").read_text() == "done\n"
    resumed = json.dumps(model_server.requests[seen:])
    assert "An earlier attempt of this step was stopped" in resumed and "partial.txt" in resumed
    # --resume never reruns a finished agent step
    (repo / "go.txt").write_text("go")
    (repo / "logs" / "notes.md").write_text("edited since\n")
    proc2 = run_cli("run", "seq.yaml", "--agent", "codex", "--resume", cwd=repo, env=codex_env, check=0)
    assert len(model_server.requests) == seen + 2, proc2.stdout
    assert (repo / "logs" / "notes.md").read_text() == "edited since\n"


def test_builtin_agent_remediate_fixes_a_finding(repo, codex_env, model_server, prefect_url):
    (repo / "calc.py").write_text("def add(a, b):\n    raise NotImplementedError  # TODO: implement add\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_calc.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent.parent))\n"
        "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    fix = ("printf 'def add(a, b):\\n    return a + b\\n' > calc.py && mkdir -p .codex/agent_remediate && "
           "echo '- calc.py:2 add implemented' > .codex/agent_remediate/summary.md")
    model_server.add_turns([exec_command(fix)], [message("Implemented add.")])
    proc = run_cli("run", "builtin:agent_remediate", cwd=repo, env={**codex_env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
                   check=0)
    assert "return a + b" in (repo / "calc.py").read_text()
    assert (repo / ".codex" / "agent_remediate" / "summary.md").is_file()
    statuses = {s["id"]: s["status"] for s in json.loads((run_dir(repo) / "summary.json").read_text())["steps"]}
    assert statuses == {"audit": "succeeded", "fix": "succeeded", "tests": "succeeded", "changelog": "succeeded"}, proc.stdout
    assert "NotImplementedError" in model_server.all_text()  # the audit finding reached the prompt
