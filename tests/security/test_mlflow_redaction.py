"""MLflow writes its own SQLite store: a secret value reaching a run name, a tag or a param is
masked before it is written (the store and its -wal file are searched byte for byte)."""

from __future__ import annotations

from codex_tasks.core import redact as redaction
from codex_tasks.engine.tracking import MlflowTracker

SECRET = "s3cret-Value-registered-9913"


def test_mlflow_run_names_tags_and_params_are_redacted(tmp_path):
    redaction.register_values([SECRET])
    try:
        db = tmp_path / "mlflow.db"
        tracker = MlflowTracker(f"sqlite:///{db}", "exp", artifact_location=tmp_path / "art")
        tracker.start(f"run-{SECRET}", {"model": {"path": SECRET}, "lr": 0.1}, tags={"param:token": SECRET})
        tracker.metric("loss", 1.0, 1)
        tracker.end()
        from mlflow import MlflowClient

        run = MlflowClient(tracking_uri=f"sqlite:///{db}").get_run(tracker.run_id)
        assert run.data.params["model.path"] == redaction.MASK and run.data.params["lr"] == "0.1"
        written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
        assert SECRET.encode() not in written
    finally:
        redaction.clear_values()
