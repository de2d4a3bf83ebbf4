"""`codex-tasks run`: load, resolve parameters, plan, open the run folder, run the Prefect flow,
write the summary and report. Returns the exit code (0 ok, 1 a step failed, 130 interrupted);
user errors are raised as `CodexTasksError` (exit 2) before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_tasks.core import redact as redaction
from codex_tasks.core.files import write_json_atomic, write_text_atomic
from codex_tasks.core.names import slug
from codex_tasks.errors import CodexTasksError, ServerError, WorkspaceUnwritable
from codex_tasks.orchestrate.bindings import output_warnings
from codex_tasks.orchestrate.context import RunContext
from codex_tasks.orchestrate.execute import execute_step
from codex_tasks.orchestrate.layouts import refresh_sinks, root_wrapper_sinks
from codex_tasks.orchestrate.legacy_params import honored_flags, related_warnings
from codex_tasks.orchestrate.options import RunOptions
from codex_tasks.orchestrate.planview import predict
from codex_tasks.orchestrate.prefect.flow import compile_flow
from codex_tasks.orchestrate.prefect.rest import record_history
from codex_tasks.orchestrate.prefect.server import ensure_server, managed_pid
from codex_tasks.orchestrate.prefect.setup import (
    attach_report,
    check_user_api_url,
    configure_prefect,
    crash_stale_flow_runs,
    dask_task_runner,
)
from codex_tasks.orchestrate.prefect.watch import ServerWatch
from codex_tasks.orchestrate.prepare import PreparedRun, prepare_options
from codex_tasks.render.params import hidden_params, param_env, secret_marker, secret_values
from codex_tasks.runs.cache import CacheIndex
from codex_tasks.runs.events import now_iso
from codex_tasks.runs.lock import RunLock
from codex_tasks.runs.report import write_report, write_summary
from codex_tasks.runs.rundir import CODEX_DIR, RunDir, codex_dir


@dataclass
class RunResult:
    exit_code: int
    rundir: RunDir | None
    status: str


def path_with_interpreter() -> str:
    """PATH with this interpreter's bin folder first, so a step's `python` and `codex-tasks` are the
    ones running this run, also when `.venv/bin/codex-tasks` is called without activating `.venv`."""
    bin_dir = str(Path(sys.executable).parent)
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    return os.pathsep.join([bin_dir, *rest])


def run_sequence(opts: RunOptions) -> RunResult:
    """Run a sequence (see the module docstring); one run at a time per workspace."""
    prepared = prepare_options(opts)
    lock = None
    if not (opts.dry_run or prepared.values.get("dry_run") is True):
        check_user_api_url()
        check_codex_writable(prepared.workspace)

        # before anything is written: a second run is refused (exit 2), and what a killed run left
        # running is ended before this one (a resume of it, or any other) starts a step
        lock = RunLock(prepared.workspace).acquire(prepared.run_id)
    try:
        return _run_prepared(opts, prepared)
    finally:
        if lock is not None:
            lock.release()


def check_codex_writable(workspace: Path) -> None:
    """The workspace's `.codex/` must be a folder this process can write: checked before anything
    is written, so a read-only or blocked `.codex` is one message (exit 2), not a traceback."""
    d = workspace / CODEX_DIR
    hint = f"make {d} a writable folder (remove or rename a file of that name, fix its permissions or mount)"
    if d.exists() and not d.is_dir():
        raise WorkspaceUnwritable(f"{d} is not a folder; codex-tasks keeps its runs there", hint=hint)
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise WorkspaceUnwritable(f"cannot write in {d}: {exc.strerror or exc}", hint=hint) from None


def _run_prepared(opts: RunOptions, prepared: PreparedRun) -> RunResult:
    loaded, plan, workspace, values, previous = (prepared.loaded, prepared.plan, prepared.workspace,
                                                 prepared.values, prepared.previous)
    spec = loaded.spec
    hidden = hidden_params(spec, values)  # typed `secret`, or flagged by the scanner: only a hash is kept
    redaction.register_values(secret_values(spec, values) + [str(values[n]) for n in hidden if values.get(n)])
    dry_run = opts.dry_run or values.get("dry_run") is True

    if previous is not None:
        rd = previous
        attempt = int(rd.state.get("attempt", 1)) + 1
        prev_steps = dict(rd.state.get("steps", {}))
        rd.state["steps"] = {}
    else:
        codex_dir(workspace)
        rd = RunDir.create(workspace, prepared.run_id)
        attempt = 1
        prev_steps = {}
    secret_names = {n for n, p in spec.all_params().items() if p.type == "secret"}
    stored_params = {k: (secret_marker(v) if k in hidden else v) for k, v in values.items()
                     if k not in secret_names and k not in ("run_id", "run_dir", "workspace", "timestamp")}
    seq_file = prepared.file.resolve()
    rd.state.update({
        "run_id": rd.run_id,
        "title": spec.title,
        "sequence_file": str(seq_file),
        "sequence_sha256": hashlib.sha256(loaded.text.encode()).hexdigest(),
        "workspace": str(workspace),
        "params": stored_params,
        "secret_params": sorted(secret_names),  # names only: Prefect shows them as `***`
        "status": "running",
        "pid": os.getpid(),
        "attempt": attempt,
        "dry_run": dry_run,
        "started": rd.state.get("started") or now_iso(),
        "options": {"only": opts.only, "from": opts.from_step, "strict": opts.strict,
                    "max_parallel": opts.max_parallel, "runner": opts.runner},
    })
    rd.state.setdefault("attempts", []).append({"attempt": attempt, "started": now_iso(), "pid": os.getpid()})
    write_text_atomic(rd.path / "sequence.yaml", loaded.text)
    write_json_atomic(rd.path / "plan.json", {"title": plan.title, "steps": [s.as_dict() for s in plan.steps()]})
    rd.save()
    if opts.on_event:
        rd.events.listeners.append(opts.on_event)
    if opts.on_started:
        opts.on_started(rd)

    for warning in loaded.warnings + related_warnings(loaded) + output_warnings(plan):
        rd.events.emit("log", line=f"warning: {warning}")

    flags = honored_flags(spec.metadata, dict(os.environ))  # metadata.honor_env_flags that are set
    run = RunContext(
        plan=plan,
        rundir=rd,
        workspace=workspace,
        params=values,
        env={**param_env(spec, values), "PATH": path_with_interpreter(),
             "CODEX_RUN_ID": rd.run_id, "CODEX_RUN_DIR": str(rd.path),
             "CODEX_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1",
             **({"CUDA_VISIBLE_DEVICES": ""} if "CODEX_FORCE_CPU" in flags else {})},
        refuse_gpu="CODEX_ABORT_ON_GPU_PULL" in flags,
        flags=flags,
        dry_run=dry_run,
        strict=opts.strict,
        force=opts.force,
        resuming=previous is not None,
        previous=prev_steps,
        agent_command=opts.agent,
        unsandboxed_agents=opts.unsandboxed_agents,
        repair_agent=opts.repair,
        repair_attempts=opts.repair_attempts,
        cache=CacheIndex(workspace),
        cancel_event=opts.cancel_event or threading.Event(),
    )
    if loaded.shape == "root_wrapper" and not dry_run:
        root_wrapper_sinks(run)
    if previous is not None:
        rd.events.emit("run.resumed", attempt=attempt, title=spec.title)
    else:
        rd.events.emit("run.started", title=spec.title, attempt=attempt, steps=len(plan.steps()),
                       sequence_file=str(seq_file))
    start = time.time()
    status = "failed"
    on_main = threading.current_thread() is threading.main_thread()  # the CLI or a scheduled run, not the TUI
    restore = _install_interrupt(run)
    try:
        if dry_run:
            _run_without_prefect(run)
        elif _nothing_to_execute(run, opts):
            _run_without_prefect(run)  # history is written over REST when the run closes
            rd.state["history"] = "rest"
        else:
            _run_with_prefect(run, opts, attempt, rd,
                              on_server_lost=lambda why: _server_lost(run, why, start, exit_process=on_main))
        status = _final_status(run)
    except KeyboardInterrupt:
        run.cancel_event.set()
        status = "interrupted"
    finally:
        restore()
        (rd.path / "cancel.requested").unlink(missing_ok=True)
        if run.cancel_event.is_set() and status != "succeeded":
            status = rd.state.get("cancel_status", "interrupted")
        _close_run(run, status, start)
    code = {"succeeded": 0, "failed": 1}.get(status, 130)
    return RunResult(code, rd, status)


def _final_status(run: RunContext) -> str:
    if run.cancel_event.is_set():
        return "interrupted"
    steps = run.rundir.state.get("steps", {})
    return "failed" if any(s.get("status") == "failed" for s in steps.values()) else "succeeded"


def _install_interrupt(run: RunContext) -> Callable[[], None]:
    """First Ctrl-C (or SIGTERM, or `codex-tasks cancel`): stop cleanly, state saved; second: hard."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    hits = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        hits["n"] += 1
        run.cancel_event.set()
        run.rundir.request_cancel()
        if signum == signal.SIGUSR1:
            run.rundir.state["cancel_status"] = "cancelled"
        if hits["n"] == 1:
            print("\ncodex-tasks: stopping (state is saved; Ctrl-C again to stop at once)", file=sys.stderr)
        else:
            raise KeyboardInterrupt

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    for s in old:
        signal.signal(s, handler)

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


def _run_without_prefect(run: RunContext) -> None:
    """Dry runs: every step in order, nothing executed, nothing written outside the run folder."""
    for phase in run.plan.phases:
        run.rundir.events.emit("phase.started", phase_id=phase.id, name=phase.name)
        for step in phase.steps:
            execute_step(step, run)
        run.rundir.events.emit("phase.finished", phase_id=phase.id, name=phase.name)


def _nothing_to_execute(run: RunContext, opts: RunOptions) -> bool:
    """True when every step would be cached, skipped or (not --strict) manual: then the run needs
    no Prefect flow engine at all (see prefect_rest)."""
    if run.resuming or run.force is not None or opts.runner != "local" or run.agent_command or run.repair_agent:
        return False
    try:
        rows = predict(run.plan, run.workspace)
    except OSError:
        return False
    allowed = {"cached", "skipped"} | (set() if run.strict else {"manual"})
    return all(r["action"] in allowed for r in rows)


def _tags(run: RunContext, rd: RunDir, attempt: int) -> list[str]:
    # parameters are the flow run's `parameters`, not tags: only the sequence and the resume count
    tags = ["codex-tasks", f"sequence:{run.plan.title}"[:100]]
    if attempt > 1:
        tags.append(f"resume-{attempt - 1}")
    return tags


def _run_with_prefect(run: RunContext, opts: RunOptions, attempt: int, rd: RunDir, *,
                      on_server_lost: Callable[[str], None]) -> None:
    url = configure_prefect()
    watch = ServerWatch(url, on_server_lost, pid=managed_pid(url))
    from prefect import tags
    from prefect.settings import temporary_settings

    task_runner = None
    if opts.runner != "local":
        task_runner = dask_task_runner(opts.runner, opts.max_parallel)
    if attempt > 1:
        crash_stale_flow_runs(rd)
    flow_obj = compile_flow(run, max_parallel=opts.max_parallel, task_runner=task_runner)
    run_tags = _tags(run, rd, attempt)
    with (watch, temporary_settings(updates={"flows.heartbeat_frequency": None}), tags(*run_tags),
          _sigterm_stays_ours()):
        state = flow_obj(return_state=True)
    flow_run_id = str(getattr(state, "state_details", None) and state.state_details.flow_run_id or "")
    rd.state["attempts"][-1]["flow_run_id"] = flow_run_id
    rd.state["flow_run_id"] = flow_run_id
    rd.state["flow_state"] = state.type.value if hasattr(state, "type") else str(state)
    rd.save()


STOP_GRACE = 30.0  # seconds the steps get to stop after the server is lost (training: its next safe point)


def _server_lost(run: RunContext, why: str, start: float, *, exit_process: bool) -> None:
    """The Prefect server died mid-run (called on the watch thread). Stop the steps as Ctrl-C does,
    record the run interrupted (resumable) and, when this process runs nothing else (the run was
    started on the main thread: the CLI, a scheduled run), end the process with exit 2 and one
    message: the flow engine's own requests to the dead server would otherwise retry for minutes.
    In the TUI (the run in a worker thread) the run stops and the message shows in its log."""
    rd = run.rundir
    managed = "managed" in why
    hint = (f"run it again with `codex-tasks run {rd.state.get('sequence_file', 'FILE')} --resume` "
            "(it starts the server again)" if managed else
            f"start that server again, then `codex-tasks run {rd.state.get('sequence_file', 'FILE')} --resume`")
    error = ServerError(f"{why} during run {rd.run_id}; the run stopped and is resumable", hint=hint)
    rd.events.emit("log", line=f"error: {error.render()}")
    rd.state["cancel_status"] = "interrupted"
    rd.state["interrupted_by"] = why
    run.cancel_event.set()
    rd.request_cancel()
    if not exit_process:
        return
    deadline = time.monotonic() + STOP_GRACE
    pause = threading.Event()
    while time.monotonic() < deadline and any(
            rd.step_state(s.id).get("status") == "running" for s in run.plan.steps()):
        pause.wait(0.1)
    (rd.path / "cancel.requested").unlink(missing_ok=True)
    _close_run(run, "interrupted", start, prefect_reachable=False)
    sys.stdout.flush()
    print(f"\ncodex-tasks: {error.render()}", file=sys.stderr, flush=True)
    os._exit(error.exit_code)


@contextlib.contextmanager
def _sigterm_stays_ours() -> Iterator[None]:
    """Prefect's flow engine swaps SIGTERM for a handler that raises `TerminationSignal` in whatever
    code is running (a lone train step was then recorded "failed"). Keep ours, which stops the run
    as Ctrl-C does: the cancel event is set, training stops at its next safe point, the run is
    recorded interrupted and resumable."""
    import prefect.flow_engine as engine

    original = getattr(engine, "capture_sigterm")  # noqa: B009 - not re-exported by prefect
    setattr(engine, "capture_sigterm", contextlib.nullcontext)  # noqa: B010
    try:
        yield
    finally:
        setattr(engine, "capture_sigterm", original)  # noqa: B010


def _record_rest_history(run: RunContext, rd: RunDir, summary: dict[str, Any]) -> None:
    try:
        url = ensure_server()
        flow_run_id = record_history(url, rd, summary, _tags(run, rd, int(rd.state.get("attempt", 1))),
                                     slug(run.plan.title))
    except (OSError, ValueError, CodexTasksError) as exc:
        rd.events.emit("log", line=f"could not record the run in Prefect: {exc}")
        return
    rd.state["flow_run_id"] = flow_run_id
    rd.state["attempts"][-1]["flow_run_id"] = flow_run_id
    rd.save()
    summary["flow_run_id"] = flow_run_id
    write_json_atomic(rd.path / "summary.json", summary)


def _close_run(run: RunContext, status: str, start: float, *, prefect_reachable: bool = True) -> None:
    rd = run.rundir
    # steps never reached (a crash or an interrupt) are recorded as not run
    for step in run.plan.steps():
        if rd.step_state(step.id).get("status") in (None, "running"):
            rd.update_step(step.id, status="not_run", phase_id=step.phase_id, kind=step.kind,
                           description=step.description,
                           note="run interrupted" if status != "failed" else "not reached")
    duration = round(time.time() - start, 3)
    rd.state.update(status=status, finished=now_iso(), duration=duration, pid=None)
    rd.state["attempts"][-1].update(finished=now_iso(), status=status)
    rd.save()
    if run.cache is not None:
        run.cache.memo.save()
    summary = write_summary(rd, run.plan)
    write_report(rd, run.plan, summary)
    if run.sinks:
        refresh_sinks(run)
    if not prefect_reachable:  # the server is gone: the run's Prefect history ends where it stopped
        pass
    elif rd.state.get("history") == "rest":
        _record_rest_history(run, rd, summary)
    elif rd.state.get("flow_run_id") and not run.dry_run:
        attach_report(rd, summary)
    event = {"succeeded": "run.finished", "failed": "run.failed"}.get(status, "run.interrupted")
    rd.events.emit(event, status=status, duration=duration)
