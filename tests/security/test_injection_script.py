"""No parameter value ever executes: the cases the attack found (each replayed through the real shell
step script), the refusals by position, and a property test over multi-line scripts (named contexts
× payloads, 0 executions, every accepted value arrives exactly)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_tasks.render.templating import RenderError, render_shell_lines
from codex_tasks.steps.shell import build_script

ATTACK = "$(touch PWNED)"


def _render(lines: list[str] | list[tuple[str, str]], values: dict[str, object]) -> list[tuple[str, str]]:
    script = [ln if isinstance(ln, tuple) else ("commands", ln) for ln in lines]
    rendered, errors = render_shell_lines(script, values)
    if errors:
        raise errors[0][1]
    return list(zip([s for s, _ in script], rendered, strict=True))


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LC_ALL": "C.UTF-8"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, env=env,
                          timeout=30)


def _run_step(lines: list[str], value: object, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return _bash(build_script(_render(lines, {"v": value})), cwd)


# ---------------------------------------------------------------- the cases the attack found


@pytest.mark.parametrize(("lines", "expected"), [
    (["cat > got <<EOF", "{v}", "EOF"], ATTACK + "\n"),
    (["printf '%s' 'pre", "{v}' > got"], "pre\n" + ATTACK),
    (["printf '%s' \"pre", "{v}\" > got"], "pre\n" + ATTACK),
    (["cat > got <<-EOF", "\t{v} tail", "\tEOF"], ATTACK + " tail\n"),
    (["X=$(", "printf '%s' {v}", ")", "printf '%s' \"$X\" > got"], ATTACK),
], ids=["heredoc", "single-quote-across-lines", "double-quote-across-lines", "heredoc-dash", "subst-across-lines"])
def test_values_opened_on_one_line_closed_on_the_next_arrive_exactly(lines, expected, tmp_path):
    proc = _run_step(lines, ATTACK, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "PWNED").exists()
    assert (tmp_path / "got").read_text() == expected


@pytest.mark.parametrize("lines", [["echo $[ {v} ]"], ["arr=(a b)", "echo ${arr[{v}]}"], ["echo $(( {v} + 1 ))"],
                                   ["arr[{v}]=x"], ["let x={v}"], ["s=abc; echo ${s:{v}}"]],
                         ids=["dollar-bracket", "subscript", "arithmetic", "assign-subscript", "let", "substring"])
def test_arithmetic_and_subscripts_accept_only_int_parameters(lines, tmp_path):
    for value in (ATTACK, "1", "a[$(touch PWNED)]"):  # refused whatever the text: the type is what counts
        with pytest.raises(RenderError) as info:
            _render(lines, {"v": value})
        assert "int" in str(info.value) and "CODEX_PARAM" in (info.value.hint or "")
    proc = _run_step(lines, 1, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "PWNED").exists()


def test_subscript_with_an_int_parameter_reads_the_element(tmp_path):
    proc = _run_step(["arr=(a b)", "printf '%s' \"${arr[{v}]}\""], 1, tmp_path)
    assert proc.stdout == b"b"


REFUSED_BY_POSITION = {
    "backslash-in-double": "printf '%s' \"C:\\{v}\"",
    "backslash-unquoted": "printf '%s' C:\\{v}",
    "trap": "trap {v} EXIT",
    "eval": "eval \"echo {v}\"",
    "bash-c": "bash -c {v}",
    "sh-c-quoted": "sh -c 'echo {v}'",
    "bash-ec": "bash -euc \"echo {v}\"",
    "env-bash-c": "env X=1 bash -c \"{v}\"",
    "python-c": "python3 -c \"print('{v}')\"",
    "perl-e": "perl -e 'print \"{v}\"'",
    "awk-program": "awk 'BEGIN { print \"{v}\" }'",
    "find-exec-sh-c": "find . -exec sh -c 'echo {v}' \\;",
    "alias": "alias ll={v}",
    "in-subst": "X=$(eval {v})",
}


@pytest.mark.parametrize("line", list(REFUSED_BY_POSITION.values()), ids=list(REFUSED_BY_POSITION))
def test_code_evaluating_words_refuse_any_value(line):
    for value in ("harmless", ATTACK, ""):
        with pytest.raises(RenderError) as info:
            _render([line], {"v": value})
        assert "CODEX_PARAM" in (info.value.hint or ""), line


@pytest.mark.parametrize("lines", [["bash <<EOF", "echo {v}", "EOF"], ["python3 - <<'EOF'", "print('{v}')", "EOF"]],
                         ids=["heredoc-to-bash", "heredoc-to-python"])
def test_here_document_fed_to_an_interpreter_is_code(lines):
    with pytest.raises(RenderError, match="code"):
        _render(lines, {"v": "x"})


@pytest.mark.parametrize(("line", "expected"), [
    ("bash -c 'printf %s \"$1\"' _ {v}", ATTACK),  # the recommended way: the value as an argument
    ("python3 -c 'import sys; print(sys.argv[1], end=\"\")' {v}", ATTACK),
    ("awk -v x={v} 'BEGIN { printf \"%s\", x }' </dev/null", ATTACK),
    ("printf '%s' trap {v}", "trap" + ATTACK),  # `trap` as an argument is just a word
], ids=["bash-c-argument", "python-c-argument", "awk-v", "trap-as-a-word"])
def test_values_as_arguments_of_interpreters_are_data(line, expected, tmp_path):
    proc = _run_step([line], ATTACK, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == expected
    assert not (tmp_path / "PWNED").exists()


def test_a_value_never_ends_a_here_document_whatever_its_lines(tmp_path):
    for value in ("EOF", "a\nEOF\ntouch PWNED", "x\r"):
        with pytest.raises(RenderError):
            _render(["cat <<EOF", "{v}", "EOF"], {"v": value})


def test_nul_byte_in_a_value_is_refused():
    with pytest.raises(RenderError, match="NUL"):
        _render(["printf '%s' {v}"], {"v": "a\x00b"})


# ---------------------------------------------------------------- property: multi-line scripts

# (name, lines with {x}, expected stdout for value v)
MULTI: list[tuple[str, list[str | tuple[str, str]], Callable[[str], str]]] = [
    ("heredoc", ["cat <<EOF", "{x}", "EOF"], lambda v: v + "\n"),
    ("heredoc_mixed", ["cat <<EOF", "pre ${HOME_UNSET_X:-} {x} post", "EOF"], lambda v: f"pre  {v} post\n"),
    ("heredoc_quoted", ["cat <<'EOF'", "{x}", "EOF"], lambda v: v + "\n"),
    ("heredoc_dash", ["cat <<-EOF", "\t{x}", "\tEOF"], lambda v: v + "\n"),
    ("two_heredocs", ["cat <<A; cat <<'B'", "{x}", "A", "{x}", "B"], lambda v: f"{v}\n{v}\n"),
    ("after_heredoc", ["cat <<EOF >/dev/null", "body", "EOF", "printf '%s' {x}"], lambda v: v),
    ("single_across", ["printf '%s' 'pre", "{x}'"], lambda v: "pre\n" + v),
    ("double_across", ["printf '%s' \"pre", "{x}\""], lambda v: "pre\n" + v),
    ("ansi_across", ["printf '%s' $'a\\n", "{x}'"], lambda v: "a\n\n" + v),
    ("subst_across", ["X=$(", "printf '%s' {x}", ")", "printf '%s' \"$X\""], lambda v: v.rstrip("\n")),
    ("subst_in_double_across", ["printf '%s' \"$(printf '%s' '{x}'", ")\""], lambda v: v.rstrip("\n")),
    ("backtick_across", ["X=`printf '%s' \\", "{x}`", "printf '%s' \"$X\""], lambda v: v.rstrip("\n")),
    ("continuation", ["printf '%s' \\", "{x}"], lambda v: v),
    ("brace_group", ["{", "printf '%s' {x}", "}"], lambda v: v),
    ("if_block", ["if true; then", "printf '%s' \"{x}\"", "fi"], lambda v: v),
    ("function", ["f() {", "printf '%s' \"$1\"", "}", "f {x}"], lambda v: v),
    ("case", ["case a in", "a) printf '%s' {x};;", "esac"], lambda v: v),
    ("subshell", ["(", "printf '%s' '{x}'", ")"], lambda v: v),
    ("comment_then_line", ["# {x}", "printf '%s' {x}"], lambda v: v),
    ("process_subst", ["cat <(printf '%s' {x})"], lambda v: v),
    ("array_element", ["arr=({x} b)", "printf '%s' \"${arr[0]}\""], lambda v: v),
    ("assertion", [("assertions", "printf '%s' \"{x}\"")], lambda v: v),
    ("bash_c_argument", ["bash -c 'printf %s \"$1\"' _ {x}"], lambda v: v),
]

PAYLOADS = [
    ATTACK, "`touch PWNED`", "; touch PWNED", "&& touch PWNED", "| touch PWNED", "' ; touch PWNED ; '",
    '" ; touch PWNED ; "', "'$(touch PWNED)'", '"$(touch PWNED)"', "\\$(touch PWNED)", "\\`touch PWNED\\`",
    "')$(touch PWNED)('", "\")$(touch PWNED)(\"", "`)$(touch PWNED)`", "\ntouch PWNED\n", "x\ntouch PWNED #",
    "a'\ntouch PWNED #'", "\\\ntouch PWNED", "EOF\ntouch PWNED", "EOF", "A", "B", "\tEOF", "\\", "\\\\",
    "\\'", '\\"', "a\\", "\n", "line1\nline2", "trailing\n\n", "\r\n", "$HOME", "${HOME}", "$", "$((1+1))",
    "$'\\x41'", "'", '"', "`", "$(", ")", "(", "{", "}", "{x}", "{{ x }}", ";;", "esac", "fi", "é 🚀 中文",
    "", " ", "-n", "--", "*", "~", "!", "#", "# c", "&", ">PWNED", "<x", "%s", "x=$(touch PWNED)",
    "<<EOF", "'EOF'", "$[1]", "a[$(touch PWNED)]",
]


def _check_multi(value: str, cwd: Path, counts: dict[str, int]) -> None:
    """Render every multi-line context with `value`; run the accepted ones in one script."""
    accepted: list[tuple[str, Callable[[str], str]]] = []
    lines: list[tuple[str, str]] = []
    for name, ctx_lines, exp in MULTI:
        try:
            rendered = _render(ctx_lines, {"x": value})
        except RenderError:
            counts["refused"] += 1  # value-dependent: a here-document value with a newline or its delimiter
            continue
        counts["run"] += 1
        accepted.append((name, exp))
        lines += rendered + [("commands", "printf '\\0'")]
    proc = _bash(build_script(lines), cwd)
    created = sorted(p.name for p in cwd.iterdir())
    if created:
        counts["executed"] += 1
    assert created == [], f"value {value!r} created {created}"
    assert proc.returncode == 0, (value, proc.stderr.decode(errors="replace"))
    outputs = proc.stdout.decode("utf-8").split("\0")[:-1]
    assert len(outputs) == len(accepted), (value, outputs)
    for (name, exp), got in zip(accepted, outputs, strict=True):
        assert got == exp(value), f"[{name}] with {value!r} printed {got!r}"


def test_multiline_contexts_never_execute_a_payload(tmp_path, capsys):
    counts = {"run": 0, "refused": 0, "executed": 0}
    for i, value in enumerate(PAYLOADS):
        cwd = tmp_path / str(i)
        cwd.mkdir()
        _check_multi(value, cwd, counts)
    total = len(MULTI) * len(PAYLOADS)
    with capsys.disabled():
        print(f"\nmulti-line: {len(MULTI)} contexts x {len(PAYLOADS)} payloads = {total}: "
              f"{counts['run']} run exactly, {counts['refused']} refused by value, {counts['executed']} executed")
    assert counts["executed"] == 0 and counts["run"] + counts["refused"] == total
    assert counts["refused"] < total // 10  # refusals are the narrow here-document cases, not a blanket


SHELL_ALPHABET = st.sampled_from(list("'\"`$\\(){}[];&|<>#!*?~ \n\t-=%") + ["$(", "${", "touch PWNED", "EOF", "a"])


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(SHELL_ALPHABET, max_size=20))
def test_random_values_in_multiline_contexts_never_execute(parts):
    with tempfile.TemporaryDirectory() as d:
        _check_multi("".join(parts), Path(d), {"run": 0, "refused": 0, "executed": 0})


def test_a_redirection_target_after_code_is_a_file_name(tmp_path):
    proc = _run_step(["python3 -c \"print('hi')\" > {v}"], "out file.txt", tmp_path)
    assert proc.returncode == 0 and (tmp_path / "out file.txt").read_text() == "hi\n"
