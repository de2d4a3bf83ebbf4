"""Parameters and placeholders.

Resolution order (highest first): CLI `--param k=v` > `params` / `cli_parameters` defaults >
`metadata` (`default_X` also provides `X`) > built-ins (`run_dir`, `run_id`, `workspace`,
`timestamp`, `step_id`, `phase_id`).

Each string is rendered in one pass: `{{ expr }}` (and `{% %}` blocks) by a sandboxed Jinja2
environment with StrictUndefined, legacy `{name}` from the parameters; a substituted value is
never scanned again. `${VAR}` / `$VAR` are left to the shell. In shell lines every substituted
value is escaped for the quoting context at its position (a small lexer tracks it), so no value
ever executes as shell and each arrives in the command exactly as given.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from codex_tasks.errors import ParamError
from codex_tasks.shellquote import ShellLexer, UnsafePlaceholder
from codex_tasks.spec.models import ParamSpec, Sequence

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


# ---------------------------------------------------------------- parameters


def _infer_type(spec: ParamSpec) -> str:
    if spec.type:
        return spec.type
    d = spec.default
    if isinstance(d, bool):
        return "bool"
    if isinstance(d, int):
        return "int"
    if isinstance(d, float):
        return "float"
    if isinstance(d, list):
        return "list"
    if isinstance(d, dict):
        return "dict"
    return "str"


_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


def coerce_param(name: str, spec: ParamSpec, value: Any) -> Any:
    """Convert `value` (a CLI string or a YAML value) to the parameter's type, or raise ValueError."""
    kind = _infer_type(spec)
    if kind in ("str", "path", "secret"):
        if isinstance(value, dict | list):
            raise ValueError(f"expected text, got a {type(value).__name__}")
        return value if isinstance(value, str) else format_value(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if kind in ("list", "dict"):
        parsed = value
        if isinstance(value, str):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
            if kind == "list" and not isinstance(parsed, list):
                parsed = [s.strip() for s in value.split(",") if s.strip()]
        want = list if kind == "list" else dict
        if not isinstance(parsed, want):
            raise ValueError(f"expected a {kind}, got {value!r}")
        return parsed
    raise ValueError(f"unknown type {kind!r}")


def parse_cli_params(pairs: list[str]) -> dict[str, str]:
    """`["k=v", ...]` -> `{k: v}` (the value kept exactly, '=' and spaces included)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParamError(f"--param {pair!r}: expected NAME=VALUE", hint="e.g. --param seed=7")
        out[name] = value
    return out


def declared_names(spec: Sequence) -> list[str]:
    """Every name a placeholder may use (parameters, metadata, built-ins)."""
    names: dict[str, None] = dict.fromkeys(BUILTINS)
    for key in spec.metadata:
        names[key] = None
        if key.startswith("default_") and len(key) > len("default_"):
            names[key[len("default_"):]] = None
    for key in spec.all_params():
        names[key] = None
    names["params"] = None
    return list(names)


def resolve_params(
    spec: Sequence,
    cli: Mapping[str, str] | None = None,
    builtins: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    stored: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameter values of a run, in resolution order, typed. Raises `ParamError`."""
    from codex_tasks.spec.load import closest

    environ = os.environ if environ is None else environ
    values: dict[str, Any] = dict(builtins or {})
    for key, value in spec.metadata.items():
        if key.startswith("default_") and len(key) > len("default_"):
            values[key[len("default_"):]] = value  # metadata ranks above built-ins
    for key, value in spec.metadata.items():
        values[key] = value
    pspecs = spec.all_params()
    for name, ps in pspecs.items():
        if ps.type == "secret":
            var = ps.env or name.upper()
            if var in environ:
                values[name] = environ[var]
            elif ps.required:
                raise ParamError(f"secret parameter {name!r} is not set",
                                 hint=f"export {var}=... before the run (secrets never come from the file)")
            else:
                values[name] = ""
        elif ps.default is not None:
            values[name] = coerce_param(name, ps, ps.default)
        elif name not in values:
            values[name] = None
    if stored:
        values.update({k: v for k, v in stored.items() if k not in BUILTINS})
    overridable = set(declared_names(spec)) - set(BUILTINS) - {"params"}
    for name, raw in (cli or {}).items():
        if name not in overridable:
            guess = closest(name, sorted(overridable))
            hint = f"did you mean {guess!r}?" if guess else (
                f"known parameters: {', '.join(sorted(overridable))}" if overridable else "this sequence declares no parameters")
            raise ParamError(f"--param {name}: unknown parameter {name!r}", hint=hint)
        ps = pspecs.get(name) or ParamSpec.model_validate({"default": values.get(name)})
        if ps.type == "secret":
            raise ParamError(f"--param {name}: secret parameters come from the environment",
                             hint=f"export {ps.env or name.upper()}=... instead")
        try:
            values[name] = coerce_param(name, ps, raw)
        except ValueError as exc:
            raise ParamError(f"--param {name}={raw}: {exc}",
                             hint=f"{name} is a {_infer_type(ps)}" + (f" (default {ps.default!r})" if ps.default is not None else "")) from None
    for name, ps in pspecs.items():
        if ps.choices is not None and values.get(name) is not None and values[name] not in ps.choices:
            raise ParamError(f"--param {name}={values[name]}: not one of {ps.choices}",
                             hint=f"choose one of {', '.join(map(str, ps.choices))}")
        if ps.required and values.get(name) in (None, ""):
            raise ParamError(f"parameter {name!r} is required", hint=f"pass --param {name}=VALUE")
    return values


def secret_values(spec: Sequence, values: Mapping[str, Any]) -> list[str]:
    """The values of parameters typed `secret` (for the redaction hook)."""
    return [str(values[n]) for n, ps in spec.all_params().items() if ps.type == "secret" and values.get(n)]


def param_env(spec: Sequence, values: Mapping[str, Any]) -> dict[str, str]:
    """`CODEX_PARAM_<NAME>` for every declared parameter and metadata value."""
    names = [n for n in declared_names(spec) if n not in BUILTINS and n != "params"]
    out = {}
    for n in names:
        if n in values and values[n] is not None:
            key = "CODEX_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", n).upper()
            out[key] = format_value(values[n])
    return out


# ---------------------------------------------------------------- shell quoting context


def shell_escape(value: str, lexer: ShellLexer) -> str:
    """Escape `value` for the lexer's current position, or raise `RenderError`."""
    try:
        return lexer.escape(value)
    except UnsafePlaceholder as exc:
        raise RenderError(str(exc), hint=exc.hint) from None


# ---------------------------------------------------------------- templates


def format_value(value: Any) -> str:
    """How a value reads in text: booleans as true/false, None as '', lists/dicts as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


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
    from codex_tasks.spec.load import closest

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
