"""Prefect settings codex-tasks applies to its own processes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

PROBE = """
import json, sys
from codex_tasks.orchestrate.prefect.setup import defer_iri_grammar
if sys.argv[1] == "defer":
    defer_iri_grammar()
import jsonschema
loaded_at_import = "lark" in sys.modules
checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
verdicts = [checker.conforms(v, "iri") for v in ("http://example.com/caf\u00e9", "http://[bad", "no scheme")]
print(json.dumps({"grammar_at_import": loaded_at_import, "verdicts": verdicts,
                  "grammar_after_check": "lark" in sys.modules}))
"""


def probe(mode: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_the_iri_grammar_is_built_on_first_use_with_the_same_verdicts() -> None:
    deferred, eager = probe("defer"), probe("eager")
    assert deferred["verdicts"] == eager["verdicts"]
    if importlib.util.find_spec("rfc3987_syntax") is not None:
        assert eager["verdicts"] == [True, False, False]  # the real checker ran
        assert eager["grammar_at_import"] is True
        assert deferred["grammar_at_import"] is False  # what the stand-in saves on `import prefect`
        assert deferred["grammar_after_check"] is True


def test_the_managed_server_records_task_runs_in_batches(prefect_url: str) -> None:
    import urllib.request

    from codex_tasks.orchestrate.prefect.server import SERVER_TUNING

    with urllib.request.urlopen(f"{prefect_url}/admin/settings", timeout=30) as resp:
        services = json.loads(resp.read())["server"]["services"]
    assert services["task_run_recorder"]["batch_size"] == int(
        SERVER_TUNING["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]) > 1
    assert services["event_persister"]["batch_size"] == int(
        SERVER_TUNING["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE"])
