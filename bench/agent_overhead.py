"""Benchmark: what an agent step adds to the agent itself.

    .venv/bin/python bench/agent_overhead.py [--repeat 5] [--files 200]

The same scripted agent (the real `codex` binary against the scripted model server of
tests/fixtures/model_server.py: one command that writes the declared output, then a final
message) runs twice over the same small repository:

- directly: `codex exec --json --ephemeral -s workspace-write -` in a copy of the repository;
- as a codex-tasks `agent` step (`steps.agent.run`, no test gate): scratch copy with the secret
  scan, the prompt, Codex, the guardrails, the scan of the change, the patch and its application.

Goal: <= 1 s added per agent step. Prints the medians, their ratio and difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.model_server import ModelServer, exec_command, message  # noqa: E402

from codex_tasks.runs.events import EventLog  # noqa: E402
from codex_tasks.steps import agent  # noqa: E402
from codex_tasks.steps.agent_codex import resolve_codex_bin  # noqa: E402
from codex_tasks.steps.base import StepContext  # noqa: E402

SCRIPT_CMD = "mkdir -p logs && echo '# notes' > logs/notes.md"


def make_repo(root: Path, files: int) -> None:
    """A small Python project of `files` modules (about 1 KB each) in a git repository."""
    (root / "pkg").mkdir(parents=True)
    for i in range(files):
        (root / "pkg" / f"mod_{i}.py").write_text(
            f'"""Module {i}."""\n\n' + "".join(f"def f{j}(x):\n    return x + {j}\n\n" for j in range(30)))
    (root / "README.md").write_text("# bench\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=root, check=True, env=env, capture_output=True)


def direct(codex: str, repo: Path, work: Path) -> float:
    """`codex exec` alone, in a fresh copy of the repository (the copy is not timed)."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(repo, work, symlinks=True)
    t0 = time.perf_counter()
    proc = subprocess.run([codex, "exec", "--json", "--ephemeral", "--skip-git-repo-check", "-C", str(work),
                           "-s", "workspace-write", "-"], input="Write logs/notes.md.", text=True,
                          capture_output=True, check=False)
    dt = time.perf_counter() - t0
    assert proc.returncode == 0 and (work / "logs" / "notes.md").is_file(), proc.stdout[-2000:]
    return dt


LAPS: list[dict[str, float]] = []


def as_step(repo: Path, work: Path) -> float:
    """The same agent as a codex-tasks step, on a fresh copy of the repository (not timed)."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(repo, work, symlinks=True)
    run_dir = work / ".codex" / "runs" / "bench"
    ctx = StepContext(step_id="notes", phase_id="p", workspace=work, step_dir=run_dir / "steps" / "notes",
                      run_dir=run_dir, run_id=f"bench-{uuid.uuid4().hex[:8]}", params={},
                      events=EventLog(run_dir / "events.ndjson", "bench"), description="Write logs/notes.md.",
                      declared_outputs=["logs/notes.md"])
    t0 = time.perf_counter()
    res = agent.run(agent.With(test_args=None), ctx)
    dt = time.perf_counter() - t0
    LAPS.append(res.summary["timings"])
    assert (work / "logs" / "notes.md").is_file()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--files", type=int, default=200, help="modules in the benchmark repository")
    args = ap.parse_args()
    codex = resolve_codex_bin()
    base = Path.home() / ".cache" / "codex-tasks-bench" / uuid.uuid4().hex[:8]  # CODEX_HOME off /tmp
    server = ModelServer([]).start()
    try:
        home = server.write_codex_home(base / "codex-home")
        os.environ["CODEX_HOME"] = str(home)
        repo = Path(tempfile.mkdtemp(prefix="agent-bench-")) / "repo"
        make_repo(repo, args.files)
        print(f"codex {codex}; repository of {args.files} modules; load average {os.getloadavg()[0]:.1f}")
        times: dict[str, list[float]] = {"direct": [], "step": []}
        for _ in range(args.repeat):  # interleaved, so a load change hits both alike
            server.add_turns([exec_command(SCRIPT_CMD)], [message("Wrote logs/notes.md.")])
            times["direct"].append(direct(codex, repo, base / "direct"))
            server.add_turns([exec_command(SCRIPT_CMD)], [message("Wrote logs/notes.md.")])
            times["step"].append(as_step(repo, base / "step"))
        d, s = statistics.median(times["direct"]), statistics.median(times["step"])
        print(f"codex exec directly : {d:.3f} s (median of {args.repeat})")
        print(f"as an agent step    : {s:.3f} s")
        print(f"ratio {s / d:.2f}x, added {s - d:+.3f} s per agent step (goal <= 1 s)")
        parts = {k: statistics.median(lap[k] for lap in LAPS) for k in LAPS[0]}
        print("inside the step (medians, s): " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(repo.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
