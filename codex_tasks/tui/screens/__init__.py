"""Screens pushed over the run view: errors, step details, the quit and cancel questions."""

from codex_tasks.tui.screens.confirm import ConfirmCancelScreen
from codex_tasks.tui.screens.details import StepDetailsScreen
from codex_tasks.tui.screens.errors import ErrorsScreen
from codex_tasks.tui.screens.quit import QuitScreen

__all__ = ["ConfirmCancelScreen", "ErrorsScreen", "QuitScreen", "StepDetailsScreen"]
