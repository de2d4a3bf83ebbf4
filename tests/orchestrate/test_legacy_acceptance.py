"""The legacy-sequence acceptance: v1.0- and v1.1-shaped files, as a new user runs them, in a fresh
git repository with a small package and tests, no agent. Every bound output exists where it was
declared and validates against its published schema; the steps nothing can carry out stay manual,
and the last line says so."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import pytest

from codex_tasks.orchestrate.bindings import binding_rules
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schema" / "legacy"

PACKAGE = '''\
def add(a, b):
    return a + b


def fetch(url):
    import requests  # a remote call: the audit defers this module
    return requests.get(url)


def later():
    raise NotImplementedError  # TODO: finish
'''


def fresh_repo(root: Path, sequence: str) -> Path:
    ws = root / "project"
    (ws / "tinypkg").mkdir(parents=True)
    (ws / "tests").mkdir()
    (ws / "tinypkg" / "__init__.py").write_text(PACKAGE)
    (ws / "tests" / "test_add.py").write_text("import tinypkg\n\n\ndef test_add():\n    assert tinypkg.add(1, 2) == 3\n")
    (ws / "README.md").write_text("# tinypkg\n")
    shutil.copy(FIXTURES / sequence, ws / sequence)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(ws)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return ws


def check_output(ws: Path, path: str) -> None:
    """The file exists where declared and, when the table names a schema, validates against it."""
    full = ws / path
    assert full.is_file(), f"{path} was not written"
    rule = binding_rules().get(Path(path).name)
    if rule is None:
        return
    if rule.schema:
        schema = json.loads((SCHEMAS / rule.schema).read_text())
        if path.endswith(".ndjson"):
            for line in full.read_text().splitlines():
                jsonschema.validate(json.loads(line), schema)
        else:
            jsonschema.validate(json.loads(full.read_text()), schema)
    elif path.endswith(".zip"):
        with zipfile.ZipFile(full) as zf:
            assert zf.testzip() is None and "MANIFEST.json" in {Path(n).name for n in zf.namelist()}
    elif path.endswith("git_commit.txt"):
        head = subprocess.run(["git", "-C", str(ws), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert full.read_text().splitlines()[0] == head


V1_1_OUTPUTS = [
    "artifacts/codex_ready/env_snapshot.json", "artifacts/codex_ready/pip_freeze.txt",
    "artifacts/codex_ready/git_commit.txt", "artifacts/codex_ready/provenance.json",
    "artifacts/codex_ready/stub_scan.json", "artifacts/codex_ready/stub_report.json",
    "artifacts/codex_ready/capability_mapping.json", "artifacts/codex_ready/workspace_index.json",
    "reports/deferred.md", "codex_logs/cost_incurring_refs.txt", "codex_logs/test_results.json",
    "artifacts/codex_ready/verification_results.json", "codex_logs/codex_error_questions.md",
    "codex_logs/error_captures.ndjson", "CHANGELOG_CODEX.md", "artifacts/codex_ready/final_summary.md",
    "codex_run_artifacts.zip",
]


@pytest.mark.slow
def test_v1_1_runs_and_writes_every_bound_output(tmp_path):
    ws = fresh_repo(tmp_path, "v1_1.yaml")
    run_cli("validate", "v1_1.yaml", cwd=ws, check=0)
    proc = run_cli("run", "v1_1.yaml", cwd=ws, check=0)
    for path in V1_1_OUTPUTS:
        check_output(ws, path)
    expected_manual = ["2.2", "4.5"]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"2 steps need a person or an agent: {', '.join(expected_manual)}"), proc.stdout
    summary = json.loads(next((ws / ".codex" / "runs").iterdir()).joinpath("summary.json").read_text())
    assert sorted(s["id"] for s in summary["steps"] if s["status"] == "manual") == expected_manual
    assert {s["status"] for s in summary["steps"] if s["id"] not in expected_manual} == {"succeeded"}
    index = json.loads((ws / "artifacts/codex_ready/workspace_index.json").read_text())
    assert "tinypkg/__init__.py" in index["groups"]["code"] and "tests/test_add.py" in index["groups"]["tests"]
    assert "tinypkg/__init__.py" in (ws / "reports/deferred.md").read_text()
    verification = json.loads((ws / "artifacts/codex_ready/verification_results.json").read_text())
    assert verification["passed"] and verification["total"] == 2
    assert json.loads((ws / "codex_logs/test_results.json").read_text())["passed"] == 1
    report = (ws / "artifacts/codex_ready/final_summary.md").read_text()
    assert "status: **succeeded**" in report  # the sink was rewritten when the run ended


@pytest.mark.slow
def test_v1_0_runs_leaves_exactly_the_manual_steps(tmp_path):
    ws = fresh_repo(tmp_path, "v1_0.yaml")
    proc = run_cli("run", "v1_0.yaml", cwd=ws, check=0)
    for path in ["provenance.json", "stub_scan.json", "capability_mapping.json", "reports/deferred.md",
                 "codex_logs/test_results.json", "codex_logs/status_report.md"]:
        check_output(ws, path)
    expected_manual = ["P1.3", "P2.2", "P3.3"]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"3 steps need a person or an agent: {', '.join(expected_manual)}"), proc.stdout
    # --strict: the manual steps fail the run (nothing else does)
    strict = run_cli("run", "v1_0.yaml", "--strict", cwd=ws)
    assert strict.returncode == 1
    assert "P1.3" in strict.stdout and "manual step under --strict" in strict.stdout


@pytest.mark.slow
def test_v1_1_with_the_scripted_model_server_every_output_exists_and_strict_passes(tmp_path, codex_env, model_server):
    """With an agent (the real `codex` against the scripted model server), the steps nothing binds are
    carried out too: no manual step is left, so `--strict` exits 0."""
    from fixtures.model_server import message

    ws = fresh_repo(tmp_path, "v1_1.yaml")
    # one turn per description-only step nothing binds (2.2, then 4.5): each answers and changes nothing
    model_server.add_turns([message("Reviewed: nothing to prune, rationale recorded in the step log.")],
                           [message("Walked through the deferred modules; nothing to change.")])
    proc = run_cli("run", "v1_1.yaml", "--strict", "--agent", "codex", cwd=ws, env=codex_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in V1_1_OUTPUTS:
        check_output(ws, path)
    summary = json.loads(next((ws / ".codex" / "runs").iterdir()).joinpath("summary.json").read_text())
    assert {s["status"] for s in summary["steps"]} == {"succeeded"}
    assert "need a person" not in proc.stdout
    assert "Mark items for pruning" in model_server.all_text()


def test_dry_run_prints_rendered_commands_and_is_marked(tmp_path):
    ws = fresh_repo(tmp_path, "v1_1.yaml")
    proc = run_cli("run", "v1_1.yaml", "--dry-run", cwd=ws, check=0)
    assert "[dry-run] actions: mkdir -p artifacts/codex_ready" in proc.stdout
    assert "[dry-run] would run audit -> artifacts/codex_ready/stub_scan.json (declares stub_scan.json)" in proc.stdout
    assert " (dry run) succeeded" in proc.stdout
    assert not (ws / "artifacts").exists()  # nothing written outside the run folder
    runs = run_cli("runs", cwd=ws, check=0)
    assert "(dry run)" in runs.stdout


def test_undeclared_output_warns_and_strict_refuses(tmp_path):
    ws = fresh_repo(tmp_path, "v1_1.yaml")
    text = (ws / "v1_1.yaml").read_text().replace(
        '          - path: "{artifacts}/git_commit.txt"\n',
        '          - path: "{artifacts}/git_commit.txt"\n          - path: "{artifacts}/notes.txt"\n')
    (ws / "v1_1.yaml").write_text(text)
    proc = run_cli("validate", "v1_1.yaml", cwd=ws, check=0)
    assert "warning: 1.1 declares artifacts/codex_ready/notes.txt; nothing writes it" in proc.stderr
    strict = run_cli("validate", "v1_1.yaml", "--strict", cwd=ws, check=2)
    assert "v1_1.yaml:22:" in strict.stderr and "nothing writes it" in strict.stderr
    run_cli("run", "v1_1.yaml", "--strict", cwd=ws, check=2)
