"""MLflow tracking through `MlflowClient` (no global active run), metrics sent in batches.

Per-point logging to a SQLite store runs at ~344 points/s here; `log_batch` sends 1000 in 0.05 s.
System metrics go under MLflow's own `system/` names (its System metrics tab), the experiment is
marked a classic model-development one (MLflow 3 would otherwise offer its GenAI view), and
MLflow's INFO chatter ("Creating initial MLflow database tables...") stays out of a run's output.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import redact

BATCH = 500
# the experiment tag MLflow 3's UI reads to choose the classic (non-GenAI) experiment view
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def mlflow_key(split: str, name: str) -> str:
    """The MLflow metric key: `system/<name>` for system metrics, `<split>_<name>` for the rest."""
    return f"system/{name}" if split == "system" else f"{split}_{name}"


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested settings as `a.b.c` -> string params (MLflow params are strings of <= 6000 chars)."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = str(obj)[:6000]
    return out


class MlflowTracker:
    """One MLflow run: params once, metrics buffered, artifacts, a final status."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: Path | None = None) -> None:
        import logging  # with MLflow, which imports it anyway; validate imports this module through the kinds

        from mlflow.tracking import MlflowClient

        # mlflow configures its logger at import; its INFO lines are not the user's business
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        experiment = redact(experiment)  # MLflow stores the name too (see `start`)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            location = artifact_location.resolve().as_uri() if artifact_location else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location,
                                                               tags=dict([EXPERIMENT_KIND]))
        else:
            self.experiment_id = exp.experiment_id
            if EXPERIMENT_KIND[0] not in exp.tags:  # a store made by an older codex-tasks
                self.client.set_experiment_tag(self.experiment_id, *EXPERIMENT_KIND)
        self.run_id = ""
        self._buffer: list[Any] = []
        self._lock = threading.Lock()

    def start(self, run_name: str, params: dict[str, Any], resume_run_id: str | None = None,
              tags: dict[str, str] | None = None) -> str:
        """Start a run (or reopen `resume_run_id` when it exists) and log params and `tags` on a new run."""
        from mlflow.entities import Param, RunStatus

        if resume_run_id:
            try:
                self.client.get_run(resume_run_id)
                self.client.update_run(resume_run_id, status=RunStatus.to_string(RunStatus.RUNNING))
                self.run_id = resume_run_id
                return self.run_id
            except Exception:  # a store that lost the run: start a new one
                pass
        # MLflow writes its own SQLite store: names, tags and params pass the redaction hook first
        run = self.client.create_run(self.experiment_id, run_name=redact(run_name),
                                     tags={k: redact(str(v)) for k, v in (tags or {}).items()})
        self.run_id = run.info.run_id
        flat = sorted(flatten(params).items())
        for i in range(0, len(flat), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=[Param(k, redact(str(v))) for k, v in flat[i : i + 100]])
        return self.run_id

    def metric(self, key: str, value: float, step: int | None) -> None:
        from mlflow.entities import Metric

        with self._lock:
            self._buffer.append(Metric(key, float(value), int(time.time() * 1000), int(step or 0)))
            full = len(self._buffer) >= BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    def log_artifacts(self, folder: Path, artifact_path: str) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=status)
