"""The layer rule holds: `lint-imports` checks the contracts in pyproject.toml (docs/architecture.md)."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import codex_tasks

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 6
    lint = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # from a scratch folder and without its cache, so the checkout is only read
    proc = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"Contracts: {len(contracts)} kept, 0 broken." in out, out


# --- lazy imports: only for heavy third-party packages (issue 11.2) -----------------------------

# Function-level imports of codex_tasks that are allowed, as "module:function" patterns (fnmatch),
# each with its reason. Keep it short: everything else imports at the top, and a heavy third-party
# package is imported inside the function of the module that uses it (see docs/architecture.md).
LAZY_ALLOWED = {
    "codex_tasks.cli:*": "each command imports what it runs once it is chosen: importing every command's "
                         "code would put pydantic, the sequence models and every kind in front of --help",
    "codex_tasks.orchestrate.schedule:serve": "the Prefect entrypoint imports Prefect, which reads its "
                                              "settings on import: only after configure_prefect()",
}

HEAVY = ("prefect", "torch", "transformers", "peft", "sentencepiece", "tokenizers", "safetensors", "mlflow",
         "matplotlib", "textual", "dask", "distributed", "numpy", "pandas", "httpx", "jinja2")


def _imports_in_functions(node: ast.AST, module: str, where: list[str], in_function: bool,
                          found: list[tuple[str, int, str]]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inside = in_function or not isinstance(child, ast.ClassDef)
            _imports_in_functions(child, module, [*where, child.name], inside, found)
            continue
        if in_function and isinstance(child, ast.Import | ast.ImportFrom):
            names = [child.module or ""] if isinstance(child, ast.ImportFrom) else [a.name for a in child.names]
            if any(n == "codex_tasks" or n.startswith("codex_tasks.") for n in names):
                found.append((module, child.lineno, f"{module}:{'.'.join(where)}"))
        _imports_in_functions(child, module, where, in_function, found)


def _function_level_imports() -> list[tuple[str, int, str]]:
    """(module, line, "module:function") of every import of codex_tasks inside a function, read from
    the imported package's own files (imports under `if TYPE_CHECKING:` sit at module level)."""
    pkg = Path(codex_tasks.__file__).parent
    found: list[tuple[str, int, str]] = []
    for path in sorted(pkg.rglob("*.py")):
        module = ".".join(("codex_tasks", *path.relative_to(pkg).with_suffix("").parts)).removesuffix(".__init__")
        _imports_in_functions(ast.parse(path.read_text(encoding="utf-8")), module, [], False, found)
    return found


def test_internal_imports_sit_at_the_top_of_their_module() -> None:
    found = _function_level_imports()
    stray = [f"{module}:{line} (in {where.split(':')[1]})" for module, line, where in found
             if not any(fnmatch.fnmatchcase(where, pattern) for pattern in LAZY_ALLOWED)]
    assert not stray, ("imports of codex_tasks inside functions; move them to the module's top (make a heavy "
                       "third-party import lazy in the callee instead), or allow one with its reason:\n  "
                       + "\n  ".join(stray))
    unused = [p for p in LAZY_ALLOWED if not any(fnmatch.fnmatchcase(w, p) for _, _, w in found)]
    assert not unused, f"allow-list entries that match nothing any more: {unused}"


def test_the_walk_sees_an_import_inside_a_method() -> None:
    # the check above is only as good as its walk: it must find the CLI's command imports
    found = {where for _, _, where in _function_level_imports()}
    assert "codex_tasks.cli:cmd_validate" in found
    assert "codex_tasks.orchestrate.schedule:serve" in found


def _heavy_loaded(code: str, cwd: Path) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    return sorted(loaded.intersection(HEAVY))


def test_importing_the_cli_imports_no_heavy_package(tmp_path: Path) -> None:
    assert _heavy_loaded("import codex_tasks.cli", tmp_path) == []
    # what `run` imports before it reaches Prefect (which it then imports itself, configured)
    assert _heavy_loaded("import codex_tasks.orchestrate.runner", tmp_path) == []


TYPED = """version: "1.0"
title: typed
params:
  steps: {type: int, default: 20}
phases:
  - id: ml
    steps:
      - id: tok
        uses: tokenize
        with: {corpus: ["**/*.py"], kind: bpe, vocab_size: 300, block_size: 32, out: tok}
      - id: train
        uses: train
        with: {model: {config: {type: gpt2, n_layer: 1, n_head: 1, n_embd: 8, n_positions: 32}},
               tokenizer: tok, data: tok, max_steps: "{{ steps }}", out: model}
      - id: eval
        uses: evaluate
        with: {model: model, tokenizer: tok, data: tok}
"""


def test_validate_of_a_typed_file_imports_no_ml_package(tmp_path: Path) -> None:
    # validate imports each kind for its with: model; the kinds import the engine at their top,
    # so the engine must keep numpy, torch and the rest inside the functions that use them
    (tmp_path / "typed.yaml").write_text(TYPED)
    code = ("from codex_tasks.cli import main\n"
            "assert main(['validate', 'typed.yaml']) == 0\n"
            "import codex_tasks.steps.train, codex_tasks.steps.evaluate, codex_tasks.steps.tokenize")
    loaded = _heavy_loaded(code, tmp_path)
    assert loaded == ["jinja2"]  # {{ steps }} is rendered; nothing else heavy


def test_no_module_imports_itself_back() -> None:
    """No import loop between modules either (the contracts see packages): for every import a -> b,
    b does not reach a. Imports under `if TYPE_CHECKING:` run only for type checkers, so they don't
    count (three such pairs exist: plan/bindings, context/layouts, agent/agent_session)."""
    import grimp

    graph = grimp.build_graph("codex_tasks", cache_dir=None, exclude_type_checking_imports=True)
    loops = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == module or imported.startswith(module + ".") or module.startswith(imported + "."):
                continue  # a package and its own modules (rank_worker's `__main__` imports itself)
            back = graph.find_shortest_chain(importer=imported, imported=module, as_packages=False)
            if back:
                loops.append(f"{module} -> {' -> '.join(back)}")
    assert graph.modules and not loops, "\n".join(loops)
