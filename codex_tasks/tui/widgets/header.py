"""The one-line header: overall state and elapsed time first, then the title and run id.

At 80 columns the state and clock always show; the title is cut with an ellipsis and the run id
is left out before the title is cut below a readable length.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from codex_tasks.tui import format as fmt

MIN_TITLE = 24  # below this many cells of title the run id gives way


class RunHeader(Widget):
    """`● running  0:01:05  Title  20261130-120000-f1x7`."""

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
        text.append(f"● {self.state}", style=fmt.RUN_STYLES.get(self.state, "bold"))
        text.append("  ")
        text.append(fmt.clock(self.elapsed))
        room = (self.content_size.width or 1000) - text.cell_len - 2  # 0 before the first layout
        title = self.title or "codex-tasks"
        run_id = f"  {self.run_id}" if self.run_id else ""
        if len(title) + len(run_id) > room and min(len(title), MIN_TITLE) + len(run_id) > room:
            run_id = ""  # too narrow for both: the title is the more telling
        text.append("  ")
        text.append(fmt.one_line(title, max(1, room - len(run_id))), style="bold")
        text.append(run_id, style="dim")
        return text
