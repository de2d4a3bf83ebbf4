"""How values read on screen: durations, rates, ETAs, status marks. Pure functions."""

from __future__ import annotations

from rich.text import Text

from codex_tasks.tui.model import STATUS_WORDS

# one-cell marks only (wide emoji break column alignment over SSH)
STATUS_MARKS = {
    "pending": "○",
    "running": "▶",
    "retrying": "↻",
    "succeeded": "✓",
    "failed": "✗",
    "cached": "↺",
    "manual": "✎",
    "skipped": "–",
    "not_run": "·",
}
STATUS_STYLES = {
    "pending": "dim",
    "running": "bold $accent",
    "retrying": "bold $warning",
    "succeeded": "$success",
    "failed": "bold $error",
    "cached": "$secondary",
    "manual": "$warning",
    "skipped": "dim",
    "not_run": "dim",
}
# Rich styles (the table renders Rich Text, which knows no Textual variables)
RICH_STYLES = {
    "pending": "dim",
    "running": "bold cyan",
    "retrying": "bold yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cached": "blue",
    "manual": "yellow",
    "skipped": "dim",
    "not_run": "dim",
}
RUN_STYLES = {
    "pending": "dim",
    "starting": "dim",
    "running": "bold cyan",
    "succeeded": "bold green",
    "failed": "bold red",
    "interrupted": "bold yellow",
    "cancelled": "bold yellow",
    "stale": "bold magenta",
}


def status_text(status: str) -> Text:
    """`✓ done`, styled."""
    word = STATUS_WORDS.get(status, status)
    return Text(f"{STATUS_MARKS.get(status, '?')} {word}", style=RICH_STYLES.get(status, ""))


def duration(seconds: float | None) -> str:
    """`0.2s`, `12s`, `3m05s`, `1h02m`; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def clock(seconds: float | None) -> str:
    """`0:03:05` (elapsed, ETA)."""
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def short_clock(seconds: float | None) -> str:
    """`1:02`, `12:05`, `1:02:03`: an ETA in as few cells as it needs."""
    if seconds is None:
        return "--:--"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def fit_fields(fields: list[tuple[int, str]], width: int | None, sep: str = " · ") -> str:
    """Join `(priority, text)` fields in order, dropping the least important (highest number)
    until the line fits `width` cells; the most important field is always kept."""
    kept = [f for f in fields if f[1]]
    if width is not None:
        while len(kept) > 1 and len(sep.join(t for _, t in kept)) > width:
            kept.remove(max(kept, key=lambda f: f[0]))
    return sep.join(t for _, t in kept)


def quantity(value: float) -> str:
    """`12`, `1.5k`, `2.3M`: short counts for progress lines."""
    v = abs(value)
    if v >= 1e6:
        return f"{value / 1e6:.1f}M"
    if v >= 1e4:
        return f"{value / 1e3:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def compact(value: float) -> str:
    """`850`, `7.5k`, `12.3k`, `1.2M`: a throughput in at most five cells."""
    v = abs(value)
    if v >= 1e6:
        return f"{value / 1e6:.1f}M"
    if v >= 1e3:
        return f"{value / 1e3:.1f}k"
    return str(int(round(value)))


def rate(per_second: float | None, unit: str) -> str:
    if not per_second:
        return ""
    if per_second >= 1:
        return f"{quantity(round(per_second, 1))} {unit}/s"
    return f"{1 / per_second:.1f} s/{unit}"


def one_line(text: str, width: int) -> str:
    """The first line of `text`, cut to `width` cells with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if width <= 0:
        return ""
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"
