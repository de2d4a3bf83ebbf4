"""`summary.json` and `report.md` / `report.html` of a run."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks.core.files import read_json, write_json_atomic, write_text_atomic
from codex_tasks.runs.charts import FAMILIES, Drawn, draw_charts, is_curve, read_charts
from codex_tasks.runs.errorcap import read_error_file
from codex_tasks.runs.events import read_events
from codex_tasks.runs.rundir import RunDir

if TYPE_CHECKING:  # annotations only: a run's report is written by the layer that plans it
    from codex_tasks.orchestrate.plan import Plan

CHARTS_DIR = "charts"  # beside report.md, one PNG per chart
STATUS_MARK = {"succeeded": "✓", "failed": "✗", "cached": "↺", "manual": "✋", "skipped": "–", "not_run": "·"}


def write_summary(rd: RunDir, plan: Plan | None) -> dict[str, Any]:
    """Per-step status, durations, outputs with SHA-256, exit code."""
    st = rd.state
    steps = st.get("steps", {})
    order = [s.id for s in plan.steps()] if plan else list(steps)
    rows = []
    for sid in order:
        e = steps.get(sid, {})
        rows.append({
            "id": sid,
            "phase_id": e.get("phase_id"),
            "description": e.get("description", ""),
            "kind": e.get("kind"),
            "status": e.get("status", "not_run"),
            "started": e.get("started"),
            "finished": e.get("finished"),
            "duration": e.get("duration"),
            "attempts": e.get("attempts", 1 if e.get("started") else 0),
            "outputs": e.get("outputs", []),
            "expected_outputs": e.get("expected_outputs", []),
            "error": e.get("error"),
            "note": e.get("note"),
            "fingerprint": e.get("fingerprint"),
            "summary": e.get("summary", {}),
        })
    usage = agent_usage(rd.path)
    for r in rows:
        if r["id"] in usage:
            r["agent_usage"] = usage[r["id"]]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    status = st.get("status")
    summary = {
        "run_id": rd.run_id,
        "title": st.get("title"),
        "sequence_file": st.get("sequence_file"),
        "workspace": st.get("workspace"),
        "status": status,
        "exit_code": {"succeeded": 0, "failed": 1}.get(str(status), 130),
        "started": st.get("started"),
        "finished": st.get("finished"),
        "duration": st.get("duration"),
        "attempt": st.get("attempt", 1),
        "dry_run": st.get("dry_run", False),
        "flow_run_id": st.get("flow_run_id"),
        "params": st.get("params", {}),
        "counts": counts,
        "steps": rows,
    }
    if usage:
        summary["agent_usage"] = {k: sum(u[k] for u in usage.values()) for k in AGENT_USAGE_KEYS}
    write_json_atomic(rd.path / "summary.json", summary)
    return summary


AGENT_USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def agent_usage(run_path: Path) -> dict[str, dict[str, int]]:
    """Agent token usage per step, summed over every turn (repair attempts included), from the
    `agent` usage events (so a step that failed still shows what it spent)."""
    out: dict[str, dict[str, int]] = {}
    events_file = run_path / "events.ndjson"
    if not events_file.exists():
        return out
    for ev in read_events(events_file):
        if ev.get("type") != "agent" or ev.get("kind") != "usage":
            continue
        row = out.setdefault(str(ev.get("step_id")), dict.fromkeys(AGENT_USAGE_KEYS, 0))
        for k in AGENT_USAGE_KEYS:
            row[k] += int(ev.get(k) or 0)
    return out


def mermaid_graph(plan: Plan, statuses: dict[str, str]) -> str:
    """The run's DAG as a mermaid flowchart: phases as subgraphs, `needs` as edges."""
    def node(sid: str) -> str:
        return "s_" + "".join(c if c.isalnum() else "_" for c in sid)

    lines = ["flowchart TD"]
    prev_phase_last: list[str] = []
    for phase in plan.phases:
        lines.append(f'  subgraph {node("phase_" + phase.id)}["{phase.name}"]')
        for step in phase.steps:
            label = f"{step.id}: {statuses.get(step.id, 'pending')}".replace('"', "'")
            lines.append(f'    {node(step.id)}["{label}"]')
        lines.append("  end")
        ids = {s.id for s in phase.steps}
        for step in phase.steps:
            for need in step.needs:
                lines.append(f"  {node(need)} --> {node(step.id)}")
            if not step.needs and prev_phase_last:
                for p in prev_phase_last:
                    lines.append(f"  {node(p)} -.-> {node(step.id)}")
        sinks = [s.id for s in phase.steps if not any(s.id in o.needs for o in phase.steps if o.id in ids)]
        prev_phase_last = sinks[-1:] if sinks else prev_phase_last
    return "\n".join(lines)


def write_report(rd: RunDir, plan: Plan | None, summary: dict[str, Any]) -> None:
    """report.md and report.html."""
    errors = []
    err_file = rd.path / "error_captures.ndjson"
    if err_file.exists():
        errors = read_error_file(err_file)
    md = [f"# {summary.get('title')}", "",
          f"- run: `{summary['run_id']}` (attempt {summary.get('attempt', 1)})",
          f"- status: **{summary['status']}** (exit {summary['exit_code']})",
          f"- started: {summary.get('started')}  finished: {summary.get('finished')}  duration: {summary.get('duration')} s",
          "- steps: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.get("counts", {}).items())), ""]
    if summary.get("params"):
        md += ["## Parameters", "", "| name | value |", "| --- | --- |"]
        md += [f"| {k} | `{json.dumps(v, default=str)}` |" for k, v in sorted(summary["params"].items())]
        md.append("")
    md += ["## Steps", "", "| | step | phase | kind | status | duration (s) | note |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["steps"]:
        note = (r.get("error") or r.get("note") or "").replace("|", "\\|").replace("\n", " ")[:160]
        md.append(f"| {STATUS_MARK.get(r['status'], '?')} | `{r['id']}` {r.get('description', '')[:60]} | {r.get('phase_id')} | "
                  f"{r.get('kind')} | {r['status']} | {r.get('duration') if r.get('duration') is not None else ''} | {note} |")
    md.append("")
    if plan is not None:
        statuses = {r["id"]: r["status"] for r in summary["steps"]}
        md += ["## Graph", "", "```mermaid", mermaid_graph(plan, statuses), "```", ""]
        series = plan.loaded.spec.series
        if series:  # the legacy `series` (patch series): shown, not acted on
            md += ["## Series", ""] + [f"- `{json.dumps(x, default=str)}`" for x in series] + [""]
        manual = [r["id"] for r in summary["steps"] if r["status"] == "manual"]
        if manual:
            md += ["## Left to a person or an agent", "", *[f"- `{m}`" for m in manual], ""]
        conds = [(s.id, s.conditions, s.policy) for s in plan.steps() if s.conditions or s.policy]
        if conds:
            md += ["## Conditions and policies (shown, not enforced)", ""]
            for sid, c, p in conds:
                md.append(f"- `{sid}`: " + "; ".join(c) + (f" policy: `{json.dumps(p)}`" if p else ""))
            md.append("")
    if summary.get("agent_usage"):
        md += ["## Agent tokens", "", "| step | input | cached | output | reasoning |", "| --- | --- | --- | --- | --- |"]
        for r in summary["steps"]:
            if r.get("agent_usage"):
                md.append(f"| `{r['id']}` | " + " | ".join(str(r["agent_usage"][k]) for k in AGENT_USAGE_KEYS) + " |")
        md += ["| **run** | " + " | ".join(str(summary["agent_usage"][k]) for k in AGENT_USAGE_KEYS) + " |", ""]
    outputs = [(r["id"], o) for r in summary["steps"] for o in r.get("outputs", [])]
    if outputs:
        md += ["## Outputs", "", "| step | path | size | sha256 |", "| --- | --- | --- | --- |"]
        md += [f"| `{sid}` | `{o['path']}` | {o.get('size')} | `{o['sha256'][:16]}…` |" for sid, o in outputs]
        md.append("")
    drawn, values = _charts_section(rd.path, md)
    if errors:
        md += ["## Errors", ""]
        for e in errors:
            md += ["```text", str(e.get("rendered", "")).rstrip(), "```", ""]
    text = "\n".join(md) + "\n"
    write_text_atomic(rd.path / "report.md", text)
    write_text_atomic(rd.path / "report.html", _html(summary, drawn, values, errors))


def _charts_section(run_path: Path, md: list[str]) -> tuple[list[Drawn], list[tuple[str, str, float]]]:
    """Append the metrics section to `md`: single values as a table, curves as linked PNG charts."""
    charts = read_charts(run_path)
    if not charts:
        return [], []
    md += ["## Metrics", ""]
    values = [(c.step_id, f"{label} {c.title}" if c.family in FAMILIES else label, pts[-1][1])
              for c in charts if not is_curve(c) for label, pts in c.lines.items()]
    if values:
        md += ["| step | metric | value |", "| --- | --- | --- |"]
        md += [f"| `{sid}` | {name} | {value:.6g} |" for sid, name, value in values]
        md.append("")
    drawn = draw_charts([c for c in charts if is_curve(c)], run_path / CHARTS_DIR)
    for d in drawn:
        md += [f"![{d.chart.step_id}: {d.chart.title}]({CHARTS_DIR}/{d.png.name})", ""]
    return drawn, values


def artifact_markdown(run_path: Path) -> str:
    """report.md for a Prefect artifact: chart images become links to the PNG files on this machine.

    A web page may not load `file://` images, so the artifact links to them (and to report.html)
    instead of embedding them.
    """
    text = (run_path / "report.md").read_text(encoding="utf-8")
    folder = (run_path / CHARTS_DIR).resolve()
    text = re.sub(r"!\[([^\]]*)\]\(" + re.escape(CHARTS_DIR) + r"/([^)]+)\)",
                  lambda m: f"[chart: {m.group(1)}]({(folder / m.group(2)).as_uri()})", text)
    if (run_path / "report.html").exists():
        text += f"\nFull report with charts: [{(run_path / 'report.html').resolve()}]({(run_path / 'report.html').resolve().as_uri()})\n"
    return text


def _html(summary: dict[str, Any], drawn: list[Drawn], values: list[tuple[str, str, float]],
          errors: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr class='{html.escape(r['status'])}'><td>{STATUS_MARK.get(r['status'], '?')}</td><td><code>{html.escape(r['id'])}</code></td>"
        f"<td>{html.escape(r.get('description', '') or '')}</td><td>{html.escape(str(r.get('kind')))}</td>"
        f"<td>{html.escape(r['status'])}</td><td>{r.get('duration') if r.get('duration') is not None else ''}</td>"
        f"<td>{html.escape((r.get('error') or r.get('note') or '')[:200])}</td></tr>"
        for r in summary["steps"])
    figures = "".join(f"<figure>{d.svg}<figcaption><a href='{CHARTS_DIR}/{html.escape(d.png.name)}'>PNG</a></figcaption></figure>"
                      for d in drawn)
    if values:
        figures = ("<table><tr><th>step</th><th>metric</th><th>value</th></tr>"
                   + "".join(f"<tr><td><code>{html.escape(sid)}</code></td><td>{html.escape(name)}</td><td>{value:.6g}</td></tr>"
                             for sid, name, value in values) + "</table>" + figures)
    duration = f", {summary['duration']} s" if summary.get("duration") is not None else ""
    errs = "".join(f"<pre>{html.escape(str(e.get('rendered', '')))}</pre>" for e in errors)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(str(summary.get('title')))} — {summary['run_id']}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:4px 8px}}
tr.failed{{background:#fdd}}tr.cached{{background:#eef}}tr.manual{{background:#ffe}}pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}
figure{{display:inline-block;margin:.5em}}figcaption{{font-size:small}}</style></head>
<body><h1>{html.escape(str(summary.get('title')))}</h1>
<p>run <code>{summary['run_id']}</code> — <b>{html.escape(str(summary['status']))}</b> (exit {summary['exit_code']}){duration}</p>
<table><tr><th></th><th>step</th><th>description</th><th>kind</th><th>status</th><th>s</th><th>note</th></tr>{rows}</table>
{('<h2>Metrics</h2>' + figures) if figures else ''}
{('<h2>Errors</h2>' + errs) if errs else ''}
</body></html>
"""


def load_summary(run_path: Path) -> dict[str, Any]:
    data = read_json(run_path / "summary.json")
    return data if isinstance(data, dict) else {}
