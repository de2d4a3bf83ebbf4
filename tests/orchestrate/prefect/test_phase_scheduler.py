"""The phase scheduler fails a step that can never start instead of spinning forever."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path

from codex_tasks.core import redact as redaction
from codex_tasks.orchestrate.context import RunContext
from codex_tasks.orchestrate.plan import Plan, PlannedPhase, PlannedStep
from codex_tasks.orchestrate.prefect.flow import PhaseScheduler
from codex_tasks.runs.rundir import RunDir


def test_a_step_waiting_on_a_step_that_never_runs_fails_instead_of_spinning(tmp_path: Path) -> None:
    # A valid plan never gets here (needs stay inside their phase, the graph is acyclic); a bug
    # that produced such a plan must end the phase, not hang the run.
    step = PlannedStep(id="late", phase_id="p", phase_name="p", description="", kind="shell",
                       needs=["ghost"])
    # the scheduler reads only the phases: no loaded sequence is needed
    plan = Plan(title="t", params={}, phases=[PlannedPhase(id="p", name="p", description="", steps=[step])],
                loaded=None)  # type: ignore[arg-type]
    rd = RunDir.create(tmp_path, "stuck-run")
    run = RunContext(plan=plan, rundir=rd, workspace=tmp_path, params={}, env={})
    stop: dict[str, object] = {}
    worker = threading.Thread(target=PhaseScheduler(run, 1, stop).run_phase, args=([step],), daemon=True)
    worker.start()
    worker.join(timeout=60)  # a deadline for the bug this guards; it returns at once when fixed
    assert not worker.is_alive(), "the scheduler is spinning"
    state = rd.step_state("late")
    assert state["status"] == "failed"
    assert "ghost (never started)" in state["error"]
    assert stop == {"stopped": True, "by": "late"}


UNPICKLE = """
import pickle, sys
from codex_tasks.core.redact import redact
run = pickle.loads(sys.stdin.buffer.read())
print(redact("step printed " + sys.argv[1]))
"""


def test_a_run_context_sent_to_another_process_brings_the_secret_values(tmp_path: Path) -> None:
    """A Dask worker gets the run context pickled: it must mask the run's registered values (a
    `type: secret` parameter has no format the rules know) in what it writes, as the run does."""
    secret = "envSecret-For-A-Worker-7731"
    plan = Plan(title="t", params={}, phases=[], loaded=None)  # type: ignore[arg-type]
    run = RunContext(plan=plan, rundir=RunDir.create(tmp_path, "r"), workspace=tmp_path, params={}, env={})
    redaction.register_values([secret])
    try:
        blob = pickle.dumps(run)
    finally:
        redaction.clear_values()
    out = subprocess.run([sys.executable, "-c", UNPICKLE, secret], input=blob, capture_output=True, check=True)
    assert out.stdout.decode().strip() == "step printed [REDACTED]"
