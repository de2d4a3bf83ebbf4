"""Bindings from declared outputs to kinds: the table, which steps bind and why, warnings, --no-bind."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from codex_tasks.errors import SpecErrors
from codex_tasks.orchestrate.bindings import (
    binding_rules,
    description_paths,
    output_errors,
    output_warnings,
)
from codex_tasks.orchestrate.plan import build_plan
from codex_tasks.orchestrate.planview import show_plan
from codex_tasks.orchestrate.validate import validate_file
from codex_tasks.render.params import resolve_params
from codex_tasks.sequence.load import load_sequence

BUILTINS = {"run_id": "RID", "run_dir": "/ws/.codex/runs/RID", "workspace": "/ws", "timestamp": "TS"}
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schema" / "legacy"

SEQ = """\
version: "1.1"
title: "Bindings"
phases:
  - name: A
    number: 1
    steps:
      - id: 1.1
        description: "Snapshot the environment."
        actions: ["mkdir -p {out}"]
        outputs:
          - path: "{out}/env_snapshot.json"
          - path: "{out}/head.txt"
      - id: 1.2
        description: "Scan; persist to {logs_dir}/cost_incurring_refs.txt and archive into codex_run_artifacts.zip"
      - id: 1.3
        description: "Copies its own."
        actions: ["cp /dev/null {out}/stub_scan.json"]
        outputs: [{path: "{out}/stub_scan.json"}]
      - id: 1.4
        uses: audit
        description: "A typed step that names stub_scan.json in its description."
      - id: 1.5
        description: "Write stub_report.json into reports/ and ask someone."
cli_parameters:
  out: {default: "art"}
  logs_dir: {default: "logs"}
"""


def plan_of(tmp_path: Path, text: str = SEQ, bind: bool = True):
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(text))
    loaded = load_sequence(f)
    return build_plan(loaded, resolve_params(loaded.spec, {}, BUILTINS, environ={}), bind=bind), f


def test_table_covers_the_issue_minimum_and_schemas_exist():
    rules = binding_rules()
    expect = {"provenance.json": "provenance", "env_snapshot.json": "provenance", "pip_freeze.txt": "provenance",
              "git_commit.txt": "provenance", "stub_scan.json": "audit", "stub_report.json": "audit",
              "capability_mapping.json": "audit", "cost_incurring_refs.txt": "audit",
              "workspace_index.json": "audit", "deferred.md": "audit", "test_results.json": "test",
              "verification_results.json": "commands", "CHANGELOG_CODEX.md": "changelog",
              "codex_run_artifacts.zip": "archive", "error_captures.ndjson": "errors",
              "error_questions.md": "errors", "codex_error_questions.md": "errors",
              "final_summary.md": "report", "status_report.md": "report"}
    assert {k: r.kind for k, r in rules.items()} == expect
    assert {k for k, r in rules.items() if r.sink} == {"error_captures.ndjson", "error_questions.md",
                                                        "codex_error_questions.md", "final_summary.md",
                                                        "status_report.md"}
    for r in rules.values():
        if r.schema:
            schema = json.loads((SCHEMAS / r.schema).read_text())
            assert schema["type"] == "object" and schema["required"]


def test_description_paths():
    assert description_paths("persist to codex_logs/cost_incurring_refs.txt.") == ["codex_logs/cost_incurring_refs.txt"]
    assert description_paths("Archive artefacts into codex_run_artifacts.zip") == ["codex_run_artifacts.zip"]
    assert description_paths("write stub_report.json into reports/") == ["reports/stub_report.json"]
    assert description_paths("no such file: my_stub_scan.json.bak or notes.md") == []


def test_which_steps_bind_and_why(tmp_path):
    plan, _ = plan_of(tmp_path)
    s11 = plan.step("1.1")
    assert [(b.output, b.kind, b.why) for b in s11.bindings] == [
        ("art/env_snapshot.json", "provenance", "declares env_snapshot.json")]
    s12 = plan.step("1.2")
    assert [(b.output, b.kind) for b in s12.bindings] == [("logs/cost_incurring_refs.txt", "audit"),
                                                          ("codex_run_artifacts.zip", "archive")]
    assert "logs/cost_incurring_refs.txt" in [p for p, _ in s12.outputs]
    assert not s12.manual
    assert plan.step("1.3").bindings == []  # its own line writes the file
    assert plan.step("1.4").bindings == []  # uses: wins
    assert [b.output for b in plan.step("1.5").bindings] == ["reports/stub_report.json"]
    nobind, _ = plan_of(tmp_path, bind=False)
    assert all(not s.bindings for s in nobind.steps())
    assert nobind.step("1.2").manual


def test_unproduced_outputs_warn_and_fail_under_strict(tmp_path):
    plan, f = plan_of(tmp_path)
    assert output_warnings(plan) == ["1.1 declares art/head.txt; nothing writes it"]
    (err,) = output_errors(plan)
    assert err.line == 12 and "head.txt" in err.message
    warnings: list[str] = []
    errors, _ = validate_file(str(f), warnings=warnings)
    assert errors == [] and warnings == ["1.1 declares art/head.txt; nothing writes it"]
    errors, _ = validate_file(str(f), strict=True)
    assert [e.line for e in errors] == [12]
    with pytest.raises(SpecErrors):
        show_plan(str(f), [], only=None, from_step=None, workspace=str(tmp_path), fmt="text", strict=True)


def test_plan_shows_each_binding(tmp_path):
    _, f = plan_of(tmp_path)
    text = show_plan(str(f), [], only=None, from_step=None, workspace=str(tmp_path), fmt="text")
    assert "1.1 -> provenance: declares env_snapshot.json (art/env_snapshot.json)" in text
    assert "1.2 -> archive: its description names codex_run_artifacts.zip (codex_run_artifacts.zip)" in text
    assert "warning: 1.1 declares art/head.txt; nothing writes it" in text
    data = json.loads(show_plan(str(f), [], only=None, from_step=None, workspace=str(tmp_path), fmt="json"))
    row = next(r for r in data["steps"] if r["id"] == "1.2")
    assert row["action"] == "run" and [b["kind"] for b in row["bindings"]] == ["audit", "archive"]


def test_docs_and_cli_show_the_whole_table(capsys):
    from codex_tasks.cli import main

    docs = (Path(__file__).resolve().parents[2] / "docs" / "legacy.md").read_text()
    assert main(["steps", "--bindings", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == list(binding_rules())
    for r in rows:
        assert f"| `{r['file']}` | {r['kind']}" in docs, r["file"]
