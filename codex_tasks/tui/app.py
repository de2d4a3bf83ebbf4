"""The run view: tails a run folder's events into the model and redraws only what changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.clock import Clock
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from codex_tasks.errors import CodexTasksError
from codex_tasks.runs.cancel import cancel_run
from codex_tasks.runs.rundir import RESUMABLE
from codex_tasks.tui.controller import Launcher, RunController
from codex_tasks.tui.model import Changes, ProgressView, RunModel
from codex_tasks.tui.screens import ConfirmCancelScreen, ErrorsScreen, QuitScreen, StepDetailsScreen
from codex_tasks.tui.source import RunFolder
from codex_tasks.tui.widgets import LogPane, MetricsPanel, ProgressPanel, RunHeader, StepsTable

# step kinds that report progress: while one sets up (imports, data, model) it shows "starting…"
PROGRESS_KINDS = ("train", "tokenize", "evaluate", "audit", "agent")
STALE_CHECK_S = 2.0


class FilterInput(Input):
    """`/`: filter the steps as you type; enter keeps the filter, escape clears it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close(True)", "Clear filter")]

    DEFAULT_CSS = """
    FilterInput { dock: top; height: 3; display: none; border: tall $accent; }
    FilterInput.-shown { display: block; }
    """

    def action_close(self, clear: bool = False) -> None:
        if clear:
            self.value = ""
        self.remove_class("-shown")
        self.app.query_one(StepsTable).focus()


class RunApp(App[str | None]):
    """Shows one run: started by this TUI (a `RunController`), or watched / replayed from its folder.

    `clock` gives "now" in epoch seconds (elapsed time of running steps and the run); tests inject
    a fixed one. Rates and ETAs come only from event times, so they never drift in a replay.
    """

    TITLE = "codex-tasks"
    CSS = """
    Screen { layout: vertical; }
    #bottom { height: 2fr; min-height: 6; }
    #steps { height: 3fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_run", "Quit"),
        Binding("c", "cancel_run", "Cancel"),
        Binding("r", "resume_run", "Resume"),
        Binding("e", "errors", "Errors"),
        Binding("l", "toggle_follow", "Follow"),
        Binding("slash", "filter", "Filter", key_display="/"),
    ]

    def __init__(
        self,
        path: Path | None = None,
        *,
        controller: RunController | None = None,
        launcher: Launcher | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
        save_dir: Path | None = None,
        check_process: bool = True,
    ) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else None
        self.controller = controller
        self.launcher = launcher or (controller.launcher if controller is not None else None)
        self.clock = clock
        self.poll_interval = poll_interval
        self.save_dir = save_dir or Path.cwd()
        self.check_process = check_process
        self.folder: RunFolder | None = None
        self.model = RunModel()
        self._ui_clock = Clock(get_time=clock)
        self._errors_seen = 0
        self._last_stale_check = 0.0
        self._log_source: str | None = None  # "file" or "events" for the log pane's step

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield RunHeader()
        yield FilterInput(placeholder="filter steps: id, status, phase, text", id="filter")
        yield StepsTable(id="steps")
        yield ProgressPanel(self._ui_clock, id="progress")
        with Horizontal(id="bottom"):
            yield LogPane(id="log")
            yield MetricsPanel(id="metrics")
        yield Footer()

    @property
    def table(self) -> StepsTable:
        return self.query_one(StepsTable)

    @property
    def header(self) -> RunHeader:
        return self.query_one(RunHeader)

    @property
    def log_pane(self) -> LogPane:
        return self.query_one(LogPane)

    def on_mount(self) -> None:
        if self.controller is not None:
            self.header.title = Path(self.controller.options.file).name
        self.table.focus()
        if self.path is not None:
            self.attach(self.path)
        self.set_interval(self.poll_interval, self.poll)
        self.set_interval(1.0, self.tick)

    # ------------------------------------------------------------------ reading the run

    def attach(self, path: Path) -> None:
        """Start showing the run folder at `path` (replays its events so far)."""
        self.path = path
        self.folder = RunFolder(path)
        self.model = RunModel(run_id=self.folder.run_id)
        self.model.seed_plan(self.folder.plan_steps(), self.folder.phase_names())
        self.model.seed_state(self.folder.state())
        self._errors_seen = 0
        self.header.run_id = self.model.run_id
        self.header.title = self.model.title or self.header.title
        self.table.rebuild(self.model, self.clock())
        self.consume(self.folder.poll())
        failed = [s.id for s in self.model.steps.values() if s.status == "failed"]
        if failed and not self.model.is_live:
            self.table.select_step(failed[0])  # a finished failed run opens on its first failure
        self._show_selected()

    def _drawn(self) -> bool:
        """The widgets exist: a timer may fire while the screen is still built or already torn down."""
        return bool(self.default_screen.query(RunHeader))

    def poll(self) -> None:
        """Read what the run appended since the last poll (in batches) and show it."""
        if not self._drawn():
            return
        if self.folder is None:
            self._await_start()
            return
        events = self.folder.poll()
        if events:
            self.consume(events)
            if self.folder.behind:
                self.call_later(self.poll)  # a long backlog: keep reading, one batch per turn
        self._check_stale()

    def _await_start(self) -> None:
        ctl = self.controller
        if ctl is None:
            return
        if ctl.path is not None:
            self.attach(ctl.path)
        elif ctl.error is not None and self.header.state != "failed to start":
            self.header.state = "failed to start"
            self.notify(str(ctl.error), title="the run did not start", severity="error", timeout=30)

    def consume(self, events: list[dict]) -> Changes:  # type: ignore[type-arg]
        """Fold a batch of events into the model and redraw what changed."""
        selected = self.table.selected_step
        was_running = set(self.model.running_steps())
        changes = self.model.apply(events)
        now = self.clock()
        table = self.table
        if changes.structure or changes.reset:
            table.rebuild(self.model, now)
        else:
            if changes.steps:
                table.update_steps(self.model, changes.steps, now)
            if changes.phases:
                table.update_phases(self.model, changes.phases)
        self._update_header()
        started = [s for s in self.model.running_steps() if s not in was_running]
        if self.log_pane.follow and started and started[-1] != selected:
            table.select_step(started[-1])  # highlighting moves the log pane too
        elif selected is not None and (selected in changes.logs or selected in changes.steps):
            self._feed_log(selected)
        if changes.progress or changes.steps:
            self._sync_progress()
        if changes.metrics:
            self._sync_metrics()
        if any(self.model.steps[s].status == "failed" for s in changes.steps if s in self.model.steps) \
                or changes.run:
            self._refresh_errors()
        return changes

    def _check_stale(self) -> None:
        """A run recorded as running whose process is gone (killed) is shown as stale."""
        if not self.check_process or self.folder is None or not self.model.is_live:
            return
        if self.controller is not None and self.controller.running:
            return
        now = time.monotonic()
        if now - self._last_stale_check < STALE_CHECK_S:
            return
        self._last_stale_check = now
        if self.model.status == "running" and self.folder.process_alive() is False:
            self.model.stale = True
            self._update_header()

    # ------------------------------------------------------------------ redraws

    def tick(self) -> None:
        """Once a second: the elapsed clocks of the run and its running steps."""
        if not self._drawn():
            return
        now = self.clock()
        if self.model.is_live:
            self.header.elapsed = self.model.elapsed(now)
            self.table.tick(self.model, now)
        sel = self.table.selected_step
        if sel is not None and self.model.steps.get(sel) and self.model.steps[sel].status in ("running", "retrying"):
            self._feed_log(sel)  # a step may write its log without log events

    def _update_header(self) -> None:
        m = self.model
        h = self.header
        h.title = m.title or h.title
        h.run_id = m.run_id
        h.state = "stale" if m.stale else m.status
        h.elapsed = m.elapsed(self.clock())
        counts = m.counts()
        finished = sum(v for k, v in counts.items() if k not in ("pending", "running", "retrying"))
        parts = [f"{finished}/{len(m.steps)}"]
        if counts.get("failed"):
            parts.append(f"{counts['failed']} failed")
        if self._errors_seen:
            parts.append(f"{self._errors_seen} error{'s' if self._errors_seen > 1 else ''} (e)")
        self.table.border_title = "steps " + " · ".join(parts)

    def _sync_progress(self) -> None:
        views: list[ProgressView] = [
            self.model.progress.get(s) or ProgressView(step_id=s, waiting=True)
            for s in self.model.running_steps()
            if s in self.model.progress or self.model.steps[s].kind in PROGRESS_KINDS
        ]
        if not views:
            sel = self.table.selected_step
            if sel is not None and sel in self.model.progress:
                views = [self.model.progress[sel]]
        self.query_one(ProgressPanel).sync(views)

    def _metrics_step(self) -> str | None:
        sel = self.table.selected_step
        with_metrics = self.model.steps_with_metrics()
        if sel in with_metrics:
            return sel
        running = [s for s in self.model.running_steps() if s in with_metrics]
        if running:
            return running[-1]
        if not with_metrics:
            return None
        # else the step with the longest loss curve (a replay opens on the training step)
        def weight(sid: str) -> tuple[int, int]:
            series = self.model.metric_series(sid)
            return (max((len(v) for k, v in series.items() if "loss" in k[2]), default=0),
                    max(len(v) for v in series.values()))
        return max(with_metrics, key=weight)

    def _sync_metrics(self) -> None:
        step = self._metrics_step()
        series = self.model.metric_series(step) if step is not None else {}
        self.query_one(MetricsPanel).sync(step, series)

    def _refresh_errors(self) -> None:
        if self.folder is None:
            return
        records = self.folder.errors()
        if len(records) != self._errors_seen:
            self._errors_seen = len(records)
            self._update_header()
        if isinstance(self.screen, ErrorsScreen):
            self.screen.set_records(records)

    def _feed_log(self, step_id: str) -> None:
        """Append the step's new log lines: its step.log when there is one, else its log events."""
        pane = self.log_pane
        if pane.step_id != step_id:
            pane.show_step(step_id)
            self._log_source = None
        has_file = self.folder is not None and self.folder.step_log_path(step_id).is_file()
        source = "file" if has_file else "events"
        if source != self._log_source:
            if self._log_source is not None:
                pane.show_step(step_id)
            self._log_source = source
        if source == "file" and self.folder is not None:
            lines, pane.offset_in_file = self.folder.read_step_log(step_id, pane.offset_in_file)
            pane.add_lines(lines)
        else:
            buf = self.model.logs.get(step_id)
            total = self.model.log_totals.get(step_id, 0)
            if buf is not None and total > pane.from_events:
                fresh = min(total - pane.from_events, len(buf))  # the buffer keeps only the newest lines
                pane.add_lines(list(buf)[len(buf) - fresh:])
                pane.from_events = total

    def _show_selected(self) -> None:
        sel = self.table.selected_step
        if sel is not None:
            self._feed_log(sel)
        else:
            self.log_pane.show_step(None)
        self._sync_progress()
        self._sync_metrics()

    @on(DataTable.RowHighlighted, "#steps")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    @on(DataTable.RowSelected, "#steps")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    def on_steps_table_width_changed(self, message: StepsTable.WidthChanged) -> None:
        self.table.rebuild(self.model, self.clock())

    # ------------------------------------------------------------------ filter

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.filter_text = event.value.strip()
        self.table.rebuild(self.model, self.clock())
        self._show_selected()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.query_one(FilterInput).action_close()

    # ------------------------------------------------------------------ actions

    def action_filter(self) -> None:
        box = self.query_one(FilterInput)
        box.add_class("-shown")
        box.focus()

    def action_toggle_follow(self) -> None:
        pane = self.log_pane
        pane.follow = not pane.follow
        self.notify(f"log follow {'on' if pane.follow else 'off'}", timeout=2)

    def action_errors(self) -> None:
        if isinstance(self.screen, ErrorsScreen):
            return
        records = self.folder.errors() if self.folder is not None else []
        self.push_screen(ErrorsScreen(self.model.run_id, records, self.save_dir))

    def action_details(self) -> None:
        sel = self.table.selected_step
        if sel is None or self.folder is None or sel not in self.model.steps:
            return
        plan_step = next((s for s in self.folder.plan_steps() if str(s.get("id")) == sel), {})
        state_step = self.folder.state().get("steps", {}).get(sel, {})
        lines, _ = self.folder.read_step_log(sel, 0)
        if not lines:
            lines = list(self.model.logs.get(sel, []))
        self.push_screen(StepDetailsScreen(self.model.steps[sel], plan_step, state_step, lines))

    @property
    def owns_running_run(self) -> bool:
        return self.controller is not None and self.controller.running

    def action_quit_run(self) -> None:
        if not self.owns_running_run:
            self.exit(None)
            return

        def chosen(choice: str | None) -> None:
            if choice == "leave":
                self.exit("leave")
            elif choice == "cancel":
                self._cancel_own()
                self.exit("cancel")

        self.push_screen(QuitScreen(self.model.run_id or "(starting)"), chosen)

    def _cancel_own(self) -> None:
        assert self.controller is not None
        if self.controller.cancel():
            self.notify("cancelling: the run stops at the next step boundary (state saved)")
        else:
            self.notify("the run has already ended", severity="warning")

    def action_cancel_run(self) -> None:
        """Ask first; then cancel this TUI's run, or (as `codex-tasks cancel`) a run elsewhere."""
        if not self.owns_running_run and not (self.folder is not None and self.model.is_live):
            self.notify(f"run is not running ({self.model.status})", severity="warning")
            return
        if isinstance(self.screen, ConfirmCancelScreen):
            return

        def chosen(cancel: bool | None) -> None:
            if not cancel:
                return
            if self.owns_running_run:
                self._cancel_own()
            elif self.folder is not None and self.model.is_live:
                self._cancel_elsewhere(self.folder.path)

        self.push_screen(ConfirmCancelScreen(self.model.run_id or "(starting)"), chosen)

    @work(thread=True, exclusive=True, group="cancel")
    def _cancel_elsewhere(self, path: Path) -> None:
        """As `codex-tasks cancel RUN`: SIGUSR1 to the run's process; the run saves its state."""
        workspace = Path(self.folder.state().get("workspace") or Path.cwd()) if self.folder else Path.cwd()
        try:
            message = cancel_run(workspace, str(path), wait=0)
        except CodexTasksError as exc:
            self.call_from_thread(self.notify, exc.message, severity="warning")
            return
        self.call_from_thread(self.notify, message)

    def action_resume_run(self) -> None:
        if self.owns_running_run or self.folder is None:
            self.notify("nothing to resume: the run is still going", severity="warning")
            return
        state = self.folder.state()
        status = state.get("status")
        if status not in RESUMABLE or self.model.is_live:
            self.notify(f"nothing to resume: the run {status}", severity="warning")
            return
        if self.launcher is None:
            self.notify(f"resume it with: codex-tasks run FILE --resume={self.model.run_id}", severity="warning")
            return
        self.controller = RunController(self.launcher.resume(state, self.folder.run_id), self.launcher)
        self.controller.start()
        self.notify(f"resuming run {self.model.run_id}")

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:  # type: ignore[type-arg]
        yield from super().get_system_commands(screen)
        yield SystemCommand("Cancel run", "Stop the run cleanly, after a confirmation (state saved, resumable)",
                            self.action_cancel_run)
        yield SystemCommand("Resume run", "Continue a failed or cancelled run", self.action_resume_run)
        yield SystemCommand("Errors", "Show the error blocks (copy or save them)", self.action_errors)
        yield SystemCommand("Follow log", "Toggle following the log", self.action_toggle_follow)
        yield SystemCommand("Filter steps", "Filter the steps table", self.action_filter)
        yield SystemCommand("Step details", "Command, outputs and log of the selected step", self.action_details)
        yield SystemCommand("Quit run view", "Quit (asks when this TUI's run is still going)", self.action_quit_run)

