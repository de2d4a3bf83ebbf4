"""Progress bars for the running steps, with rate and ETA from `progress` events."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.clock import Clock
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Label, ProgressBar

from codex_tasks.tui import format as fmt
from codex_tasks.tui.model import ProgressView

MAX_BARS = 3


def progress_line(pv: ProgressView) -> str:
    """`620/1000 step · 45 step/s · ETA 0:00:08 · loss 2.310`."""
    parts = [f"{fmt.quantity(pv.done)}/{fmt.quantity(pv.total)} {pv.unit}" if pv.total is not None
             else f"{fmt.quantity(pv.done)} {pv.unit}"]
    r = fmt.rate(pv.rate, pv.unit)
    if r:
        parts.append(r)
    if pv.total is not None and pv.done < pv.total:
        parts.append(f"ETA {fmt.clock(pv.eta)}")
    if pv.loss is not None:
        parts.append(f"loss {pv.loss:.3f}")
    return " · ".join(parts)


class StepProgress(Horizontal):
    """One step's bar: `train  ━━━━━━╸━━━  62%  620/1000 step · 45 step/s · ETA 0:00:08`."""

    DEFAULT_CSS = """
    StepProgress {
        height: 1;
        width: 1fr;
        & > .step-id { width: 14; color: $text-accent; }
        & > ProgressBar { width: auto; }
        & > ProgressBar Bar { width: 24; }
        & > .info { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    }
    """

    def __init__(self, pv: ProgressView, clock: Clock | None = None) -> None:
        super().__init__(classes="step-progress")
        self.step_id = pv.step_id
        self.pv = pv
        self._clock = clock

    def compose(self) -> ComposeResult:
        yield Label(fmt.one_line(self.step_id, 13), classes="step-id")
        bar = ProgressBar(total=self.pv.total or None, show_eta=False, clock=self._clock)
        bar.progress = self.pv.done
        yield bar
        yield Label(" " + progress_line(self.pv), classes="info")

    def show(self, pv: ProgressView) -> None:
        """Show `pv` (this bar may be reused for another step: no remount, no layout pass)."""
        self.step_id = pv.step_id
        self.pv = pv
        try:
            self.query_one(".step-id", Label).update(fmt.one_line(pv.step_id, 13))
            self.query_one(ProgressBar).update(total=pv.total if pv.total else None, progress=pv.done)
            self.query_one(".info", Label).update(" " + progress_line(pv))
        except NoMatches:
            pass  # not composed yet: compose reads self.pv


class ProgressPanel(Vertical):
    """The running steps' progress (or, when none runs, the selected step's last progress)."""

    DEFAULT_CSS = """
    ProgressPanel {
        height: auto;
        max-height: 4;
        padding: 0 1;
        &.-empty { display: none; }
    }
    """

    def __init__(self, clock: Clock | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-empty")
        self._clock = clock
        self._bars: list[StepProgress] = []
        self._shown: list[str] = []

    def sync(self, views: list[ProgressView]) -> None:
        """Show these steps' bars, in order. Bars are pooled and reused (no mount per step)."""
        views = views[:MAX_BARS]
        for i, pv in enumerate(views):
            if i < len(self._bars):
                bar = self._bars[i]
                bar.show(pv)
                bar.display = True
            else:
                bar = StepProgress(pv, self._clock)
                self._bars.append(bar)
                self.mount(bar)
        for bar in self._bars[len(views):]:
            bar.display = False
        self._shown = [pv.step_id for pv in views]
        self.set_class(not views, "-empty")

    @property
    def step_ids(self) -> list[str]:
        return list(self._shown)
