"""`codex-tasks plan`: every step and what would happen to it, without running anything."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from codex_tasks.orchestrate.bindings import output_warnings
from codex_tasks.orchestrate.context import RunContext
from codex_tasks.orchestrate.decide import decide
from codex_tasks.orchestrate.legacy_params import param_aliases, related_warnings
from codex_tasks.orchestrate.plan import Plan
from codex_tasks.orchestrate.prepare import prepare_run
from codex_tasks.runs.cache import CacheIndex
from codex_tasks.runs.report import mermaid_graph
from codex_tasks.runs.rundir import RunDir


class _MemoryRunDir(RunDir):
    """A run folder that lives in memory (plan never writes)."""

    def save(self) -> None:
        pass


def predict(plan: Plan, workspace: Path) -> list[dict[str, Any]]:
    """For each step: action (run, cached, manual, skipped) and why."""
    cache = CacheIndex(workspace)
    rd = _MemoryRunDir(path=Path(tempfile.gettempdir()) / "codex-plan", run_id="plan")
    run = RunContext(plan=plan, rundir=rd, workspace=workspace, params=plan.params, env={}, cache=cache)
    rows = []
    for step in plan.steps():
        row: dict[str, Any] = {"id": step.id, "phase_id": step.phase_id, "kind": step.kind,
                               "needs": step.needs, "description": step.description}
        decision = decide(step, run)
        row.update(action=decision.action, why=decision.reason)
        if decision.fingerprint is not None:
            row["fingerprint"] = decision.fingerprint
        if decision.action == "manual":
            row["why"] += " (--strict fails it)"
        elif decision.action == "cached" and decision.entry is not None:
            # what the cached step will record, so the steps after it fingerprint as in the run
            rd.state.setdefault("steps", {})[step.id] = {"outputs": decision.entry.get("outputs", [])}
        rows.append(row)
    return rows


def show_plan(file: str, params: list[str], *, only: list[str] | None, from_step: str | None,
              workspace: str | None, fmt: str, strict: bool = False, bind: bool = True) -> str:
    """The plan of `file` as text, json, mermaid or dot (`strict`: outputs nothing writes are errors)."""
    prepared = prepare_run(file, params, workspace, only=only, from_step=from_step, run_id="plan", bind=bind,
                           strict=strict)
    loaded, plan, ws = prepared.loaded, prepared.plan, prepared.workspace
    warnings = loaded.warnings + related_warnings(loaded) + output_warnings(plan)
    notes = [f"cli_parameters {name!r} drives {{{target}}} (one letter apart)"
             for name, target in param_aliases(loaded).items()]
    rows = predict(plan, ws)
    if fmt == "json":
        for r in rows:
            r["bindings"] = plan.step(r["id"]).as_dict()["bindings"]
        return json.dumps({"title": plan.title, "steps": rows, "warnings": warnings,
                           "series": loaded.spec.series}, indent=2)
    if fmt == "mermaid":
        return mermaid_graph(plan, {r["id"]: r["action"] for r in rows})
    if fmt == "dot":
        return _dot(plan, rows)
    out = [f"{plan.title}" + (f"  ({loaded.shape.replace('_', ' ')} shape)" if loaded.shape != "dialect" else "")]
    by_id = {r["id"]: r for r in rows}
    steps = plan.steps()
    # columns as wide as their longest cell, so every "(after …)" and reason starts in one column
    id_w = max([16] + [len(st.id) for st in steps])
    after = {st.id: f"(after {', '.join(st.needs)})" if st.needs else "" for st in steps}
    after_w = max(len(a) for a in after.values()) if steps else 0
    kinds = {st.id: "bound" if st.kind == "manual" and st.bindings else st.kind for st in steps}
    kind_w = max(len(k) for k in kinds.values()) if steps else 0
    for phase in plan.phases:
        out.append(f"== {phase.id}: {phase.name}")
        for step in phase.steps:
            r = by_id[step.id]
            line = f"  {r['action']:<8} {step.id:<{id_w}} {kinds[step.id]:<{kind_w}}  {after[step.id]:<{after_w}}  {r['why']}"
            out.append(line.rstrip())
            for cond in step.conditions:
                out.append(f"           condition: {cond}")
            if step.policy:
                out.append(f"           policy: {json.dumps(step.policy)}")
            for b in step.bindings:
                out.append(f"           {step.id} -> {b.kind}: {b.why} ({b.output}{', run-level sink' if b.sink else ''})")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    for s in loaded.spec.series:
        out.append("series: " + json.dumps(s, default=str))
    out += [f"note: {n}" for n in notes]
    out += [f"warning: {w}" for w in warnings]
    out.append("would: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return "\n".join(out)


def _dot(plan: Plan, rows: list[dict[str, Any]]) -> str:
    actions = {r["id"]: r["action"] for r in rows}
    colors = {"run": "white", "cached": "lightblue", "manual": "lightyellow", "skipped": "lightgrey"}
    out = ["digraph codex {", "  rankdir=TB;", "  node [shape=box, style=filled];"]
    for i, phase in enumerate(plan.phases):
        out.append(f'  subgraph cluster_{i} {{ label={json.dumps(phase.name)};')
        for s in phase.steps:
            out.append(f'    {json.dumps(s.id)} [label={json.dumps(s.id + chr(10) + actions[s.id])}, '
                       f'fillcolor={colors.get(actions[s.id], "white")}];')
        out.append("  }")
        for s in phase.steps:
            for n in s.needs:
                out.append(f"  {json.dumps(n)} -> {json.dumps(s.id)};")
    out.append("}")
    return "\n".join(out)
