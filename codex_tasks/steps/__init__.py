"""Step kinds: one module each, registered here by name (imported lazily)."""

from __future__ import annotations

import importlib
from types import ModuleType

from codex_tasks.steps.base import StepContext, StepResult, WithModel

__all__ = ["KINDS", "StepContext", "StepResult", "WithModel", "load_kind", "kind_names"]

# name -> module. Adding a kind: write the module, add one line here.
KINDS: dict[str, str] = {
    "shell": "codex_tasks.steps.shell",
    "tokenize": "codex_tasks.steps.tokenize",
    "train": "codex_tasks.steps.train",
    "evaluate": "codex_tasks.steps.evaluate",
    "checkpoint_prune": "codex_tasks.steps.checkpoint_prune",
    "audit": "codex_tasks.steps.audit",
    "patch": "codex_tasks.steps.patch",
    "safety_scan": "codex_tasks.steps.safety_scan",
    "provenance": "codex_tasks.steps.provenance",
    "test": "codex_tasks.steps.test_runner",
    "archive": "codex_tasks.steps.archive",
    "changelog": "codex_tasks.steps.changelog",
    "agent": "codex_tasks.steps.agent",
}


def kind_names() -> list[str]:
    return sorted(KINDS)


def load_kind(name: str) -> ModuleType:
    """Import a kind's module (its top level is light: models only)."""
    return importlib.import_module(KINDS[name])
