"""What a plain `codex-tasks run` prints while it runs, from the run's events file (so steps run by
Dask workers show too): a line when a step starts and when it ends, progress for the steps that
report it, and the tail of a failing step's log.

On a terminal, progress is one live `rich` bar per running step (`train ━━━ 40% 120/300 · loss 4.21
· 7.5k tok/s · ETA 1:02`); off a terminal (a pipe, CI), a plain progress line every 10% or 30 s.
Colour only on a terminal, and never with `NO_COLOR` set.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from codex_tasks.runs.events import EventReader

MARKS = {"step.succeeded": "✓", "step.failed": "✗", "step.cached": "↺", "step.manual": "✋",
         "step.skipped": "–", "step.not_run": "·", "step.kept": "=", "step.retry": "↻", "step.repair": "⚒"}
STYLES = {"step.succeeded": "green", "step.failed": "bold red", "step.cached": "blue", "step.manual": "yellow",
          "step.retry": "yellow", "step.repair": "yellow"}
TAIL_LINES = 20
PLAIN_EVERY_S = 30.0  # off a terminal: a progress line at least this often, and at every 10%


def progress_text(ev: dict[str, Any]) -> str:
    """`120/300 · loss 4.21 · 7.5k tok/s · ETA 1:02` from a progress event (ETA from its `rate`)."""
    done, total, unit = ev.get("done") or 0, ev.get("total"), ev.get("unit") or "it"
    unit_text = "" if unit == "step" else f" {unit}"
    parts = [f"{_count(done)}/{_count(total)}{unit_text}" if total else f"{_count(done)}{unit_text}"]
    if isinstance(ev.get("loss"), int | float):
        parts.append(f"loss {ev['loss']:.3g}")
    if isinstance(ev.get("tokens_per_s"), int | float) and ev["tokens_per_s"]:
        parts.append(f"{_rate(ev['tokens_per_s'])} tok/s")
    rate = ev.get("rate")
    if total and isinstance(rate, int | float) and rate > 0 and done < total:
        left = int((total - done) / rate)
        parts.append(f"ETA {left // 60}:{left % 60:02d}" if left < 3600 else f"ETA {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}")
    return " · ".join(parts)


def _rate(value: float) -> str:
    """`850`, `7.5k`, `1.2M`."""
    v = abs(float(value))
    return f"{value / 1e6:.1f}M" if v >= 1e6 else f"{value / 1e3:.1f}k" if v >= 1e3 else str(int(round(value)))


def _count(value: float) -> str:
    v = abs(float(value))
    if v >= 1e6:
        return f"{value / 1e6:.1f}M"
    if v >= 1e4 or (v >= 1e3 and value != int(value)):
        return f"{value / 1e3:.1f}k"
    return str(int(value)) if value == int(value) else f"{value:.1f}"


class RunConsole:
    """Follows a run's events file on a thread (`follow`, `stop`) and prints what happens."""

    def __init__(self, quiet: bool = False, file: TextIO | None = None, terminal: bool | None = None) -> None:
        self.quiet = quiet
        out = file or sys.stdout
        self.terminal = out.isatty() if terminal is None else terminal
        colour = self.terminal and not os.environ.get("NO_COLOR")
        self.console = Console(file=out, color_system="auto" if colour else None, force_terminal=self.terminal,
                               highlight=False, soft_wrap=True)
        self.progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._ended: set[str] = set()  # steps that finished: a progress event after that draws no bar
        self._plain: dict[str, tuple[int, float]] = {}  # step -> (last 10% bucket printed, its event time)
        self._run_path: Path | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reader: Any = None

    # ---------------------------------------------------------------- following the events file

    def follow(self, rd: Any) -> None:
        """Start printing the events `rd` (a RunDir) appends from now on."""
        self._run_path = rd.path
        events = rd.path / "events.ndjson"
        self._reader = EventReader(events)
        self._reader.offset = events.stat().st_size if events.exists() else 0
        if self.terminal and not self.quiet:
            self.progress = Progress(TextColumn("  {task.description:<14}"), BarColumn(bar_width=24), TaskProgressColumn(),
                                     TextColumn("{task.fields[info]}"), console=self.console, transient=True)
            self.progress.start()

        def loop() -> None:
            while not self._stop.wait(0.1):
                self._drain()

        self._thread = threading.Thread(target=loop, name="run-console", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for ev in self._reader.read_new():
            self(ev)

    def stop(self) -> None:
        """Print what is left and end the live display."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._drain()
            self._thread = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # ---------------------------------------------------------------- one event

    def print(self, text: str, style: str | None = None) -> None:
        """A line above the live bars (or plainly off a terminal)."""
        self.console.print(text, style=style, markup=False)

    def __call__(self, ev: dict[str, Any]) -> None:
        if self.quiet:
            return
        t = str(ev.get("type", ""))
        sid = str(ev.get("step_id") or "")
        if t == "log" and not sid and str(ev.get("line", "")).startswith("warning:"):
            print(f"codex-tasks: {ev['line']}", file=sys.stderr, flush=True)
        elif t == "log" and str(ev.get("line", "")).startswith("[dry-run]"):
            self.print(f"      {ev['line']}")  # a dry run shows each step's rendered commands
        elif t == "phase.started":
            self.print(f"== {ev.get('phase_id')}: {ev.get('name')}", style="bold")
        elif t == "step.started":
            self._ended.discard(sid)
            self.print(f"  ▶ {sid} ({ev.get('kind')})" + (f", attempt {ev['attempt']}" if (ev.get("attempt") or 1) > 1 else ""))
        elif t == "progress" and sid:
            self._progress(sid, ev)
        elif t == "agent" and ev.get("kind") == "command":
            self.print(f"    {sid} $ {ev.get('command')}  (exit {ev.get('exit_code')})")
        elif t == "agent" and ev.get("kind") == "prompt":
            self.print(f"--- prompt for {sid} ({ev.get('agent')}) ---\n{ev.get('text', '').rstrip()}\n---")
        elif t in MARKS:
            self._finished(t, sid, ev)

    def _progress(self, sid: str, ev: dict[str, Any]) -> None:
        total = ev.get("total")
        done = float(ev.get("done") or 0)
        if sid in self._ended:
            return
        if self.progress is not None:
            task = self._tasks.get(sid)
            if task is None:
                task = self._tasks[sid] = self.progress.add_task(sid[:14], total=total or None, info="")
            self.progress.update(task, completed=done, total=total or None, info=progress_text(ev))
            return
        # off a terminal: the first report, then every 10% (or every 30 s of the run's own time)
        t = float(ev.get("time") or 0.0)
        bucket = int(done * 10 // float(total)) if total else -1
        last = self._plain.get(sid)
        if last is None or bucket > last[0] or t - last[1] >= PLAIN_EVERY_S:
            self._plain[sid] = (bucket, t)
            self.print(f"    {sid} {progress_text(ev)}")

    def _finished(self, t: str, sid: str, ev: dict[str, Any]) -> None:
        if t not in ("step.retry", "step.repair"):  # those go on: the bar stays
            self._ended.add(sid)
            if self.progress is not None and sid in self._tasks:
                self.progress.remove_task(self._tasks.pop(sid))
                self.progress.refresh()  # the bar goes now, not at the live display's next tick
            self._plain.pop(sid, None)
        extra = ev.get("error") or ev.get("note") or ""
        dur = f" ({ev['duration']:.2f}s)" if isinstance(ev.get("duration"), int | float) and t == "step.succeeded" else ""
        self.print(f"  {MARKS[t]} {sid} {t.split('.', 1)[1]}{dur}{': ' + extra if extra else ''}", style=STYLES.get(t))
        if t == "step.failed":
            for line in self._log_tail(sid):
                self.print(f"    │ {line}", style="dim")

    def _log_tail(self, sid: str) -> list[str]:
        """The last lines a failing step wrote (its step.log), so the cause is on screen."""
        if self._run_path is None:
            return []
        log = self._run_path / "steps" / sid.replace("/", "_") / "step.log"
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if not ln.startswith("# ")][-TAIL_LINES:]  # "# <time> step …" headers are ours
