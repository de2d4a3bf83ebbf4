"""The Prefect entrypoint for scheduled and deployed runs: one flow that runs a sequence.

`codex-tasks serve` serves it on a schedule; Prefect users can also point `prefect flow serve` /
`prefect deploy` at `flows/codex_flow.py:codex_sequence`. Each scheduled run executes
`codex-tasks run` logic in a fresh process, so the sequence's own flow run (named by the run id)
appears as a subflow of the scheduled one.

Each scheduled run says a line when it starts and one when it ends on the `serve` terminal (the
process's stderr, written directly: `log_prints` sends `print()` to the flow run's log instead).
The flow never raises for a run that did not succeed: it returns a Failed or Cancelled state, since
Prefect pickles a raised exception into its result storage whatever `persist_result` says.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow

from codex_tasks.errors import CodexTasksError
from codex_tasks.orchestrate.options import RunOptions
from codex_tasks.orchestrate.runner import run_sequence
from codex_tasks.runs.rundir import RunDir


def say(text: str) -> None:
    """One line on the `serve` terminal, led by the local time."""
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


def _clip(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def last_output(run_dir: Path, step_id: str) -> str:
    """The last line a failed step wrote (from its error capture), or ''."""
    try:
        lines = (run_dir / "error_captures.ndjson").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    for raw in reversed(lines):
        try:
            capture = json.loads(raw)
        except ValueError:
            continue
        if capture.get("step_id") == step_id:
            said = [x for x in str(capture.get("context") or "").splitlines() if x.strip()]
            return said[-1].strip() if said else ""
    return ""


def ended_line(summary: dict[str, Any], said: str = "") -> str:
    """`run ID completed · 3 steps · 4.1 s`, or `run ID failed at step X: reason — codex-tasks show ID`
    (`said`: the failed step's last output line; `-w WORKSPACE` when the run's workspace is not the
    current folder)."""
    run_id, status = summary.get("run_id", "?"), str(summary.get("status", "?"))
    steps = summary.get("steps") or []
    took = f"{float(summary.get('duration') or 0):.1f} s"
    show = f"codex-tasks show {run_id}"
    workspace = summary.get("workspace")
    if workspace and Path(workspace).resolve() != Path.cwd().resolve():
        show += f" -w {workspace}"
    if status == "succeeded":
        others = {k: v for k, v in (summary.get("counts") or {}).items() if k != "succeeded"}
        extra = f" ({', '.join(f'{v} {k}' for k, v in sorted(others.items()))})" if others else ""
        return f"run {run_id} completed · {len(steps)} step{'s' if len(steps) != 1 else ''}{extra} · {took}"
    failed = next((s for s in steps if s.get("status") == "failed"), None)
    if status == "failed" and failed is not None:
        reason = str(failed.get("error") or failed.get("note") or "failed")
        reason = _clip(f"{reason}: {said}" if said and said not in reason else reason)
        return f"run {run_id} failed at step {failed['id']}: {reason} — {show}"
    return f"run {run_id} {status} after {took} — {show}"


def _started(rd: RunDir) -> None:
    """Say the run started, and name the scheduled flow run `<run-id> scheduled` (not Prefect's
    "hopeful-coati"); the sequence's own flow run inside it is named by the run id itself, so no
    two share a name."""
    from uuid import UUID

    from prefect import get_client
    from prefect.runtime import flow_run

    say(f"run {rd.run_id} started (scheduled)")
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(flow_run.id)), name=f"{rd.run_id} scheduled")
    except Exception as exc:  # history is best effort; the run itself goes on
        rd.events.emit("log", line=f"could not name the scheduled flow run: {exc}")


@flow(name="codex-sequence", persist_result=False, log_prints=True)
def codex_sequence(file: str, params: list[str] | None = None, workspace: str | None = None,
                   max_parallel: int = 4) -> Any:
    """Run a codex-tasks sequence; the flow run ends Failed when a step fails."""
    from prefect.states import Cancelled, Failed

    try:
        result = run_sequence(RunOptions(file=file, params=list(params or []), workspace=workspace,
                                         max_parallel=max_parallel, quiet=True, on_started=_started))
    except CodexTasksError as exc:  # bad input or environment (a run in progress, a file gone)
        say(f"scheduled run not started: {exc.render()}")
        return Failed(message=f"not started: {exc.render()}")
    rd = result.rundir
    if rd is None:
        say(f"scheduled run {result.status}")
        return Failed(message=f"codex-tasks run {result.status}")
    try:
        summary = json.loads((rd.path / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {"run_id": rd.run_id, "status": result.status}
    failed = next((s["id"] for s in summary.get("steps") or [] if s.get("status") == "failed"), None)
    line = ended_line(summary, last_output(rd.path, failed) if failed else "")
    say(line)
    print(line)  # to the flow run's log (log_prints)
    if result.exit_code == 0:
        return rd.run_id
    if result.status in ("interrupted", "cancelled"):
        return Cancelled(message=line)
    return Failed(message=line)
