"""Where each part of a sequence file was written, and Pydantic's errors mapped onto it.

An `Origin` is a file, its positions and a part's path in it; `pydantic_errors` turns a
`ValidationError` into `SpecError`s naming FILE:LINE:COL, the field path and a hint.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from codex_tasks.core.names import closest
from codex_tasks.errors import SpecError
from codex_tasks.sequence.models import Sequence, Step
from codex_tasks.sequence.yaml_loader import Path_, Positions, format_path


@dataclass
class Origin:
    """Where a part of the sequence was written: a file, its positions, the part's path in it."""

    file: str
    positions: Positions
    base: Path_

    def at(self, *rel: str | int, key: bool = False) -> tuple[int, int]:
        return locate(self.positions, self.base + tuple(rel), key=key)

    def error(self, message: str, *rel: str | int, key: bool = False, hint: str | None = None) -> SpecError:
        line, col = self.at(*rel, key=key)
        return SpecError(message, file=self.file, line=line, col=col, path=format_path(self.base + rel), hint=hint)


@dataclass
class LoadedSequence:
    """A validated sequence and where each of its steps came from."""

    spec: Sequence
    file: Path
    text: str
    origin: Origin
    step_origins: dict[str, Origin] = field(default_factory=dict)
    phase_origins: dict[str, Origin] = field(default_factory=dict)
    shape: str = "dialect"  # or a legacy front-end's shape: root_wrapper, atomic_patch, roadmap
    warnings: list[str] = field(default_factory=list)  # FILE:LINE:COL: keys kept but not used, ...

    def step(self, step_id: str) -> Step:
        for _, s in self.spec.steps():
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def locate(positions: Positions, path: Path_, *, key: bool = False) -> tuple[int, int]:
    """Position of `path` (its key when `key`), else of its nearest ancestor."""
    if key and path + ("<key>",) in positions:
        return positions[path + ("<key>",)]
    p = path
    while True:
        if p in positions:
            return positions[p]
        if not p:
            return (1, 1)
        p = p[:-1]


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (for 'did you mean' hints)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        fld = next(
            (f for name, f in model.model_fields.items() if part in (name, f.alias)),
            None,
        )
        if fld is None:
            # a dict key (params name): stay on the value model of the dict field
            continue
        model = _inner_model(fld.annotation)
    return model


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def pydantic_errors(
    exc: ValidationError, root: type[BaseModel], origin: Origin, data: Any = None
) -> list[SpecError]:
    """Map Pydantic errors to located `SpecError`s with hints."""
    out: list[SpecError] = []
    for err in exc.errors(include_url=False):
        loc = data_loc(tuple(err["loc"]), data)
        kind = err["type"]
        msg = err["msg"]
        hint = None
        key = False
        if kind == "extra_forbidden":
            key = True
            parent = model_at(root, loc[:-1])
            names = _field_names(parent) if parent else []
            guess = closest(str(loc[-1]), names)
            msg = f"unknown key {loc[-1]!r}"
            hint = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(names)}"
        elif kind == "missing":
            msg = f"missing required field {loc[-1]!r}"
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            choices = [c.strip().strip("'\"") for c in expected.replace(" or ", ",").split(",") if c.strip()]
            guess = closest(str(err.get("input")), choices)
            msg = f"{err.get('input')!r} is not one of {expected}"
            hint = f"did you mean {guess!r}?" if guess else None
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            msg = f"{msg} (got {type(err.get('input')).__name__} {err.get('input')!r})"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        line, col = origin.at(*loc, key=key)
        path = format_path(origin.base + loc)
        out.append(SpecError(msg, file=origin.file, line=line, col=col, path=path, hint=hint))
    return out


def data_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Pydantic's error location without its internal parts (union members, validator names):
    keep a part only where it indexes the data."""
    if data is None:
        return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or "-" in p and p not in ("on_error",))))
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not out[-1:] == [part]:
            # a missing key (the error is about it) ends the path; internal tags are skipped
            if not any(c in part for c in "[]()") and part not in ("function-after", "function-before"):
                out.append(part)
                node = None
        elif node is None:
            break
    return tuple(out)
