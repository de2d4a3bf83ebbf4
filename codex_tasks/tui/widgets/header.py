"""The one-line header: title, run id, overall state, elapsed time, step counts."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from codex_tasks.tui import format as fmt


class RunHeader(Widget):
    """`Title  20261130-120000-f1x7  ● running  0:01:05`."""

    DEFAULT_CSS = """
    RunHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    title: reactive[str] = reactive("")
    run_id: reactive[str] = reactive("")
    state: reactive[str] = reactive("starting")
    elapsed: reactive[float | None] = reactive[float | None](None)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.title or "codex-tasks", style="bold")
        if self.run_id:
            text.append("  " + self.run_id, style="dim")
        text.append("  ")
        text.append(f"● {self.state}", style=fmt.RUN_STYLES.get(self.state, "bold"))
        text.append("  ")
        text.append(fmt.clock(self.elapsed))
        return text
