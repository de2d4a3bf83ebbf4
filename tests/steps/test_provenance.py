"""The `provenance` step records every field the issue lists."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from codex_tasks.errors import StepFailed
from codex_tasks.steps import provenance


def git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=ws, check=True, capture_output=True)


def test_every_field(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data.txt").write_text("abc")
    git(ws, "init", "-q", "-b", "main")
    git(ws, "add", ".")
    git(ws, "commit", "-qm", "init")
    (ws / "data.txt").write_text("changed")
    outputs = {"tok": [{"path": "data.txt", "sha256": "ab" * 32, "size": 3}]}
    ctx = make_ctx(workspace=ws, params={"seed": 1234, "lr": 0.1}, outputs_of=outputs.get)
    (ctx.run_dir / "sequence.yaml").write_text("title: t\n")
    res = provenance.run(provenance.With(outputs_of=["tok"], inputs=["data.txt"]), ctx)
    rec = json.loads((ctx.step_dir / "provenance.json").read_text())
    for key in ("timestamp", "codex_tasks_version", "python", "platform", "cpu", "ram_bytes", "gpus", "torch",
                "cuda", "seeds", "git", "sequence_sha256", "params", "inputs", "outputs_of"):
        assert key in rec, key
    assert rec["gpus"] == [] or isinstance(rec["gpus"], list)
    assert rec["cpu"]["count"] >= 1 and rec["cpu"]["model"]
    assert rec["ram_bytes"] > 0
    assert rec["seeds"] == {"seed": 1234}
    assert rec["params"] == {"seed": 1234, "lr": 0.1}
    assert rec["git"]["branch"] == "main" and len(rec["git"]["commit"]) == 40 and rec["git"]["dirty"] is True
    assert len(rec["sequence_sha256"]) == 64
    assert rec["outputs_of"]["tok"][0]["sha256"] == "ab" * 32
    assert rec["inputs"][0]["sha256"] == __import__("hashlib").sha256(b"changed").hexdigest()
    freeze = (ctx.step_dir / "pip_freeze.txt").read_text().splitlines()
    assert any(line.lower().startswith("pydantic==") for line in freeze)
    assert res.summary["dirty"] is True


def test_outside_git_and_unknown_step(make_ctx, tmp_path):
    ctx = make_ctx()
    provenance.run(provenance.With(), ctx)
    rec = json.loads((ctx.step_dir / "provenance.json").read_text())
    assert rec["git"]["commit"] is None and rec["sequence_sha256"] is None
    with pytest.raises(StepFailed, match="no recorded outputs"):
        provenance.run(provenance.With(outputs_of=["nope"]), ctx)


@pytest.mark.slow
def test_sbom(make_ctx):
    ctx = make_ctx()
    provenance.run(provenance.With(sbom=True), ctx)
    sbom = json.loads((ctx.step_dir / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["components"]
