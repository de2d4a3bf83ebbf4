"""`codex-tasks plan`: every step and what would happen to it, without running anything."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from codex_tasks.orchestrate.execute import RunContext, _context, _kind_module, cache_mode, fingerprint
from codex_tasks.orchestrate.plan import Plan
from codex_tasks.runs.cache import CacheIndex
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
        if step.skip:
            row.update(action="skipped", why=step.skip)
        elif step.manual:
            row.update(action="manual", why="description only: needs a person (--strict fails it)")
        else:
            module = _kind_module(step)
            if step.bindings:
                kinds = list(dict.fromkeys(b.kind for b in step.bindings))
                row.update(action="run", why=f"bound to {', '.join(kinds)} ({len(step.bindings)} output(s))")
            elif not cache_mode(step, module):
                why = "not cacheable" if getattr(module, "CACHE", "never") == "never" else \
                    ("shell steps cache only with outputs and cache: true" if step.kind == "shell" else "cache off")
                row.update(action="run", why=why)
            else:
                ctx = _context(step, run)
                fp = fingerprint(step, run, ctx, module)
                entry = cache.get(fp)
                row["fingerprint"] = fp
                if entry is None:
                    row.update(action="run", why="no cache entry for its fingerprint")
                else:
                    broken = cache.outputs_intact(entry, workspace)
                    if broken:
                        row.update(action="run", why=f"cache entry found but {broken}")
                    else:
                        row.update(action="cached", why=f"fingerprint match (run {entry.get('run_id')})")
                        rd.state.setdefault("steps", {})[step.id] = {"outputs": entry.get("outputs", [])}
        rows.append(row)
    return rows


def show_plan(file: str, params: list[str], *, only: list[str] | None, from_step: str | None,
              workspace: str | None, fmt: str, strict: bool = False, bind: bool = True) -> str:
    from codex_tasks.core.resources import resolve_sequence_ref as resolve_file
    from codex_tasks.orchestrate.plan import build_plan
    from codex_tasks.render.params import parse_cli_params, resolve_params
    from codex_tasks.runs.events import now_iso
    from codex_tasks.sequence.load import load_sequence

    loaded = load_sequence(resolve_file(file))
    ws = Path(workspace or os.getcwd()).resolve()
    builtins = {"run_id": "plan", "run_dir": str(ws / ".codex/runs/plan"), "workspace": str(ws), "timestamp": now_iso()}
    cli = parse_cli_params(params)
    values = resolve_params(loaded.spec, cli, builtins)
    from codex_tasks.orchestrate.legacy_params import apply_aliases, related_warnings

    notes = apply_aliases(loaded, values, cli)
    plan = build_plan(loaded, values, only=only, from_step=from_step, bind=bind)
    from codex_tasks.orchestrate.bindings import output_errors, output_warnings

    if strict and output_errors(plan):
        from codex_tasks.errors import SpecErrors

        raise SpecErrors(output_errors(plan))
    warnings = loaded.warnings + related_warnings(loaded) + output_warnings(plan)
    rows = predict(plan, ws)
    if fmt == "json":
        for r in rows:
            r["bindings"] = plan.step(r["id"]).as_dict()["bindings"]
        return json.dumps({"title": plan.title, "steps": rows, "warnings": warnings,
                           "series": loaded.spec.series}, indent=2)
    if fmt == "mermaid":
        from codex_tasks.runs.report import mermaid_graph

        return mermaid_graph(plan, {r["id"]: r["action"] for r in rows})
    if fmt == "dot":
        return _dot(plan, rows)
    out = [f"{plan.title}" + (f"  ({loaded.shape.replace('_', ' ')} shape)" if loaded.shape != "dialect" else "")]
    by_id = {r["id"]: r for r in rows}
    for phase in plan.phases:
        out.append(f"== {phase.id}: {phase.name}")
        for step in phase.steps:
            r = by_id[step.id]
            needs = f" (after {', '.join(step.needs)})" if step.needs else ""
            kind = "bound" if step.kind == "manual" and step.bindings else step.kind
            out.append(f"  {r['action']:<8} {step.id:<16} {kind:<16}{needs}  {r['why']}")
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
