"""`codex-tasks serve` (a sequence on a schedule, in the foreground) and `codex-tasks schedule`."""

from __future__ import annotations

from typing import Any

from codex_tasks.core.names import slug
from codex_tasks.errors import UsageError, map_exceptions
from codex_tasks.orchestrate.prefect.setup import configure_prefect
from codex_tasks.orchestrate.prepare import prepare_run
from codex_tasks.render.params import looks_secret


def serve(file: str, *, cron: str | None, interval: float | None, params: list[str], name: str | None,
          workspace: str | None, max_parallel: int = 4) -> int:
    """Serve `file` on its schedule until SIGTERM/SIGINT (flow.serve: no work pool needed)."""
    prepared = prepare_run(file, params, workspace)  # bad input stops here, exit 2
    for given in params:
        # the deployment stores its parameters in Prefect's database, and every scheduled run's
        # flow run shows them: a value that looks like a secret is refused, not stored
        name, _, value = given.partition("=")
        if looks_secret(name, value):
            raise UsageError(f"--param {name}: looks like a secret, and `serve` would store it in the Prefect deployment",
                             hint=f"declare {name} `type: secret` and export it in the environment of `codex-tasks serve`")
    path, loaded, ws = prepared.file, prepared.loaded, str(prepared.workspace)
    if cron is None and interval is None and loaded.spec.schedule is not None:
        cron, interval = loaded.spec.schedule.cron, loaded.spec.schedule.interval
    if cron is None and interval is None:
        raise UsageError(f"{file}: no schedule", hint="pass --cron EXPR or --interval SECONDS, or add 'schedule:' to the file")
    if cron is not None:
        from prefect.client.schemas.schedules import CronSchedule

        with map_exceptions({ValueError: lambda _: UsageError(f"--cron {cron!r}: not a cron expression",
                                                             hint="e.g. '0 3 * * *'")}):
            CronSchedule(cron=cron)  # pydantic's ValidationError is a ValueError

    configure_prefect()
    # lazy: the entrypoint is a Prefect flow, so it imports Prefect, which reads its settings then: after configure_prefect()
    from codex_tasks.orchestrate.prefect.entrypoint import codex_sequence

    deployment = name or slug(loaded.spec.title)
    seq = file if file.startswith("builtin:") else str(path.resolve())
    print(f"serving {seq} as '{deployment}' ({'cron ' + cron if cron else f'every {interval:g} s'}); "
          f"workspace {ws}; Ctrl-C or SIGTERM stops", flush=True)
    # Prefect's own banner suggests `prefect deployment run ...`, which needs a worker setup we
    # don't have; these commands work against this server
    print(f"run it now: codex-tasks run {seq} -w {ws}; pause: codex-tasks schedule pause {deployment}", flush=True)
    codex_sequence.serve(
        name=deployment,
        cron=cron,
        interval=interval,
        parameters={"file": seq, "params": list(params), "workspace": ws, "max_parallel": max_parallel},
        tags=["codex-tasks", f"sequence:{loaded.spec.title}"[:100]],
        print_starting_message=False,
        limit=1,  # one run at a time, as in a workspace: a due run waits for the one in progress
    )
    return 0


def _deployments() -> list[Any]:
    configure_prefect()
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return list(client.read_deployments())


def list_schedules() -> list[dict[str, Any]]:
    out = []
    for d in _deployments():
        scheds = []
        for s in d.schedules or []:
            sch = s.schedule
            scheds.append(getattr(sch, "cron", None) or f"every {getattr(sch, 'interval', '?')}")
        out.append({"name": d.name, "paused": bool(d.paused), "schedules": scheds,
                    "parameters": d.parameters, "id": str(d.id)})
    return out


def set_paused(name: str, paused: bool) -> str:
    configure_prefect()  # before prefect is imported: it reads the API URL once
    from prefect import get_client

    matches = [d for d in _deployments() if d.name == name]
    if not matches:
        known = ", ".join(sorted(d.name for d in _deployments())) or "none"
        raise UsageError(f"no schedule named {name!r}", hint=f"known: {known}")
    with get_client(sync_client=True) as client:
        for d in matches:
            if paused:
                client.pause_deployment(d.id)
            else:
                client.resume_deployment(d.id)
    return f"{name}: {'paused' if paused else 'resumed'}"
