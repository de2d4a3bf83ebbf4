"""codex-tasks: an offline-first task runner for machine-learning code repositories."""

__version__ = "0.1.0"
