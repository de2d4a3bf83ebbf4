"""Record a run that executed nothing (every step cached, skipped or manual) in the Prefect
server's history over its REST API, without importing Prefect.

Importing Prefect and creating a flow costs ~3 s, which would dominate a fully cached rerun
(bench/cache.py); this writes the same history — a flow run named by the run id, one task run
per step (cached ones in Prefect's own `Cached` state), the report artifacts — in a few
milliseconds a request, over one kept-alive connection.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from codex_tasks.core.names import slug
from codex_tasks.core.redact import redact_obj
from codex_tasks.runs.report import artifact_markdown
from codex_tasks.runs.rundir import RunDir

_STATE = {"succeeded": ("COMPLETED", "Completed"), "cached": ("COMPLETED", "Cached"),
          "manual": ("COMPLETED", "Manual"), "skipped": ("COMPLETED", "Skipped"),
          "not_run": ("PENDING", "NotReady"), "failed": ("FAILED", "Failed")}


REDACTED = "***"


def flow_run_name(rd: RunDir) -> str:
    """The run id for its first attempt, `<run-id> resume N` after: no two flow runs share a name."""
    attempt = int(rd.state.get("attempt", 1))
    return rd.run_id if attempt <= 1 else f"{rd.run_id} resume {attempt - 1}"


def flow_parameters(rd: RunDir) -> dict[str, Any]:
    """The sequence's parameters as the flow run's `parameters` (Prefect's Parameters tab): secret
    ones (typed `secret`, or hidden by the scanner and kept only as a hash) shown as `***`."""
    params: dict[str, Any] = {k: (REDACTED if isinstance(v, dict) and "secret_sha256" in v else v)
                              for k, v in rd.state.get("params", {}).items()}
    params.update({name: REDACTED for name in rd.state.get("secret_params", [])})
    return dict(sorted(params.items()))


class _Api:
    def __init__(self, url: str) -> None:
        import http.client  # on the first request, like server._healthy's urllib

        u = urlparse(url)
        self.base = u.path.rstrip("/")
        self.conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=10)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self.conn.request("POST", f"{self.base}{path}", body=json.dumps(body, default=str),
                          headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise OSError(f"POST {path}: HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data) if data else None


def record_history(api_url: str, rd: RunDir, summary: dict[str, Any], tags: list[str], flow_name: str) -> str:
    """Create the flow run, its task runs and artifacts; return the flow run id."""
    api = _Api(api_url)
    flow = api.post("/flows/", {"name": flow_name})
    ok = summary["status"] == "succeeded"
    fr = api.post("/flow_runs/", {
        "flow_id": flow["id"], "name": flow_run_name(rd), "tags": tags,
        "parameters": flow_parameters(rd),
        "state": {"type": "COMPLETED" if ok else "FAILED", "name": "Completed" if ok else "Failed",
                  "message": "nothing to execute: every step cached, skipped or manual"},
    })
    for i, step in enumerate(summary["steps"]):
        kind, name = _STATE.get(step["status"], ("COMPLETED", "Completed"))
        api.post("/task_runs/", {"flow_run_id": fr["id"], "task_key": f"{step['id']}-{i}", "dynamic_key": "0",
                                 "name": step["id"], "state": {"type": kind, "name": name,
                                                               "message": step.get("note") or ""}})
    for artifact in report_artifacts(rd, summary):
        api.post("/artifacts/", {**artifact, "flow_run_id": fr["id"]})
    api.conn.close()
    return str(fr["id"])


def report_artifacts(rd: RunDir, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's report.md as a markdown artifact and its step results as a table artifact
    (key, type, data, description), keyed by the sequence title."""
    key = slug(str(summary.get("title", "run")), default="run")[:60]
    key = key if key.startswith("codex") else f"codex-{key}"  # one prefix, never `codex-codex-tasks-`
    report = artifact_markdown(rd.path)  # chart images become links to the PNG files and report.html
    rows = [{"step": r["id"], "phase": r.get("phase_id"), "kind": r.get("kind"), "status": r["status"],
             "duration_s": r.get("duration"), "note": (r.get("error") or r.get("note") or "")[:120]}
            for r in summary["steps"]]
    # Prefect stores artifacts in its own database: through the redaction hook (the report and the
    # state it is built from already are; this keeps it so if either ever is not)
    artifacts: list[dict[str, Any]] = redact_obj([
        {"key": key, "type": "markdown", "data": report, "description": f"codex-tasks report of run {rd.run_id}"},
        {"key": f"{key}-steps", "type": "table", "data": rows, "description": f"step results of run {rd.run_id}"},
    ])
    return artifacts
