"""What the command line says reads as English: no doubled prefixes or words, right articles."""

from __future__ import annotations

from pathlib import Path

from codex_tasks.cli import _clip
from tests.conftest import run_cli

SEQUENCE = """\
version: "1.0"
title: Words
params:
  seed: {type: int, default: 1}
phases:
  - id: P1
    name: One
    steps:
      - id: hello
        description: Says hello.
        commands:
          - echo {{ params.seed }}
"""


def test_usage_errors_say_codex_tasks_once(tmp_path: Path) -> None:
    bad = run_cli("bogus", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("codex-tasks: argument COMMAND: invalid choice: 'bogus'")
    assert "codex-tasks: codex-tasks" not in bad.stderr
    missing = run_cli("run", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("codex-tasks: run: the following arguments are required: file"), missing.stderr


def test_a_param_type_takes_the_right_article(tmp_path: Path) -> None:
    (tmp_path / "seq.yaml").write_text(SEQUENCE)
    proc = run_cli("plan", "seq.yaml", "--param", "seed=abc", cwd=tmp_path)
    assert proc.returncode == 2 and "seed is an int" in proc.stderr and "a int" not in proc.stderr


def test_show_cuts_at_a_word_with_an_ellipsis() -> None:
    text = "command failed (exit 1): ruff check src --select E,F,W --line-length 110 and then some more words here"
    clipped = _clip(text, 40)
    assert len(clipped) <= 40 and clipped.endswith("…") and text.startswith(clipped[:-1])
    assert text[len(clipped) - 1] == " "  # the cut falls between words
    assert _clip("short\nnote", 40) == "short note"


PLAN = """\
version: "1.0"
title: Plan
phases:
  - id: P1
    name: One
    steps:
      - id: a
        description: First.
        commands: [echo a]
      - id: bb_long_name
        description: Second.
        needs: [a]
        commands: [echo b]
      - id: c
        description: Third.
        needs: [a, bb_long_name]
        commands: [echo c]
"""


def test_plan_columns_line_up(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    lines = [ln for ln in run_cli("plan", "plan.yaml", cwd=tmp_path, check=0).stdout.splitlines() if "shell" in ln]
    assert len(lines) == 3
    assert len({ln.index("(after") for ln in lines if "(after" in ln}) == 1  # one "(after …)" column
    reason = "shell steps cache"
    assert len({ln.index(reason) for ln in lines}) == 1, lines  # and one column for the reason


def test_a_missing_required_param_is_located_at_its_declaration(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "title: t\nparams:\n  seed: {type: int, default: 1}\n  need: {type: str, required: true}\n"
        "phases:\n  - id: a\n    steps:\n      - id: s\n        commands: ['echo {need}']\n")
    proc = run_cli("validate", "s.yaml", cwd=tmp_path, check=2)
    assert "s.yaml:4:3: params.need: parameter 'need' is required" in proc.stdout + proc.stderr
