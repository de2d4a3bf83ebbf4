"""The rendered plan: a loaded sequence with parameters substituted, ready to compile.

`build_plan` renders every string of every step (shell lines escaped by quoting context),
validates each kind's `with:` against its model, evaluates `when:`, and applies `--only` /
`--from`. All problems are collected as located `SpecError`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from codex_tasks.core.names import closest
from codex_tasks.errors import RenderError, SpecError, SpecErrors
from codex_tasks.orchestrate.bindings import apply_bindings
from codex_tasks.render.templating import (
    evaluate,
    placeholder_form,
    render_shell_lines,
    render_string,
    render_value,
    truthy,
    unknown_names,
)
from codex_tasks.sequence.graph import phase_edges
from codex_tasks.sequence.kinds import KINDS
from codex_tasks.sequence.load import LoadedSequence
from codex_tasks.sequence.models import Step
from codex_tasks.sequence.origins import Origin, pydantic_errors
from codex_tasks.sequence.yaml_loader import format_path
from codex_tasks.steps import load_kind


@dataclass
class PlannedStep:
    """One step, rendered."""

    id: str
    phase_id: str
    phase_name: str
    description: str
    kind: str  # "shell", a built-in kind, or "manual"
    lines: list[tuple[str, str]] = field(default_factory=list)  # (section, rendered shell line)
    config: Any = None  # the kind's validated `with:` model
    with_raw: dict[str, Any] = field(default_factory=dict)  # rendered `with:` as given
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (path, description)
    template: str | None = None
    needs: list[str] = field(default_factory=list)  # ids it waits for (inside its phase)
    explicit_needs: bool = False
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    on_error: str = "stop"
    cache: bool | None = None
    deps: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None  # why the step will not run (`when` false, --only, --from)
    conditions: list[str] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    repair: dict[str, Any] | None = None  # {agent, attempts}: repaired by a coding agent when it fails
    bindings: list[Any] = field(default_factory=list)  # orchestrate.bindings.Binding: outputs a kind writes

    @property
    def manual(self) -> bool:
        return self.kind == "manual" and not self.bindings

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phase_id": self.phase_id,
            "description": self.description,
            "kind": self.kind,
            "lines": [{"section": s, "line": line} for s, line in self.lines],
            "with": self.with_raw,
            "outputs": [{"path": p, "description": d} for p, d in self.outputs],
            "needs": self.needs,
            "retries": self.retries,
            "timeout": self.timeout,
            "on_error": self.on_error,
            "cache": self.cache,
            "deps": self.deps,
            "skip": self.skip,
            "conditions": self.conditions,
            "policy": self.policy,
            "bindings": [{"output": b.output, "kind": b.kind, "why": b.why, "sink": b.sink} for b in self.bindings],
        }


@dataclass
class PlannedPhase:
    id: str
    name: str
    description: str
    steps: list[PlannedStep]


@dataclass
class Plan:
    """What a run will execute."""

    title: str
    params: dict[str, Any]
    phases: list[PlannedPhase]
    loaded: LoadedSequence

    def steps(self) -> list[PlannedStep]:
        return [s for p in self.phases for s in p.steps]

    def step(self, step_id: str) -> PlannedStep:
        for s in self.steps():
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def _err(origin: Origin, exc: RenderError, *rel: str | int) -> SpecError:
    line, col = origin.at(*rel)
    return SpecError(str(exc), file=origin.file, line=line, col=col, path=format_path(origin.base + rel), hint=exc.hint)


def check_placeholders(loaded: LoadedSequence, known: list[str]) -> list[SpecError]:
    """Every unknown `{name}` / `{{ name }}` in the file, without rendering anything."""
    errors: list[SpecError] = []
    for _, step in loaded.spec.steps():
        o = loaded.step_origins.get(step.id, loaded.origin)
        for rel, text in _step_strings(step):
            try:
                bad = unknown_names(text, known)
            except RenderError as exc:
                errors.append(_err(o, exc, *rel))
                continue
            for name in bad:
                guess = closest(name, known)
                form = placeholder_form(text, name)  # as written: `{nme}` or `{{ nme }}`
                hint = f"did you mean {form.replace(name, guess)}?" if guess else "declare it under 'params'"
                errors.append(_err(o, RenderError(f"unknown placeholder {form}", hint=hint), *rel))
    return errors


def _step_strings(step: Step) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    for section in ("actions", "commands", "assertions"):
        for i, line in enumerate(getattr(step, section)):
            out.append(((section, i), line))
    for i, o in enumerate(step.outputs):
        out.append((("outputs", i, "path"), o.path))
    for i, d in enumerate(step.deps):
        out.append((("deps", i), d))
    for k, v in step.env.items():
        out.append((("env", k), v))
    if step.when:
        out.append((("when",), step.when))

    def walk(value: Any, rel: tuple[str | int, ...]) -> None:
        if isinstance(value, str):
            out.append((rel, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, rel + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, rel + (i,))

    if step.with_:
        walk(step.with_, ("with",))
    return out


def build_plan(
    loaded: LoadedSequence,
    params: dict[str, Any],
    *,
    only: list[str] | None = None,
    from_step: str | None = None,
    bind: bool = True,
) -> Plan:
    """Render the sequence with `params`; raise `SpecErrors` listing every problem."""
    spec = loaded.spec
    errors: list[SpecError] = []
    all_ids = [s.id for _, s in spec.steps()]
    for sel in (only or []) + ([from_step] if from_step else []):
        if sel not in all_ids:
            guess = closest(sel, all_ids)
            raise SpecErrors([SpecError(f"no step {sel!r} in this sequence", file=str(loaded.file),
                                        hint=f"did you mean {guess!r}?" if guess else "codex-tasks plan FILE lists the steps")])
    started = from_step is None
    defaults = spec.defaults
    phases: list[PlannedPhase] = []
    for phase in spec.phases:
        edges = phase_edges(phase)
        planned: list[PlannedStep] = []
        for step in phase.steps:
            o = loaded.step_origins.get(step.id, loaded.origin)
            values = dict(params, step_id=step.id, phase_id=phase.key)
            if step.id == from_step:
                started = True
            ps = PlannedStep(
                id=step.id,
                phase_id=phase.key,
                phase_name=phase.name or phase.key,
                description=_render_description(step.description or step.name or "", values),
                kind=step.uses or ("shell" if step.shell_lines else "manual"),
                template=step.template,
                needs=edges.get(step.id, []),
                explicit_needs=step.needs is not None,
                retries=step.retries if step.retries is not None else (defaults.retries or 0),
                retry_delay=step.retry_delay if step.retry_delay is not None else (defaults.retry_delay or 0.0),
                timeout=step.timeout if step.timeout is not None else defaults.timeout,
                on_error=step.on_error or defaults.on_error or "stop",
                cache=step.cache if step.cache is not None else defaults.cache,
                conditions=list(step.conditions),
                policy=dict(step.policy),
                repair=step.repair.model_dump() if step.repair is not None else None,
            )
            try:
                # the step's lines are one script: rendered and quoted together
                where = [(sec, i) for sec in ("actions", "commands", "assertions") for i in range(len(getattr(step, sec)))]
                script = [(sec, getattr(step, sec)[i]) for sec, i in where]
                rendered_lines, line_errors = render_shell_lines(script, values)
                ps.lines.extend(zip([sec for sec, _ in where], rendered_lines, strict=False))
                errors.extend(_err(o, exc, *where[k]) for k, exc in line_errors)
                for i, out in enumerate(step.outputs):
                    try:
                        ps.outputs.append((render_string(out.path, values), out.description or ""))
                    except RenderError as exc:
                        errors.append(_err(o, exc, "outputs", i, "path"))
                for i, dep in enumerate(step.deps):
                    try:
                        ps.deps.append(render_string(dep, values))
                    except RenderError as exc:
                        errors.append(_err(o, exc, "deps", i))
                env = {**defaults.env, **step.env}
                for k, v in env.items():
                    try:
                        ps.env[k] = render_string(str(v), values)
                    except RenderError as exc:
                        errors.append(_err(o, exc, "env", k))
                if step.when is not None:
                    try:
                        w = step.when.strip()
                        cond = evaluate(w[2:-2], values) if w.startswith("{{") and w.endswith("}}") and w.count("{{") == 1 \
                            else render_string(w, values)
                        if not truthy(cond):
                            ps.skip = f"when: {step.when.strip()} is false"
                    except RenderError as exc:
                        errors.append(_err(o, exc, "when"))
                if step.uses is not None and step.uses in KINDS:
                    raw = step.with_ or {}
                    try:
                        rendered = render_value(raw, values)
                    except RenderError as exc:
                        errors.append(_err(o, exc, "with"))
                        rendered = None
                    if rendered is not None:
                        ps.with_raw = rendered
                        module = load_kind(step.uses)
                        try:
                            ps.config = module.With.model_validate(rendered)
                        except ValidationError as exc:
                            errors.extend(pydantic_errors(exc, module.With, Origin(o.file, o.positions, o.base + ("with",))))
            except RenderError as exc:  # pragma: no cover - each branch handles its own
                errors.append(_err(o, exc))
            if only is not None and step.id not in only:
                ps.skip = ps.skip or "not selected (--only)"
            elif not started:
                ps.skip = ps.skip or f"before --from {from_step}"
            planned.append(ps)
        phases.append(PlannedPhase(phase.key, phase.name or phase.key, (phase.description or "").strip(), planned))
    if errors:
        raise SpecErrors(errors)
    plan = Plan(title=spec.title, params=params, phases=phases, loaded=loaded)
    apply_bindings(plan, enabled=bind)
    return plan


def _render_description(text: str, values: dict[str, Any]) -> str:
    """Placeholders in a description rendered (it is prose: an unknown name is left as written)."""
    try:
        return render_string(text, values).strip()
    except RenderError:
        return text.strip()

