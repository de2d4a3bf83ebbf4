"""The run lock's record of process groups: appended as children start, read back by the next run."""

from __future__ import annotations

import os

from codex_tasks.core.process import Sandbox, processes_with_env, spawn
from codex_tasks.runs.lock import RunLock


def test_each_spawned_group_is_one_line_of_the_lock_file_and_release_empties_it(tmp_path):
    lock = RunLock(tmp_path).acquire("r1")
    try:
        procs = [spawn(["true"], cwd=tmp_path, sandbox=Sandbox("none")) for _ in range(3)]
        for p in procs:
            p.wait(timeout=30)
        recorded = [int(x) for x in lock.path.read_text().split()]
        assert recorded == [p.pid for p in procs]  # each child leads its own group
    finally:
        lock.release()
    assert lock.path.read_text() == ""
    assert not lock.info_path.exists()


def test_groups_in_the_lock_file_and_in_an_older_json_record_are_both_reaped(tmp_path):
    """A dead run's record: groups in the lock file and, from before this format, in
    run.lock.json; the next run ends what is alive in either."""
    env = {**os.environ, "CODEX_RUN_ID": "dead"}
    in_file = spawn(["sleep", "300"], cwd=tmp_path, env=env, sandbox=Sandbox("none"))
    in_json = spawn(["sleep", "300"], cwd=tmp_path, env=env, sandbox=Sandbox("none"))
    codex = tmp_path / ".codex"
    codex.mkdir()
    (codex / "run.lock").write_text(f"\n{in_file.pid}\n\n1")  # "1": unterminated, torn mid-write
    (codex / "run.lock.json").write_text(f'{{"pid": 1, "run_id": "dead", "groups": [{in_json.pid}]}}')
    fresh = RunLock(tmp_path).acquire("next")
    try:
        assert fresh.reaped == sorted([in_file.pid, in_json.pid])
        in_file.wait(timeout=10)
        in_json.wait(timeout=10)
        assert processes_with_env("CODEX_RUN_ID", "dead") == []
        assert fresh.path.read_text() == ""  # the dead run's record is gone; this run's starts empty
    finally:
        fresh.release()
