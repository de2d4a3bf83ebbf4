"""The TUI's widgets: small, each with its own scoped CSS and reactive attributes."""

from codex_tasks.tui.widgets.header import RunHeader
from codex_tasks.tui.widgets.log_pane import LogPane
from codex_tasks.tui.widgets.metrics import MetricsPanel
from codex_tasks.tui.widgets.progress import ProgressPanel, StepProgress
from codex_tasks.tui.widgets.steps_table import StepsTable

__all__ = ["LogPane", "MetricsPanel", "ProgressPanel", "RunHeader", "StepProgress", "StepsTable"]
