"""The error blocks of the run: a list, the selected block as selectable text, copy or save."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from codex_tasks.tui import format as fmt


def error_label(record: dict[str, Any], width: int = 40) -> str:
    """`H2.1  assertion failed: test -f README.md`."""
    sid = str(record.get("step_id") or "?")
    msg = str(record.get("error_message") or record.get("error_type") or "")
    return fmt.one_line(f"{sid}  {msg}", width)


def blocks_text(records: list[dict[str, Any]]) -> str:
    """All rendered blocks, one after another, as `codex-tasks errors` prints them."""
    return "\n".join(str(r.get("rendered", "")).rstrip() + "\n" for r in records)


class ErrorsScreen(Screen[None]):
    """`e`: the run's error blocks. `c` copies the shown block, `s` saves all blocks to a file."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,e", "app.pop_screen", "Back"),
        Binding("c", "copy", "Copy block"),
        Binding("s", "save", "Save to file"),
    ]

    DEFAULT_CSS = """
    ErrorsScreen {
        & > #errors-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
        & > Horizontal { height: 1fr; }
        & OptionList { width: 30%; min-width: 20; max-width: 40; height: 1fr; border: round $error 40%; }
        & OptionList:focus { border: round $error; }
        & TextArea { width: 1fr; height: 1fr; border: round $primary 40%; }
        & TextArea:focus { border: round $primary; }
        & #no-errors { padding: 1 2; color: $text-muted; }
    }
    """

    def __init__(self, run_id: str, records: list[dict[str, Any]], save_dir: Path) -> None:
        super().__init__()
        self.run_id = run_id
        self.records = list(records)
        self.save_dir = save_dir
        self.saved_to: Path | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="errors-title")
        with Horizontal():
            yield OptionList(*[Option(error_label(r), id=str(i)) for i, r in enumerate(self.records)])
            yield TextArea("", read_only=True, soft_wrap=True, show_line_numbers=False, id="block")
        yield Footer()

    def _title(self) -> str:
        n = len(self.records)
        return f"errors of run {self.run_id}: {n} block{'s' if n != 1 else ''}" if n else \
            f"errors of run {self.run_id}: none recorded"

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.records:
            options.highlighted = 0
            self._show(0)
        else:
            self.query_one(TextArea).text = "No error blocks recorded for this run."
        options.focus()

    def set_records(self, records: list[dict[str, Any]]) -> None:
        """New blocks arrived while the screen is open."""
        if len(records) == len(self.records):
            return
        options = self.query_one(OptionList)
        for i, r in enumerate(records[len(self.records):], start=len(self.records)):
            options.add_option(Option(error_label(r), id=str(i)))
        first = not self.records
        self.records = list(records)
        self.query_one("#errors-title", Static).update(self._title())
        if first:
            options.highlighted = 0
            self._show(0)

    def _show(self, index: int) -> None:
        if 0 <= index < len(self.records):
            self.query_one(TextArea).text = str(self.records[index].get("rendered", "")).rstrip() + "\n"

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(event.option_index)

    @property
    def current(self) -> dict[str, Any] | None:
        index = self.query_one(OptionList).highlighted
        return self.records[index] if index is not None and 0 <= index < len(self.records) else None

    def action_copy(self) -> None:
        area = self.query_one(TextArea)
        text = area.selected_text or (str(self.current.get("rendered", "")) if self.current else "")
        if not text:
            self.notify("no error block to copy", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"copied {len(text.splitlines())} lines to the clipboard")

    def action_save(self) -> None:
        if not self.records:
            self.notify("no error blocks to save", severity="warning")
            return
        path = self.save_dir / f"errors-{self.run_id}.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(blocks_text(self.records), encoding="utf-8")
        except OSError as exc:
            self.notify(f"could not save: {exc}", severity="error")
            return
        self.saved_to = path
        self.notify(f"saved {len(self.records)} block(s) to {path}")
