"""Prefect settings for every codex-tasks process: the managed server, quiet logs, no telemetry."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any

from codex_tasks.errors import ServerError, UsageError
from codex_tasks.orchestrate.prefect.rest import flow_parameters, report_artifacts
from codex_tasks.orchestrate.prefect.server import client_env, ensure_server, quiet_env
from codex_tasks.runs.rundir import RunDir


def check_user_api_url() -> None:
    """A `PREFECT_API_URL` the user set must answer as a Prefect API: checked before a run writes
    anything, so a wrong URL is one message (exit 2), not Prefect's chained tracebacks mid-run."""
    import urllib.error
    import urllib.request

    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        return
    hint = "start that server (`prefect server start`), fix the URL, or unset PREFECT_API_URL to use codex-tasks' own server"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            body = resp.read(64).strip()
    except urllib.error.HTTPError as exc:
        raise ServerError(f"PREFECT_API_URL={url} answers, but not as a Prefect API (GET /health: HTTP {exc.code})",
                          hint=hint) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(f"PREFECT_API_URL={url}: no Prefect server reachable there ({reason})", hint=hint) from None
    if body != b"true":  # Prefect's /health answers the JSON `true`
        raise ServerError(f"PREFECT_API_URL={url} answers, but not as a Prefect API (GET /health: {body[:40]!r})",
                          hint=hint)


def configure_prefect() -> str:
    """Point this process at a running Prefect server (starting ours if needed); returns the API URL.
    Must run before `import prefect` reads its settings."""
    check_user_api_url()
    url = ensure_server()
    for key, value in quiet_env().items():
        os.environ.setdefault(key, value)
    os.environ["PREFECT_API_URL"] = url
    # results and task caches stay in memory: codex-tasks keeps its own cache and run folders
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    defer_iri_grammar()
    return url


def show_parameters(rd: RunDir) -> None:
    """Inside the flow: the sequence's parameters become this flow run's `parameters` (the flow
    itself takes none, so Prefect would show `{}`); secrets as `***`."""
    from uuid import UUID

    from prefect import get_client
    from prefect.runtime import flow_run

    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(flow_run.id)), parameters=flow_parameters(rd))
    except Exception as exc:  # history is best effort; the run itself goes on
        rd.events.emit("log", line=f"could not show the parameters on the Prefect flow run: {exc}")


IRI_GRAMMAR_MODULE = "rfc3987_syntax"


def defer_iri_grammar() -> None:
    """Put off compiling the IRI grammar until something checks an IRI.

    `import prefect` imports jsonschema, whose format checkers import `rfc3987_syntax` when it is
    installed (jsonschema's `format-nongpl` extra), and that module builds an Earley parser at
    import: about half of `import prefect` (2.2 of 4.3 s, `python -X importtime`), for `iri`
    format checks a codex-tasks run never makes. A stand-in module takes its place and imports
    the real one on first use, so a later IRI check behaves exactly as before."""
    name = IRI_GRAMMAR_MODULE
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return
    stand_in = types.ModuleType(name, "stand-in: imports the real module on first use")

    def real() -> types.ModuleType:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return importlib.import_module(name)

    def is_valid_syntax(term: str, value: str) -> bool:
        return bool(real().is_valid_syntax(term, value))

    def attribute(attr: str) -> Any:
        if attr.startswith("__"):  # the import system probes `__path__` & co: not a use
            raise AttributeError(attr)
        return getattr(real(), attr)

    stand_in.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]  # what jsonschema imports
    stand_in.__getattr__ = attribute  # type: ignore[method-assign]  # anything else
    sys.modules[name] = stand_in


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


def attach_report(rd: RunDir, summary: dict[str, Any]) -> None:
    """The run's report.md as a Prefect markdown artifact, and its step results as a table artifact."""
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    flow_run_id = UUID(str(rd.state["flow_run_id"]))
    try:
        with get_client(sync_client=True) as client:
            for artifact in report_artifacts(rd, summary):
                client.create_artifact(ArtifactCreate(**artifact, flow_run_id=flow_run_id))
    except Exception as exc:  # history is best effort; the run's own files are complete
        rd.events.emit("log", line=f"could not attach the report to the Prefect flow run: {exc}")


def _set_env(env: dict[str, str]) -> None:
    os.environ.update(env)


def dask_task_runner(spec: str, max_parallel: int) -> Any:
    """`dask` / `dask:N` (a LocalCluster of N workers) or `dask=tcp://HOST:PORT` (an existing scheduler).

    Workers get the Prefect API URL (a worker without it would start a temporary server of its
    own, ~35 s, and lose history)."""
    from prefect_dask.task_runners import DaskTaskRunner

    if spec == "dask" or spec.startswith("dask:"):
        try:
            workers = int(spec.partition(":")[2] or min(max_parallel, os.cpu_count() or 2))
        except ValueError:
            raise UsageError(f"--runner {spec}: expected dask:N with N workers") from None
        if workers < 1:
            raise UsageError(f"--runner {spec}: at least one worker")
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    if spec.startswith("dask="):
        address = spec.removeprefix("dask=")
        from distributed import Client

        try:
            client = Client(address, timeout="5s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--runner {spec}: cannot reach the Dask scheduler at {address} ({type(exc).__name__})",
                             hint="start it with `dask scheduler` and `dask worker ADDRESS`, or use --runner dask") from None
        try:
            client.run(_set_env, client_env(os.environ["PREFECT_API_URL"]))
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return DaskTaskRunner(address=address)
    raise UsageError(f"--runner {spec}: expected local, dask, dask:N or dask=tcp://HOST:PORT")
