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
BAR_WIDTH = 16  # cells; with the percentage (5) this leaves the text 42 cells at 80 columns


def progress_line(pv: ProgressView, width: int | None = None) -> str:
    """`120/300 · loss 4.21 · 7.5k tok/s · ETA 1:02 · 2 step/s`, cut to `width` cells by
    dropping whole fields, least important first: step rate, tokens/s, loss, ETA (the count stays)."""
    if pv.waiting:
        return "starting…"
    unit = "" if pv.unit == "step" else f" {pv.unit}"  # `120/300` of a training needs no unit
    count = (f"{fmt.quantity(pv.done)}/{fmt.quantity(pv.total)}{unit}" if pv.total is not None
             else f"{fmt.quantity(pv.done)}{unit}")
    fields = [
        (0, count),
        (2, f"loss {pv.loss:.3g}" if pv.loss is not None else ""),
        (3, f"{fmt.compact(pv.tokens_per_s)} tok/s" if pv.tokens_per_s else ""),
        (1, f"ETA {fmt.short_clock(pv.eta)}" if pv.total is not None and pv.done < pv.total else ""),
        (4, fmt.rate(pv.rate, pv.unit)),
    ]
    return fmt.fit_fields(fields, width)


class StepProgress(Horizontal):
    """One step's bar: `train  ━━━━━━╸━━━  40%  120/300 · loss 4.21 · 7.5k tok/s · ETA 1:02`."""

    DEFAULT_CSS = """
    StepProgress {
        height: 1;
        width: 1fr;
        & > .step-id { width: 14; color: $text-accent; }
        & > ProgressBar { width: auto; }
        & > ProgressBar Bar { width: 16; }
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
        yield Label(" " + progress_line(self.pv, self._info_width()), classes="info")

    def _info_width(self) -> int | None:
        """Cells left for the text after the step id and the bar (None before the first layout)."""
        if not self.size.width:
            return None
        return max(8, self.size.width - 14 - BAR_WIDTH - 5 - 1)  # id, bar, percentage, a space

    def on_resize(self) -> None:
        self.show(self.pv)

    def show(self, pv: ProgressView) -> None:
        """Show `pv` (this bar may be reused for another step: no remount, no layout pass)."""
        self.step_id = pv.step_id
        self.pv = pv
        try:
            self.query_one(".step-id", Label).update(fmt.one_line(pv.step_id, 13))
            self.query_one(ProgressBar).update(total=pv.total if pv.total else None, progress=pv.done)
            self.query_one(".info", Label).update(" " + progress_line(pv, self._info_width()))
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
