"""What a Prefect user sees of a run, read back over the server's REST API."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import run_cli
from tests.orchestrate.test_runner import _api, _flow_run

SEQ = textwrap.dedent("""\
    title: Codex tasks history
    params:
      seed: {type: int, default: 7}
      label: {type: str, default: tiny}
      token: {type: secret, env: HISTORY_TOKEN}
    phases:
      - id: a
        steps:
          - id: hello
            commands: ['echo "seed {seed}"']
    """)


def test_parameters_are_the_flow_runs_parameters(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(SEQ)
    run_cli("run", "s.yaml", "-p", "seed=9", cwd=tmp_path, env={"HISTORY_TOKEN": "hush-123456"}, check=0)
    run_id = sorted((tmp_path / ".codex" / "runs").iterdir())[-1].name
    fr = _flow_run(prefect_url, run_id)
    assert fr["parameters"]["seed"] == 9 and fr["parameters"]["label"] == "tiny"
    assert fr["parameters"]["token"] == "***"
    assert "hush-123456" not in str(fr)
    assert not [t for t in fr["tags"] if t.startswith("param:")]
    assert "sequence:Codex tasks history" in fr["tags"]
    keys = {a["key"] for a in _api(prefect_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [fr["id"]]}}})}
    assert keys == {"codex-tasks-history", "codex-tasks-history-steps"}  # one prefix, no pickled result
