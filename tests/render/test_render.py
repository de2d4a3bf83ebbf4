"""Rendering: the core safety property (a parameter value never executes as shell and arrives exactly
as given, in every quoting context), one-pass placeholders, native values, the sandbox, and
StrictUndefined errors that name the variable and suggest the closest one."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from codex_tasks.render.templating import RenderError, render_string, render_value, truthy, unknown_names

# (name, line with {x}, expected stdout for value v). Each line is rendered once with the legacy
# `{x}` and once with Jinja `{{ x }}` in the same place.
CONTEXTS: list[tuple[str, str, object]] = [
    ("unquoted", "printf '%s' {x}", lambda v: v),
    ("double", "printf '%s' \"{x}\"", lambda v: v),
    ("single", "printf '%s' '{x}'", lambda v: v),
    ("subst_in_double", "printf '%s' \"$(printf '%s' {x})\"", lambda v: v.rstrip("\n")),
    ("double_in_subst", "printf '%s' \"$(printf '%s' \"{x}\")\"", lambda v: v.rstrip("\n")),
    ("single_in_subst", "printf '%s' \"$(printf '%s' '{x}')\"", lambda v: v.rstrip("\n")),
    ("mixed_double", "printf '%s' \"pre-{x}-post\"", lambda v: f"pre-{v}-post"),
    ("mixed_single", "printf '%s' 'pre-{x}-post'", lambda v: f"pre-{v}-post"),
    ("mixed_unquoted", "printf '%s' pre-{x}-post", lambda v: f"pre-{v}-post"),
    ("adjacent_quotes", "printf '%s' 'a'{x}\"b\"", lambda v: f"a{v}b"),
    ("twice", "printf '%s|%s' {x} \"{x}\"", lambda v: f"{v}|{v}"),
    ("backticks", "X=`printf '%s' {x}`; printf '%s' \"$X\"", lambda v: v.rstrip("\n")),
    ("ansi_c_before", "printf '%s' $'\\x41'{x}", lambda v: f"A{v}"),
    ("assignment", "X={x}; printf '%s' \"$X\"", lambda v: v),
    ("export", "export X=\"{x}\"; printf '%s' \"$X\"", lambda v: v),
    ("escaped_quote_before", "printf '%s' don\\'t{x}", lambda v: f"don't{v}"),
    ("param_expansion_default", "printf '%s' ${UNSET_VAR_FOR_TEST:-{x}}", lambda v: v),
]


def _jinja(line: str) -> str:
    return line.replace("{x}", "{{ x }}")


def _all_lines() -> list[tuple[str, str, object]]:
    out = []
    for name, line, exp in CONTEXTS:
        out.append((f"{name}/legacy", line, exp))
        out.append((f"{name}/jinja", _jinja(line), exp))
    out.append(("jinja_filter", "printf '%s' \"{{ x | string }}\"", lambda v: v))
    out.append(("jinja_concat", "printf '%s' {{ 'pre-' ~ x }}", lambda v: f"pre-{v}"))
    return out


LINES = _all_lines()
# The hypothesis tests use every legacy line and a few Jinja ones (each Jinja line costs a template compile).
QUICK_LINES = [ln for ln in LINES if ln[0].endswith("/legacy")] + [
    ln for ln in LINES if ln[0] in ("unquoted/jinja", "double/jinja", "single/jinja", "subst_in_double/jinja")]

PAYLOADS = [
    "$(touch PWNED)", "`touch PWNED`", "; touch PWNED", "&& touch PWNED", "|| touch PWNED", "| touch PWNED",
    "' ; touch PWNED ; '", '" ; touch PWNED ; "', "'\"$(touch PWNED)\"'", "\"'$(touch PWNED)'\"",
    "'$(touch PWNED)'", '"$(touch PWNED)"', "\\$(touch PWNED)", "\\`touch PWNED\\`", "$(touch PWNED",
    "')$(touch PWNED)('", "\")$(touch PWNED)(\"", "`)$(touch PWNED)`", "'`touch PWNED`'",
    "\ntouch PWNED\n", "x\ntouch PWNED #", "a'\ntouch PWNED #'", "\\\ntouch PWNED",
    "\\", "\\\\", "\\'", '\\"', "a\\", "\\n", "\n", "line1\nline2", "trailing\n\n", "\r\n", "\t",
    "$HOME", "${HOME}", "${x}", "$x", "$", "$$", "$?", "$((1+1))", "$'\\x41'", "${IFS}", "$@",
    "'", '"', "''", '""', "`", "$(", ")", "(", "{", "}", "{x}", "{{ x }}", "{% raw %}", "{y}", "{#",
    "é ünïcödé 🚀 中文 \u200b", "", " ", "  a  b  ", "-n", "-e", "--help", "-", "--", "-x=1",
    "*", "?", "[a]", "~", "~root", "{a,b}", "!", "!!", "!$", "#", "# not a comment", "&", ">PWNED", "<x",
    "%s", "%%", "\x7f", "\x01\x02", "a=b", "x=$(touch PWNED)",
]


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LC_ALL": "C.UTF-8"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, env=env,
                          timeout=30)


def _check_value(value: str, cwd: Path, lines=LINES) -> None:
    """Render every line with `value`, run them all in one bash, compare each output."""
    rendered = [render_string(line, {"x": value}, shell=True) for _, line, _ in lines]
    script = "\nprintf '\\0'\n".join(rendered) + "\nprintf '\\0'\n"
    proc = _run(script, cwd)
    created = sorted(p.name for p in cwd.iterdir())
    assert created == [], f"value {value!r} created {created}; script:\n{script}"
    assert proc.returncode == 0, (value, proc.stderr.decode(errors="replace"), script)
    outputs = proc.stdout.decode("utf-8").split("\0")[:-1]
    assert len(outputs) == len(lines), (value, outputs)
    for (name, line, exp), got, r in zip(lines, outputs, rendered, strict=True):
        assert got == exp(value), f"[{name}] {line!r} with {value!r} rendered {r!r} printed {got!r}"  # type: ignore[operator]


@pytest.mark.parametrize("value", PAYLOADS)
def test_value_never_executes_and_arrives_exactly(value, tmp_path):
    _check_value(value, tmp_path)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40))
@example(value="'\"`$\\\n")
def test_random_values_never_execute_and_arrive_exactly(value):
    with tempfile.TemporaryDirectory() as d:
        _check_value(value, Path(d), QUICK_LINES)


SHELL_ALPHABET = st.sampled_from(list("'\"`$\\(){}[];&|<>#!*?~ \n\t-=%") + ["$(", "${", "touch PWNED", "a", "é"])


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(SHELL_ALPHABET, max_size=25))
def test_random_shell_metacharacter_values_never_execute(parts):
    with tempfile.TemporaryDirectory() as d:
        _check_value("".join(parts), Path(d), QUICK_LINES)


def test_values_from_several_placeholders_in_one_line(tmp_path):
    values = {"a": "$(touch PWNED)", "b": "'; touch PWNED; '", "c": '"`touch PWNED`"'}
    line = "printf '%s|%s|%s|%s' {a} \"{b}\" '{c}' \"{{ a ~ b }}\""
    proc = _run(render_string(line, values, shell=True), tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.decode() == "|".join([values["a"], values["b"], values["c"], values["a"] + values["b"]])
    assert list(tmp_path.iterdir()) == []


def test_non_string_values_in_shell_lines(tmp_path):
    values = {"n": 3, "f": 0.5, "t": True, "no": False, "none": None, "l": [1, "a b"], "d": {"k": "$(x)"}}
    line = "printf '%s|' {n} {f} {t} {no} \"{none}\" {l} {d}"
    proc = _run(render_string(line, values, shell=True), tmp_path)
    assert proc.stdout.decode() == '3|0.5|true|false||[1, "a b"]|{"k": "$(x)"}|'


# ---------------------------------------------------------------- contexts that are not safe today


def _assert_safe(line: str, value: object, tmp_path: Path, expected: str | None) -> None:
    rendered = render_string(line, {"x": value}, shell=True)
    proc = _run(rendered, tmp_path)
    assert not (tmp_path / "PWNED").exists(), f"{value!r} executed; rendered {rendered!r}"
    if expected is not None:
        assert proc.stdout.decode() == expected, rendered


@pytest.mark.parametrize("line", ["cat <<EOF\n{x}\nEOF", "cat <<EOF\n{{ x }}\nEOF"])
def test_heredoc_body(line, tmp_path):
    _assert_safe(line, "$(touch PWNED)", tmp_path, "$(touch PWNED)\n")


def test_placeholder_in_a_comment(tmp_path):
    _assert_safe("printf ok # {x}", "a'\ntouch PWNED #", tmp_path, "ok")


def test_dollar_before_a_jinja_placeholder(tmp_path):
    value = "\\'\";touch PWNED;#"
    _assert_safe("printf '%s' ${{ x }}", value, tmp_path, "$" + value)


@pytest.mark.parametrize("line", ["printf '%s' $(( {x} + 1 ))", "[[ {x} -gt 0 ]] && echo y || echo n",
                                  "(( {{ x }} > 0 )) || true"])
def test_arithmetic_context_refuses_what_bash_would_evaluate(line, tmp_path):
    # bash evaluates array subscripts in arithmetic, so no quoting makes such a value inert: refused
    with pytest.raises(RenderError) as info:
        render_string(line, {"x": "HOME[$(touch PWNED)]"}, shell=True)
    assert "CODEX_PARAM" in (info.value.hint or "")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(("line", "expected"), [("printf '%s' $(( {x} + 1 ))", "42"),
                                                ("[[ {x} -gt 0 ]] && echo y || echo n", "y\n"),
                                                ("(( {{ x }} > 0 )) && echo y", "y\n")])
def test_arithmetic_context_accepts_integers(line, expected, tmp_path):
    _assert_safe(line, 41, tmp_path, expected)  # type: ignore[arg-type]  # an int-typed parameter


def test_test_brackets_accept_plain_strings(tmp_path):
    _assert_safe('[[ {x} == "a b" ]] && printf yes', "a b", tmp_path, "yes")


@pytest.mark.parametrize("value", ["'<({", "x'<({", '"', "`id`", "$(touch PWNED)"])
def test_backticks_inside_double_quotes(value, tmp_path):
    _assert_safe("printf '%s' \"`printf '%s' {x}`\"", value, tmp_path, value)


@pytest.mark.parametrize("value", ["'", "a}b", "$(touch PWNED)"])
def test_default_expansion_inside_double_quotes_is_refused(value, tmp_path):
    with pytest.raises(RenderError):
        render_string("printf '%s' \"${UNSET_VAR_FOR_TEST:-{x}}\"", {"x": value}, shell=True)


@pytest.mark.parametrize("value", ["a\nb", "EOF"])
def test_heredoc_refuses_values_that_could_end_it(value):
    with pytest.raises(RenderError):
        render_string("cat <<EOF\n{x}\nEOF", {"x": value}, shell=True)


def test_quoted_heredoc_keeps_the_value_raw(tmp_path):
    _assert_safe("cat <<'EOF'\n{x}\nEOF", "$(touch PWNED) `id` \\", tmp_path, "$(touch PWNED) `id` \\\n")


# ---------------------------------------------------------------- placeholders


def test_shell_variables_are_left_to_the_shell():
    line = 'echo "${HOME}" $HOME ${PATH:-x} {x}'
    assert render_string(line, {"x": "v"}, shell=True) == 'echo "${HOME}" $HOME ${PATH:-x} v'


def test_one_pass_a_substituted_value_is_not_scanned_again():
    assert render_string("a {x} b", {"x": "{y}", "y": "NO"}) == "a {y} b"
    assert render_string("a {{ x }} b", {"x": "{{ y }}", "y": "NO"}) == "a {{ y }} b"


def test_render_value_keeps_native_types():
    values = {"vocab": 512, "flag": True, "name": "tok"}
    assert render_value({"v": "{{ vocab }}", "f": "{flag}", "s": "{{ name }}-x", "l": ["{{ vocab * 2 }}"]},
                        values) == {"v": 512, "f": True, "s": "tok-x", "l": [1024]}


@pytest.mark.parametrize("expr", ["{{ ''.__class__.__mro__ }}", "{{ x.__class__.__subclasses__() }}",
                                  "{{ x.__init__.__globals__ }}", "{{ cycler.__init__.__globals__.os }}",
                                  "{{ lipsum.__globals__['os'].popen('id').read() }}"])
def test_sandbox_blocks_attribute_escapes(expr):
    try:
        out = render_string(expr, {"x": "v"})
    except RenderError:
        return
    assert "<class" not in out and "uid=" not in out and "module" not in out


def test_undefined_names_the_variable_and_suggests():
    with pytest.raises(RenderError) as info:
        render_string("echo {{ vocb }}", {"vocab": 1})
    assert info.value.name == "vocb" and "vocab" in (info.value.hint or "")
    with pytest.raises(RenderError) as info:
        render_value("{{ vocb }}", {"vocab": 1})
    assert info.value.name == "vocb" and "vocab" in (info.value.hint or "")
    with pytest.raises(RenderError) as info:
        render_string("echo {vocb}", {"vocab": 1})
    assert "vocab" in (info.value.hint or "")


def test_unknown_names_is_static():
    assert unknown_names("{a} {{ b + c }} {% for i in items %}{{ i }}{% endfor %}", ["a", "b"]) == ["c", "items"]


def test_truthy():
    assert truthy("true") and truthy(1) and truthy("yes")
    assert not truthy("false") and not truthy("") and not truthy(0) and not truthy("None")
