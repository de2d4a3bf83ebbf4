"""Legacy parameters that do what they say: a `cli_parameters` entry one letter away from the
placeholder the steps use (`log_dir` vs `{logs_dir}`) drives that placeholder; `related_sequences`
paths are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_tasks.errors import RenderError
from codex_tasks.render.templating import unknown_names
from codex_tasks.sequence.load import LoadedSequence


def edit_distance_one(a: str, b: str) -> bool:
    """True when one insertion, deletion or substitution turns `a` into `b`."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:] if len(a) < len(b) else a[i + 1:] == b[i + 1:]


def used_placeholders(loaded: LoadedSequence) -> set[str]:
    """Every `{name}` / Jinja2 name the steps' strings and descriptions use."""
    used: set[str] = set()
    for _, step in loaded.spec.steps():
        texts = [*step.actions, *step.commands, *step.assertions, *(o.path for o in step.outputs),
                 *step.deps, *step.env.values(), step.description or ""]
        for text in texts:
            try:
                used.update(unknown_names(text, []))
            except RenderError:
                continue
    return used


def param_aliases(loaded: LoadedSequence) -> dict[str, str]:
    """`cli_parameters` name -> the placeholder it drives, for unique edit-distance-1 near-misses of
    names the steps use (only for parameters no step uses under their own name)."""
    used = used_placeholders(loaded)
    out: dict[str, str] = {}
    for name in loaded.spec.cli_parameters:
        if name in used:
            continue
        near = [u for u in used if edit_distance_one(name, u) and u not in loaded.spec.all_params()]
        if len(near) == 1:
            out[name] = near[0]
    return out


def apply_aliases(loaded: LoadedSequence, values: dict[str, Any], cli: dict[str, str]) -> list[str]:
    """Give each aliased placeholder its parameter's value (an explicit `--param PLACEHOLDER=` wins);
    returns the notes `plan` shows."""
    notes = []
    for name, target in param_aliases(loaded).items():
        if target not in cli and name in values:
            values[target] = values[name]
        notes.append(f"cli_parameters {name!r} drives {{{target}}} (one letter apart)")
    return notes


def related_warnings(loaded: LoadedSequence) -> list[str]:
    """A warning for each `related_sequences` path that does not exist (relative to the file)."""
    out = []
    for i, rel in enumerate(loaded.spec.related_sequences):
        if rel.path and not (Path(loaded.file).parent / rel.path).is_file():
            line, col = loaded.origin.at("related_sequences", i, "path")
            out.append(f"{loaded.file}:{line}:{col}: related sequence {rel.name or rel.path!r}: {rel.path} not found")
    return out


def max_errors_reached(params: dict[str, Any], errors_file: Path) -> int | None:
    """The `max_errors` limit when the run has captured that many error blocks, else None."""
    limit = params.get("max_errors")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return None
    try:
        with open(errors_file, encoding="utf-8") as fh:
            count = sum(1 for line in fh if line.strip())
    except OSError:
        return None
    return limit if count >= limit else None


def honored_flags(metadata: dict[str, Any], environ: dict[str, str]) -> set[str]:
    """The `metadata.honor_env_flags` that are set (to anything but 0/false/empty) in the environment."""
    flags = metadata.get("honor_env_flags") or []
    if isinstance(flags, dict):
        flags = [k for k, v in flags.items() if v]
    names = {str(f) for f in flags} if isinstance(flags, list) else set()
    return {n for n in names if environ.get(n, "").strip().lower() not in ("", "0", "false", "no")}


def gpu_request(step: Any) -> str | None:
    """What in a step's configuration asks for a GPU (`device: cuda`, `precision: bf16/fp16` on CUDA), or None."""
    cfg = step.with_raw or {}
    for key in ("device", "accelerator"):
        value = str(cfg.get(key, "")).lower()
        if value.startswith(("cuda", "gpu")):
            return f"{key}: {cfg[key]}"
    env = " ".join(f"{k}={v}" for k, v in step.env.items())
    if "CUDA_VISIBLE_DEVICES=" in env and "CUDA_VISIBLE_DEVICES=-1" not in env and "CUDA_VISIBLE_DEVICES= " not in env + " ":
        return "env CUDA_VISIBLE_DEVICES"
    return None


def root_workspace(loaded: LoadedSequence, cli: dict[str, str]) -> str | None:
    """The legacy `root` parameter names the workspace (a `--param root=` value, else its default)."""
    spec = loaded.spec.cli_parameters.get("root") or loaded.spec.params.get("root")
    if spec is None:
        return None
    value = cli.get("root", spec.default)
    return str(value) if value not in (None, "") else None


def test_settings(cfg: Any, run: Any) -> Any:
    """CODEX_COLLECT_COVERAGE (when honoured) turns coverage on; the legacy `coverage_threshold`
    parameter then fails a test step under it."""
    if "CODEX_COLLECT_COVERAGE" not in run.flags:
        return cfg
    threshold = run.params.get("coverage_threshold")
    update: dict[str, Any] = {"coverage": True}
    if cfg.coverage_threshold is None and isinstance(threshold, int | float) and not isinstance(threshold, bool):
        update["coverage_threshold"] = float(threshold)
    return cfg.model_copy(update=update)
