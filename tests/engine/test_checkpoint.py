"""Checkpoint folders: atomic writes, SHA-256 verification, fallback to the previous good one, retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from codex_tasks.engine.checkpoint import (
    list_checkpoints,
    newest_valid,
    plan_retention,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
)


def _save(root, step, loss):
    def write(folder):
        (folder / "weights.bin").write_bytes(bytes([step % 256]) * 64)

    return save_checkpoint(root, step, write, {"step": step, "metrics": {"eval_loss": loss}})


def test_save_is_complete_and_verifies(tmp_path):
    path = _save(tmp_path, 10, 1.0)
    assert path.name == "step-00000010"
    assert set(json.loads((path / "checksums.json").read_text())) == {"weights.bin", "state.json"}
    assert verify_checkpoint(path) == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_corruption_is_detected_and_the_previous_checkpoint_used(tmp_path):
    _save(tmp_path, 10, 1.0)
    newest = _save(tmp_path, 20, 0.5)
    data = bytearray((newest / "weights.bin").read_bytes())
    data[3] ^= 0xFF  # same size, different bytes: only the hash can tell
    (newest / "weights.bin").write_bytes(bytes(data))
    assert "SHA-256" in verify_checkpoint(newest)
    lines: list[str] = []
    found = newest_valid(tmp_path, lines.append)
    assert found is not None and found.step == 10
    assert any("step-00000020 is corrupt" in line for line in lines)


def test_a_half_written_checkpoint_is_invisible(tmp_path):
    _save(tmp_path, 10, 1.0)
    (tmp_path / ".tmp-step-00000020-999999999").mkdir()  # a killed writer's temp folder
    partial = tmp_path / "step-00000030"  # no manifest: never renamed into place by us
    partial.mkdir()
    (partial / "weights.bin").write_bytes(b"x")
    assert newest_valid(tmp_path, lambda line: None).step == 10
    result = prune_checkpoints(tmp_path, keep_last=3, keep_best=0, metric="eval_loss", mode="min")
    assert result["stale_temp"] == [".tmp-step-00000020-999999999"]
    assert "step-00000030" in result["corrupt"]


def test_a_live_writers_temp_folder_is_kept_and_an_exited_ones_is_stale(tmp_path):
    # the writer is a child that waits on its stdin; once it exits it stays a zombie (unreaped),
    # which is gone for the probe: a zombie writes nothing more
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        name = f".tmp-step-00000020-{writer.pid}"
        (tmp_path / name).mkdir()
        result = prune_checkpoints(tmp_path, keep_last=3, keep_best=0, metric="eval_loss", mode="min", dry_run=True)
        assert result["stale_temp"] == []
        assert writer.stdin is not None
        writer.stdin.close()
        os.waitid(os.P_PID, writer.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        result = prune_checkpoints(tmp_path, keep_last=3, keep_best=0, metric="eval_loss", mode="min")
        assert result["stale_temp"] == [name]
        assert not (tmp_path / name).exists()
    finally:
        writer.kill()
        writer.wait()


def test_retention_keeps_exactly_last_plus_best(tmp_path):
    losses = {5: 3.0, 10: 1.0, 15: 2.0, 20: 2.5, 25: 2.6, 30: 2.7, 35: 2.8, 40: 2.9}  # best is old (10)
    for step, loss in losses.items():
        _save(tmp_path, step, loss)
    dry = prune_checkpoints(tmp_path, keep_last=3, keep_best=2, metric="eval_loss", mode="min", dry_run=True)
    assert len(list_checkpoints(tmp_path)) == 8  # nothing removed on a dry run
    result = prune_checkpoints(tmp_path, keep_last=3, keep_best=2, metric="eval_loss", mode="min")
    assert result["kept"] == dry["kept"]
    kept = [c.step for c in list_checkpoints(tmp_path)]
    assert len(kept) == 3 + 2
    assert kept == [10, 15, 30, 35, 40]  # last 3, then the best 2 older ones


def test_retention_max_mode_and_missing_metric():
    from codex_tasks.engine.checkpoint import CheckpointInfo

    infos = [CheckpointInfo(path=None, step=s, valid=True, metrics=m) for s, m in
             [(1, {"eval_acc": 0.9}), (2, {}), (3, {"eval_acc": 0.1}), (4, {"eval_acc": 0.2})]]  # type: ignore[arg-type]
    keep, remove = plan_retention(infos, keep_last=1, keep_best=1, metric="eval_acc", mode="max")
    assert [c.step for c in keep] == [1, 4] and [c.step for c in remove] == [2, 3]
