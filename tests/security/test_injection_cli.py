"""Refusals reach the user as exit 2 with file:line:col and the `$CODEX_PARAM_<NAME>` hint: by
position at `validate` (whatever the value), by value when the run starts, before any step."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import run_cli


def _write(tmp_path: Path, params: str, commands: str) -> Path:
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(f"""\
        version: "2"
        title: injection
        params:
        {textwrap.indent(params, "  ")}
        phases:
          - id: p
            steps:
              - id: first
                commands: ["touch first-ran"]
              - id: second
                commands: {commands}
        """))
    return f


def test_validate_refuses_a_placeholder_in_trap_whatever_the_value(tmp_path):
    f = _write(tmp_path, 'v: {default: "harmless"}', '["trap {v} EXIT"]')
    proc = run_cli("validate", str(f), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "seq.yaml:11:" in out and "trap" in out and "$CODEX_PARAM_<NAME>" in out


def test_validate_refuses_a_str_parameter_in_arithmetic(tmp_path):
    f = _write(tmp_path, 'v: {default: "1"}', '["echo $(( {v} + 1 ))"]')
    proc = run_cli("validate", str(f), cwd=tmp_path)
    assert proc.returncode == 2 and "int" in proc.stdout + proc.stderr


def test_nul_byte_in_a_value_is_exit_2(tmp_path):
    f = _write(tmp_path, 'v: {default: "a\\0b"}', '["printf %s {v}"]')
    proc = run_cli("validate", str(f), cwd=tmp_path)
    assert proc.returncode == 2 and "NUL byte" in proc.stdout + proc.stderr


def test_a_value_that_would_end_a_here_document_stops_the_run_before_any_step(tmp_path):
    f = _write(tmp_path, 'v: {default: "x"}', '["cat > got <<EOF", "{v}", "EOF"]')
    run_cli("validate", str(f), cwd=tmp_path, check=0)
    proc = run_cli("run", str(f), "--param", "v=EOF\ntouch PWNED", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "here-document" in proc.stdout + proc.stderr
    assert not (tmp_path / "first-ran").exists() and not (tmp_path / "PWNED").exists()
