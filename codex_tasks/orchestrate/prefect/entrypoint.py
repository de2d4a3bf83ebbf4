"""The Prefect entrypoint for scheduled and deployed runs: one flow that runs a sequence.

`codex-tasks serve` serves it on a schedule; Prefect users can also point `prefect flow serve` /
`prefect deploy` at `flows/codex_flow.py:codex_sequence`. Each scheduled run executes
`codex-tasks run` logic in a fresh process, so the sequence's own flow run (named by the run id)
appears as a subflow of the scheduled one.
"""

from __future__ import annotations

import sys

from prefect import flow

from codex_tasks.errors import RunFailed
from codex_tasks.orchestrate.options import RunOptions
from codex_tasks.orchestrate.runner import run_sequence
from codex_tasks.runs.rundir import RunDir


def _name_by_run_id(rd: RunDir) -> None:
    """The scheduled flow run is named `<run-id> scheduled` (not Prefect's "hopeful-coati"); the
    sequence's own flow run inside it is named by the run id itself, so no two share a name."""
    from uuid import UUID

    from prefect import get_client
    from prefect.runtime import flow_run

    print(f"codex-tasks run {rd.run_id} started (scheduled)", file=sys.stderr, flush=True)
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(flow_run.id)), name=f"{rd.run_id} scheduled")
    except Exception as exc:  # history is best effort; the run itself goes on
        rd.events.emit("log", line=f"could not name the scheduled flow run: {exc}")


@flow(name="codex-sequence", persist_result=False, log_prints=True)
def codex_sequence(file: str, params: list[str] | None = None, workspace: str | None = None,
                   max_parallel: int = 4) -> str:
    """Run a codex-tasks sequence; fails when a step fails."""
    result = run_sequence(RunOptions(file=file, params=list(params or []), workspace=workspace,
                                     max_parallel=max_parallel, quiet=True, on_started=_name_by_run_id))
    run_id = result.rundir.run_id if result.rundir else "?"
    line = f"codex-tasks run {run_id}: {result.status} (codex-tasks show {run_id} -w {workspace or '.'})"
    print(line)  # to the flow run's log (log_prints)
    print(line, file=sys.stderr, flush=True)  # and a line per scheduled run on the `serve` terminal
    if result.exit_code != 0:
        raise RunFailed(f"codex-tasks run {run_id} {result.status} (exit {result.exit_code})",
                        exit_code=result.exit_code)
    return run_id
