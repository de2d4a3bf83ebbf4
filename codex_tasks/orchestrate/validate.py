"""`codex-tasks validate`: every check a run would make before executing anything."""

from __future__ import annotations

from codex_tasks.core.resources import resolve_sequence_ref
from codex_tasks.errors import CodexTasksError, ParamError, SpecError, SpecErrors
from codex_tasks.orchestrate.bindings import output_warnings
from codex_tasks.orchestrate.legacy_params import related_warnings
from codex_tasks.orchestrate.prepare import prepare_run
from codex_tasks.sequence.load import load_sequence


def validate_file(file: str, params: list[str] | None = None, *, strict: bool = False, bind: bool = True,
                  warnings: list[str] | None = None) -> tuple[list[SpecError], str]:
    """(errors, a one-line description when there are none). Declared outputs nothing writes are
    appended to `warnings` (errors under `strict`). Parameters come from `params` and the file
    only, never from the environment, so a file validates the same everywhere."""
    try:
        prepared = prepare_run(file, params, run_id="validate", environ={}, strict_placeholders=True,
                               bind=bind, strict=strict)
    except SpecErrors as exc:
        return exc.errors, ""
    except SpecError as exc:
        return [exc], ""
    except ParamError as exc:
        return [_at_declaration(file, exc)], ""
    except CodexTasksError as exc:
        return [SpecError(exc.message, file=file, hint=exc.hint)], ""
    if warnings is not None:
        warnings.extend(prepared.loaded.warnings + related_warnings(prepared.loaded) + output_warnings(prepared.plan))
    spec = prepared.loaded.spec
    n_steps = sum(len(p.steps) for p in spec.phases)
    return [], f"{len(spec.phases)} phases, {n_steps} steps"


def _at_declaration(file: str, exc: ParamError) -> SpecError:
    """A parameter error located at the parameter's declaration (`params` or `cli_parameters`)."""
    if exc.param:
        origin = load_sequence(resolve_sequence_ref(file)).origin
        for section in ("params", "cli_parameters"):
            path = origin.base + (section, exc.param)
            if path in origin.positions or path + ("<key>",) in origin.positions:
                return origin.error(exc.message, section, exc.param, key=True, hint=exc.hint)
    return SpecError(exc.message, file=file, hint=exc.hint)
