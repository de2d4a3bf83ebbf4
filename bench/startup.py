"""Start-up cost of the CLI, side by side with bare Python (issue 11: lazy imports only for heavy
third-party packages).

Measures, interleaved, the median of N runs of each:
  `python -c pass`, `codex-tasks --help`, `codex-tasks validate` on a 5-step shell file and on a
  typed file (tokenize, train, evaluate kinds), `import codex_tasks.orchestrate.runner` (what
  `run` imports before it reaches Prefect), and importing every module the CLI's commands import
  (what `--help` would cost if cli.py imported them at its top);
then `python -X importtime -c "import codex_tasks.cli"` (median of 5) and the heavy packages that
importing the CLI loads (none is the goal). `--before DIR` times another copy of the package (e.g.
`git archive BASE codex_tasks | tar -x -C DIR`, byte-compiled) side by side, interleaved, through
PYTHONPATH with this same interpreter and site-packages.

    .venv/bin/python bench/startup.py --repeats 10 [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
CODEX = str(Path(sys.executable).parent / "codex-tasks")
HEAVY = ("prefect", "torch", "transformers", "peft", "sentencepiece", "mlflow", "matplotlib",
         "textual", "dask", "distributed", "jinja2", "tokenizers", "numpy", "pandas", "httpx")

SMALL = """title: five shell steps
phases:
  - id: p
    steps:
""" + "".join(f"      - id: s{i}\n        commands: ['echo {i}']\n" for i in range(5))

TYPED = """version: "1.0"
title: typed
params:
  vocab: {type: int, default: 512}
  steps: {type: int, default: 200}
phases:
  - id: ml
    steps:
      - id: tok
        uses: tokenize
        with: {corpus: ["**/*.py"], kind: sentencepiece, vocab_size: "{{ vocab }}", block_size: 128, out: .codex/artifacts/tok}
      - id: train
        uses: train
        with:
          model: {config: {type: gpt2, n_layer: 2, n_head: 4, n_embd: 128, n_positions: 128}}
          tokenizer: .codex/artifacts/tok
          data: .codex/artifacts/tok
          max_steps: "{{ steps }}"
          out: .codex/artifacts/model
      - id: eval
        uses: evaluate
        with: {model: .codex/artifacts/model, tokenizer: .codex/artifacts/tok, data: .codex/artifacts/tok}
"""


def command_modules() -> list[str]:
    """The codex_tasks modules the CLI's commands import inside their functions (what --help
    would load if they all sat at the top of cli.py)."""
    import ast

    import codex_tasks.cli

    tree = ast.parse(Path(codex_tasks.cli.__file__).read_text(encoding="utf-8"))
    mods = {n.module for f in tree.body if isinstance(f, ast.FunctionDef) for n in ast.walk(f)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("codex_tasks")}
    return sorted(mods)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return dt


def import_time_us(env: dict[str, str], cwd: Path) -> int:
    proc = subprocess.run([PY, "-X", "importtime", "-c", "import codex_tasks.cli"],
                          cwd=cwd, env=env, capture_output=True, text=True, check=True)
    # the last line is the outermost import: "import time: self | cumulative | codex_tasks.cli"
    for line in reversed(proc.stderr.splitlines()):
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| codex_tasks$", line)
        if m:
            root = int(m.group(1))
            break
    else:
        root = 0
    cli = [int(m.group(1)) for line in proc.stderr.splitlines()
           if (m := re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+codex_tasks\.cli$", line))]
    return root + (cli[0] if cli else 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--before", help="a folder holding another copy of codex_tasks, timed side by side")
    args = ap.parse_args()
    sides = {"after": {**os.environ, "NO_COLOR": "1"}}
    if args.before:
        before = str(Path(args.before).resolve())
        sides = {"before": {**sides["after"], "PYTHONPATH": before}, **sides}
    cli = [PY, "-c", "import sys; from codex_tasks.cli import main; sys.exit(main())"]  # what the script runs
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "small.yaml").write_text(SMALL)
        (ws / "typed.yaml").write_text(TYPED)
        cases = {
            "python -c pass": [PY, "-c", "pass"],
            "codex-tasks --help": [*cli, "--help"],
            "validate small.yaml": [*cli, "validate", "small.yaml"],
            "validate typed.yaml": [*cli, "validate", "typed.yaml"],
            "import orchestrate.runner": [PY, "-c", "import codex_tasks.orchestrate.runner"],
            "import all commands' modules": [PY, "-c", "import codex_tasks.cli, " + ", ".join(command_modules())],
        }
        t: dict[tuple[str, str], list[float]] = {(c, s): [] for c in cases for s in sides}
        for _ in range(args.repeats):
            for name, cmd in cases.items():
                for side, env in sides.items():
                    t[(name, side)].append(timed(cmd, ws, env))
        us = {side: sorted(import_time_us(env, ws) for _ in range(5)) for side, env in sides.items()}
        loaded = {}
        for side, env in sides.items():
            out = subprocess.run(
                [PY, "-c", "import sys, codex_tasks.cli; "
                 "print(sum(m.startswith('codex_tasks') for m in sys.modules), len(sys.modules), "
                 "' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                cwd=ws, env=env, capture_output=True, text=True, check=True).stdout.split(maxsplit=2)
            loaded[side] = (out[0], out[1], sorted(set(out[2].split()).intersection(HEAVY)) or "none")
    print(f"load average {os.getloadavg()[0]:.2f}; median of {args.repeats}, interleaved; "
          f"seconds (and above bare Python)")
    print(f"  {'':28s} " + "  ".join(f"{side:>18s}" for side in sides))
    for name in cases:
        cells = []
        for side in sides:
            m = statistics.median(t[(name, side)])
            base = statistics.median(t[("python -c pass", side)])
            cells.append(f"{m:.3f}" + ("" if name == "python -c pass" else f" (+{m - base:.3f})"))
        print(f"  {name:28s} " + "  ".join(f"{c:>18s}" for c in cells))
    print(f"  {'-X importtime cli, ms':28s} " + "  ".join(f"{us[s][2] / 1000:>18.1f}" for s in sides))
    for side in sides:
        n, total, heavy = loaded[side]
        print(f"  {side}: import codex_tasks.cli loads {n} codex_tasks modules, {total} in all; heavy: {heavy}")


if __name__ == "__main__":
    main()
