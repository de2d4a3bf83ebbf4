"""The Prefect entrypoint for scheduled and deployed runs: one flow that runs a sequence.

`codex-tasks serve` serves it on a schedule; Prefect users can also point `prefect flow serve` /
`prefect deploy` at `flows/codex_flow.py:codex_sequence`. Each scheduled run executes
`codex-tasks run` logic in a fresh process, so the sequence's own flow run (named by the run id)
appears as a subflow of the scheduled one.
"""

from __future__ import annotations

from prefect import flow

from codex_tasks.errors import RunFailed


@flow(name="codex-sequence", persist_result=False, log_prints=True)
def codex_sequence(file: str, params: list[str] | None = None, workspace: str | None = None,
                   max_parallel: int = 4) -> str:
    """Run a codex-tasks sequence; fails when a step fails."""
    from codex_tasks.orchestrate.runner import RunOptions, run_sequence

    result = run_sequence(RunOptions(file=file, params=list(params or []), workspace=workspace,
                                     max_parallel=max_parallel, quiet=True))
    run_id = result.rundir.run_id if result.rundir else "?"
    print(f"codex-tasks run {run_id}: {result.status}")
    if result.exit_code != 0:
        raise RunFailed(f"codex-tasks run {run_id} {result.status} (exit {result.exit_code})",
                        exit_code=result.exit_code)
    return run_id
