"""`codex-tasks validate`: every check a run would make before executing anything."""

from __future__ import annotations

from codex_tasks.errors import CodexTasksError, SpecError, SpecErrors
from codex_tasks.orchestrate.plan import build_plan, check_placeholders
from codex_tasks.render.params import declared_names, parse_cli_params, resolve_params
from codex_tasks.sequence.load import load_sequence


def validate_file(file: str, params: list[str] | None = None, *, strict: bool = False, bind: bool = True,
                  warnings: list[str] | None = None) -> tuple[list[SpecError], str]:
    """(errors, a one-line description when there are none). Declared outputs nothing writes are
    appended to `warnings` (errors under `strict`)."""
    from codex_tasks.core.resources import resolve_sequence_ref as resolve_file
    from codex_tasks.orchestrate.bindings import output_errors, output_warnings

    try:
        path = resolve_file(file)
        loaded = load_sequence(path)
    except SpecErrors as exc:
        return exc.errors, ""
    except SpecError as exc:
        return [exc], ""
    except CodexTasksError as exc:
        return [SpecError(exc.message, file=file, hint=exc.hint)], ""
    errors = check_placeholders(loaded, declared_names(loaded.spec))
    if errors:
        return errors, ""
    builtins = {"run_id": "validate", "run_dir": ".codex/runs/validate", "workspace": ".", "timestamp": "now"}
    try:
        cli = parse_cli_params(params or [])
        values = resolve_params(loaded.spec, cli, builtins, environ={})
        from codex_tasks.orchestrate.legacy_params import apply_aliases, related_warnings

        apply_aliases(loaded, values, cli)
        plan = build_plan(loaded, values, bind=bind)
    except SpecErrors as exc:
        return exc.errors, ""
    except CodexTasksError as exc:
        return [SpecError(exc.message, file=file, hint=exc.hint)], ""
    if strict and output_errors(plan):
        return output_errors(plan), ""
    if warnings is not None:
        warnings.extend(loaded.warnings + related_warnings(loaded) + output_warnings(plan))
    n_steps = sum(len(p.steps) for p in loaded.spec.phases)
    return [], f"{len(loaded.spec.phases)} phases, {n_steps} steps"
