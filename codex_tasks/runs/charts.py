"""The report's charts: one small matplotlib chart per metric family of a step.

Metrics of very different sizes (a loss of ~4 and ~10⁴ tokens/s) never share an axis: each family
(loss, perplexity, accuracy, learning rate, throughput, system %, memory) gets its own chart.
A family in which every series holds a single point is a value, not a curve: it goes to the
report's table of final values instead. matplotlib is imported only when a run has a chart to
draw (the import costs ~1.2 s), and only its object API is used, so no global backend is set.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks.runs.events import read_events

Series = list[tuple[float, float]]

# (family, title, y-axis scale); the order is the order of the charts in the report
FAMILIES: dict[str, tuple[str, str]] = {
    "loss": ("loss", "linear"),
    "perplexity": ("perplexity", "log"),
    "accuracy": ("token accuracy", "linear"),
    "lr": ("learning rate", "linear"),
    "throughput": ("throughput (tokens/s)", "linear"),
    "system_percent": ("system: CPU, RAM, GPU (%)", "linear"),
    "system_memory": ("system: memory (MB)", "linear"),
}

_LABELS = {
    "cpu_utilization_percentage": "CPU",
    "system_memory_usage_percentage": "RAM",
    "system_memory_usage_megabytes": "RAM used",
    "process_rss_megabytes": "this process",
}
_GPU = re.compile(r"gpu_(\d+)_(utilization_percentage|memory_usage_percentage|memory_usage_megabytes)")


@dataclass
class Chart:
    """One chart: the step it belongs to, its family, and its named series of (step, value)."""

    step_id: str
    family: str
    title: str
    scale: str = "linear"
    lines: dict[str, Series] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """A file-name-safe `<step>-<family>`."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.step_id}-{self.family}").strip("-")


def family_of(split: str, name: str) -> tuple[str, str]:
    """The family a metric belongs to and its label within the family's chart."""
    if split == "system":
        gpu = _GPU.fullmatch(name)
        if gpu:
            index, what = gpu.groups()
            label = f"GPU {index}" + (" memory" if "memory" in what else "")
            return ("system_memory" if what.endswith("megabytes") else "system_percent"), label
        family = "system_memory" if name.endswith("megabytes") else "system_percent"
        return family, _LABELS.get(name, name)
    known = {"loss": "loss", "perplexity": "perplexity", "token_accuracy": "accuracy", "lr": "lr",
             "tokens_per_s": "throughput"}
    if name in known:
        return known[name], split or name
    return name, (f"{split} {name}" if split else name)


def read_charts(run_path: Path) -> list[Chart]:
    """Every step's metric events grouped into charts, in the order of the run and of `FAMILIES`."""
    charts: dict[tuple[str, str], Chart] = {}
    events_file = run_path / "events.ndjson"
    if not events_file.exists():
        return []
    for ev in read_events(events_file):
        if ev.get("type") != "metric":
            continue
        try:
            value = float(ev["value"])
        except (KeyError, TypeError, ValueError):
            continue
        step_id = str(ev.get("step_id"))
        family, label = family_of(str(ev.get("split") or ""), str(ev.get("name")))
        title, scale = FAMILIES.get(family, (family, "linear"))
        chart = charts.setdefault((step_id, family), Chart(step_id, family, title, scale))
        pts = chart.lines.setdefault(label, [])
        pts.append((float(ev["step"]) if ev.get("step") is not None else float(len(pts)), value))
    order = list(FAMILIES)
    steps = list(dict.fromkeys(k[0] for k in charts))
    return sorted(charts.values(), key=lambda c: (steps.index(c.step_id),
                                                 order.index(c.family) if c.family in order else len(order), c.family))


def is_curve(chart: Chart) -> bool:
    """A chart worth drawing: some series has two or more points."""
    return any(len(pts) > 1 for pts in chart.lines.values())


@dataclass
class Drawn:
    """A drawn chart: inline SVG text for report.html and the PNG written beside report.md."""

    chart: Chart
    svg: str
    png: Path


def draw_charts(charts: list[Chart], folder: Path) -> list[Drawn]:
    """Draw each chart as SVG (returned) and PNG (written to `folder/<step>-<family>.png`)."""
    if not charts:
        return []
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for chart in charts:
        fig = Figure(figsize=(5.6, 2.6), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        _plot(ax, chart)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        png = folder / f"{chart.slug}.png"
        tmp = png.with_suffix(".png.tmp")
        fig.savefig(tmp, format="png", metadata={"Software": None})
        tmp.replace(png)
        svg = buf.getvalue()
        drawn.append(Drawn(chart, svg[svg.find("<svg"):], png))
    return drawn


def _plot(ax: Any, chart: Chart) -> None:
    for label, pts in chart.lines.items():
        pts = sorted(pts, key=lambda p: p[0])  # stable: samples within one step keep their order
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        # markers make a short series (one eval point among many train points) visible
        marker = "o" if len(pts) <= 30 else None
        ax.plot(xs, ys, label=label, linewidth=1.4, marker=marker, markersize=4 if len(pts) > 1 else 6)
    ys = [y for pts in chart.lines.values() for _, y in pts]
    # a log axis only where the values span more than a decade (perplexity falling from thousands)
    if chart.scale == "log" and min(ys) > 0 and max(ys) / min(ys) > 10:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 100, not 10²
    else:  # 3e-4 as 3 with ×1e−4, and 12000 as is
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 5), useOffset=False)
    ax.figure.suptitle(f"{chart.step_id}: {chart.title}", x=0.01, ha="left", fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(which="both", labelsize=8)
    ax.grid(True, alpha=0.3)
    if len(chart.lines) > 1:
        # the legend sits in its own row between the title and the plotting area, never over a line
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=min(len(chart.lines), 4), fontsize=8,
                  frameon=False, borderaxespad=0.2, handlelength=1.5, columnspacing=1.0)
