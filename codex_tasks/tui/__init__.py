"""The Textual TUI: run a sequence and watch it live, or watch / replay a run folder.

Layers: `source` reads a run folder (events tail, plan, state, error blocks, step logs);
`model` folds events into a run model (pure, no Textual); `widgets` and `screens` draw it;
`app.RunApp` wires them; `launch` holds the entry points. Importing this package is cheap:
Textual is imported only when a TUI starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codex_tasks.orchestrate.runner import RunOptions


def main(target: str | None = None, run_args: list[str] | None = None, workspace: str | None = None) -> int:
    """`codex-tasks tui [FILE | RUN] [run options]` (see `codex_tasks.tui.launch.main`)."""
    from codex_tasks.tui.launch import main as _main

    return _main(target, run_args, workspace)


def run_with_tui(options: RunOptions) -> int:
    """`codex-tasks run FILE --tui`: the run, with these options, shown in the TUI."""
    from codex_tasks.tui.launch import run_with_tui as _run

    return _run(options)


__all__ = ["main", "run_with_tui"]
