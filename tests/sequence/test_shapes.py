"""The other shapes of the legacy family load into the one model, with FILE:LINE:COL errors,
unknown keys kept and warned; the broken-quote hint."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from codex_tasks.errors import SpecError, SpecErrors
from codex_tasks.orchestrate.planview import show_plan
from codex_tasks.orchestrate.validate import validate_file
from codex_tasks.sequence.load import load_sequence
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(text))
    return f


@pytest.mark.parametrize("name,shape,steps", [("legacy_root_wrapper.yaml", "root_wrapper", ["A.1", "A.2"]),
                                              ("legacy_atomic_patch.yaml", "atomic_patch", ["T1", "T2"]),
                                              ("legacy_roadmap.yaml", "roadmap", ["R1", "R2"])])
def test_each_shape_validates(name, shape, steps):
    errors, info = validate_file(str(FIXTURES / name))
    assert errors == [], [e.render() for e in errors]
    loaded = load_sequence(FIXTURES / name)
    assert loaded.shape == shape and [s.id for _, s in loaded.spec.steps()] == steps


def test_root_wrapper_strategies_map_to_on_error():
    loaded = load_sequence(FIXTURES / "legacy_root_wrapper.yaml")
    assert [s.on_error for _, s in loaded.spec.steps()] == ["continue", "stop"]


def test_atomic_patch_task_becomes_a_described_step():
    loaded = load_sequence(FIXTURES / "legacy_atomic_patch.yaml")
    t1 = loaded.step("T1")
    assert t1.description is not None and t1.description.startswith("Give the package a typed configuration")
    assert "Gaps: settings are read from the environment in three places" in t1.description
    assert "Touch only: pkg/settings.py, pkg/app.py" in t1.description
    assert t1.policy["patchset"] == ["pkg/settings.py", "pkg/app.py"]
    assert t1.policy["validation"] == ["python -c 'import pkg.settings'", "python -m pytest -q tests"]
    assert t1.template is not None and t1.template.startswith("Question for the maintainer")
    assert [p.key for p in loaded.spec.phases] == ["E1", "E2"]


def test_unknown_keys_are_kept_and_warned(tmp_path):
    f = write(tmp_path, """\
        title: "Plan"
        owner: "team-a"
        tasks:
          - id: R1
            name: "One"
            description: "Do one."
            stakeholders: [alice]
        """)
    loaded = load_sequence(f)
    assert loaded.shape == "roadmap"
    assert loaded.step("R1").policy["stakeholders"] == ["alice"]
    assert loaded.spec.metadata["owner"] == "team-a"
    assert any(w.startswith(f"{f}:2:1: key 'owner'") for w in loaded.warnings), loaded.warnings
    assert any(w.startswith(f"{f}:7:5: key 'stakeholders'") for w in loaded.warnings), loaded.warnings
    text = show_plan(str(f), [], only=None, from_step=None, workspace=str(tmp_path), fmt="text")
    assert "(roadmap shape)" in text and "stakeholders" in text


def test_errors_keep_file_line_col(tmp_path):
    f = write(tmp_path, """\
        codex_task_sequence:
          title: "Wrapped"
          phases:
            - id: A
              steps:
                - id: A.1
                  commands: ["true"]
                  on_error: {strategy: record_and_explode}
                - id: A.2
                  comands: ["true"]
        """)
    with pytest.raises(SpecErrors) as exc:
        load_sequence(f)
    found = {(e.line, e.col) for e in exc.value.errors}
    assert any(line == 8 for line, _ in found), [e.render() for e in exc.value.errors]
    assert any(e.line == 10 and "comands" in e.message for e in exc.value.errors)


def test_the_dialects_stay_strict(tmp_path):
    f = write(tmp_path, """\
        title: "Strict"
        owner: "team-a"
        phases: []
        """)
    with pytest.raises(SpecErrors) as exc:
        load_sequence(f)
    assert exc.value.errors[0].line == 2 and "owner" in exc.value.errors[0].message


def test_unescaped_double_quote_gets_its_hint(tmp_path):
    f = write(tmp_path, """\
        title: "x"
        description: "say "hi" now"
        phases: []
        """)
    with pytest.raises(SpecError) as exc:
        load_sequence(f)
    assert (exc.value.line, exc.value.col) == (2, 20)
    assert "double quote inside a double-quoted string" in (exc.value.hint or "")


@pytest.mark.slow
def test_root_wrapper_run_keeps_change_log_and_questions(tmp_path):
    shutil.copy(FIXTURES / "legacy_root_wrapper.yaml", tmp_path / "seq.yaml")
    (tmp_path / "README.md").write_text("# tiny project\n")
    proc = run_cli("run", "seq.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # record_and_stop: A.2 fails the run
    log = (tmp_path / "hygiene_logs" / "codex_change_log.md").read_text()
    assert "| timestamp | phase_id | step_id | status | details |" in log
    assert "| A | A.1 | succeeded |" in log and "| A | A.2 | failed |" in log
    questions = (tmp_path / "hygiene_logs" / "codex_error_questions.md").read_text()
    assert "While performing [A.2:The README must mention the licence.]" in questions


@pytest.mark.slow
@pytest.mark.parametrize("name,manual", [("legacy_atomic_patch.yaml", "T1, T2"), ("legacy_roadmap.yaml", "R1, R2")])
def test_planning_shapes_run_as_manual_steps_without_an_agent(tmp_path, name, manual):
    shutil.copy(FIXTURES / name, tmp_path / name)
    proc = run_cli("run", name, cwd=tmp_path, check=0)
    assert proc.stdout.strip().splitlines()[-1].startswith(f"2 steps need a person or an agent: {manual}")
