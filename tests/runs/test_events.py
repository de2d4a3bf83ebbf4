"""The events log: whole lines from threads and processes, through one kept descriptor each."""

from __future__ import annotations

import json
import multiprocessing
import threading

from codex_tasks.runs.events import EventLog, read_events


def _append(log: EventLog, who: str, n: int) -> None:
    for i in range(n):
        log.emit("log", step_id=who, line=f"{who} {i} " + "x" * 300)


def test_threads_and_a_forked_process_append_whole_lines_to_one_log(tmp_path):
    log = EventLog(tmp_path / "events.ndjson", "r1")
    log.emit("run.started")  # the parent's descriptor is open before the fork
    child = multiprocessing.get_context("fork").Process(target=_append, args=(log, "child", 200))
    child.start()
    threads = [threading.Thread(target=_append, args=(log, f"t{k}", 100)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    child.join(timeout=60)
    assert child.exitcode == 0
    lines = (tmp_path / "events.ndjson").read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # no line torn or merged
    by = [e.get("step_id") for e in read_events(tmp_path / "events.ndjson")]
    assert by.count("child") == 200 and all(by.count(f"t{k}") == 100 for k in range(3))


def test_a_closed_log_reopens_on_the_next_event_and_a_torn_line_stays_alone(tmp_path):
    path = tmp_path / "events.ndjson"
    log = EventLog(path, "r1")
    log.emit("run.started")
    log.close()
    with open(path, "a") as fh:
        fh.write('{"type": "torn')  # another writer died mid-line
    log.emit("run.resumed")
    assert [e["type"] for e in read_events(path)] == ["run.started", "run.resumed"]
