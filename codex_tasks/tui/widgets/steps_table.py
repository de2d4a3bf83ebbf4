"""Phases and steps as one table: a row per phase, then a row per step, updated cell by cell."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from codex_tasks.tui import format as fmt
from codex_tasks.tui.model import RunModel, StepView

PHASE_PREFIX = "phase:"
STATUS_W, DUR_W = 10, 7


def step_matches(view: StepView, needle: str) -> bool:
    """The `/` filter: a case-insensitive substring of id, status, phase, description or note."""
    if not needle:
        return True
    hay = f"{view.id}\n{view.word}\n{view.status}\n{view.phase_id}\n{view.description}\n{view.note}".lower()
    return needle.lower() in hay


class StepsTable(DataTable[Text]):
    """The run's phases and steps: status, duration, and a short note."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Details", tooltip="Open the step's details"),
    ]

    DEFAULT_CSS = """
    StepsTable {
        height: 1fr;
        min-height: 5;
        border: round $primary 40%;
        border-title-color: $text-muted;
        &:focus { border: round $primary; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.filter_text = ""
        self._id_width = 8
        self._note_width = 40
        self._shown: list[str] = []  # row keys, in order

    def on_mount(self) -> None:
        self.border_title = "steps"
        self._add_columns()

    def _add_columns(self) -> None:
        self.add_column("status", width=STATUS_W, key="status")
        self.add_column("step", width=self._id_width, key="step")
        self.add_column("time", width=DUR_W, key="time")
        self.add_column("note", width=self._note_width, key="note")

    # ------------------------------------------------------------------ rows

    def _widths(self, model: RunModel) -> tuple[int, int]:
        longest = max((len(s) for s in model.steps), default=4)
        id_w = max(4, min(longest, 28))
        inner = (self.size.width or 80) - 2 - 2 * 4 - 1  # border, cell padding, scrollbar slack
        note_w = max(10, inner - STATUS_W - id_w - DUR_W)
        return id_w, note_w

    def _step_cells(self, view: StepView, now: float) -> tuple[Text, Text, Text, Text]:
        note = view.note or view.description
        return (
            fmt.status_text(view.status),
            Text(view.id, no_wrap=True, overflow="ellipsis"),
            Text(fmt.duration(view.elapsed(now)), justify="right"),
            Text(fmt.one_line(note, self._note_width), style="dim" if not view.note else ""),
        )

    def _phase_cells(self, model: RunModel, pid: str) -> tuple[Text, Text, Text, Text]:
        phase = model.phases[pid]
        status = model.phase_status(pid)
        done = sum(1 for s in phase.step_ids if model.steps[s].status not in ("pending", "running", "retrying"))
        label = f"{phase.name or 'phase ' + pid}  ({done}/{len(phase.step_ids)})"
        return (
            Text(fmt.STATUS_MARKS.get(status, "?") + " " + "phase", style=fmt.RICH_STYLES.get(status, "")),
            Text(pid, style="bold", no_wrap=True, overflow="ellipsis"),
            Text(""),
            Text(fmt.one_line(label, self._note_width), style="bold"),
        )

    def rebuild(self, model: RunModel, now: float) -> None:
        """All rows again (on new steps, a filter change, or a resize); keeps the cursor's row."""
        keep = self.selected_key
        id_w, note_w = self._widths(model)
        if (id_w, note_w) != (self._id_width, self._note_width):
            self._id_width, self._note_width = id_w, note_w
            self.clear(columns=True)
            self._add_columns()
        else:
            self.clear()
        self._shown = []
        for pid, phase in model.phases.items():
            views = [model.steps[s] for s in phase.step_ids if step_matches(model.steps[s], self.filter_text)]
            if not views:
                continue
            if pid or len(model.phases) > 1:
                self.add_row(*self._phase_cells(model, pid), key=PHASE_PREFIX + pid)
                self._shown.append(PHASE_PREFIX + pid)
            for view in views:
                self.add_row(*self._step_cells(view, now), key=view.id)
                self._shown.append(view.id)
        self.border_subtitle = f"filter: {self.filter_text}" if self.filter_text else ""
        if keep is not None and keep in self._shown:
            self.move_cursor(row=self._shown.index(keep), animate=False)
        elif self._shown:
            first_step = next((i for i, k in enumerate(self._shown) if not k.startswith(PHASE_PREFIX)), 0)
            self.move_cursor(row=first_step, animate=False)

    def update_steps(self, model: RunModel, step_ids: set[str], now: float) -> None:
        """Redraw the changed steps' cells (rows hidden by the filter are skipped)."""
        for sid in step_ids:
            view = model.steps.get(sid)
            if view is None:
                continue
            cells = self._step_cells(view, now)
            try:
                for key, cell in zip(("status", "step", "time", "note"), cells, strict=True):
                    self.update_cell(sid, key, cell)
            except (CellDoesNotExist, RowDoesNotExist, KeyError):
                continue

    def update_phases(self, model: RunModel, phase_ids: set[str]) -> None:
        for pid in phase_ids:
            if pid not in model.phases:
                continue
            cells = self._phase_cells(model, pid)
            try:
                for key, cell in zip(("status", "step", "time", "note"), cells, strict=True):
                    self.update_cell(PHASE_PREFIX + pid, key, cell)
            except (CellDoesNotExist, RowDoesNotExist, KeyError):
                continue

    def tick(self, model: RunModel, now: float) -> None:
        """Running steps' durations move with the clock."""
        for sid in model.running_steps():
            view = model.steps[sid]
            try:
                self.update_cell(sid, "time", Text(fmt.duration(view.elapsed(now)), justify="right"))
            except (CellDoesNotExist, RowDoesNotExist, KeyError):
                continue

    def select_step(self, step_id: str) -> None:
        if step_id in self._shown:
            self.move_cursor(row=self._shown.index(step_id), animate=False)

    # ------------------------------------------------------------------ queries

    @property
    def selected_key(self) -> str | None:
        if not self._shown or not (0 <= self.cursor_row < len(self._shown)):
            return None
        return self._shown[self.cursor_row]

    @property
    def selected_step(self) -> str | None:
        key = self.selected_key
        return None if key is None or key.startswith(PHASE_PREFIX) else key

    @property
    def shown_steps(self) -> list[str]:
        return [k for k in self._shown if not k.startswith(PHASE_PREFIX)]

    def on_resize(self, event: Resize) -> None:
        self.post_message(self.WidthChanged())

    class WidthChanged(Message):
        """The table was resized: its note column needs a new width."""
