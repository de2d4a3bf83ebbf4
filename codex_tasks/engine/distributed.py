"""Distributed training: the engine's loop under `torchrun` (DDP), launched as a subprocess.

Three modules, one idea each:

- **The launcher** (this module: `launch`, in the step's process): hands the job's spec (settings,
  tracking, the run's registered secret values) to the ranks in the environment variable
  `CODEX_TASKS_RANK_SPEC` — never in a file: it may hold secrets — and starts
  `python -m torch.distributed.run ... -m codex_tasks.engine.rank_worker` in a new session,
  streams its output line by line to `hooks.log`, turns rank 0's event lines (`CODEX_EVENT {json}`
  on stdout) into `hooks.progress` / `hooks.metric` / `hooks.log`, and maps the outcome: the
  summary, `RunInterrupted` (cancelled; a checkpoint was saved), or `StepFailed` with the failing
  rank's last error line.
- **The worker** (`rank_worker.worker_main`, in every rank): takes the spec out of its environment
  (so nothing it starts inherits it), registers the secret values with its redaction hook, joins the process group (gloo on
  CPU, NCCL on CUDA) and runs `Trainer` with a `DistInfo`. Rank 0 alone prints events, writes
  checkpoints, metrics, MLflow and the final model; every rank writes `errors/rank-<r>.json` when it
  fails.
- **The collectives** (`collectives.py`: `DistInfo`, `any_rank`, `broadcast_object`,
  `gather_to_main`): what the trainer calls in every rank. The trainer imports only these, so
  the launcher, the worker and the trainer import in one direction.

Cancel: the launcher creates the spec's `cancel_file`; each rank checks it (and whether the launcher
is still alive, and SIGTERM/SIGINT) before every step, the ranks agree by an all-reduce, rank 0 saves
a checkpoint, and all exit 0. If that takes longer than `cancel_grace`, torchrun gets SIGTERM
(which it forwards), and at last every process of the tree gets SIGKILL.

This module imports torch only inside functions; it never imports Prefect.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks.core.redact import registered_values
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.rank_worker import EVENT_PREFIX, SPEC_ENV
from codex_tasks.errors import RunInterrupted, StepFailed

if TYPE_CHECKING:
    from codex_tasks.engine.config import TrainSettings

WORKER_MODULE = "codex_tasks.engine.rank_worker"
TERM_GRACE = 40.0  # after SIGTERM: torchrun's own shutdown timeout (30 s) plus a margin


# ---- the launcher -------------------------------------------------------------------------------


def free_port(addr: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr.strip("[]"), 0))
        return int(s.getsockname()[1])


@dataclass
class Launch:
    """A prepared torchrun job: its command, environment and files."""

    cmd: list[str]
    env: dict[str, str]
    workdir: Path
    cancel_file: Path
    error_dir: Path
    master_port: int


def prepare(
    settings: TrainSettings,
    *,
    run_id: str,
    run_name: str | None = None,
    tracking_uri: str | None = None,
    artifact_location: Path | None = None,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
    entry: list[str] | None = None,
) -> Launch:
    """Build the torchrun command and its environment, which carries the spec (`entry` replaces
    `-m <worker module>`)."""
    spec = settings.distributed
    if spec is None:
        raise StepFailed("distributed training needs `distributed:` settings")
    workdir = Path(workdir or Path(settings.out) / ".torchrun")
    if workdir.exists():
        import shutil

        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    cancel_file, error_dir = workdir / "cancel", workdir / "errors"
    port = spec.master_port or free_port(spec.master_addr)
    job_spec = {
        "settings": settings.model_dump(mode="json"),
        "run_id": run_id,
        "run_name": run_name,
        "tracking_uri": tracking_uri,
        "artifact_location": str(artifact_location) if artifact_location else None,
        "cancel_file": str(cancel_file),
        "error_dir": str(error_dir),
        "parent_pid": os.getpid(),
        # the values this process redacts (secret parameters, scan findings): a rank redacts its
        # own writes (checkpoint state, MLflow, error records) with them too
        "secrets": registered_values(),
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={spec.nnodes}", f"--nproc-per-node={spec.nproc_per_node}", f"--node-rank={spec.node_rank}",
        f"--master-addr={spec.master_addr}", f"--master-port={port}", "--max-restarts=0",
        *(entry or ["-m", WORKER_MODULE]),
    ]  # fmt: skip
    # the environment, not a file: it is never on disk, and each rank removes it at its start
    child_env = {**os.environ, **(env or {}), SPEC_ENV: json.dumps(job_spec)}
    root = str(Path(__file__).resolve().parents[2])  # so the workers import this very package
    child_env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [child_env.get("PYTHONPATH")])])
    child_env.setdefault("OMP_NUM_THREADS", str(settings.threads or 1))  # torchrun's default, without its warning
    child_env["PYTHONUNBUFFERED"] = "1"
    return Launch(cmd, child_env, workdir, cancel_file, error_dir, port)


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (torchrun starts each worker in a session of its own)."""
    try:
        import psutil

        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except Exception:
        return [pid]


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group of `pid` and of each of its descendants."""
    for p in _tree(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p, sig)  # a worker leads its own group; the group may already be gone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def failure_reason(error_dir: Path, tail: list[str], returncode: int) -> tuple[str, str | None]:
    """The first failing rank's error line, else the last error-looking line of the output."""
    records = []
    for f in sorted(error_dir.glob("rank-*.json")):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(f.read_text(encoding="utf-8")))
    if records:
        first = min(records, key=lambda r: (r.get("time", 0), r.get("rank", 0)))
        return f"rank {first['rank']}: {first['message']}", first.get("hint")
    lines = [ln.strip() for ln in tail if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "error" in ln or "Exception" in ln:
            return f"torchrun exited with code {returncode}: {ln}", None
    return f"torchrun exited with code {returncode}" + (f": {lines[-1]}" if lines else ""), None


def launch(
    settings: TrainSettings,
    hooks: Hooks,
    *,
    run_id: str,
    run_name: str | None = None,
    tracking_uri: str | None = None,
    artifact_location: Path | None = None,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
    entry: list[str] | None = None,
) -> dict[str, Any]:
    """Run training under torchrun; returns rank 0's summary (see the module docstring)."""
    spec = settings.distributed
    assert spec is not None
    job = prepare(settings, run_id=run_id, run_name=run_name, tracking_uri=tracking_uri,
                  artifact_location=artifact_location, env=env, workdir=workdir, entry=entry)
    hooks.log(
        f"torchrun: {spec.nproc_per_node} process(es) per node x {spec.nnodes} node(s) "
        f"(node rank {spec.node_rank}), master {spec.master_addr}:{job.master_port}"
    )
    outcome: dict[str, Any] = {}
    tail: collections.deque[str] = collections.deque(maxlen=40)
    proc = subprocess.Popen(
        job.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=job.env, start_new_session=True,
        text=True, encoding="utf-8", errors="replace", bufsize=1,
    )

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if line.startswith(EVENT_PREFIX):
                try:
                    event = json.loads(line[len(EVENT_PREFIX):])
                except ValueError:
                    hooks.log(line)
                    continue
                kind = event.get("kind")
                if kind == "progress":
                    hooks.progress(event["done"], event.get("total"), event.get("unit", "step"), **event.get("extra", {}))
                elif kind == "metric":
                    hooks.metric(event["name"], event["value"], step=event.get("step"), split=event.get("split"))
                elif kind == "log":
                    hooks.log(str(event.get("line", "")))
                elif kind in ("result", "interrupted"):
                    outcome[kind] = event
                continue
            tail.append(line)
            hooks.log(line)

    reader = threading.Thread(target=pump, name="torchrun-output", daemon=True)
    reader.start()
    cancelled_at = term_at = None
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if cancelled_at is None and hooks.cancelled:
                cancelled_at = now
                job.cancel_file.touch()  # the ranks see it before their next step and checkpoint
                hooks.log("cancel requested: torchrun ranks will checkpoint and stop")
            elif cancelled_at is not None and term_at is None and now - cancelled_at > spec.cancel_grace:
                term_at = now
                hooks.log(f"torchrun did not stop within {spec.cancel_grace:g} s: sending SIGTERM")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)  # torchrun forwards it to the workers
            elif term_at is not None and now - term_at > TERM_GRACE:
                hooks.log("torchrun still running: killing its process tree")
                kill_tree(proc.pid)
                break
            if cancelled_at is None:
                hooks.cancel_event.wait(0.05)  # react to a cancel at once
            else:
                time.sleep(0.05)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # we are being torn down ourselves (e.g. KeyboardInterrupt)
            job.cancel_file.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            kill_tree(proc.pid)
            proc.wait()
        reader.join(timeout=10)
    try:
        if "result" in outcome and returncode == 0:
            summary: dict[str, Any] = outcome["result"]["summary"]
            return summary
        if "interrupted" in outcome or cancelled_at is not None:
            message = outcome.get("interrupted", {}).get("message") or f"distributed training cancelled (torchrun exit {returncode})"
            raise RunInterrupted(message)
        if returncode == 0:  # a node without global rank 0: nothing to report but success
            return {"node_rank": spec.node_rank, "steps": None}
        message, hint = failure_reason(job.error_dir, list(tail), returncode)
        raise StepFailed(f"distributed training failed: {message}", hint=hint)
    finally:
        import shutil

        shutil.rmtree(job.workdir, ignore_errors=True)
