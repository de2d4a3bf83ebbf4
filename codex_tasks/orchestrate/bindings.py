"""Bindings: the outputs legacy (codex_ready) sequences declare -> the built-in kinds that write them.

The table is package data (`codex_tasks/data/legacy_bindings.json`), shown by
`codex-tasks steps --bindings` and in `docs/legacy.md`. `apply_bindings` decides, per planned step,
which of its outputs a kind will write and why; `layouts.run_bound_step` carries that out.

Rules (from the legacy-sequence issue):
- only steps without `uses:` are bound, and only outputs their rendered lines never mention
  (a step that writes or copies the file itself is left alone);
- a step's outputs are its declared ones plus, for description-only steps, any path its description
  names that ends in a table file name (a bare name lands where the description puts it, else in
  the workspace root);
- outputs that keep changing after their step (mirrored error blocks, the report) are run-level
  sinks: created at the step, updated to the end of the run, left out of the step's fingerprint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_tasks.errors import SpecError
    from codex_tasks.orchestrate.plan import Plan, PlannedStep


@dataclass(frozen=True)
class BindingRule:
    """One row of the table: a file name and the kind that writes it."""

    file: str
    kind: str  # a built-in kind, or "commands" (the step's own lines, recorded), "errors", "report"
    what: str
    sink: bool = False
    schema: str | None = None  # the JSON Schema under docs/schema/legacy/, when the file is JSON


@dataclass(frozen=True)
class Binding:
    """One output of one step, bound to a kind."""

    output: str  # the rendered path, relative to the workspace (or absolute)
    rule: BindingRule
    why: str  # "declares stub_scan.json" / "its description names codex_run_artifacts.zip"

    @property
    def kind(self) -> str:
        return self.rule.kind

    @property
    def sink(self) -> bool:
        return self.rule.sink


@cache
def binding_rules() -> dict[str, BindingRule]:
    """The table, by file name."""
    text = resources.files("codex_tasks").joinpath("data/legacy_bindings.json").read_text(encoding="utf-8")
    rows = json.loads(text)["bindings"]
    return {r["file"]: BindingRule(file=r["file"], kind=r["kind"], what=r["what"], sink=bool(r.get("sink")),
                                   schema=r.get("schema")) for r in rows}


def describe_bindings() -> list[dict[str, Any]]:
    """The table as rows (for `codex-tasks steps --bindings --json` and the docs)."""
    return [{"file": r.file, "kind": r.kind, "sink": r.sink, "schema": r.schema, "what": r.what}
            for r in binding_rules().values()]


def _names_pattern() -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in sorted(binding_rules(), key=len, reverse=True))
    # a path-like token (no spaces, quotes or backticks) that ends in a table name
    return re.compile(r"(?<![\w.\-])((?:[\w.\-~]+/)*(?:" + names + r"))(?![\w\-])")


_FOLDER_HINT = re.compile(r"\b(?:in|into|under|to)\s+[`'\"]?((?:[\w.\-~]+/)+)(?=[\s,;)`'\"]|\.?$)")


def description_paths(description: str) -> list[str]:
    """Paths a description names that end in a table file name ("persist to logs/x/cost_incurring_refs.txt")."""
    found: list[str] = []
    folder = _FOLDER_HINT.search(description)
    for m in _names_pattern().finditer(description):
        path = m.group(1)
        if "/" not in path and folder:
            path = folder.group(1) + path  # "write stub_report.json into reports/" -> reports/stub_report.json
        if path not in found:
            found.append(path)
    return found


def mentions(lines: list[tuple[str, str]], path: str) -> bool:
    """Whether any rendered line names the file (by path or by its name)."""
    name = PurePosixPath(path).name
    return any(path in line or name in line for _, line in lines)


def step_bindings(step: PlannedStep, has_uses: bool) -> list[Binding]:
    """The bindings of one planned step (empty for `uses:` steps)."""
    if has_uses:
        return []
    rules = binding_rules()
    out: list[Binding] = []
    seen: set[str] = set()
    candidates = [(p, "declares") for p, _ in step.outputs]
    if not step.lines:
        candidates += [(p, "its description names") for p in description_paths(step.description)]
    for path, how in candidates:
        name = PurePosixPath(path).name
        if path in seen or name not in rules or mentions(step.lines, path):
            continue
        seen.add(path)
        out.append(Binding(output=path, rule=rules[name], why=f"{how} {name}"))
    return out


def apply_bindings(plan: Plan, *, enabled: bool = True) -> None:
    """Set `bindings` on every planned step (and add description-named outputs to its outputs)."""
    for _, src in plan.loaded.spec.steps():
        try:
            step = plan.step(src.id)
        except KeyError:
            continue
        step.bindings = step_bindings(step, src.uses is not None) if enabled else []
        declared = {p for p, _ in step.outputs}
        for b in step.bindings:
            if b.output not in declared:
                step.outputs.append((b.output, b.rule.what))


def binding_summary(step: PlannedStep) -> str:
    """"audit: declares stub_scan.json; provenance: declares env_snapshot.json" for `plan`."""
    return "; ".join(f"{b.kind}: {b.why}" for b in step.bindings)


def unproduced_outputs(plan: Plan) -> list[tuple[PlannedStep, str]]:
    """Declared outputs that neither the step's lines nor a binding will produce."""
    missing: list[tuple[PlannedStep, str]] = []
    for step in plan.steps():
        if step.skip or step.kind not in ("shell", "manual"):
            continue
        bound = {b.output for b in step.bindings}
        for path, _ in step.outputs:
            if path not in bound and not mentions(step.lines, path):
                missing.append((step, path))
    return missing


def output_warnings(plan: Plan) -> list[str]:
    """One line per declared output nothing writes ("1.1 declares a/env.json; nothing writes it")."""
    return [f"{step.id} declares {path}; nothing writes it" + ("" if step.lines else " (a manual step)")
            for step, path in unproduced_outputs(plan)]


def sink_paths(step: PlannedStep) -> set[str]:
    """Outputs of the step that are run-level sinks (left out of its fingerprint and hashes)."""
    return {b.output for b in step.bindings if b.sink}


def output_errors(plan: Plan) -> list[SpecError]:
    """The same problems as `output_warnings`, located, for `--strict`."""

    errors: list[SpecError] = []
    for step, path in unproduced_outputs(plan):
        origin = plan.loaded.step_origins.get(step.id, plan.loaded.origin)
        declared = [p for p, _ in step.outputs]
        rel: tuple[str | int, ...] = ("outputs", declared.index(path), "path") if path in declared else ("description",)
        errors.append(origin.error(f"{step.id} declares {path}; nothing writes it", *rel,
                                   hint="write it in the step's lines, declare a file the bindings table knows "
                                        "(codex-tasks steps --bindings), or drop it"))
    return errors
