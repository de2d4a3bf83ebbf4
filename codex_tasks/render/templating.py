"""Placeholders: each string rendered in one pass.

`{{ expr }}` (and `{% %}` blocks) by a sandboxed Jinja2 environment with StrictUndefined, legacy
`{name}` from the parameters; a substituted value is never scanned again. `${VAR}` / `$VAR` are
left to the shell. In shell lines every substituted value is escaped for the quoting context at
its position (a small lexer tracks it), so no value ever executes as shell and each arrives in the
command exactly as given.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from codex_tasks.core.names import closest
from codex_tasks.errors import ExceptionMap, map_exceptions
from codex_tasks.errors import RenderError as RenderError  # re-exported: callers catch it from here
from codex_tasks.render.shellquote import ASSERTION_CLOSE, ASSERTION_OPEN, ShellLexer
from codex_tasks.sequence.values import format_value

BUILTINS = ("run_dir", "run_id", "workspace", "timestamp", "step_id", "phase_id")

_LEGACY = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV: Any = None


@functools.lru_cache(maxsize=512)
def _template(src: str) -> Any:
    """A compiled template per source (validate parses, then run renders, the same strings)."""
    return _jinja().from_string(src)


@functools.lru_cache(maxsize=512)
def _expression(src: str) -> Any:
    return _jinja().compile_expression(src, undefined_to_none=False)


def _jinja() -> Any:
    """The sandboxed Jinja2 environment, imported on first use (legacy `{name}` never needs it)."""
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        _ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return _ENV


# ---------------------------------------------------------------- shell quoting context

_MARK = re.compile("\x00([0-9]+)\x00")  # a substituted value, before the script is lexed


def shell_escape(value: Any, lexer: ShellLexer) -> str:
    """Escape `value` for the lexer's current position, or raise `RenderError`."""
    text = format_value(value)
    if "\x00" in text:
        raise RenderError("a value contains a NUL byte", hint="remove the NUL byte from the value")
    return lexer.escape(text, value)  # UnsafePlaceholder is a RenderError


def _glue(section: str) -> tuple[str, str]:
    """The text around a line in a shell step's script (assertions are wrapped in `if ! { }`)."""
    return (ASSERTION_OPEN, ASSERTION_CLOSE) if section == "assertions" else ("", "\n")


def render_shell_lines(lines: Sequence[tuple[str, str]], values: Mapping[str, Any]
                       ) -> tuple[list[str], list[tuple[int, RenderError]]]:
    """Render a step's `(section, line)`s as ONE script: (rendered lines, [(index, error)]).

    Each line is rendered with its values replaced by marks; then the script those lines make is
    lexed from the start, so a quote, here-document or `$(` that one line opens and a later line
    closes is the context a value really lands in, and each value is escaped for it."""
    marks: list[Any] = []
    marked: list[str] = []
    errors: list[tuple[int, RenderError]] = []
    for i, (_, line) in enumerate(lines):
        try:
            if "\x00" in line:
                raise RenderError("a NUL byte in a shell line", hint="remove it from the sequence file")
            marked.append(_render_marked(line, values, marks))
        except RenderError as exc:
            errors.append((i, exc))
            marked.append("")
    if errors:
        return [], errors
    lexer = ShellLexer()
    out: list[str] = []
    used = 0
    for i, text in enumerate(marked):
        before, after = _glue(lines[i][0])
        lexer.feed(before)
        pieces: list[str] = []
        pos = 0
        for m in _MARK.finditer(text):
            lit = text[pos: m.start()]
            lexer.feed(lit)
            if lexer.ends_with_bare_dollar():
                lit = lit[:-1] + "\\$"  # keep the '$' literal: `$'...'` would decode escapes
            pieces.append(lit)
            used += 1
            try:
                pieces.append(shell_escape(marks[int(m.group(1))], lexer))
            except RenderError as exc:
                errors.append((i, exc))
            pos = m.end()
        lexer.feed(text[pos:])
        pieces.append(text[pos:])
        lexer.feed(after)
        out.append("".join(pieces))
    if used != len(marks) and not errors:
        errors.append((0, RenderError("a {% %} block changed a substituted value before it could be quoted",
                                      hint="apply filters inside {{ }} instead")))
    return out, errors


# ---------------------------------------------------------------- templates


def _segments(text: str) -> list[tuple[str, str]]:
    """Split into ('lit', s), ('expr', src), ('stmt', src), ('legacy', name) pieces."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    lit: list[str] = []
    while i < n:
        two = text[i: i + 2]
        if two in ("{{", "{%", "{#"):
            close = {"{{": "}}", "{%": "%}", "{#": "#}"}[two]
            j = text.find(close, i + 2)
            if j < 0:
                raise RenderError(f"unclosed {two!r}", hint=f"add the closing {close!r}")
            if lit:
                out.append(("lit", "".join(lit)))
                lit = []
            kind = "expr" if two == "{{" else "stmt"
            out.append((kind, text[i: j + 2] if kind == "stmt" else text[i + 2: j]))
            i = j + 2
            continue
        if text[i] == "{" and (i == 0 or text[i - 1] != "$"):
            m = _LEGACY.match(text, i)
            if m:
                if lit:
                    out.append(("lit", "".join(lit)))
                    lit = []
                out.append(("legacy", m.group(1)))
                i = m.end()
                continue
        lit.append(text[i])
        i += 1
    if lit:
        out.append(("lit", "".join(lit)))
    return out


def _compile(text: str) -> tuple[str, list[str]]:
    """Jinja source for `text` and its literal pieces (`__lit[i]`, kept verbatim); each placeholder
    becomes `__q(value)`."""
    parts: list[str] = []
    lits: list[str] = []
    for kind, src in _segments(text):
        if kind == "lit":
            lits.append(src)
            parts.append("{{ __lit[" + str(len(lits) - 1) + "] }}")
        elif kind == "stmt":
            parts.append(src)
        elif kind == "legacy":
            parts.append("{{ __q(__p(" + json.dumps(src) + ")) }}")
        else:
            parts.append("{{ __q((" + src + ")) }}")
    return "".join(parts), lits


def _suggest(name: str, known: list[str]) -> str | None:
    guess = closest(name, known)
    return f"did you mean {guess!r}?" if guess else None


def unknown_names(text: str, known: list[str]) -> list[str]:
    """Names `text` uses that are not in `known` (static check, nothing is evaluated)."""
    segs = _segments(text)
    legacy = {src for kind, src in segs if kind == "legacy"}
    if all(kind in ("lit", "legacy") for kind, _ in segs):
        return sorted(n for n in legacy if n not in known)
    from jinja2 import meta

    env = _jinja()
    with map_exceptions(_syntax_errors()):
        ast = env.parse(_compile(text)[0])
    used = set(meta.find_undeclared_variables(ast)) - {"__lit", "__q", "__p"}
    used |= legacy
    return sorted(n for n in used if n not in known and n not in env.globals)


def placeholder_form(text: str, name: str) -> str:
    """How `text` writes a use of `name`: `{name}` when it uses the legacy form, else `{{ name }}`."""
    if any(kind == "legacy" and src == name for kind, src in _segments(text)):
        return "{" + name + "}"
    return "{{ " + name + " }}"


def _syntax_errors(where: str = "") -> ExceptionMap:
    """Jinja2's syntax errors as `RenderError`s (`where`: the expression, when there is one)."""
    from jinja2 import TemplateSyntaxError

    return {TemplateSyntaxError: lambda exc: RenderError(f"template syntax error{where}: {getattr(exc, 'message', exc)}")}


def _evaluation_errors(values: Mapping[str, Any]) -> ExceptionMap:
    """Errors while evaluating a template as `RenderError`s: an undefined name (with the closest
    known one), a sandbox refusal, an expression that fails (1/0, a bad filter argument)."""
    from jinja2 import UndefinedError
    from jinja2.exceptions import SecurityError

    def undefined(exc: BaseException) -> RenderError:
        m = re.search(r"'([^']+)' is undefined", str(exc))
        name = m.group(1) if m else None
        return RenderError(f"undefined variable {name or str(exc)!r}", name=name,
                           hint=_suggest(name, list(values)) if name else None)

    return {
        UndefinedError: undefined,
        SecurityError: lambda exc: RenderError(f"not allowed in a template: {exc}"),
        Exception: lambda exc: RenderError(f"template error: {type(exc).__name__}: {exc}"),
    }


def render_string(text: str, values: Mapping[str, Any], *, shell: bool = False) -> str:
    """Render one string. Raises `RenderError` naming an unknown name and the closest known one.

    With `shell=True` the string is one whole script (see `render_shell_lines`)."""
    if "{" not in text:
        return text
    if shell:
        rendered, errors = render_shell_lines([("commands", text)], values)
        if errors:
            raise errors[0][1]
        return rendered[0]
    return _render(text, values, format_value)


def _render_marked(text: str, values: Mapping[str, Any], marks: list[Any]) -> str:
    """`text` rendered with each substituted value replaced by a mark (its index in `marks`)."""
    if "{" not in text:
        return text

    def mark(value: Any) -> str:
        marks.append(value)
        return f"\x00{len(marks) - 1}\x00"

    return _render(text, values, mark)


def _render(text: str, values: Mapping[str, Any], emit: Callable[[Any], str]) -> str:
    """One pass: literal text kept, each placeholder's value passed through `emit`."""

    def lookup(name: str) -> Any:
        if name not in values:
            raise RenderError(f"unknown placeholder {{{name}}}", name=name, hint=_suggest(name, list(values)))
        return values[name]

    segs = _segments(text)
    if all(kind in ("lit", "legacy") for kind, _ in segs):
        # legacy placeholders only: substitute directly, in one pass, without Jinja
        return "".join(src if kind == "lit" else emit(lookup(src)) for kind, src in segs)
    with map_exceptions(_syntax_errors()):
        src, lits = _compile(text)
        template = _template(src)
    context = dict(values)
    context["params"] = dict(values)
    with map_exceptions(_evaluation_errors(values)):
        return str(template.render(**context, __lit=lits, __q=emit, __p=lookup))


def render_value(value: Any, values: Mapping[str, Any]) -> Any:
    """Render every string inside a YAML value. A string that is exactly one `{{ expr }}` keeps the
    expression's native type (so `vocab_size: "{{ vocab }}"` is an int)."""
    if isinstance(value, str):
        segs = _segments(value) if "{" in value else [("lit", value)]
        if len(segs) == 1 and segs[0][0] in ("expr", "legacy"):
            kind, src = segs[0]
            if kind == "legacy":
                if src not in values:
                    raise RenderError(f"unknown placeholder {{{src}}}", name=src, hint=_suggest(src, list(values)))
                return values[src]
            return evaluate(src, values)
        return render_string(value, values)
    if isinstance(value, dict):
        return {k: render_value(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, values) for v in value]
    return value


def evaluate(expr: str, values: Mapping[str, Any]) -> Any:
    """Evaluate one Jinja2 expression to a native value."""
    from jinja2 import StrictUndefined, TemplateSyntaxError

    context = dict(values)
    context["params"] = dict(values)
    with map_exceptions({**_syntax_errors(f" in {{{{ {expr.strip()} }}}}"), **_evaluation_errors(values)}):
        result = _expression(expr.strip())(**context)
    if isinstance(result, StrictUndefined):
        from jinja2 import meta

        try:
            names = sorted(set(meta.find_undeclared_variables(_jinja().parse("{{ " + expr + " }}"))) - set(values))
        except TemplateSyntaxError:
            names = []
        if names:
            raise RenderError(f"undefined variable {names[0]!r}", name=names[0], hint=_suggest(names[0], list(values)))
        raise RenderError(f"undefined expression {expr.strip()!r}")
    return result


def truthy(value: Any) -> bool:
    """How `when:` reads a rendered value."""
    if isinstance(value, str):
        text = value.strip().lower()
        return text not in ("", "false", "no", "off", "0", "none", "null")
    return bool(value)


def render_template_text(template: str, fields: Mapping[str, Any]) -> str:
    """Render an error-block template: `{name}` and `{{ name }}` both work; unknown names stay as written."""
    out: list[str] = []
    pos = 0
    pattern = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
    for m in pattern.finditer(template):
        out.append(template[pos: m.start()])
        name = m.group(1) or m.group(2)
        out.append(format_value(fields[name]) if name in fields else m.group(0))
        pos = m.end()
    out.append(template[pos:])
    return "".join(out)

