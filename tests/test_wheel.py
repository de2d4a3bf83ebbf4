"""The wheel: built from a copy of the source, installed with --no-deps into a fresh venv that borrows
this environment's dependencies, and run from a folder outside the source tree."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _copy_source(dest: Path) -> Path:
    spec = importlib.util.spec_from_file_location("bench_flagship", ROOT / "bench" / "flagship.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for rel in mod.repo_files(ROOT):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes((ROOT / rel).read_bytes())
    return dest


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_source(tmp / "src")
    dist = tmp / "dist"
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, src, cwd=src, timeout=600)
    wheel = next(dist.glob("codex_tasks-*.whl"))
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", venv, cwd=tmp)
    vpy = venv / "bin" / "python"
    site = Path(_run(vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).strip())
    # Borrow this environment's dependencies as a plain path entry: the .pth files in it (such as the
    # editable install of the source tree) are not processed, so codex_tasks can only come from the wheel.
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(vpy, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel, cwd=tmp)
    outside = tmp / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"wheel": wheel, "venv": venv, "site": site, "outside": outside, "env": env}  # type: ignore[dict-item]


def test_wheel_ships_every_module_and_the_data(installed: dict) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for py in (ROOT / "codex_tasks").rglob("*.py"):
        assert py.relative_to(ROOT).as_posix() in names, f"{py} is missing from the wheel (pyproject packages list?)"
    for folder, package in (("templates", "codex_tasks/templates"), ("tasks", "codex_tasks/tasks")):
        for f in (ROOT / folder).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                assert f"{package}/{f.relative_to(ROOT / folder).as_posix()}" in names


def test_installed_cli_runs_outside_the_source_tree(installed: dict, prefect_url: str) -> None:
    exe, cwd, env = installed["venv"] / "bin" / "codex-tasks", installed["outside"], installed["env"]
    where = _run(installed["venv"] / "bin" / "python", "-c",
                 "import codex_tasks, codex_tasks.core.resources as r; print(codex_tasks.__file__); print(r.templates_dir())",
                 cwd=cwd, env=env).split()
    assert all(Path(p).is_relative_to(installed["site"]) for p in where), where
    assert _run(exe, "--version", cwd=cwd, env=env).startswith("codex-tasks ")
    _run(exe, "validate", "builtin:audit_repo", "builtin:nightly", cwd=cwd, env=env)
    _run(exe, "new", "x", cwd=cwd, env=env)
    assert (cwd / "x.yaml").read_text().startswith("# yaml-language-server: $schema=")
    (cwd / "mod.py").write_text("def f():\n    pass  # TODO: later\n")
    # builtin:audit_repo's changelog step renders the shipped templates/changelog_entry.md.j2
    out = _run(exe, "run", "builtin:audit_repo", cwd=cwd, env=env)
    assert "succeeded" in out
    assert "Audit a repository" in (cwd / ".codex" / "CHANGELOG_CODEX.md").read_text()
    _run(exe, "run", "x.yaml", cwd=cwd, env=env)
