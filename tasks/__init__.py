"""The task library (package data: `codex_tasks.tasks` in the wheel, `builtin:NAME`; see codex_tasks/resources.py)."""
