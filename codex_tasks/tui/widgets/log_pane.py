"""The selected step's log: its `step.log` tail, then new lines as they are written."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Log

MAX_LINES = 2000


class LogPane(Log):
    """A `Log` that knows which step it shows and whether it follows the end."""

    DEFAULT_CSS = """
    LogPane {
        height: 1fr;
        border: round $primary 40%;
        border-title-color: $text-muted;
        &:focus { border: round $primary; }
    }
    """

    step_id: reactive[str | None] = reactive[str | None](None)
    follow: reactive[bool] = reactive(True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, auto_scroll=True, id=id)
        self.offset_in_file = 0  # how far the step's log file has been read
        self.from_events = 0  # how many of the step's log events have been shown (no log file)

    def _title(self) -> None:
        mode = "follow" if self.follow else "paused"
        self.border_title = f"log: {self.step_id}" if self.step_id else "log"
        self.border_subtitle = f"l: {mode}"

    def watch_step_id(self) -> None:
        self._title()

    def watch_follow(self, follow: bool) -> None:
        self.auto_scroll = follow
        if follow:
            self.scroll_end(animate=False)
        self._title()

    def show_step(self, step_id: str | None) -> None:
        """Switch to another step: clear; the app then feeds its log."""
        self.clear()
        self.offset_in_file = 0
        self.from_events = 0
        self.step_id = step_id

    def add_lines(self, lines: list[str]) -> None:
        if lines:
            self.write_lines(lines, scroll_end=self.follow)
