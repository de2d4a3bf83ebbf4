"""Step kinds: one module each, named in `sequence/kinds.py` (imported when used)."""

from __future__ import annotations

import importlib
from types import ModuleType

from codex_tasks.sequence.kinds import KINDS, kind_names
from codex_tasks.steps.base import StepContext, StepResult, WithModel

__all__ = ["KINDS", "StepContext", "StepResult", "WithModel", "load_kind", "kind_names"]

def load_kind(name: str) -> ModuleType:
    """Import a kind's module (its top level is light: models only)."""
    return importlib.import_module(KINDS[name])
