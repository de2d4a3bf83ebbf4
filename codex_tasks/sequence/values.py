"""Typed parameter values: the type a parameter declares (or its default implies), a value
converted to it, and how a value reads as text. Part of the format, so checking a file's
defaults needs nothing above `sequence/`."""

from __future__ import annotations

import json
from typing import Any

from codex_tasks.sequence.models import ParamSpec


def format_value(value: Any) -> str:
    """How a value reads in text: booleans as true/false, None as '', lists/dicts as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def infer_type(spec: ParamSpec) -> str:
    """The declared type, or the one its default implies (`str` without either)."""
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
    kind = infer_type(spec)
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
