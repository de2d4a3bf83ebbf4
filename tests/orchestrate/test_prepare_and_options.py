"""The interfaces every command builds on: the run-options parser, prepare_run and decide (no Prefect)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from codex_tasks.errors import SpecErrors, UsageError
from codex_tasks.orchestrate.decide import decide
from codex_tasks.orchestrate.options import (
    RunOptions,
    UsageParser,
    add_run_arguments,
    options_from_args,
    parse_run_args,
    resume_options,
    split_optional_values,
)
from codex_tasks.orchestrate.planview import predict
from codex_tasks.orchestrate.prepare import prepare_run

SEQ = """\
title: Prepare me
params:
  n: {type: int, default: 2}
phases:
  - id: p
    steps:
      - id: hello
        commands: ["echo {{ n }}"]
      - id: later
        description: A person does this.
        outputs: [{path: notes.md}]
      - id: gated
        when: "{{ n > 5 }}"
        commands: ["echo never"]
"""


def test_one_parser_for_run_and_tui() -> None:
    rest, optional = split_optional_values(["s.yaml", "--resume", "--force=a, b", "-p", "k=v"])
    assert rest == ["s.yaml", "-p", "k=v"] and optional == {"--resume": True, "--force": "a, b"}
    parser = UsageParser(prog="codex-tasks run")
    add_run_arguments(parser)
    opts = options_from_args(parser.parse_args([*rest, "--only", "x,y", "--no-bind"]), optional)
    assert opts == RunOptions(file="s.yaml", params=["k=v"], only=["x", "y"], resume=True, force={"a", "b"},
                              bind=False)
    # `tui FILE [options]` goes through the same arguments
    assert parse_run_args("s.yaml", ["-p", "k=v", "--resume=R1", "--force"], "/ws") == RunOptions(
        file="s.yaml", params=["k=v"], resume="R1", force=set(), workspace="/ws")
    with pytest.raises(UsageError, match="--max-parallel"):
        parse_run_args("s.yaml", ["--max-parallel", "0"])
    with pytest.raises(UsageError, match="unrecognized"):
        parser.parse_args(["s.yaml", "--bogus"])
    assert isinstance(parser, argparse.ArgumentParser)


def test_resume_options_repeat_how_the_run_was_started() -> None:
    state = {"sequence_file": "/w/s.yaml", "workspace": "/w",
             "options": {"only": ["a"], "from": None, "strict": True, "max_parallel": 2, "runner": "dask"}}
    assert resume_options(state, "R1") == RunOptions(file="/w/s.yaml", resume="R1", workspace="/w", only=["a"],
                                                     strict=True, max_parallel=2, runner="dask")


def test_prepare_run_loads_resolves_and_plans(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SEQ)
    prepared = prepare_run(str(tmp_path / "s.yaml"), ["n=3"], tmp_path, run_id="plan")
    assert prepared.run_id == "plan" and prepared.workspace == tmp_path.resolve()
    assert prepared.values["n"] == 3 and prepared.values["run_dir"] == str(tmp_path.resolve() / ".codex/runs/plan")
    assert [s.id for s in prepared.plan.steps()] == ["hello", "later", "gated"]
    assert prepared.previous is None and not (tmp_path / ".codex").exists()  # nothing written
    with pytest.raises(UsageError, match="not a folder"):
        prepare_run(str(tmp_path / "s.yaml"), [], tmp_path / "missing")
    (tmp_path / "bad.yaml").write_text(SEQ.replace("echo {{ n }}", "echo {{ m }}"))
    with pytest.raises(SpecErrors) as err:
        prepare_run(str(tmp_path / "bad.yaml"), [], tmp_path, strict_placeholders=True)
    assert re.search(r"unknown placeholder \{+ ?m ?\}+", err.value.render()) and "bad.yaml:8:" in err.value.render()


def test_plan_shows_what_decide_returns(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SEQ)
    plan = prepare_run(str(tmp_path / "s.yaml"), [], tmp_path, run_id="plan").plan
    rows = {r["id"]: r for r in predict(plan, tmp_path)}
    assert {k: r["action"] for k, r in rows.items()} == {"hello": "run", "later": "manual", "gated": "skipped"}
    assert rows["later"]["why"].startswith("needs a person; expected outputs: notes.md")
    assert rows["hello"]["why"] == "shell steps cache only with outputs and cache: true"


def test_decide_under_strict_fails_a_manual_step(tmp_path: Path) -> None:
    from codex_tasks.orchestrate.context import RunContext
    from codex_tasks.runs.rundir import RunDir

    (tmp_path / "s.yaml").write_text(SEQ)
    plan = prepare_run(str(tmp_path / "s.yaml"), [], tmp_path).plan
    run = RunContext(plan=plan, rundir=RunDir(path=tmp_path / "r", run_id="r"), workspace=tmp_path,
                     params={}, env={}, strict=True)
    decision = decide(plan.step("later"), run)
    assert decision.action == "fail" and "--strict" in decision.reason
    assert decide(plan.step("gated"), run).action == "skipped"
    ran = decide(plan.step("hello"), run)
    assert ran.action == "run" and ran.module is not None and ran.context is not None and ran.fingerprint is None
