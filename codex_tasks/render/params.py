"""Parameters: resolution order, typing and the environment a step sees.

Resolution order (highest first): CLI `--param k=v` > `params` / `cli_parameters` defaults >
`metadata` (`default_X` also provides `X`) > built-ins (`run_dir`, `run_id`, `workspace`,
`timestamp`, `step_id`, `phase_id`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from codex_tasks.core.names import closest
from codex_tasks.core.secret_rules import redact_tokens
from codex_tasks.errors import ParamError
from codex_tasks.render.templating import BUILTINS
from codex_tasks.sequence.models import ParamSpec, Sequence
from codex_tasks.sequence.values import coerce_param, format_value, infer_type


def _a(word: str) -> str:
    """`an int`, `a float`."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


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
                             hint=f"{name} is {_a(infer_type(ps))}" + (f" (default {ps.default!r})" if ps.default is not None else "")) from None
    for name, ps in pspecs.items():
        if ps.choices is not None and values.get(name) is not None and values[name] not in ps.choices:
            raise ParamError(f"--param {name}={values[name]}: not one of {ps.choices}",
                             hint=f"choose one of {', '.join(map(str, ps.choices))}")
        if ps.required and values.get(name) in (None, ""):
            raise ParamError(f"parameter {name!r} is required", hint=f"pass --param {name}=VALUE", param=name)
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:  # no command line or environment can carry it
            raise ParamError(f"parameter {name!r} contains a NUL byte", hint="remove the NUL byte from its value")
    return values


def secret_values(spec: Sequence, values: Mapping[str, Any]) -> list[str]:
    """The values of parameters typed `secret` (for the redaction hook)."""
    return [str(values[n]) for n, ps in spec.all_params().items() if ps.type == "secret" and values.get(n)]


def looks_secret(name: str, value: Any) -> bool:
    """The scanner would flag this parameter: a provider token format, or a value assigned to a
    secret-ish name (`password`, `api_key`, `token`, ...)."""
    if not isinstance(value, str) or len(value) < 4:
        return False

    probe = f"{name}={value}"
    return redact_tokens(probe) != probe or redact_tokens(value) != value


def hidden_params(spec: Sequence, values: Mapping[str, Any]) -> set[str]:
    """Parameters whose value is never stored: typed `secret`, or that look like one."""
    declared = set(declared_names(spec)) - set(BUILTINS) - {"params"}
    return {n for n, ps in spec.all_params().items() if ps.type == "secret"} | {
        n for n in declared if looks_secret(n, values.get(n))}


def secret_marker(value: Any) -> dict[str, str]:
    """What a run's state keeps of a secret value: its hash, so a resume can check it came back."""
    import hashlib

    return {"secret_sha256": hashlib.sha256(format_value(value).encode()).hexdigest()}


def restore_stored(stored: Mapping[str, Any], cli: Mapping[str, str]) -> dict[str, Any]:
    """A resumed run's stored values without the secrets, which must be given again (exit 2 naming one
    that is missing or differs)."""
    import hashlib

    out = {}
    for name, value in stored.items():
        if isinstance(value, dict) and set(value) == {"secret_sha256"}:
            if name not in cli:
                raise ParamError(f"parameter {name!r} is secret and was not stored; give it again to resume",
                                 hint=f"--resume ... --param {name}=VALUE (the same value)")
            if hashlib.sha256(cli[name].encode()).hexdigest() != value["secret_sha256"]:
                raise ParamError(f"--param {name}: not the value the run started with",
                                 hint="a resume must use the same value; start a new run to change it")
            continue
        out[name] = value
    return out


def param_env(spec: Sequence, values: Mapping[str, Any]) -> dict[str, str]:
    """`CODEX_PARAM_<NAME>` for every declared parameter and metadata value."""
    names = [n for n in declared_names(spec) if n not in BUILTINS and n != "params"]
    out = {}
    for n in names:
        if n in values and values[n] is not None:
            key = "CODEX_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", n).upper()
            out[key] = format_value(values[n])
    return out


