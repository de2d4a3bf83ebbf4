"""Legacy parameters that do what they say: a `cli_parameters` entry one letter away from the
placeholder the steps use (`log_dir` vs `{logs_dir}`) drives that placeholder; `related_sequences`
paths are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_tasks.render.templating import RenderError, unknown_names
from codex_tasks.sequence.load import LoadedSequence


def edit_distance_one(a: str, b: str) -> bool:
    """True when one insertion, deletion or substitution turns `a` into `b`."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:] if len(a) < len(b) else a[i + 1:] == b[i + 1:]


def used_placeholders(loaded: LoadedSequence) -> set[str]:
    """Every `{name}` / Jinja2 name the steps' strings and descriptions use."""
    used: set[str] = set()
    for _, step in loaded.spec.steps():
        texts = [*step.actions, *step.commands, *step.assertions, *(o.path for o in step.outputs),
                 *step.deps, *step.env.values(), step.description or ""]
        for text in texts:
            try:
                used.update(unknown_names(text, []))
            except RenderError:
                continue
    return used


def param_aliases(loaded: LoadedSequence) -> dict[str, str]:
    """`cli_parameters` name -> the placeholder it drives, for unique edit-distance-1 near-misses of
    names the steps use (only for parameters no step uses under their own name)."""
    used = used_placeholders(loaded)
    out: dict[str, str] = {}
    for name in loaded.spec.cli_parameters:
        if name in used:
            continue
        near = [u for u in used if edit_distance_one(name, u) and u not in loaded.spec.all_params()]
        if len(near) == 1:
            out[name] = near[0]
    return out


def apply_aliases(loaded: LoadedSequence, values: dict[str, Any], cli: dict[str, str]) -> list[str]:
    """Give each aliased placeholder its parameter's value (an explicit `--param PLACEHOLDER=` wins);
    returns the notes `plan` shows."""
    notes = []
    for name, target in param_aliases(loaded).items():
        if target not in cli and name in values:
            values[target] = values[name]
        notes.append(f"cli_parameters {name!r} drives {{{target}}} (one letter apart)")
    return notes


def related_warnings(loaded: LoadedSequence) -> list[str]:
    """A warning for each `related_sequences` path that does not exist (relative to the file)."""
    out = []
    for i, rel in enumerate(loaded.spec.related_sequences):
        if rel.path and not (Path(loaded.file).parent / rel.path).is_file():
            line, col = loaded.origin.at("related_sequences", i, "path")
            out.append(f"{loaded.file}:{line}:{col}: related sequence {rel.name or rel.path!r}: {rel.path} not found")
    return out
