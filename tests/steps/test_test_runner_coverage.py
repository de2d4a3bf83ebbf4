"""The test kind's coverage (CODEX_COLLECT_COVERAGE) and the legacy `coverage_threshold`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from codex_tasks.errors import StepFailed
from codex_tasks.orchestrate.legacy_params import test_settings as coverage_settings
from codex_tasks.steps import test_runner


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "tests").mkdir(parents=True)
    (root / "half.py").write_text("def used():\n    return 1\n\n\ndef unused():\n    x = 2\n    return x\n")
    (root / "tests" / "test_half.py").write_text("import half\n\n\ndef test_used():\n    assert half.used() == 1\n")
    return root


def test_coverage_is_recorded(make_ctx, ws):
    ctx = make_ctx(workspace=ws, env={"PYTHONPATH": str(ws)})
    test_runner.run(test_runner.With(coverage=True), ctx)
    results = json.loads((ctx.step_dir / "test_results.json").read_text())
    assert results["passed"] == 1 and 40 < results["coverage"] < 100


def test_coverage_under_the_threshold_fails(make_ctx, ws):
    ctx = make_ctx(workspace=ws, env={"PYTHONPATH": str(ws)})
    with pytest.raises(StepFailed, match="under the threshold of 99.0%"):
        test_runner.run(test_runner.With(coverage=True, coverage_threshold=99), ctx)
    assert "coverage" in json.loads((ctx.step_dir / "test_results.json").read_text())


def test_the_flag_and_parameter_set_the_config():
    off = SimpleNamespace(flags=set(), params={"coverage_threshold": 80})
    on = SimpleNamespace(flags={"CODEX_COLLECT_COVERAGE"}, params={"coverage_threshold": 80})
    assert coverage_settings(test_runner.With(), off).coverage is False
    cfg = coverage_settings(test_runner.With(), on)
    assert cfg.coverage is True and cfg.coverage_threshold == 80.0
