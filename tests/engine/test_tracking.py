"""MLflow: a real SQLite store holds the run's params and metrics; artifacts stay under .codex/."""

from __future__ import annotations

from engine_fixtures import tiny_settings

from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.trainer import Trainer


def test_mlflow_sqlite_store_holds_params_and_metrics(token_data, tmp_path, capfd):
    from mlflow.tracking import MlflowClient

    codex = tmp_path / ".codex"
    codex.mkdir()
    uri = f"sqlite:///{codex / 'mlflow.db'}"
    settings = tiny_settings(token_data, tmp_path / "model", max_steps=6, checkpoint={"every": 3},
                             mlflow={"enabled": True, "experiment": "tiny"}, system_metrics_every=0.05)
    summary = Trainer(settings, Hooks(), run_id="r1", tracking_uri=uri, artifact_location=codex / "mlartifacts").run()

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.003" and run.data.params["model.config.n_embd"] == "32"
    assert run.data.params["derived.max_steps"] == "6"
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == list(range(1, 7))
    assert "eval_loss" in run.data.metrics and "system/cpu_utilization_percentage" in run.data.metrics
    assert "system/system_memory_usage_megabytes" in run.data.metrics  # MLflow's own System metrics names
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the classic, non-GenAI view
    out, err = capfd.readouterr()
    assert "INFO mlflow" not in out + err and "Creating initial MLflow database" not in out + err
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert "model/config.json" in artifacts
    assert (codex / "mlartifacts").is_dir()
