"""The step kinds by name (`uses: NAME`), and the module that implements each.

A plain table below `steps/`, so checking a sequence file never imports a step kind.
Adding a kind: write its module in `codex_tasks/steps/`, add one line here.
"""

from __future__ import annotations

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
    """Every kind name, sorted."""
    return sorted(KINDS)
