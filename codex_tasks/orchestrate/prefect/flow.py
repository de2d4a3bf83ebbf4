"""Compile a rendered plan into a Prefect 3 flow and run it.

One Prefect task run per step, named by the step id. Phases run in order; inside a phase a small
scheduler starts each step when the steps it waits for are done: alone, it is called directly in
the flow (a plain task call is the cheapest way through Prefect), otherwise the ready steps are
submitted to the task runner (bounded by `--max-parallel`). `on_error: stop` fails closed: no new
step starts and the rest are `not_run`; `continue` goes on with the steps that do not depend on
the failed one. A failed step is raised out of the flow so the flow run ends Failed (Prefect
marks a flow Completed when a submitted task failed unless the failure is passed up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from codex_tasks.core.names import slug
from codex_tasks.core.redact import redact
from codex_tasks.errors import StepFailed
from codex_tasks.orchestrate.context import RunContext
from codex_tasks.orchestrate.execute import OK_STATUSES, Outcome, execute_step, record_not_run
from codex_tasks.orchestrate.legacy_params import max_errors_reached
from codex_tasks.orchestrate.plan import PlannedStep
from codex_tasks.orchestrate.prefect.rest import flow_run_name
from codex_tasks.orchestrate.prefect.setup import show_parameters

STATE_NAMES = {"cached": "Cached", "manual": "Manual", "skipped": "Skipped"}


class StepTasks:
    """The Prefect tasks that run steps: one per retry setting, shared by the steps that have it.

    A task run per step, named by the step id (`task_run_name` is formatted from the call's
    `step_id` parameter). Building a Prefect `Task` hashes its function and reads its source
    (~1.3 ms); a 100-step run built one per step, so steps now share them, as a hand-written flow
    calls one task many times."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self._tasks: dict[tuple[int, float], Any] = {}

    def for_step(self, step: PlannedStep) -> Any:
        key = (step.retries, step.retry_delay)
        if key not in self._tasks:
            self._tasks[key] = make_step_task(self.run, retries=step.retries, retry_delay=step.retry_delay)
        return self._tasks[key]


def make_step_task(run: RunContext, *, retries: int = 0, retry_delay: float = 0.0) -> Any:
    """A Prefect task that runs the step named by its `step_id` argument."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    steps = {s.id: s for s in run.plan.steps()}

    def codex_step(step_id: str) -> Any:
        from prefect.runtime import task_run
        from prefect.states import Completed

        step = steps[step_id]
        attempt = int(task_run.run_count or 1)
        final = attempt > step.retries
        outcome = execute_step(step, run, attempt=attempt, final_attempt=final)
        if outcome.status == "failed":
            if not final:
                raise StepFailed(outcome.error or "step failed")  # a raised failure is what Prefect retries
            # the last attempt: the task run's log shows the step's error block and output tail,
            # not codex-tasks' own traceback
            from prefect.states import Failed

            log_failure(step, run)
            return Failed(message=outcome.error or "step failed")
        if outcome.status in STATE_NAMES:
            # the Prefect UI shows a cached step as Cached (a manual one as Manual, ...)
            return Completed(name=STATE_NAMES[outcome.status], message=outcome.status)
        return outcome.status

    return task(
        name="codex-step",
        task_run_name="{step_id}",
        retries=retries,
        retry_delay_seconds=retry_delay,
        cache_policy=NO_CACHE,
        persist_result=False,
        log_prints=False,
    )(codex_step)


def log_failure(step: PlannedStep, run: RunContext, tail: int = 20) -> None:
    """The failed step's error block and the last lines of its output, into the task run's log."""
    import json

    from prefect.logging import get_run_logger

    block = ""
    errors = run.rundir.path / "error_captures.ndjson"
    if errors.is_file():
        for line in reversed(errors.read_text(encoding="utf-8", errors="replace").splitlines()):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("step_id") == step.id:
                block = str(rec.get("rendered") or rec.get("error_message") or "")
                break
    log = run.rundir.step_dir(step.id) / "step.log"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-tail:] if log.is_file() else []
    logger = get_run_logger()  # Prefect stores its logs in its database: through the redaction hook
    logger.error(redact(block or f"step {step.id} failed"))
    if lines:
        logger.error(redact(f"last {len(lines)} line(s) of {step.id}'s output:\n" + "\n".join(lines)))


class PhaseScheduler:
    """Starts each step of a phase when what it waits for is done."""

    def __init__(self, run: RunContext, max_parallel: int, stop_flag: dict[str, Any]) -> None:
        self.run = run
        self.tasks = StepTasks(run)
        self.max_parallel = max(1, max_parallel)
        self.stop = stop_flag
        self._signal = threading.Event()
        self.blocked: set[str] = set()  # skipped steps that stand between a failure and its dependents

    def status(self, step_id: str) -> str | None:
        return self.run.rundir.step_status(step_id)

    def run_phase(self, steps: list[PlannedStep]) -> None:
        pending = list(steps)
        running: dict[str, Any] = {}
        while pending or running:
            if self.run.cancel_event.is_set() or self.stop.get("stopped"):
                for step in pending:
                    why = "run interrupted" if self.run.cancel_event.is_set() else f"an earlier step failed ({self.stop['by']})"
                    if step.skip:
                        execute_step(step, self.run)
                    else:
                        record_not_run(step, self.run, why)
                pending = []
            ready: list[PlannedStep] = []
            for step in list(pending):
                states = {n: self.status(n) for n in step.needs}
                if step.skip:
                    # not selected (--only, --from, when): skipped, whatever failed before it; in its
                    # turn, so the steps after it still wait for the ones before it
                    if all(st not in (None, "running") for st in states.values()):
                        pending.remove(step)
                        execute_step(step, self.run)
                        if any(st in ("failed", "not_run") or n in self.blocked for n, st in states.items()):
                            self.blocked.add(step.id)  # what waits on it waits on what failed before it
                    continue
                if any(s in ("failed", "not_run") or n in self.blocked for n, s in states.items()):
                    bad = next(n for n, s in states.items() if s in ("failed", "not_run") or n in self.blocked)
                    record_not_run(step, self.run, f"depends on {bad}, which did not succeed")
                    pending.remove(step)
                    continue
                if all(s in OK_STATUSES for s in states.values()):
                    ready.append(step)
            if not pending and not running:
                break
            if ready and not running and (len(ready) == 1 or self.max_parallel == 1):
                step = ready[0]
                pending.remove(step)
                self._call_direct(step)
                continue
            room = self.max_parallel - len(running)
            for step in ready[:room]:
                pending.remove(step)
                running[step.id] = self._submit(step)
            if not running:
                # Nothing runs and nothing can start: with an acyclic plan whose needs stay inside the
                # phase this cannot happen; if it does, fail the stuck steps rather than spin forever.
                for step in pending:
                    self._fail_stuck(step)
                pending = []
                continue
            self._wait_any(running)
            for sid, fut in list(running.items()):
                if _done(fut):
                    del running[sid]
                    self._after(sid, fut)

    def _fail_stuck(self, step: PlannedStep) -> None:
        waits = ", ".join(f"{n} ({self.status(n) or 'never started'})" for n in step.needs
                          if self.status(n) not in OK_STATUSES)
        self.run.rundir.update_step(step.id, status="failed", phase_id=step.phase_id, kind=step.kind,
                                    description=step.description,
                                    error=f"could not start: it waits on {waits}, which cannot finish")
        if step.on_error == "stop" and not self.stop.get("stopped"):
            self.stop.update(stopped=True, by=step.id)

    def _call_direct(self, step: PlannedStep) -> None:
        state = self.tasks.for_step(step)(step.id, return_state=True)
        self._check(step, state)

    def _submit(self, step: PlannedStep) -> Any:
        fut = self.tasks.for_step(step).submit(step.id)
        wrapped = getattr(fut, "wrapped_future", None)
        if wrapped is not None and hasattr(wrapped, "add_done_callback"):
            wrapped.add_done_callback(lambda _f: self._signal.set())
        return fut

    def _wait_any(self, running: dict[str, Any]) -> None:
        while not any(_done(f) for f in running.values()):
            self._signal.wait(0.2)
            self._signal.clear()

    def _after(self, step_id: str, fut: Any) -> None:
        state = fut.state
        step = self.run.plan.step(step_id)
        self._check(step, state)

    def _check(self, step: PlannedStep, state: Any) -> None:
        self.run.rundir.merge_remote(step.id)  # a step run in another process (Dask)
        status = self.status(step.id)
        if status is None or status == "running":
            # the task crashed before execute_step could record anything (a bug or a kill)
            message = str(state.message if state is not None else "crashed")
            self.run.rundir.update_step(step.id, status="failed", error=message)
            status = "failed"
        if status == "not_run" and self.run.cancel_event.is_set():
            return
        if status == "failed" and step.on_error == "stop" and not self.stop.get("stopped"):
            self.stop.update(stopped=True, by=step.id)
        elif status == "failed" and not self.stop.get("stopped"):
            limit = max_errors_reached(dict(self.run.params), self.run.rundir.path / "error_captures.ndjson")
            if limit is not None:  # the legacy `max_errors`: stop after that many error blocks
                self.stop.update(stopped=True, by=f"{step.id}; max_errors={limit} reached")


def _done(fut: Any) -> bool:
    wrapped = getattr(fut, "wrapped_future", None)
    if wrapped is not None and hasattr(wrapped, "done"):
        return bool(wrapped.done())
    return bool(fut.state.is_final())


def compile_flow(
    run: RunContext,
    *,
    max_parallel: int = 4,
    task_runner: Any = None,
    on_phase: Callable[[str, str], None] | None = None,
) -> Any:
    """The Prefect flow for this run (call it with `return_state=True`)."""
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    plan = run.plan
    runner: Any = task_runner or ThreadPoolTaskRunner(max_workers=max(1, max_parallel))

    def codex_sequence() -> Any:
        from prefect.context import TagsContext

        # The flow run carries the run's tags; its task runs none. Prefect asks the server for a
        # concurrency slot per tag before every tagged task run (a round trip a step, ~8 ms).
        with TagsContext(current_tags=set()):
            return run_phases()

    def run_phases() -> Any:
        show_parameters(run.rundir)
        stop: dict[str, Any] = {}
        sched = PhaseScheduler(run, max_parallel, stop)
        for phase in plan.phases:
            if run.cancel_event.is_set() or stop.get("stopped"):
                why = "run interrupted" if run.cancel_event.is_set() else f"an earlier step failed ({stop.get('by')})"
                for step in phase.steps:
                    if step.skip:
                        execute_step(step, run)
                    else:
                        record_not_run(step, run, why)
                continue
            run.rundir.events.emit("phase.started", phase_id=phase.id, name=phase.name)
            sched.run_phase(phase.steps)
            run.rundir.events.emit("phase.finished", phase_id=phase.id, name=phase.name)
        statuses = {s.id: str(run.rundir.step_state(s.id).get("status", "not_run")) for s in plan.steps()}
        if run.cancel_event.is_set():
            from prefect.states import Cancelled

            return Cancelled(message="the run was interrupted (Ctrl-C or `codex-tasks cancel`); resumable")
        failed = [sid for sid, st in statuses.items() if st == "failed"]
        if failed:  # a state, not a raise: Prefect pickles a raised exception into its result storage
            from prefect.states import Failed

            return Failed(message=f"{len(failed)} step(s) failed: {', '.join(failed)}")
        return statuses

    return flow(
        name=slug(plan.title),
        flow_run_name=flow_run_name(run.rundir),
        task_runner=runner,
        persist_result=False,
        log_prints=False,
        validate_parameters=False,
    )(codex_sequence)


__all__ = ["Outcome", "StepTasks", "compile_flow", "make_step_task"]
