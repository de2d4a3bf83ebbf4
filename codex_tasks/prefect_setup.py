"""Prefect settings for every codex-tasks process: the managed server, quiet logs, no telemetry."""

from __future__ import annotations

import os
from typing import Any

from codex_tasks.errors import UsageError
from codex_tasks.runs.rundir import RunDir
from codex_tasks.server import ensure_server, quiet_env


def configure_prefect() -> str:
    """Point this process at a running Prefect server (starting ours if needed); returns the API URL.
    Must run before `import prefect` reads its settings."""
    url = ensure_server()
    for key, value in quiet_env().items():
        os.environ.setdefault(key, value)
    os.environ["PREFECT_API_URL"] = url
    # results and task caches stay in memory: codex-tasks keeps its own cache and run folders
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    return url


def crash_stale_flow_runs(rd: RunDir) -> None:
    """A killed attempt leaves its flow run Running in Prefect: mark it Crashed."""
    from prefect import get_client
    from prefect.states import Crashed

    ids = [a.get("flow_run_id") for a in rd.state.get("attempts", [])[:-1] if a.get("flow_run_id")]
    names = {rd.run_id}
    try:
        with get_client(sync_client=True) as client:
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=list(names))))
            for fr in runs:
                if (str(fr.id) in ids or fr.name == rd.run_id) and fr.state is not None and not fr.state.is_final():
                    client.set_flow_run_state(fr.id, Crashed(message="the codex-tasks process was killed; resumed"),
                                              force=True)
    except Exception as exc:  # history is best effort; the run itself goes on
        rd.events.emit("log", line=f"could not mark the killed attempt Crashed in Prefect: {exc}")


def dask_task_runner(spec: str, max_parallel: int) -> Any:
    """`dask` (a LocalCluster) or `dask=tcp://HOST:PORT` (an existing scheduler)."""
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UsageError("--runner dask needs prefect-dask", hint="make install") from exc
    if spec == "dask":
        return DaskTaskRunner(cluster_kwargs={"n_workers": max(1, min(max_parallel, os.cpu_count() or 2)),
                                              "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    if spec.startswith("dask="):
        address = spec.removeprefix("dask=")
        return DaskTaskRunner(address=address)
    raise UsageError(f"--runner {spec}: expected local, dask or dask=tcp://HOST:PORT")
