"""The `archive` step and `verify_zip`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from codex_tasks.errors import StepFailed
from codex_tasks.steps import archive


def make_run(make_ctx, tmp_path: Path):
    ctx = make_ctx(params={"logs_dir": "logs"})
    (ctx.run_dir / "summary.json").write_text('{"ok": true}\n')
    (ctx.run_dir / "steps" / "train").mkdir(parents=True)
    (ctx.run_dir / "steps" / "train" / "metrics.csv").write_text("step,loss\n1,2.0\n")
    (ctx.workspace / "logs").mkdir()
    (ctx.workspace / "logs" / "run.log").write_bytes(b"\x00\x01binary-ish log\n")
    return ctx


def test_manifest_verifies(make_ctx, tmp_path):
    ctx = make_run(make_ctx, tmp_path)
    res = archive.run(archive.With(), ctx)
    zpath = Path(res.summary["zip"])
    assert zpath.name == "codex_run_artifacts.zip"
    with zipfile.ZipFile(zpath) as zf:
        manifest = json.loads(zf.read("MANIFEST.json"))
    paths = {e["path"] for e in manifest["files"]}
    assert "logs/run.log" in paths and ".codex/runs/test-run/summary.json" in paths
    assert ".codex/runs/test-run/steps/train/metrics.csv" in paths
    assert not any(p.endswith(".zip") for p in paths)
    v = archive.verify_zip(zpath)
    assert v.ok and v.files == len(paths) and v.problems == []


def rewrite(zpath: Path, change) -> None:
    with zipfile.ZipFile(zpath) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    change(items)
    with zipfile.ZipFile(zpath, "w") as zf:
        for n, data in items.items():
            zf.writestr(n, data)


def test_detects_tampering(make_ctx, tmp_path):
    ctx = make_run(make_ctx, tmp_path)
    zpath = Path(archive.run(archive.With(), ctx).summary["zip"])
    rewrite(zpath, lambda items: items.__setitem__("logs/run.log", b"tampered\n"))
    v = archive.verify_zip(zpath)
    assert not v.ok and any("logs/run.log" in p for p in v.problems)
    rewrite(zpath, lambda items: items.pop(".codex/runs/test-run/summary.json"))
    assert any(p.startswith("missing:") for p in archive.verify_zip(zpath).problems)
    rewrite(zpath, lambda items: items.__setitem__("extra.txt", b"x"))
    assert "not in manifest: extra.txt" in archive.verify_zip(zpath).problems


def test_byte_flip_in_place_is_detected(make_ctx, tmp_path):
    ctx = make_run(make_ctx, tmp_path)
    zpath = Path(archive.run(archive.With(paths=["logs"]), ctx).summary["zip"])
    data = bytearray(zpath.read_bytes())
    idx = data.find(b"PK\x03\x04") + 30 + len("logs/run.log") + 2  # inside the stored/deflated payload
    data[idx] ^= 0xFF
    zpath.write_bytes(bytes(data))
    assert not archive.verify_zip(zpath).ok


def test_not_a_zip(tmp_path):
    p = tmp_path / "x.zip"
    p.write_text("nope")
    assert not archive.verify_zip(p).ok


def test_refuses_flagged_files(make_ctx, tmp_path):
    ctx = make_run(make_ctx, tmp_path)
    scan_dir = ctx.run_dir / "steps" / "scan"
    scan_dir.mkdir(parents=True)
    (scan_dir / "findings.json").write_text(json.dumps([{"path": "logs/run.log", "line": 1, "rule": "x"}]))
    with pytest.raises(StepFailed, match="logs/run.log"):
        archive.run(archive.With(), ctx)
    res = archive.run(archive.With(allow_flagged=True, out="out/a.zip"), ctx)
    assert res.summary["flagged_included"] == 1 and (ctx.workspace / "out" / "a.zip").is_file()
    res = archive.run(archive.With(exclude=["logs/**"]), ctx)
    assert res.summary["flagged_included"] == 0
