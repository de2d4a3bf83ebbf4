"""Shipped templates (package data: `codex_tasks.templates` in the wheel; see codex_tasks/resources.py)."""
