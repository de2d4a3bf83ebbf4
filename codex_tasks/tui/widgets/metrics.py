"""Sparklines of a step's metrics (loss and eval loss first), from `metric` events."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Label, Sparkline

MAX_SERIES = 4


def series_label(key: tuple[str, str, str], values: deque[float]) -> str:
    """`eval loss  2.41 (min 2.38)`."""
    _, split, name = key
    label = f"{split} {name}".strip() if split and split not in name else name
    last = values[-1] if values else float("nan")
    return f"{label}  {last:.4g} (min {min(values):.4g})" if values else label


class MetricSeries(Vertical):
    DEFAULT_CSS = """
    MetricSeries {
        height: 2;
        & > Label { color: $text-muted; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
        & > Sparkline { height: 1; }
    }
    """

    def __init__(self, key: tuple[str, str, str], values: deque[float]) -> None:
        super().__init__()
        self.key = key
        self.values = values

    def compose(self) -> ComposeResult:
        yield Label(series_label(self.key, self.values))
        yield Sparkline(list(self.values))

    def show(self, values: deque[float], key: tuple[str, str, str] | None = None) -> None:
        self.key = key or self.key
        self.values = values
        try:
            self.query_one(Label).update(series_label(self.key, values))
            self.query_one(Sparkline).data = list(values)
        except NoMatches:
            pass  # not composed yet: compose reads self.values


class MetricsPanel(VerticalScroll):
    """One sparkline per series of the shown step."""

    DEFAULT_CSS = """
    MetricsPanel {
        width: 1fr;
        max-width: 48;
        height: 1fr;
        border: round $primary 40%;
        border-title-color: $text-muted;
        padding: 0 1;
        &.-empty { display: none; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-empty")
        self.step_id: str | None = None
        self._rows: list[MetricSeries] = []

    def sync(self, step_id: str | None, series: dict[tuple[str, str, str], deque[float]]) -> None:
        """Show these series (of `step_id`). Rows are pooled and reused (no mount per step)."""
        self.step_id = step_id
        self.border_title = f"metrics: {step_id}" if step_id else "metrics"
        items = list(series.items())[:MAX_SERIES]
        for i, (key, values) in enumerate(items):
            if i < len(self._rows):
                row = self._rows[i]
                row.show(values, key)
                row.display = True
            else:
                row = MetricSeries(key, values)
                self._rows.append(row)
                self.mount(row)
        for row in self._rows[len(items):]:
            row.display = False
        self.set_class(not items, "-empty")
