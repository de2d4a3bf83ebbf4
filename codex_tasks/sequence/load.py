"""Load a task-sequence file: YAML with positions -> Pydantic models -> reference checks.

Every problem becomes a `SpecError` naming FILE:LINE:COL, the field path, and a hint.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from codex_tasks.errors import SpecError, SpecErrors
from codex_tasks.sequence.models import Phase, Sequence, Step
from codex_tasks.sequence.yaml_loader import Path_, Positions, format_path, load_yaml_with_positions


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


def closest(word: str, choices: typing.Iterable[str]) -> str | None:
    """The closest choice to `word`, or None when nothing is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return match[0] if match else None


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
        loc = _data_loc(tuple(err["loc"]), data)
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


def _data_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
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


def read_sequence_file(file: Path) -> tuple[str, Any, Positions]:
    """Read and parse one file."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", file=str(file), hint="check the path") from None
    except IsADirectoryError:
        raise SpecError("is a folder, not a file", file=str(file)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason})", file=str(file)) from None
    data, pos = load_yaml_with_positions(text, str(file))
    if data is None:
        raise SpecError("the file is empty", file=str(file), hint="a sequence needs at least 'title' and 'phases'")
    if not isinstance(data, dict):
        line, col = pos.get((), (1, 1))
        raise SpecError(
            f"the top level must be a mapping, not a {type(data).__name__}",
            file=str(file),
            line=line,
            col=col,
            hint="start with 'title:' and 'phases:'",
        )
    return text, data, pos


def load_sequence(file: str | Path, *, _seen: tuple[Path, ...] = ()) -> LoadedSequence:
    """Load, validate and check references; raise `SpecErrors` listing every problem found."""
    path = Path(file)
    text, data, pos = read_sequence_file(path)
    from codex_tasks.sequence.shapes import convert

    original = pos
    converted = convert(data, pos)
    data, pos = converted.data, converted.positions
    origin = Origin(str(file), pos, ())
    try:
        spec = Sequence.model_validate(data)
    except ValidationError as exc:
        raise SpecErrors(pydantic_errors(exc, Sequence, origin, data)) from None

    loaded = LoadedSequence(spec=spec, file=path, text=text, origin=origin, shape=converted.shape)
    for where, message in converted.warnings:
        line, col = locate(original, where, key=True)
        loaded.warnings.append(f"{file}:{line}:{col}: {message}")
    errors: list[SpecError] = []
    for pi, phase in enumerate(spec.phases):
        loaded.phase_origins.setdefault(phase.key, Origin(str(file), pos, ("phases", pi)))
        for si, step in enumerate(phase.steps):
            loaded.step_origins.setdefault(step.id, Origin(str(file), pos, ("phases", pi, "steps", si)))

    # include: other files' phases come first; their params are defaults this file may override.
    if spec.include:
        inc_phases: list[Phase] = []
        inc_params: dict[str, Any] = {}
        inc_legacy: dict[str, Any] = {}
        inc_meta: dict[str, Any] = {}
        for i, rel in enumerate(spec.include):
            try:
                inc_path = (path.parent / rel).resolve()
                exists = inc_path.is_file()
            except (OSError, ValueError) as exc:
                errors.append(origin.error(f"bad include path {rel[:80]!r}: {exc}", "include", i))
                continue
            if inc_path in _seen or inc_path == path.resolve():
                errors.append(origin.error(f"include cycle through {rel!r}", "include", i))
                continue
            if not exists:
                errors.append(origin.error(f"included file {rel!r} not found", "include", i,
                                           hint=f"paths are relative to {path.parent or '.'}"))
                continue
            try:
                sub = load_sequence(inc_path, _seen=_seen + (path.resolve(),))
            except SpecErrors as exc:
                errors.extend(exc.errors)
                continue
            except SpecError as exc:
                errors.append(exc)
                continue
            inc_phases.extend(sub.spec.phases)
            inc_params.update(sub.spec.params)
            inc_legacy.update(sub.spec.cli_parameters)
            inc_meta.update(sub.spec.metadata)
            for k, o in sub.step_origins.items():
                loaded.step_origins.setdefault(k, o)
            for k, o in sub.phase_origins.items():
                loaded.phase_origins.setdefault(k, o)
        spec.phases[:0] = inc_phases
        spec.params = {**inc_params, **spec.params}
        spec.cli_parameters = {**inc_legacy, **spec.cli_parameters}
        spec.metadata = {**inc_meta, **spec.metadata}

    if not _seen and not spec.title.strip():
        errors.append(origin.error("missing required field 'title'", "title", hint="add 'title: <what this sequence does>'"))
    errors.extend(check_references(loaded))
    if errors:
        raise SpecErrors(errors)
    return loaded


def check_references(loaded: LoadedSequence) -> list[SpecError]:
    """Duplicate ids, unknown or forward `needs`, cycles, unknown kinds, bad parameter specs."""
    from codex_tasks.sequence.graph import phase_edges
    from codex_tasks.steps import KINDS

    spec = loaded.spec
    errors: list[SpecError] = []
    seen_phase: set[str] = set()
    n_included = len(spec.phases) - len([p for p in loaded.spec.phases])
    for pi, phase in enumerate(spec.phases):
        if phase.key in seen_phase:
            o = Origin(loaded.origin.file, loaded.origin.positions, ("phases", pi - max(0, n_included)))
            field_name = "id" if phase.id is not None else "number"
            errors.append(o.error(f"duplicate phase id {phase.key!r}", field_name, hint="phase ids must be unique"))
        seen_phase.add(phase.key)

    seen: dict[str, int] = {}
    step_phase: dict[str, int] = {}
    dup_reported: set[str] = set()
    for pi, phase in enumerate(spec.phases):
        for si, step in enumerate(phase.steps):
            if step.id in seen and step.id not in dup_reported:
                # the origin map keeps the first; find this occurrence by position in its phase
                o = loaded.phase_origins.get(phase.key, loaded.origin)
                errors.append(o.error(f"duplicate step id {step.id!r}", "steps", si, "id",
                                      hint="step ids must be unique across the sequence"))
                dup_reported.add(step.id)
            seen[step.id] = pi
            step_phase.setdefault(step.id, pi)

    all_ids = list(seen)
    for pi, phase in enumerate(spec.phases):
        for step in phase.steps:
            o = loaded.step_origins.get(step.id, loaded.origin)
            for ni, need in enumerate(step.needs or []):
                if need not in seen:
                    guess = closest(need, all_ids)
                    errors.append(o.error(f"needs unknown step {need!r}", "needs", ni,
                                          hint=f"did you mean {guess!r}?" if guess else "use the id of an earlier step"))
                elif step_phase[need] > pi:
                    errors.append(o.error(f"needs {need!r}, which is in a later phase", "needs", ni,
                                          hint="phases run in order; move the step or drop the need"))
            errors.extend(_check_kind(step, o, KINDS))
        ids_here = [s.id for s in phase.steps]
        cycle = None if len(set(ids_here)) != len(ids_here) else _find_cycle(phase_edges(phase))
        if cycle:
            first = cycle[0]
            o = loaded.step_origins.get(first, loaded.origin)
            errors.append(o.error("dependency cycle: " + " -> ".join(cycle + [first]), "needs",
                                  hint="remove one of these 'needs' (a step without 'needs' waits for the one before it)"))

    for name, ps in spec.all_params().items():
        section = "params" if name in spec.params else "cli_parameters"
        from codex_tasks.render.params import coerce_param

        if ps.default is not None and ps.type != "secret":
            try:
                value = coerce_param(name, ps, ps.default)
            except Exception as exc:
                errors.append(loaded.origin.error(f"default {ps.default!r} does not fit: {exc}",
                                                  section, name, "default"))
                continue
            if ps.choices is not None and value not in ps.choices:
                errors.append(loaded.origin.error(f"default {ps.default!r} is not one of the choices {ps.choices}",
                                                  section, name, "default"))
        if ps.type == "secret" and ps.default is not None:
            errors.append(loaded.origin.error("a secret may not have a default in the file", section, name, "default",
                                              hint=f"set it in the environment variable {ps.env or name.upper()}"))
    return errors


def _check_kind(step: Step, o: Origin, kinds: dict[str, str]) -> list[SpecError]:
    errors: list[SpecError] = []
    if step.uses is not None:
        if step.uses not in kinds:
            guess = closest(step.uses, kinds)
            errors.append(o.error(f"unknown step kind {step.uses!r}", "uses",
                                  hint=f"did you mean {guess!r}?" if guess else f"known kinds: {', '.join(sorted(kinds))}"))
        elif step.uses != "shell" and step.shell_lines:
            errors.append(o.error(f"a '{step.uses}' step cannot also have actions/commands/assertions", "uses",
                                  hint="split it into two steps, or use 'uses: shell'"))
    elif step.with_ is not None:
        errors.append(o.error("'with' needs 'uses'", "with", key=True,
                              hint="add 'uses: <kind>' (codex-tasks steps lists them)"))
    return errors


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle in the graph, if any (iterative: a long chain of needs must not hit the recursion limit)."""
    color: dict[str, int] = {}
    for root in edges:
        if color.get(root, 0):
            continue
        path: list[str] = [root]
        iters = [iter(edges.get(root, []))]
        color[root] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = 2
                iters.pop()
                continue
            if nxt not in edges:
                continue
            if color.get(nxt) == 1:
                return path[path.index(nxt):]
            if color.get(nxt, 0) == 0:
                color[nxt] = 1
                path.append(nxt)
                iters.append(iter(edges.get(nxt, [])))
    return None
