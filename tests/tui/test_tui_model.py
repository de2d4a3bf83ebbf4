"""The run model folds events into statuses, progress, metrics and logs (no Textual)."""

from __future__ import annotations

import json

from conftest import FIXTURE_RUN

from codex_tasks.runs.events import EventLog
from codex_tasks.tui.model import RunModel
from codex_tasks.tui.source import RunFolder


def ev(t: float, type_: str, **kw: object) -> dict[str, object]:
    return {"time": t, "ts": "", "type": type_, **kw}


def test_fixture_replay_gives_every_status() -> None:
    folder = RunFolder(FIXTURE_RUN)
    m = RunModel(folder.run_id)
    m.seed_plan(folder.plan_steps(), folder.phase_names())
    m.apply(folder.poll())
    assert {s.id: s.status for s in m.steps.values()} == {
        "setup": "succeeded", "review": "manual", "deps": "cached", "tokenize": "succeeded",
        "train": "succeeded", "evaluate": "succeeded", "lint": "failed", "docs": "skipped", "archive": "not_run"}
    assert m.status == "failed" and m.duration == 15.2
    assert m.phases["P2"].name == "Train" and m.phase_status("P3") == "failed"
    assert m.steps["lint"].note == "command failed (exit 1): ruff check src"
    loss = m.metrics[("train", "train", "loss")]
    assert len(loss) == 20 and loss[-1] < loss[0]
    assert len(m.metrics[("train", "eval", "loss")]) == 5
    pv = m.progress["train"]
    assert (pv.done, pv.total, pv.unit) == (200, 200, "step")
    assert round(pv.rate or 0, 6) == 20.0  # from event times: 10 steps per 0.5 s


def test_statuses_move_pending_running_done_and_changes_name_them() -> None:
    m = RunModel()
    m.seed_plan([{"id": "a", "phase_id": "p"}, {"id": "b", "phase_id": "p"}])
    assert [s.status for s in m.steps.values()] == ["pending", "pending"]
    ch = m.apply([ev(1, "run.started", title="T"), ev(2, "step.started", step_id="a", phase_id="p")])
    assert ch.steps == {"a"} and ch.run and not ch.structure
    assert m.steps["a"].status == "running" and m.steps["a"].elapsed(5.0) == 3.0
    ch = m.apply([ev(4, "step.succeeded", step_id="a", phase_id="p", duration=2.0)])
    assert m.steps["a"].word == "done" and m.steps["a"].elapsed(100.0) == 2.0
    ch = m.apply([ev(5, "step.started", step_id="new", phase_id="q")])
    assert ch.structure and list(m.phases) == ["p", "q"]


def test_eta_comes_from_event_times_only() -> None:
    m = RunModel()
    m.apply([ev(10 + k, "progress", step_id="t", done=k * 5, total=100, unit="step") for k in range(5)])
    pv = m.progress["t"]
    assert pv.rate == 5.0 and pv.eta == (100 - 20) / 5.0
    assert pv.fraction == 0.2


def test_resume_resets_statuses_and_kept_steps_count_as_done() -> None:
    m = RunModel()
    m.apply([ev(1, "run.started"), ev(2, "step.started", step_id="a"), ev(3, "step.succeeded", step_id="a"),
             ev(4, "step.started", step_id="b"), ev(5, "step.failed", step_id="b", error="boom"),
             ev(6, "run.failed", status="failed")])
    assert m.status == "failed" and not m.is_live
    ch = m.apply([ev(10, "run.resumed", attempt=2)])
    assert ch.reset and m.status == "running" and m.attempt == 2
    assert {s.status for s in m.steps.values()} == {"pending"}
    m.apply([ev(11, "step.kept", step_id="a", note="succeeded in attempt 1")])
    assert m.steps["a"].word == "done" and "attempt 1" in m.steps["a"].note


def test_run_end_closes_steps_left_running() -> None:
    m = RunModel()
    m.apply([ev(1, "run.started"), ev(2, "step.started", step_id="a"),
             ev(3, "run.interrupted", status="cancelled")])
    assert m.status == "cancelled" and m.steps["a"].status == "not_run"


def test_reader_skips_a_torn_last_line_and_resumes(tmp_path) -> None:
    log = EventLog(tmp_path / "events.ndjson", "r")
    log.emit("run.started", title="T")
    with open(tmp_path / "events.ndjson", "a") as fh:
        fh.write(json.dumps({"time": 2, "type": "step.started", "step_id": "a"})[:20])
    folder = RunFolder(tmp_path)
    m = RunModel()
    m.apply(folder.poll())
    assert m.status == "running" and "a" not in m.steps
    with open(tmp_path / "events.ndjson", "a") as fh:
        fh.write(json.dumps({"time": 2, "type": "step.started", "step_id": "a"})[20:] + "\n")
    m.apply(folder.poll())
    assert m.steps["a"].status == "running"


def test_step_log_tail_is_incremental(tmp_path) -> None:
    folder = RunFolder(tmp_path)
    log = folder.step_log_path("s")
    log.parent.mkdir(parents=True)
    log.write_text("one\ntwo\nthr")
    lines, off = folder.read_step_log("s", 0)
    assert lines == ["one", "two"]
    with open(log, "a") as fh:
        fh.write("ee\nfour\n")
    lines, off = folder.read_step_log("s", off)
    assert lines == ["three", "four"]
    assert folder.read_step_log("s", off) == ([], off)
