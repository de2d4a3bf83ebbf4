"""Reference checks of a loaded sequence: duplicate ids, unknown or forward `needs`, cycles,
unknown kinds, parameter defaults that do not fit their type."""

from __future__ import annotations

from codex_tasks.core.names import closest
from codex_tasks.errors import SpecError
from codex_tasks.sequence.graph import phase_edges
from codex_tasks.sequence.kinds import KINDS
from codex_tasks.sequence.models import Step
from codex_tasks.sequence.origins import LoadedSequence, Origin
from codex_tasks.sequence.values import coerce_param


def check_references(loaded: LoadedSequence, dropped: set[str] | None = None) -> list[SpecError]:
    """Duplicate ids, unknown or forward `needs`, cycles, unknown kinds, bad parameter specs.
    `dropped`: ids of steps left out of `loaded` (their schema failed), which `needs` may name."""
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
                if need in (dropped or ()) and need not in seen:
                    continue
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
