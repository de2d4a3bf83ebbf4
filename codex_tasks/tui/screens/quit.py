"""`q` while a run this TUI started is still going: leave it running, or cancel it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitScreen(ModalScreen[str]):
    """Dismisses with `leave`, `cancel`, or `stay`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('stay')", "Stay"),
        Binding("l", "choose('leave')", "Leave running"),
        Binding("c", "choose('cancel')", "Cancel run"),
    ]

    DEFAULT_CSS = """
    QuitScreen {
        align: center middle;
        & > Grid {
            grid-size: 3;
            grid-gutter: 1 2;
            grid-rows: auto 3;
            padding: 1 2;
            width: 66;
            max-width: 96%;
            height: auto;
            border: thick $warning 60%;
            background: $surface;
        }
        & #question { column-span: 3; width: 1fr; content-align: center middle; }
        & Button { width: 1fr; }
    }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label(f"Run {self.run_id} is still going. Quit and…", id="question")
            yield Button("Leave running", variant="primary", id="leave")
            yield Button("Cancel run", variant="error", id="cancel")
            yield Button("Stay", id="stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "stay")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
