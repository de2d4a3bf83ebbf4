"""MLflow writes its own SQLite store: a secret value reaching a run name, a tag or a param is
masked before it is written (the store and its -wal file are searched byte for byte)."""

from __future__ import annotations

from codex_tasks.core import redact as redaction
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.tracking import MlflowTracker
from codex_tasks.engine.trainer import Trainer
from tests.engine.engine_fixtures import prepare, tiny_settings, write_corpus

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


def test_a_real_training_keeps_a_secret_setting_out_of_every_file(tmp_path):
    """A tiny real training whose MLflow experiment, run name and tags carry a registered secret (as
    a parameter rendered into `with:` would): MLflow's store (with its -wal), the artifacts, the
    checkpoints and the summary hold it nowhere; MLflow shows it masked."""
    from mlflow import MlflowClient

    corpus = write_corpus(tmp_path / "corpus", n_files=3)
    prepare(corpus, tmp_path / "data")
    codex = tmp_path / ".codex"
    uri = f"sqlite:///{codex / 'mlflow.db'}"
    codex.mkdir()
    settings = tiny_settings(tmp_path / "data", tmp_path / "model", max_steps=2, checkpoint={"every": 1},
                             threads=1, mlflow={"enabled": True, "experiment": f"exp-{SECRET}",
                                                "run_name": f"run-{SECRET}", "tags": {"owner": SECRET}})
    redaction.register_values([SECRET])
    try:
        summary = Trainer(settings, Hooks(), run_id="r1", tracking_uri=uri, artifact_location=codex / "art").run()
    finally:
        redaction.clear_values()
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.run_name == f"run-{redaction.MASK}" and run.data.tags["owner"] == redaction.MASK
    assert client.get_experiment(run.info.experiment_id).name == f"exp-{redaction.MASK}"
    assert run.data.params["max_steps"] == "2"  # the params are there
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "corpus")]
    assert any(p.name == "mlflow.db" for p in written) and any(p.name == "state.json" for p in written)
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []
