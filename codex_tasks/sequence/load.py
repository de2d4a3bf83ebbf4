"""Load a task-sequence file: YAML with positions -> Pydantic models (`origins.py` maps their
errors to FILE:LINE:COL) -> `include:`s merged -> reference checks (`checks.py`).

Every problem becomes a `SpecError` naming FILE:LINE:COL, the field path, and a hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from codex_tasks.errors import SpecError, SpecErrors
from codex_tasks.sequence.checks import check_references
from codex_tasks.sequence.models import Phase, Sequence
from codex_tasks.sequence.origins import LoadedSequence, Origin, data_loc, locate, pydantic_errors
from codex_tasks.sequence.shapes import convert
from codex_tasks.sequence.yaml_loader import Positions, load_yaml_with_positions

__all__ = ["LoadedSequence", "Origin", "check_references", "load_sequence", "load_what_validates", "pydantic_errors",
           "read_sequence_file"]


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
    loaded, errors = _load(Path(file), str(file), _seen, salvage=False)
    if errors or loaded is None:
        raise SpecErrors(errors)
    return loaded


def load_what_validates(file: str | Path) -> tuple[LoadedSequence | None, list[SpecError]]:
    """Every error of loading `file`, and the sequence without the steps whose own schema failed,
    so that later checks (references, placeholders) still see the steps that are fine and one error
    does not hide another. The sequence is None when a schema error lies outside a step (the
    parameters, a phase, the top level): what the later checks would say is then unknowable.
    References to a dropped step are not errors (they would only repeat its own)."""
    return _load(Path(file), str(file), (), salvage=True)


def _steps_at_fault(exc: ValidationError, data: Any) -> set[tuple[int, int]] | None:
    """(phase, step) index of each step a schema error lies in; None if one lies outside every step."""
    at_fault: set[tuple[int, int]] = set()
    for err in exc.errors(include_url=False):
        loc = data_loc(tuple(err["loc"]), data)
        if len(loc) < 4 or loc[0] != "phases" or loc[2] != "steps" or not isinstance(loc[1], int) \
                or not isinstance(loc[3], int):
            return None
        at_fault.add((loc[1], loc[3]))
    return at_fault


def _load(path: Path, file: str, _seen: tuple[Path, ...], *,
          salvage: bool) -> tuple[LoadedSequence | None, list[SpecError]]:
    text, data, pos = read_sequence_file(path)

    original = pos
    converted = convert(data, pos)
    data, pos = converted.data, converted.positions
    origin = Origin(file, pos, ())
    errors: list[SpecError] = []
    kept: dict[int, list[int]] = {}  # phase index -> the original indices of the steps kept
    dropped: set[str] = set()  # ids of the steps left out (their own schema failed)
    try:
        spec = Sequence.model_validate(data)
    except ValidationError as exc:
        errors = pydantic_errors(exc, Sequence, origin, data)
        at_fault = _steps_at_fault(exc, data) if salvage else None
        if at_fault is None:
            return None, errors
        data = {**data, "phases": [dict(phase) for phase in data["phases"]]}
        for pi, phase in enumerate(data["phases"]):
            steps = phase.get("steps") or []
            kept[pi] = [si for si in range(len(steps)) if (pi, si) not in at_fault]
            dropped.update(s["id"] for si, s in enumerate(steps)
                           if (pi, si) in at_fault and isinstance(s, dict) and isinstance(s.get("id"), str))
            phase["steps"] = [steps[si] for si in kept[pi]]
        try:
            spec = Sequence.model_validate(data)
        except ValidationError:  # a phase left without steps, say: nothing more to learn
            return None, errors

    loaded = LoadedSequence(spec=spec, file=path, text=text, origin=origin, shape=converted.shape)
    for where, message in converted.warnings:
        line, col = locate(original, where, key=True)
        loaded.warnings.append(f"{file}:{line}:{col}: {message}")
    for pi, phase in enumerate(spec.phases):
        loaded.phase_origins.setdefault(phase.key, Origin(file, pos, ("phases", pi)))
        for si, step in enumerate(phase.steps):
            at = kept[pi][si] if pi in kept else si
            loaded.step_origins.setdefault(step.id, Origin(file, pos, ("phases", pi, "steps", at)))

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
    errors.extend(check_references(loaded, dropped))
    return loaded, errors
