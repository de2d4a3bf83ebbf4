"""bench/compare_commits.py's classifier: a difference gets the class that explains it, and a
changed value that nothing explains stays UNEXPLAINED (the check the script exists for)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cc():
    spec = importlib.util.spec_from_file_location("bench_compare_commits", ROOT / "bench" / "compare_commits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def masks(cc):
    m = cc.Masks()
    m.pair(cc.RUN_ID, "20261130-131939-8e60", "20261130-132515-f9d2", "<run>")
    return m


def classify(cc, masks, a, b, key="x.json", allowed=()):
    return cc.classify_bytes(a.encode(), b.encode(), masks, set(allowed), key)


def test_identical_is_no_difference(cc, masks):
    assert classify(cc, masks, '{"a": 1}', '{"a": 1}') == ""


def test_run_ids_pids_and_uuids(cc, masks):
    a = '{"run_id": "20261130-131939-8e60", "pid": 7942, "flow": "0b7e5c1e-1a2b-4c3d-8e9f-0123456789ab"}'
    b = '{"run_id": "20261130-132515-f9d2", "pid": 21113, "flow": "9f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"}'
    assert classify(cc, masks, a, b) == cc.RUN_ID


def test_clock_readings(cc, masks):
    a = '{"started": "2026-11-30T13:20:33.205+00:00", "duration": 0.055, "time": 1796044869.859}\nin 0.4s\n'
    b = '{"started": "2026-11-30T13:26:01.010+00:00", "duration": 0.103, "time": 1796045193.209}\nin 0.3s\n'
    assert classify(cc, masks, a, b) == cc.TIMESTAMP


def test_a_changed_loss_is_unexplained(cc, masks):
    a = '{"time": 1796044869.859, "step": 5, "metric": "loss", "value": 7.408554553985596}\n'
    b = '{"time": 1796045193.209, "step": 5, "metric": "loss", "value": 7.408554553985597}\n'
    assert classify(cc, masks, a, b) == cc.UNEXPLAINED


def test_a_step_count_is_not_a_duration(cc, masks):
    """`max_steps` ends in `_s`-like letters but is no clock reading."""
    assert classify(cc, masks, '{"max_steps": 300}', '{"max_steps": 301}') == cc.UNEXPLAINED


def test_system_metric_rows_are_machine_readings(cc, masks):
    a = "1796044869.8,r,5,train,loss,7.4\n1796044870.1,r,11,system,cpu_percent,93.0\n"
    b = "1796045193.2,r,5,train,loss,7.4\n1796045193.9,r,7,system,cpu_utilization_percentage,12.5\n"
    assert classify(cc, masks, a, b) == cc.MACHINE
    assert classify(cc, masks, a, b.replace("loss,7.4", "loss,7.5")) == cc.UNEXPLAINED


def test_order_by_duration_is_timing_order(cc, masks):
    a = json.dumps({"durations": [{"id": "t1", "seconds": 0.02}, {"id": "t2", "seconds": 0.01}]})
    b = json.dumps({"durations": [{"id": "t2", "seconds": 0.03}, {"id": "t1", "seconds": 0.01}]})
    assert classify(cc, masks, a, b) == cc.ORDER
    assert classify(cc, masks, a, b.replace('"t1"', '"t3"')) == cc.UNEXPLAINED


def test_glob_and_provenance_only_where_allowed(cc, masks):
    assert classify(cc, masks, "a\n", "b\n") == cc.UNEXPLAINED
    assert classify(cc, masks, "a\n", "b\n", allowed=[cc.GLOB]) == cc.GLOB
    assert classify(cc, masks, "a\n", "b\n", allowed=[cc.PROVENANCE]) == cc.PROVENANCE


def test_an_intended_change_only_in_its_files(cc, masks):
    a = '{"steps": [{"id": "s", "policy": {}}]}'
    b = '{"steps": [{"id": "s", "policy": {}, "bindings": []}]}'
    assert classify(cc, masks, a, b, key=".codex/runs/<run>/plan.json") == f"{cc.INTENDED}: plan bindings"
    assert classify(cc, masks, a, b, key=".codex/runs/<run>/other.json") == cc.UNEXPLAINED


def test_a_recorded_hash_takes_the_class_of_its_file(cc, masks):
    old, new = b"run at 2026-11-30T13:20:33\n", b"run at 2026-11-30T13:26:01\n"
    assert cc.classify_bytes(old, new, masks, set(), "log.txt") == cc.TIMESTAMP
    record = '{{"path": "log.txt", "sha256": "{}", "size": 27}}'
    a = record.format(hashlib.sha256(old).hexdigest())
    b = record.format(hashlib.sha256(new).hexdigest())
    assert classify(cc, masks, a, b) == cc.UNEXPLAINED
    cc.pair_records(masks, cc.TIMESTAMP, "log.txt", old, new)
    assert classify(cc, masks, a, b) == cc.TIMESTAMP


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()


def test_zip_members_one_by_one(cc, masks):
    a = _zip({"runs/20261130-131939-8e60/state.json": '{"t": "2026-11-30T13:20:33"}', "w.txt": "same"})
    b = _zip({"runs/20261130-132515-f9d2/state.json": '{"t": "2026-11-30T13:26:01"}', "w.txt": "same"})
    cls, detail = cc.classify_zip(a, b, masks, set())
    assert cls == cc.TIMESTAMP and "1 member(s) differ" in detail
    c = _zip({"runs/20261130-132515-f9d2/state.json": '{"t": "2026-11-30T13:26:01"}', "w.txt": "changed"})
    assert cc.classify_zip(a, c, masks, set())[0] == cc.UNEXPLAINED


def test_every_intended_change_is_named_in_the_changelog(cc):
    text = " ".join((ROOT / "CHANGELOG.md").read_text(encoding="utf-8").split())
    assert [c.name for c in cc.INTENDED_CHANGES if c.changelog not in text] == []
