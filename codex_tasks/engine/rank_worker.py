"""One rank of a distributed job: `python -m codex_tasks.engine.rank_worker` under torchrun.

It takes the spec out of the environment (`CODEX_TASKS_RANK_SPEC`, set by the launcher; never a
file, since it carries the run's secret values), registers those values with the redaction hook
(so its checkpoint state, MLflow names, tags and params and error records are masked as the
launching process's writes are), joins the process group (gloo on CPU, NCCL on CUDA) and runs `Trainer` with a
`DistInfo`. Rank 0 alone prints events (`CODEX_EVENT {json}` lines on stdout, which the launcher
in `distributed.py` turns into run events), writes checkpoints, metrics, MLflow and the final
model; every rank writes `errors/rank-<r>.json` when it fails. Each rank checks for cancellation
(SIGTERM/SIGINT, the launcher's cancel file, the launcher gone) before every step.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from codex_tasks.core.files import write_json_atomic
from codex_tasks.core.process import is_alive
from codex_tasks.core.redact import register_values
from codex_tasks.engine.collectives import DistInfo
from codex_tasks.engine.config import TrainSettings
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.trainer import Trainer
from codex_tasks.errors import CodexTasksError, RunInterrupted, StepFailed

EVENT_PREFIX = "CODEX_EVENT "
SPEC_ENV = "CODEX_TASKS_RANK_SPEC"  # the job's spec, JSON, handed over by the launcher (distributed.py)


def take_spec(argv: list[str]) -> dict[str, Any]:
    """The job's spec: out of the environment, removed from it at once (a process this rank starts
    does not inherit it); else from a spec file named on the command line (a job started by hand)."""
    raw = os.environ.pop(SPEC_ENV, None)
    if raw is None:
        if not argv:
            raise StepFailed(f"no job spec: {SPEC_ENV} is not set and no spec file was given",
                             hint="start distributed training through a `train` step (codex_tasks.engine.distributed)")
        raw = Path(argv[0]).read_text(encoding="utf-8")
    spec: dict[str, Any] = json.loads(raw)
    register_values(spec.pop("secrets", None) or [])
    return spec


def _emit(kind: str, **fields: Any) -> None:
    """One event line on stdout (one write, flushed): the launcher turns it into a run event."""
    sys.stdout.write(EVENT_PREFIX + json.dumps({"kind": kind, **fields}, default=str) + "\n")
    sys.stdout.flush()


class WorkerHooks(Hooks):
    """Rank 0 prints progress, metrics and log lines as event lines; other ranks stay quiet.

    `cancelled` is true after SIGTERM/SIGINT, when the launcher's cancel file exists, or when the
    launcher process is gone (so an orphaned job checkpoints and stops instead of running on).
    """

    def __init__(self, rank: int, cancel_file: str | None = None, parent_pid: int | None = None) -> None:
        super().__init__()
        self.rank = rank
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self.parent_pid = parent_pid
        self.orphaned = False

    def emit(self, kind: str, **fields: Any) -> None:
        """An event line from rank 0; a closed pipe means the launcher is gone: stop (with a checkpoint)."""
        if self.rank != 0 or self.orphaned:
            return
        try:
            _emit(kind, **fields)
        except OSError:  # BrokenPipeError: nobody reads our output any more
            self.orphaned = True
            self.cancel_event.set()

    def progress(self, done: float, total: float | None, unit: str, **extra: Any) -> None:
        self.emit("progress", done=done, total=total, unit=unit, extra=extra)

    def metric(self, name: str, value: float, *, step: int | None = None, split: str | None = None) -> None:
        self.emit("metric", name=name, value=value, step=step, split=split)

    def log(self, line: str) -> None:
        self.emit("log", line=line)

    @property
    def cancelled(self) -> bool:
        if self.cancel_event.is_set():
            return True
        if self.cancel_file is not None and self.cancel_file.exists():
            self.cancel_event.set()
        elif self.parent_pid is not None and not is_alive(self.parent_pid):
            self.cancel_event.set()
        return self.cancel_event.is_set()


def _one_line(e: BaseException) -> tuple[str, str | None]:
    if isinstance(e, CodexTasksError):
        return e.message.splitlines()[0] if e.message else type(e).__name__, e.hint
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__, None


def pick_backend(settings: TrainSettings) -> str:
    import torch

    spec = settings.distributed
    if spec is not None and spec.backend != "auto":
        return spec.backend
    return "nccl" if settings.device != "cpu" and torch.cuda.is_available() else "gloo"


def worker_main(argv: list[str] | None = None, hooks_class: type[WorkerHooks] = WorkerHooks) -> int:
    """One rank: `python -m codex_tasks.engine.rank_worker` under torchrun. Returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        spec = take_spec(argv)
    except (StepFailed, OSError, ValueError) as e:
        message, hint = _one_line(e)
        print(f"rank_worker: {message}" + (f"\nhint: {hint}" if hint else ""), file=sys.stderr, flush=True)
        return 2
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    hooks = hooks_class(rank, spec.get("cancel_file"), spec.get("parent_pid"))
    for sig in (signal.SIGTERM, signal.SIGINT):  # torchrun forwards these: stop at the next step
        signal.signal(sig, lambda *_: hooks.cancel_event.set())
    initialised = False
    try:
        import torch
        import torch.distributed as tdist

        settings = TrainSettings.model_validate(spec["settings"])
        backend = pick_backend(settings)
        if backend == "nccl":
            if local_rank >= torch.cuda.device_count():
                raise StepFailed(
                    f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible",
                    hint="set distributed.nproc_per_node to at most the number of GPUs",
                )
            torch.cuda.set_device(local_rank)
        tdist.init_process_group(backend=backend)
        initialised = True
        trainer = Trainer(
            settings,
            hooks,
            run_id=spec["run_id"],
            run_name=spec.get("run_name"),
            tracking_uri=spec.get("tracking_uri"),
            artifact_location=Path(spec["artifact_location"]) if spec.get("artifact_location") else None,
            dist=DistInfo(rank, local_rank, world, backend),
        )
        summary = trainer.run()
        hooks.emit("result", summary=summary)
        return 0
    except RunInterrupted as e:
        hooks.emit("interrupted", message=e.message)
        return 0
    except BaseException as e:  # noqa: B036 - every failure becomes one line for the launcher
        initialised = False  # a failed group may hang in teardown: just exit
        message, hint = _one_line(e)
        errors = Path(spec["error_dir"])
        errors.mkdir(parents=True, exist_ok=True)
        record = {"rank": rank, "time": time.time(), "message": message, "hint": hint}
        write_json_atomic(errors / f"rank-{rank}.json", record, compact=True)  # through the hook
        with contextlib.suppress(OSError):
            print(f"[rank {rank}] error: {message}", file=sys.stderr, flush=True)
            if not isinstance(e, CodexTasksError):
                import traceback

                traceback.print_exc()
        return 1
    finally:
        if initialised:
            with contextlib.suppress(Exception):
                import torch.distributed as tdist

                tdist.destroy_process_group()


if __name__ == "__main__":
    # run as `python -m`: call the imported module's function, so `DistInfo` etc. are one class
    from codex_tasks.engine import rank_worker as _self

    sys.exit(_self.worker_main(sys.argv[1:]))
