"""The task library `tasks/` and the flagship: every sequence validates, and each runs at a tiny size."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from codex_tasks.core.resources import resolve_sequence_ref, tasks_dir
from codex_tasks.orchestrate.validate import validate_file
from codex_tasks.reference.scaffold import SCHEMA_COMMENT
from tests.conftest import ROOT, run_cli

LIBRARY = sorted(p.name for p in (ROOT / "tasks").glob("*.yaml"))
REQUIRED = {"audit_repo.yaml", "remediate.yaml", "pretrain_tiny.yaml", "finetune_lora.yaml", "nightly.yaml"}


def _summary(ws: Path) -> dict:
    run_dir = sorted((ws / ".codex" / "runs").iterdir())[-1]
    return json.loads((run_dir / "summary.json").read_text())


def _statuses(ws: Path) -> dict[str, str]:
    return {s["id"]: s["status"] for s in _summary(ws)["steps"]}


def test_library_has_the_documented_sequences() -> None:
    assert REQUIRED <= set(LIBRARY)
    assert tasks_dir() == ROOT / "tasks"


@pytest.mark.parametrize("name", LIBRARY + ["../codex_ready_task_sequence.yaml"])
def test_sequence_validates_and_has_the_schema_comment(name: str) -> None:
    path = ROOT / "tasks" / name
    errors, _ = validate_file(str(path), [])
    assert not errors, [e.render() for e in errors]
    assert path.read_text().splitlines()[0].startswith(SCHEMA_COMMENT)


@pytest.mark.parametrize("name", sorted(n.removesuffix(".yaml") for n in REQUIRED))
def test_builtin_ref_resolves(name: str) -> None:
    assert resolve_sequence_ref(f"builtin:{name}") == ROOT / "tasks" / f"{name}.yaml"


def test_shipped_corpus_is_small_and_real() -> None:
    files = [p for p in (ROOT / "tasks" / "corpus").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".py", ".md"}
    assert 2_000 < sum(p.stat().st_size for p in files) < 20_000
    for p in files:
        if p.suffix == ".py":
            compile(p.read_text(), str(p), "exec")


def test_nightly_is_scheduled_at_three() -> None:
    from codex_tasks.sequence.load import load_sequence

    spec = load_sequence(ROOT / "tasks" / "nightly.yaml").spec
    assert spec.schedule is not None and spec.schedule.cron == "0 3 * * *"


def _small_repo(ws: Path) -> None:
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "__init__.py").write_text("")
    (ws / "pkg" / "calc.py").write_text(textwrap.dedent("""\
        import requests


        def add(a, b):
            return a - b  # TODO: wrong sign


        def fetch(url):
            return requests.get(url)


        def later():
            pass
        """))
    (ws / "tests").mkdir()
    (ws / "tests" / "test_calc.py").write_text("from pkg.calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")


def test_audit_repo_runs(tmp_path: Path, prefect_url: str) -> None:
    _small_repo(tmp_path)
    run_cli("run", "builtin:audit_repo", cwd=tmp_path, check=0)
    st = _statuses(tmp_path)
    assert set(st.values()) == {"succeeded"} and "audit" in st
    run_dir = sorted((tmp_path / ".codex" / "runs").iterdir())[-1]
    kinds = {f["kind"] for f in json.loads((run_dir / "steps/audit/stub_scan.json").read_text())["findings"]}
    assert {"todo", "stub", "remote"} <= kinds


def test_nightly_runs_once(tmp_path: Path, prefect_url: str) -> None:
    _small_repo(tmp_path)
    run_cli("run", "builtin:nightly", cwd=tmp_path, check=0)
    assert (tmp_path / ".codex" / "CHANGELOG_NIGHTLY.md").is_file()


FIX = """\
--- a/pkg/calc.py
+++ b/pkg/calc.py
@@ -2,6 +2,6 @@


 def add(a, b):
-    return a - b  # TODO: wrong sign
+    return a + b


"""


def test_remediate_keeps_a_good_patch(tmp_path: Path, prefect_url: str) -> None:
    _small_repo(tmp_path)
    (tmp_path / "fix.diff").write_text(FIX)
    run_cli("run", "builtin:remediate", cwd=tmp_path, check=0)
    assert "return a + b" in (tmp_path / "pkg" / "calc.py").read_text()


def test_remediate_rolls_back_a_patch_that_breaks_the_tests(tmp_path: Path, prefect_url: str) -> None:
    _small_repo(tmp_path)
    (tmp_path / "pkg" / "calc.py").write_text((tmp_path / "pkg" / "calc.py").read_text().replace("a - b  # TODO: wrong sign", "a + b"))
    before = (tmp_path / "pkg" / "calc.py").read_bytes()
    bad = FIX.replace("-    return a - b  # TODO: wrong sign\n+    return a + b", "-    return a + b\n+    return a * b")
    (tmp_path / "fix.diff").write_text(bad)
    proc = run_cli("run", "builtin:remediate", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (tmp_path / "pkg" / "calc.py").read_bytes() == before
    assert _statuses(tmp_path)["gate"] == "failed"


@pytest.mark.slow
def test_pretrain_tiny_on_the_workspace(tmp_path: Path, prefect_url: str) -> None:
    _small_repo(tmp_path)
    for i in range(8):  # enough tokens for a few 128-token blocks
        (tmp_path / "pkg" / f"copy{i}.py").write_text((ROOT / "codex_tasks" / "errors.py").read_text())
    run_cli("run", "builtin:pretrain_tiny", "--param", "steps=6", "--param", "vocab=400", cwd=tmp_path, check=0)
    meta = json.loads((tmp_path / ".codex/artifacts/pretrain_tiny/data/meta.json").read_text())
    assert meta["files"] >= 8


@pytest.mark.slow
def test_pretrain_tiny_falls_back_to_the_shipped_corpus(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")  # nothing the corpus globs match
    run_cli("run", "builtin:pretrain_tiny", "--param", "steps=6", cwd=tmp_path, check=0)
    assert (tmp_path / ".codex/artifacts/pretrain_tiny/model/final").is_dir()
    log = next((sorted((tmp_path / ".codex" / "runs").iterdir())[-1] / "steps" / "tokenize").glob("*.log")).read_text()
    assert "fallback corpus" in log


@pytest.mark.slow
def test_finetune_lora_tiny(tmp_path: Path, prefect_url: str) -> None:
    run_cli("run", "builtin:finetune_lora", "--param", "base_steps=6", "--param", "lora_steps=4",
            cwd=tmp_path, check=0)
    out = tmp_path / ".codex/artifacts/finetune_lora"
    assert (out / "lora" / "adapter").is_dir()
    st = _statuses(tmp_path)
    assert st["eval_base"] == st["eval_lora"] == "succeeded"
