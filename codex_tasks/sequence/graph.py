"""The step graph: which steps each step waits for."""

from __future__ import annotations

from codex_tasks.sequence.models import Phase


def phase_edges(phase: Phase) -> dict[str, list[str]]:
    """step id -> the ids it waits for, inside one phase.

    `needs` wins; a step without `needs` waits for the step before it in its phase. Needs on
    steps of earlier phases are satisfied by phase order and left out here.
    """
    ids = {s.id for s in phase.steps}
    edges: dict[str, list[str]] = {}
    prev: str | None = None
    for step in phase.steps:
        if step.needs is None:
            edges[step.id] = [prev] if prev is not None else []
        else:
            edges[step.id] = [n for n in step.needs if n in ids]
        prev = step.id
    return edges
