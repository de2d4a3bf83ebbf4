"""Prefect entrypoint for codex-tasks sequences.

    prefect flow serve flows/codex_flow.py:codex_sequence --name nightly --interval 86400
    prefect deploy --all          # uses prefect.yaml beside this folder (needs a work pool)

Parameters: file (the sequence), params (["k=v", ...]), workspace, max_parallel.
"""

from codex_tasks.orchestrate.prefect.entrypoint import codex_sequence

__all__ = ["codex_sequence"]
