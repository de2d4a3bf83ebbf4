"""report.md / report.html of a run: charts drawn from a real tiny training's metric events."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from codex_tasks.runs.charts import family_of, read_charts
from codex_tasks.runs.report import artifact_markdown, write_report, write_summary
from codex_tasks.runs.rundir import RunDir
from codex_tasks.steps import load_kind

ROOT = Path(__file__).resolve().parents[2]
CODE = "def add(a, b):\n    return a + b\n\n\nclass Box:\n    def get(self):\n        return 42\n"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A run folder holding the events of a real 24-step training of a one-layer GPT-2."""
    from codex_tasks.runs.events import EventLog
    from codex_tasks.steps.base import StepContext

    ws = tmp_path_factory.mktemp("ws")
    (ws / "src").mkdir()
    for i in range(6):
        (ws / "src" / f"m{i}.py").write_text(CODE.replace("add", f"add{i}") * 3, encoding="utf-8")
    run_dir = ws / ".codex" / "runs" / "test-run"

    def ctx(step_id: str) -> StepContext:
        (run_dir / "steps" / step_id).mkdir(parents=True, exist_ok=True)
        return StepContext(step_id=step_id, phase_id="p1", workspace=ws, step_dir=run_dir / "steps" / step_id,
                           run_dir=run_dir, run_id="test-run", params={},
                           events=EventLog(run_dir / "events.ndjson", "test-run"))

    tok = load_kind("tokenize")
    tok.run(tok.With(vocab_size=300, block_size=32, out="art/tok", threads=2), ctx("tok"))
    train = load_kind("train")
    cfg = train.With(model={"config": {"type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 32}},
                     data="art/tok", batch_size=4, max_steps=24, lr=5e-3, threads=2, log_every=2, eval_every=12,
                     checkpoint={"every": 12, "keep_last": 1, "keep_best": 0}, mlflow={"enabled": False},
                     system_metrics_every=0.05, out="art/model")
    train.run(cfg, ctx("train"))
    rd = RunDir(path=run_dir, run_id="test-run")
    rd.state = {"title": "charts", "status": "succeeded", "steps": {
        "tok": {"status": "succeeded", "kind": "tokenize"}, "train": {"status": "succeeded", "kind": "train"}}}
    write_report(rd, None, write_summary(rd, None))
    return rd


def test_families_keep_scales_apart() -> None:
    assert family_of("train", "loss") == ("loss", "train") and family_of("eval", "loss") == ("loss", "eval")
    assert family_of("train", "tokens_per_s")[0] == "throughput"
    assert family_of("system", "cpu_utilization_percentage") == ("system_percent", "CPU")
    assert family_of("system", "gpu_1_memory_usage_megabytes") == ("system_memory", "GPU 1 memory")
    assert family_of("", "audit.todo") == ("audit.todo", "audit.todo")


def test_charts_hold_the_training_curves(trained_run: RunDir) -> None:
    charts = {(c.step_id, c.family): c for c in read_charts(trained_run.path)}
    loss = charts[("train", "loss")]
    train_loss = sorted(loss.lines["train"])
    assert len(train_loss) >= 10 and train_loss[-1][1] < train_loss[0][1]  # the loss line ends below its start
    assert len(loss.lines["eval"]) == 2  # eval points share the loss chart, drawn with markers
    assert {("train", "lr"), ("train", "throughput"), ("train", "system_percent"), ("train", "perplexity")} <= set(charts)
    assert max(v for _, v in charts[("train", "throughput")].lines["train"]) > 100  # tokens/s, on its own axis
    # one PNG per drawn chart beside report.md, each linked from it
    md = (trained_run.path / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\((charts/[^)]+\.png)\)", md)
    assert "charts/train-loss.png" in links and "<svg" not in md
    for link in links:
        assert (trained_run.path / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the tokenize step's token counts are single values: a table row, not an invisible one-point chart
    assert re.search(r"\| `tok` \| train tokens \| \d+ \|", md), md
    html_text = (trained_run.path / "report.html").read_text()
    assert html_text.count("<svg") == len(links) and "charts/train-loss.png" in html_text
    # the Prefect artifact links the PNG files and the HTML report
    art = artifact_markdown(trained_run.path)
    assert (trained_run.path / "charts" / "train-loss.png").resolve().as_uri() in art and "report.html" in art


def test_report_html_renders_in_chromium(trained_run: RunDir, tmp_path: Path) -> None:
    """Render report.html headless and keep the screenshot under test-artifacts/ for a person to look at."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium on this machine")
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1280,1600", f"--screenshot={shot}", (trained_run.path / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with charts, not a blank one
    keep = Path(os.environ.get("CODEX_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, keep / "report-charts.png")
