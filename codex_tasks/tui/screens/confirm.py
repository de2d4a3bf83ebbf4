"""`c`: cancelling a run is asked once more, since it stops work that may have run for an hour."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmCancelScreen(ModalScreen[bool]):
    """Dismisses with True (cancel the run) or False (keep it running)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "choose(True)", "Cancel run"),
        Binding("n,escape", "choose(False)", "Keep running"),
    ]

    DEFAULT_CSS = """
    ConfirmCancelScreen {
        align: center middle;
        & > Grid {
            grid-size: 2;
            grid-gutter: 1 2;
            grid-rows: auto 3;
            padding: 1 2;
            width: 66;
            max-width: 96%;
            height: auto;
            border: thick $error 60%;
            background: $surface;
        }
        & #question { column-span: 2; width: 1fr; }
        & Button { width: 1fr; }
    }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label(f"Cancel run {self.run_id}? It stops at the next step boundary; its state is saved "
                        "and r resumes it.", id="question")
            yield Button("Cancel run (y)", variant="error", id="yes")
            yield Button("Keep running (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # enter keeps the run: the safe default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_choose(self, cancel: bool) -> None:
        self.dismiss(cancel)
