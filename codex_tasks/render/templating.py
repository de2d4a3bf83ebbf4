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
from collections.abc import Callable, Mapping
from typing import Any

from codex_tasks.core.names import closest
from codex_tasks.render.shellquote import ShellLexer, UnsafePlaceholder
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


class RenderError(Exception):
    """A placeholder could not be rendered; `name` is the unknown name, when that is the cause."""

    def __init__(self, message: str, *, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.hint = hint


# ---------------------------------------------------------------- shell quoting context


def shell_escape(value: str, lexer: ShellLexer) -> str:
    """Escape `value` for the lexer's current position, or raise `RenderError`."""
    try:
        return lexer.escape(value)
    except UnsafePlaceholder as exc:
        raise RenderError(str(exc), hint=exc.hint) from None


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


def has_placeholders(text: str) -> bool:
    return any(kind != "lit" for kind, _ in _segments(text))


def _compile(text: str, shell: bool) -> tuple[str, list[str], list[str], list[ShellLexer]]:
    """Jinja source for `text`, its literal pieces, and the legacy names it uses.

    In shell lines each placeholder becomes `__q(value, k)`, where k is a snapshot of the quoting
    context at that position (`__lexers[k]`)."""
    parts: list[str] = []
    lits: list[str] = []
    legacy: list[str] = []
    pieces, lexers = _pieces(text, shell, lits)
    for kind, src in pieces:
        if kind == "lit":
            parts.append("{{ __lit[" + src + "] }}")
        elif kind == "stmt":
            parts.append(src)
        else:
            expr, ctx = src.split("\0")
            if kind == "legacy":
                legacy.append(expr)
                expr = f"__p({json.dumps(expr)})"
            else:
                expr = f"({expr})"
            parts.append("{{ __q(" + expr + ", " + ctx + ") }}")
    return "".join(parts), lits, legacy, lexers


def _pieces(text: str, shell: bool, lits: list[str]) -> tuple[list[tuple[str, str]], list[ShellLexer]]:
    """Segments with literal text stored in `lits`, and a snapshot of the quoting context at each
    placeholder (its index travels with the placeholder)."""
    out: list[tuple[str, str]] = []
    lexer = ShellLexer() if shell else None
    snapshots: list[ShellLexer] = []
    segs = _segments(text)
    for i, (kind, src) in enumerate(segs):
        if kind == "lit":
            if lexer is not None and i + 1 < len(segs) and segs[i + 1][0] in ("expr", "legacy"):
                lexer.feed(src)
                if lexer.ends_with_bare_dollar(src):
                    src = src[:-1] + "\\$"  # keep the '$' literal: `$'...'` would decode escapes
            elif lexer is not None:
                lexer.feed(src)
            lits.append(src)
            out.append(("lit", str(len(lits) - 1)))
        elif kind == "stmt":
            out.append(("stmt", src))
        else:
            if lexer is not None:
                import copy

                snapshots.append(copy.deepcopy(lexer))
                lexer.prev = "x"
                ctx = str(len(snapshots) - 1)
            else:
                ctx = "none"
            out.append((kind, src + "\0" + ctx))
    return out, snapshots


def _suggest(name: str, known: list[str]) -> str | None:
    guess = closest(name, known)
    return f"did you mean {guess!r}?" if guess else None


def unknown_names(text: str, known: list[str]) -> list[str]:
    """Names `text` uses that are not in `known` (static check, nothing is evaluated)."""
    segs = _segments(text)
    legacy = {src for kind, src in segs if kind == "legacy"}
    if all(kind in ("lit", "legacy") for kind, _ in segs):
        return sorted(n for n in legacy if n not in known)
    from jinja2 import TemplateSyntaxError, meta

    env = _jinja()
    try:
        src = _compile(text, False)[0]
        ast = env.parse(src)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error: {exc.message}") from None
    used = set(meta.find_undeclared_variables(ast)) - {"__lit", "__q", "__p"}
    used |= legacy
    return sorted(n for n in used if n not in known and n not in env.globals)


def render_string(text: str, values: Mapping[str, Any], *, shell: bool = False) -> str:
    """Render one string. Raises `RenderError` naming an unknown name and the closest known one."""
    if "{" not in text:
        return text

    def lookup(name: str) -> Any:
        if name not in values:
            raise RenderError(f"unknown placeholder {{{name}}}", name=name, hint=_suggest(name, list(values)))
        return values[name]

    lexers: list[ShellLexer] = []

    def quote(value: Any, ctx: int | None) -> str:
        text_value = format_value(value)
        return shell_escape(text_value, lexers[ctx]) if ctx is not None else text_value

    if all(kind in ("lit", "legacy") for kind, _ in _segments(text)):
        # legacy placeholders only: substitute directly, in one pass, without Jinja
        lits: list[str] = []
        pieces, snaps = _pieces(text, shell, lits)
        lexers.extend(snaps)
        out: list[str] = []
        for kind, src in pieces:
            if kind == "lit":
                out.append(lits[int(src)])
            else:
                pname, ctx = src.split("\0")
                out.append(quote(lookup(pname), int(ctx) if ctx != "none" else None))
        return "".join(out)
    from jinja2 import TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        src, lits, _, snaps = _compile(text, shell)
        lexers.extend(snaps)
        template = _template(src)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error: {exc.message}") from None

    context = dict(values)
    context["params"] = dict(values)
    try:
        return str(template.render(**context, __lit=lits, __q=quote, __p=lookup))
    except UndefinedError as exc:
        m = re.search(r"'([^']+)' is undefined", str(exc))
        name = m.group(1) if m else None
        raise RenderError(f"undefined variable {name or str(exc)!r}", name=name,
                          hint=_suggest(name, list(values)) if name else None) from None
    except SecurityError as exc:
        raise RenderError(f"not allowed in a template: {exc}") from None
    except RenderError:
        raise
    except Exception as exc:  # an expression that fails (1/0, a bad filter argument)
        raise RenderError(f"template error: {type(exc).__name__}: {exc}") from None


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
    from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    try:
        fn = _expression(expr.strip())
        context = dict(values)
        context["params"] = dict(values)
        result = fn(**context)
    except TemplateSyntaxError as exc:
        raise RenderError(f"template syntax error in {{{{ {expr.strip()} }}}}: {exc.message}") from None
    except UndefinedError as exc:
        m = re.search(r"'([^']+)' is undefined", str(exc))
        name = m.group(1) if m else None
        raise RenderError(f"undefined variable {name or str(exc)!r}", name=name,
                          hint=_suggest(name, list(values)) if name else None) from None
    except SecurityError as exc:
        raise RenderError(f"not allowed in a template: {exc}") from None
    except Exception as exc:
        raise RenderError(f"template error: {type(exc).__name__}: {exc}") from None
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


ValueLookup = Callable[[str], Any]
