"""The run model: events folded into what the TUI shows. Pure and fast — no Textual, no I/O.

`RunModel.apply(events)` folds a batch of events and returns a `Changes` naming what moved, so
the widgets redraw only the rows and panels that changed (one table update per step per batch,
however many events the batch held).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

# step status in events/state -> the word the TUI shows
STATUS_WORDS = {
    "pending": "pending",
    "running": "running",
    "retrying": "retrying",
    "succeeded": "done",
    "failed": "failed",
    "cached": "cached",
    "manual": "manual",
    "skipped": "skipped",
    "not_run": "not run",
}
FINISHED = ("succeeded", "failed", "cached", "manual", "skipped", "not_run")
RUN_FINAL = ("succeeded", "failed", "interrupted", "cancelled")

LOG_LINES_PER_STEP = 1000
METRIC_POINTS = 240
RATE_WINDOW = 20


@dataclass(slots=True)
class StepView:
    """One step's row."""

    id: str
    phase_id: str = ""
    description: str = ""
    kind: str = ""
    status: str = "pending"
    started: float | None = None  # epoch seconds, from the events
    finished: float | None = None
    duration: float | None = None
    note: str = ""
    attempt: int = 0

    @property
    def word(self) -> str:
        return STATUS_WORDS.get(self.status, self.status)

    def elapsed(self, now: float) -> float | None:
        """Seconds spent: the recorded duration, or (running) time since it started."""
        if self.duration is not None:
            return self.duration
        if self.started is not None and self.status in ("running", "retrying"):
            return max(0.0, now - self.started)
        return None


@dataclass(slots=True)
class PhaseView:
    id: str
    name: str = ""
    step_ids: list[str] = field(default_factory=list)
    started: bool = False
    finished: bool = False


@dataclass(slots=True)
class ProgressView:
    """The last progress of one step, with a rate and ETA derived only from event data
    (event times and the optional `rate`), so a replay shows the same numbers as the live run."""

    step_id: str
    done: float = 0.0
    total: float | None = None
    unit: str = "it"
    rate: float | None = None  # units per second
    loss: float | None = None
    tokens_per_s: float | None = None  # training steps report their throughput
    time: float = 0.0
    waiting: bool = False  # a running step that has not reported progress yet (shown as starting)
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))

    def update(self, ev: dict[str, Any]) -> None:
        self.waiting = False
        t = float(ev.get("time") or 0.0)
        done = _num(ev.get("done"), self.done)
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()  # restarted (a retry, a resume)
        self.done = done
        total = ev.get("total")
        self.total = _num(total, 0.0) if total is not None else None
        self.unit = str(ev.get("unit") or self.unit)
        self.time = t
        self.samples.append((t, done))
        if ev.get("loss") is not None:
            self.loss = _num(ev.get("loss"), 0.0)
        if ev.get("tokens_per_s") is not None:
            self.tokens_per_s = _num(ev.get("tokens_per_s"), 0.0) or None
        given = ev.get("rate")
        windowed = None
        if len(self.samples) >= 2:
            (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
            if t1 > t0 and d1 >= d0:
                windowed = (d1 - d0) / (t1 - t0)
        if windowed is not None:
            self.rate = windowed
        elif given is not None:
            self.rate = _num(given, 0.0) or None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None when unknown)."""
        if self.total is None or not self.rate or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


@dataclass(slots=True)
class Changes:
    """What one `apply` moved."""

    steps: set[str] = field(default_factory=set)
    phases: set[str] = field(default_factory=set)
    progress: set[str] = field(default_factory=set)
    metrics: set[str] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    run: bool = False
    structure: bool = False  # steps or phases were added: the table needs new rows
    reset: bool = False  # a resume started a new attempt

    def __bool__(self) -> bool:
        return bool(self.steps or self.phases or self.progress or self.metrics or self.logs
                    or self.run or self.structure or self.reset)

    def merge(self, other: Changes) -> None:
        self.steps |= other.steps
        self.phases |= other.phases
        self.progress |= other.progress
        self.metrics |= other.metrics
        self.logs |= other.logs
        self.run = self.run or other.run
        self.structure = self.structure or other.structure
        self.reset = self.reset or other.reset


def _num(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class RunModel:
    """Everything the TUI shows about one run, folded from its events and seeded from its folder."""

    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id
        self.title = ""
        self.status = "pending"  # pending | running | succeeded | failed | interrupted | cancelled
        self.attempt = 1
        self.started: float | None = None
        self.finished: float | None = None
        self.duration: float | None = None
        self.steps: dict[str, StepView] = {}
        self.phases: dict[str, PhaseView] = {}
        self.progress: dict[str, ProgressView] = {}
        self.metrics: dict[tuple[str, str, str], deque[float]] = {}
        self.logs: dict[str, deque[str]] = {}
        self.log_totals: dict[str, int] = {}  # lines ever logged per step (the deques keep the newest)
        self.events_seen = 0
        self.last_time: float | None = None
        self.stale = False  # the state says running but its process is gone

    # ------------------------------------------------------------------ seeding

    def seed_plan(self, steps: list[dict[str, Any]], phase_names: dict[str, str] | None = None) -> None:
        """Every planned step as pending, in plan order (from plan.json)."""
        names = phase_names or {}
        for s in steps:
            sid = str(s.get("id"))
            view = self._step(sid, str(s.get("phase_id") or ""))
            view.description = str(s.get("description") or view.description)
            view.kind = str(s.get("kind") or view.kind)
        for pid, name in names.items():
            if pid in self.phases and not self.phases[pid].name:
                self.phases[pid].name = name

    def seed_state(self, state: dict[str, Any]) -> None:
        """Title and run facts from state.json (events remain the source of step statuses)."""
        self.title = str(state.get("title") or self.title)
        self.run_id = str(state.get("run_id") or self.run_id)
        self.attempt = int(state.get("attempt") or self.attempt)

    # ------------------------------------------------------------------ folding

    def _step(self, sid: str, phase_id: str = "", changes: Changes | None = None) -> StepView:
        view = self.steps.get(sid)
        if view is None:
            view = self.steps[sid] = StepView(id=sid, phase_id=phase_id)
            phase = self._phase(phase_id, changes)
            phase.step_ids.append(sid)
            if changes is not None:
                changes.structure = True
        return view

    def _phase(self, pid: str, changes: Changes | None = None) -> PhaseView:
        phase = self.phases.get(pid)
        if phase is None:
            phase = self.phases[pid] = PhaseView(id=pid)
            if changes is not None:
                changes.structure = True
        return phase

    def apply(self, events: list[dict[str, Any]]) -> Changes:
        """Fold a batch of events in order; return what changed."""
        ch = Changes()
        for ev in events:
            kind = ev.get("type")
            if not isinstance(kind, str):
                continue
            self.events_seen += 1
            t = ev.get("time")
            if isinstance(t, int | float):
                self.last_time = float(t)
            if kind.startswith("step."):
                self._on_step(kind[5:], ev, ch)
            elif kind == "progress":
                sid = str(ev.get("step_id") or "")
                pv = self.progress.get(sid)
                if pv is None:
                    pv = self.progress[sid] = ProgressView(step_id=sid)
                pv.update(ev)
                ch.progress.add(sid)
            elif kind == "metric":
                self._on_metric(ev, ch)
            elif kind == "log":
                sid = str(ev.get("step_id") or "")
                lines = self.logs.get(sid)
                if lines is None:
                    lines = self.logs[sid] = deque(maxlen=LOG_LINES_PER_STEP)
                lines.append(str(ev.get("line", "")))
                self.log_totals[sid] = self.log_totals.get(sid, 0) + 1
                ch.logs.add(sid)
            elif kind.startswith("phase."):
                pid = str(ev.get("phase_id") or "")
                phase = self._phase(pid, ch)
                if ev.get("name"):
                    phase.name = str(ev["name"])
                if kind == "phase.started":
                    phase.started = True
                elif kind == "phase.finished":
                    phase.finished = True
                ch.phases.add(pid)
            elif kind.startswith("run."):
                self._on_run(kind[4:], ev, ch)
        return ch

    def _on_step(self, what: str, ev: dict[str, Any], ch: Changes) -> None:
        sid = str(ev.get("step_id") or "")
        if not sid:
            return
        view = self._step(sid, str(ev.get("phase_id") or ""), ch)
        t = ev.get("time")
        if what == "started":
            view.status = "running"
            view.started = float(t) if isinstance(t, int | float) else view.started
            view.finished = None
            view.duration = None
            view.attempt = int(ev.get("attempt") or 1)
            view.note = "" if view.attempt == 1 else f"attempt {view.attempt}"
            if ev.get("kind"):
                view.kind = str(ev["kind"])
            if ev.get("description"):
                view.description = str(ev["description"])
        elif what == "retry":
            view.status = "retrying"
            view.note = f"attempt {ev.get('attempt', view.attempt)} failed: {ev.get('error', '')}"
        elif what == "kept":
            view.status = "succeeded"
            view.note = str(ev.get("note") or "kept")
        elif what in FINISHED:
            view.status = what
            view.finished = float(t) if isinstance(t, int | float) else None
            dur = ev.get("duration")
            if isinstance(dur, int | float):
                view.duration = float(dur)
            elif what == "cached":
                view.duration = 0.0
            elif view.started is not None and view.finished is not None and what != "not_run":
                view.duration = max(0.0, view.finished - view.started)
            note = ev.get("error") if what == "failed" else ev.get("note")
            if note:
                view.note = str(note)
        else:
            return
        ch.steps.add(sid)
        if view.phase_id in self.phases:
            ch.phases.add(view.phase_id)

    def _on_metric(self, ev: dict[str, Any], ch: Changes) -> None:
        try:
            value = float(ev["value"])
        except (KeyError, TypeError, ValueError):
            return
        sid = str(ev.get("step_id") or "")
        key = (sid, str(ev.get("split") or ""), str(ev.get("name") or "value"))
        series = self.metrics.get(key)
        if series is None:
            series = self.metrics[key] = deque(maxlen=METRIC_POINTS)
        series.append(value)
        ch.metrics.add(sid)

    def _on_run(self, what: str, ev: dict[str, Any], ch: Changes) -> None:
        t = ev.get("time")
        tf = float(t) if isinstance(t, int | float) else None
        if what == "started":
            self.status = "running"
            self.started = tf if self.started is None else self.started
            self.title = str(ev.get("title") or self.title)
            self.attempt = int(ev.get("attempt") or 1)
        elif what == "resumed":
            self.status = "running"
            self.attempt = int(ev.get("attempt") or self.attempt + 1)
            self.finished = self.duration = None
            if self.started is None:
                self.started = tf
            for view in self.steps.values():  # a new attempt: every step is decided again
                view.status, view.note = "pending", ""
                view.started = view.finished = view.duration = None
                ch.steps.add(view.id)
            self.progress.clear()
            ch.reset = True
        elif what in ("finished", "failed", "interrupted"):
            self.status = str(ev.get("status") or {"finished": "succeeded", "failed": "failed"}.get(what, what))
            self.finished = tf
            if isinstance(ev.get("duration"), int | float):
                self.duration = float(ev["duration"])
            elif self.started is not None and tf is not None:
                self.duration = max(0.0, tf - self.started)
            for view in self.steps.values():
                if view.status in ("running", "retrying"):  # no final event came: the run ended under it
                    view.status = "not_run"
                    ch.steps.add(view.id)
        else:
            return
        ch.run = True

    # ------------------------------------------------------------------ queries

    @property
    def is_live(self) -> bool:
        return self.status in ("pending", "running") and not self.stale

    def elapsed(self, now: float) -> float | None:
        if self.duration is not None:
            return self.duration
        if self.started is None:
            return None
        if not self.is_live:
            return max(0.0, (self.last_time or self.started) - self.started)
        return max(0.0, now - self.started)

    def running_steps(self) -> list[str]:
        return [s.id for s in self.steps.values() if s.status in ("running", "retrying")]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps.values():
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def phase_status(self, pid: str) -> str:
        """A phase's status, from its steps: running, failed, done, pending, or mixed finals."""
        phase = self.phases.get(pid)
        if phase is None or not phase.step_ids:
            return "pending"
        statuses = {self.steps[s].status for s in phase.step_ids}
        if statuses & {"running", "retrying"}:
            return "running"
        if "failed" in statuses:
            return "failed"
        if statuses <= {"pending"}:
            return "pending"
        if "pending" in statuses:
            return "running" if phase.started and not phase.finished else "pending"
        if statuses <= {"not_run"}:
            return "not_run"
        return "succeeded"

    def metric_series(self, step_id: str | None = None) -> dict[tuple[str, str, str], deque[float]]:
        """Series of one step (or all), loss-like names first."""
        items = [(k, v) for k, v in self.metrics.items() if step_id is None or k[0] == step_id]
        items.sort(key=lambda kv: (0 if "loss" in kv[0][2] else 1, kv[0]))
        return dict(items)

    def steps_with_metrics(self) -> list[str]:
        return list(dict.fromkeys(k[0] for k in self.metrics))
