"""Front-ends for the other shapes of the legacy family, converted into the one sequence model.

- root wrapper: `codex_task_sequence:` around the usual keys; per-step
  `on_error: {strategy: record_and_stop | record_and_continue}` -> `on_error: stop | continue`;
- atomic patch: `execution_phases` of task ids + `tasks` with `objective`, `gaps`, `atomic_diff`,
  `validation`, `rollback` -> one description-only (agent) step per task;
- roadmap: `tasks` with `duration_weeks`, `priority`, `success_criteria`, `execution_guidelines`
  -> a plan of description-only (agent or manual) steps.

These are planning documents written by hand: keys not named here are kept (under the step's
`policy`, shown by `plan`) and reported as warnings, never rejected. Positions are carried over so
errors still name FILE:LINE:COL of what the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codex_tasks.sequence.yaml_loader import Path_, Positions

ROOT_KEY = "codex_task_sequence"
STRATEGIES = {"record_and_stop": "stop", "record_and_continue": "continue"}
_TOP_KEYS = {"version", "title", "description", "metadata"}
_PATCH_TASK_KEYS = {"id", "objective", "existing_artefacts", "gaps", "risk", "atomic_diff", "validation", "rollback"}
_ROADMAP_TASK_KEYS = {"id", "name", "description", "priority", "duration_weeks", "success_criteria",
                      "execution_guidelines"}


@dataclass
class Converted:
    """A shape turned into the standard mapping, with positions and what was kept aside."""

    shape: str  # "dialect", "root_wrapper", "atomic_patch" or "roadmap"
    data: dict[str, Any]
    positions: Positions
    warnings: list[tuple[Path_, str]] = field(default_factory=list)  # (where, message)


def detect_shape(data: dict[str, Any]) -> str:
    """Which shape a top-level mapping is."""
    if ROOT_KEY in data and len(data) == 1:
        return "root_wrapper"
    if "phases" in data:
        return "dialect"
    if "execution_phases" in data and "tasks" in data:
        return "atomic_patch"
    tasks = data.get("tasks")
    if isinstance(tasks, list) and tasks and all(isinstance(t, dict) for t in tasks):
        return "roadmap"
    return "dialect"


def convert(data: dict[str, Any], positions: Positions) -> Converted:
    """The standard mapping for any shape (the dialects pass through untouched)."""
    shape = detect_shape(data)
    if shape == "root_wrapper":
        return _root_wrapper(data[ROOT_KEY], positions)
    if shape == "atomic_patch":
        return _atomic_patch(data, positions)
    if shape == "roadmap":
        return _roadmap(data, positions)
    return Converted("dialect", data, positions)


def _moved(positions: Positions, mapping: list[tuple[Path_, Path_]]) -> Positions:
    """Positions for the new paths: each new path (and everything under it) from its source."""
    out: Positions = {}
    for new, src in mapping:
        for path, pos in positions.items():
            if path[: len(src)] == src:
                out[new + path[len(src):]] = pos
    return out


def _root_wrapper(inner: Any, positions: Positions) -> Converted:
    if not isinstance(inner, dict):
        return Converted("root_wrapper", {"title": None}, _moved(positions, [((), (ROOT_KEY,))]))
    data = dict(inner)
    pos = _moved(positions, [((), (ROOT_KEY,))])
    for phase in data.get("phases") or []:
        for step in (phase.get("steps") or []) if isinstance(phase, dict) else []:
            if isinstance(step, dict) and isinstance(step.get("on_error"), dict):
                strategy = step["on_error"].get("strategy")
                # an unknown strategy stays as written: the model names it and the choices
                step["on_error"] = STRATEGIES.get(str(strategy), strategy)
    return Converted("root_wrapper", data, pos)


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _extra(task: dict[str, Any], known: set[str], where: Path_, warnings: list[tuple[Path_, str]]) -> dict[str, Any]:
    extra = {k: v for k, v in task.items() if k not in known}
    for k in extra:
        warnings.append((where + (k,), f"key {k!r} is not part of this shape: kept and shown, not used"))
    return extra


def _top(data: dict[str, Any], shape: str, warnings: list[tuple[Path_, str]], known: set[str]) -> dict[str, Any]:
    out = {k: data[k] for k in _TOP_KEYS if k in data}
    out.setdefault("title", data.get("title") or ("Atomic patch plan" if shape == "atomic_patch" else "Roadmap"))
    for k in data:
        if k not in _TOP_KEYS | known:
            warnings.append(((k,), f"key {k!r} is not part of this shape: kept and shown, not used"))
            out.setdefault("metadata", {})
            out["metadata"] = {**out["metadata"], k: data[k]}
    return out


def _atomic_patch(data: dict[str, Any], positions: Positions) -> Converted:
    warnings: list[tuple[Path_, str]] = []
    out = _top(data, "atomic_patch", warnings, {"execution_phases", "tasks", "error_capture"})
    tasks = {str(t.get("id")): (i, t) for i, t in enumerate(data.get("tasks") or []) if isinstance(t, dict)}
    template = (data.get("error_capture") or {}).get("format") if isinstance(data.get("error_capture"), dict) else None
    mapping: list[tuple[Path_, Path_]] = [(("title",), ("title",))]
    phases = []
    placed: set[str] = set()
    for pi, phase in enumerate(data.get("execution_phases") or []):
        steps = []
        for si, tid in enumerate((phase or {}).get("steps") or []):
            tid = str(tid)
            if tid not in tasks:
                # kept as an empty step so the model reports it at its place
                steps.append({"id": tid, "description": f"task {tid} is listed here but not under 'tasks'"})
                warnings.append((("execution_phases", pi, "steps", si), f"task {tid!r} is not defined under 'tasks'"))
                continue
            ti, task = tasks[tid]
            placed.add(tid)
            steps.append(_patch_step(task, template, ("tasks", ti), warnings))
            mapping.append((("phases", pi, "steps", si), ("tasks", ti)))
        phases.append({"id": f"E{pi + 1}", "name": (phase or {}).get("name") or f"Phase {pi + 1}", "steps": steps})
        mapping.append((("phases", pi), ("execution_phases", pi)))
    for tid, (ti, _) in tasks.items():
        if tid not in placed:
            warnings.append((("tasks", ti), f"task {tid!r} is in no execution phase: it does not run"))
    out["phases"] = phases
    return Converted("atomic_patch", out, _moved(positions, mapping), warnings)


def _patch_step(task: dict[str, Any], template: str | None, where: Path_,
                warnings: list[tuple[Path_, str]]) -> dict[str, Any]:
    raw_diff = task.get("atomic_diff")
    diff: dict[str, Any] = raw_diff if isinstance(raw_diff, dict) else {}
    patchset = [p for p in diff.get("patchset") or [] if isinstance(p, dict)]
    prompt = [str(task.get("objective") or "").strip()]
    if task.get("gaps"):
        prompt.append("Gaps: " + "; ".join(_lines(task["gaps"])))
    if diff.get("description"):
        prompt.append("Change: " + str(diff["description"]).strip())
    for p in patchset:
        prompt.append(f"In {p.get('file')}: " + "; ".join(_lines(p.get("actions"))))
    if patchset:
        prompt.append("Touch only: " + ", ".join(str(p.get("file")) for p in patchset))
    policy = {
        "patchset": [str(p.get("file")) for p in patchset],
        "validation": _lines(task.get("validation")),
        "rollback": task.get("rollback"),
        "risk": task.get("risk"),
        "existing_artefacts": _lines(task.get("existing_artefacts")),
        **_extra(task, _PATCH_TASK_KEYS, where, warnings),
    }
    step: dict[str, Any] = {"id": task.get("id"), "description": "\n".join(p for p in prompt if p),
                            "policy": {k: v for k, v in policy.items() if v not in (None, [])}}
    if template:
        step["template"] = template
    return step


def _roadmap(data: dict[str, Any], positions: Positions) -> Converted:
    warnings: list[tuple[Path_, str]] = []
    out = _top(data, "roadmap", warnings, {"tasks"})
    steps = []
    mapping: list[tuple[Path_, Path_]] = [(("title",), ("title",)), (("phases", 0), ("tasks",))]
    for ti, task in enumerate(data.get("tasks") or []):
        if not isinstance(task, dict):
            continue
        text = [str(task.get("name") or "").strip(), str(task.get("description") or "").strip()]
        if task.get("success_criteria"):
            text.append("Done when: " + "; ".join(_lines(task["success_criteria"])))
        if task.get("execution_guidelines"):
            text.append("Guidelines: " + "; ".join(_lines(task["execution_guidelines"])))
        policy = {k: task[k] for k in ("priority", "duration_weeks", "success_criteria", "execution_guidelines")
                  if k in task}
        policy.update(_extra(task, _ROADMAP_TASK_KEYS, ("tasks", ti), warnings))
        steps.append({"id": task.get("id"), "name": task.get("name"),
                      "description": "\n".join(t for t in text if t), "policy": policy})
        mapping.append((("phases", 0, "steps", ti), ("tasks", ti)))
    out["phases"] = [{"id": "roadmap", "name": "Roadmap", "steps": steps}]
    return Converted("roadmap", out, _moved(positions, mapping), warnings)
