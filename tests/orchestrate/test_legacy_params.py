"""Legacy parameters: a one-letter near-miss parameter drives the placeholder; related sequences checked;
descriptions rendered."""

from __future__ import annotations

import textwrap

from codex_tasks.orchestrate.legacy_params import (
    apply_aliases,
    edit_distance_one,
    param_aliases,
    related_warnings,
)
from codex_tasks.orchestrate.plan import build_plan
from codex_tasks.orchestrate.planview import show_plan
from codex_tasks.render.params import parse_cli_params, resolve_params
from codex_tasks.sequence.load import load_sequence

BUILTINS = {"run_id": "RID", "run_dir": "/ws/.codex/runs/RID", "workspace": "/ws", "timestamp": "TS"}
SEQ = """\
version: "1.0"
title: "Alias"
metadata:
  default_logs_dir: "logs"
phases:
  - id: P
    steps:
      - id: s
        description: "Write into {logs_dir}."
        commands: ["mkdir -p {logs_dir}"]
cli_parameters:
  log_dir: {default: "from_param", description: "Where logs go."}
  seed: {default: 1}
related_sequences:
  - {name: weekly, path: weekly.yaml}
  - {name: here, path: seq.yaml}
"""


def test_edit_distance_one():
    assert edit_distance_one("log_dir", "logs_dir") and edit_distance_one("seed", "seeds")
    assert edit_distance_one("abc", "abd") and not edit_distance_one("abc", "abc")
    assert not edit_distance_one("log", "logs_dir")


def test_near_miss_parameter_drives_the_placeholder(tmp_path):
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(SEQ))
    loaded = load_sequence(f)
    assert param_aliases(loaded) == {"log_dir": "logs_dir"}
    for cli, expect in (({}, "from_param"), ({"log_dir": "x"}, "x"), ({"log_dir": "x", "logs_dir": "y"}, "y")):
        values = resolve_params(loaded.spec, cli, BUILTINS, environ={})
        notes = apply_aliases(loaded, values, cli)
        assert values["logs_dir"] == expect and notes == ["cli_parameters 'log_dir' drives {logs_dir} (one letter apart)"]
        plan = build_plan(loaded, values)
        assert plan.step("s").lines == [("commands", f"mkdir -p {expect}")]
        assert plan.step("s").description == f"Write into {expect}."  # descriptions are rendered too
    text = show_plan(str(f), ["log_dir=x"], only=None, from_step=None, workspace=str(tmp_path), fmt="text")
    assert "note: cli_parameters 'log_dir' drives {logs_dir}" in text
    assert parse_cli_params(["log_dir=x"]) == {"log_dir": "x"}


def test_missing_related_sequence_warns(tmp_path):
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(SEQ))
    (warning,) = related_warnings(load_sequence(f))
    assert warning == f"{f}:15:26: related sequence 'weekly': weekly.yaml not found"


def test_parameters_reach_agent_prompts(make_ctx):
    from codex_tasks.steps.agent_prompt import PromptInputs, render_prompt

    ctx = make_ctx(params={"logs_dir": "x"}, env={"CODEX_PARAM_LOG_DIR": "x", "CODEX_PARAM_MAX_ERRORS": "3", "PATH": "/bin"})
    prompt = render_prompt(ctx, "Write into {logs_dir}.", PromptInputs())
    assert "Write into x." in prompt
    assert "- CODEX_PARAM_LOG_DIR=x\n- CODEX_PARAM_MAX_ERRORS=3" in prompt and "PATH=" not in prompt
