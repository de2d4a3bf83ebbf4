"""Malformed sequence files: each must exit 2 with FILE:LINE:COL lines, the expected message at the
expected line, and never a traceback.

Every file in `malformed/` starts with two header comments:

    # expect: <a substring of the error line>
    # line: <the 1-based line the error must point at>
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codex_tasks.cli import main
from tests.conftest import EXAMPLES

HERE = Path(__file__).parent
MALFORMED = HERE / "malformed"
FILES = sorted(MALFORMED.glob("*.yaml"))
VENV_BIN = Path(sys.executable).parent

# Files whose expectation is right but the package gets it wrong today (reported, not yet fixed).


def _header(path: Path) -> tuple[str, int]:
    lines = path.read_text(encoding="utf-8").splitlines()
    m1 = re.match(r"# expect: (.+)$", lines[0])
    m2 = re.match(r"# line: (\d+)$", lines[1])
    assert m1 and m2, f"{path.name}: the first two lines must be '# expect: ...' and '# line: N'"
    return m1.group(1).strip(), int(m2.group(1))


def _params():
    out = []
    for f in FILES:
        marks = []
        out.append(pytest.param(f, id=f.stem, marks=marks))
    return out


def test_there_are_enough_malformed_files():
    assert len(FILES) >= 35
    for f in FILES:
        _header(f)


@pytest.mark.parametrize("path", _params())
def test_malformed_file_exits_2_with_located_error(path: Path, capsys):
    expect, line = _header(path)
    name = str(path)
    crash = None
    try:
        code = main(["validate", name])
    except Exception as exc:  # noqa: BLE001 - a traceback is exactly the failure we look for
        crash = f"validate raised {type(exc).__name__}: {exc}"
    if crash:
        pytest.fail(crash, pytrace=False)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no error printed"
    pattern = re.compile(rf"^{re.escape(name)}:(\d+):(\d+): ")
    for ln in lines:
        assert pattern.match(ln), f"not FILE:LINE:COL: {ln!r}"
    matching = [ln for ln in lines if expect in ln]
    assert matching, f"{expect!r} not in:\n{err}"
    got_lines = [int(pattern.match(ln).group(1)) for ln in matching]  # type: ignore[union-attr]
    assert line in got_lines, f"expected line {line}, got {got_lines}:\n{err}"
    for ln in matching:
        col = int(pattern.match(ln).group(2))  # type: ignore[union-attr]
        assert col >= 1


def test_duplicate_step_id_reports_only_the_duplicate(capsys):
    path = str(MALFORMED / "duplicate_step_id.yaml")
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "duplicate step id 's1'" in err
    assert "cycle" not in err, err


def test_several_files_in_one_call(capsys):
    good = str(EXAMPLES / "legacy_v1_0.yaml")
    bad = str(MALFORMED / "unknown_key_step.yaml")
    assert main(["validate", bad, good]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(bad + ":")
    assert f"{good}: ok" in out


def test_missing_file_is_exit_2(tmp_path, capsys):
    missing = str(tmp_path / "nope.yaml")
    assert main(["validate", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{missing}:1:1: ") and "not found" in err


def test_not_utf8_is_exit_2(tmp_path, capsys):
    f = tmp_path / "latin1.yaml"
    f.write_bytes(b"title: caf\xe9\nphases: []\n")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{f}:") and "UTF-8" in err and "Traceback" not in err


def test_folder_is_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ---------------------------------------------------------------- pathological inputs


def test_deeply_nested_yaml_is_a_spec_error(tmp_path, capsys):
    f = tmp_path / "deep.yaml"
    f.write_text("title: t\nmetadata: " + "[" * 600 + "]" * 600 + "\nphases: []\n")
    crashed = False
    try:
        code = main(["validate", str(f)])
    except RecursionError:
        crashed = True
    if crashed:  # outside the except block: no giant chained traceback to format
        pytest.fail("RecursionError escaped", pytrace=False)
    assert code == 2
    assert capsys.readouterr().err.startswith(f"{f}:")


def test_long_needs_chain_is_not_a_traceback(tmp_path, capsys):
    n = 1100
    lines = ["title: chain", "phases:", "  - id: p", "    steps:"]
    for i in range(n):
        lines.append(f"      - id: s{i}")
        lines.append(f"        needs: [s{i + 1}]" if i < n - 1 else "        needs: []")
        lines.append('        commands: ["true"]')
    f = tmp_path / "chain.yaml"
    f.write_text("\n".join(lines) + "\n")
    crashed = False
    try:
        code = main(["validate", str(f)])
    except RecursionError:
        crashed = True
    if crashed:  # outside the except block: no giant chained traceback to format
        pytest.fail("RecursionError escaped", pytrace=False)
    assert code == 0, capsys.readouterr().err


# ---------------------------------------------------------------- the installed console script


def test_console_script_exit_2_without_traceback():
    exe = VENV_BIN / "codex-tasks"
    if not exe.exists():
        pytest.skip("console script not installed")
    picks = [MALFORMED / n for n in ("yaml_tab_indent.yaml", "unknown_key_step.yaml", "cycle_implicit.yaml")]
    proc = subprocess.run([str(exe), "validate", *map(str, picks)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for p in picks:
        assert re.search(rf"^{re.escape(str(p))}:\d+:\d+: ", proc.stderr, re.M), proc.stderr


# ---------------------------------------------------------------- bad --param values on `run`

SEQ = """\
title: params
params:
  seed: {type: int, default: 1}
  precision: {type: str, default: bf16, choices: [fp32, bf16]}
  ratio: {type: float, default: 0.5}
  verbose: {type: bool, default: false}
phases:
  - id: p
    steps:
      - id: s
        commands: ["echo {seed} {precision} {ratio} {verbose} > out.txt"]
"""


@pytest.fixture
def no_run_started(monkeypatch):
    """Fail loudly (instead of starting Prefect) if a run gets past parameter checks."""
    import codex_tasks.orchestrate.runner as runner

    def boom(*a, **k):
        raise AssertionError("the run got past parameter validation")

    monkeypatch.setattr(runner.RunDir, "create", boom)
    monkeypatch.setattr(runner, "codex_dir", boom)


@pytest.mark.parametrize(
    ("param", "needle"),
    [
        ("seed=abc", "expected an integer"),
        ("seed=1.5", "expected an integer"),
        ("seed=", "expected an integer"),
        ("ratio=fast", "expected a number"),
        ("verbose=maybe", "expected a boolean"),
        ("precision=fp16", "not one of"),
        ("sed=1", "did you mean 'seed'"),
        ("precison=fp32", "did you mean 'precision'"),
        ("noequals", "expected NAME=VALUE"),
        ("=5", "expected NAME=VALUE"),
    ],
)
def test_bad_param_on_run_is_exit_2_before_anything_is_written(tmp_path, capsys, no_run_started, param, needle):
    seq = tmp_path / "seq.yaml"
    seq.write_text(SEQ)
    ws = tmp_path / "ws"
    ws.mkdir()
    code = main(["run", str(seq), "--param", param, "--workspace", str(ws)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert needle in err, err
    assert "Traceback" not in err
    assert not (ws / ".codex").exists()
    assert not (tmp_path / ".codex").exists()
    assert not (ws / "out.txt").exists()


def test_unknown_param_names_the_closest(tmp_path, capsys, no_run_started):
    seq = tmp_path / "seq.yaml"
    seq.write_text(SEQ)
    code = main(["run", str(seq), "--param", "sed=1", "--workspace", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "'sed'" in err and "did you mean 'seed'" in err
    assert not (tmp_path / ".codex" / "runs").exists()


def test_bad_param_on_validate_is_exit_2(tmp_path, capsys):
    seq = tmp_path / "seq.yaml"
    seq.write_text(SEQ)
    assert main(["validate", str(seq), "--param", "seed=abc"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err and "Traceback" not in err
    assert main(["validate", str(seq), "--param", "seed=7"]) == 0


def test_malformed_file_on_run_is_exit_2_before_anything_is_written(tmp_path, capsys, no_run_started):
    code = main(["run", str(MALFORMED / "needs_unknown.yaml"), "--workspace", str(tmp_path)])
    assert code == 2
    assert "needs unknown step 'buidl'" in capsys.readouterr().err
    assert not (tmp_path / ".codex").exists()
