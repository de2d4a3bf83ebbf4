"""The Textual TUI: run a sequence and watch it live, or watch / replay a run folder.

Layers: `source` reads a run folder (events tail, plan, state, error blocks, step logs);
`model` folds events into a run model (pure, no Textual); `widgets` and `screens` draw it;
`app.RunApp` wires them; `launch` holds the entry points. Importing this package imports
Textual; the CLI imports it only for `tui` and `run --tui`.
"""

from __future__ import annotations

from codex_tasks.tui.controller import Launcher
from codex_tasks.tui.launch import main, run_with_tui

__all__ = ["Launcher", "main", "run_with_tui"]
