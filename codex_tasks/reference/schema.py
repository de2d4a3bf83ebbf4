"""JSON Schema of the format, and descriptions of the step kinds (for `steps` and the docs)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from codex_tasks.sequence.kinds import KINDS
from codex_tasks.sequence.models import Sequence
from codex_tasks.steps import load_kind


def json_schema() -> dict[str, Any]:
    """The sequence schema, with each kind's `with:` model selected by `uses:`."""
    schema = Sequence.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "codex-tasks task sequence"
    defs = schema.setdefault("$defs", {})
    step = defs["Step"]
    step["properties"]["uses"]["anyOf"] = [{"enum": sorted(KINDS)}, {"type": "null"}]
    branches = []
    for name in sorted(KINDS):
        model = load_kind(name).With
        sub = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        for k, v in sub.pop("$defs", {}).items():
            defs.setdefault(k, v)
        key = f"with_{name}"
        defs[key] = sub
        branches.append({"if": {"properties": {"uses": {"const": name}}, "required": ["uses"]},
                         "then": {"properties": {"with": {"$ref": f"#/$defs/{key}"}}}})
    step["allOf"] = branches
    return schema


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is None:
        return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")
    args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
    name = getattr(origin, "__name__", str(origin))
    if name in ("Union", "UnionType"):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if name == "Literal":
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    return f"{name}[{args}]"


def describe_model(model: type[BaseModel]) -> list[dict[str, Any]]:
    out = []
    for name, f in model.model_fields.items():
        default = None if f.is_required() else (f.default_factory() if f.default_factory else f.default)  # type: ignore[call-arg]
        try:
            default = to_jsonable_python(default)
        except Exception:  # a default that has no JSON form: show its text
            default = str(default)
        out.append({"name": f.alias or name, "type": _type_name(f.annotation), "required": f.is_required(),
                    "default": default, "description": f.description or ""})
    return out


def describe_kinds() -> list[dict[str, Any]]:
    out = []
    for name in sorted(KINDS):
        mod = load_kind(name)
        doc = (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else ""
        out.append({"name": name, "cache": getattr(mod, "CACHE", "never"), "doc": doc,
                    "fields": describe_model(mod.With)})
    return out
