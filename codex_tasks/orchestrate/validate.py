"""`codex-tasks validate`: every check a run would make before executing anything."""

from __future__ import annotations

from codex_tasks.core.resources import resolve_sequence_ref
from codex_tasks.errors import CodexTasksError, ParamError, SpecError, SpecErrors
from codex_tasks.orchestrate.bindings import output_warnings
from codex_tasks.orchestrate.legacy_params import related_warnings
from codex_tasks.orchestrate.plan import check_placeholders
from codex_tasks.orchestrate.prepare import prepare_run
from codex_tasks.render.params import declared_names
from codex_tasks.sequence.load import load_sequence, load_what_validates


def validate_file(file: str, params: list[str] | None = None, *, strict: bool = False, bind: bool = True,
                  warnings: list[str] | None = None) -> tuple[list[SpecError], str]:
    """(errors, a one-line description when there are none). Declared outputs nothing writes are
    appended to `warnings` (errors under `strict`). Parameters come from `params` and the file
    only, never from the environment, so a file validates the same everywhere."""
    try:
        prepared = prepare_run(file, params, run_id="validate", environ={}, strict_placeholders=True,
                               bind=bind, strict=strict)
    except SpecErrors as exc:
        return _with_later_checks(file, exc.errors), ""
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


def _with_later_checks(file: str, errors: list[SpecError]) -> list[SpecError]:
    """`errors`, and what the later checks (references, placeholders) find in the steps whose own
    schema is fine, in file order: a schema error in one step hides nothing in another. Nothing a
    failed step only causes is reported (a `needs` naming it, its placeholders)."""
    try:
        loaded, load_errors = load_what_validates(resolve_sequence_ref(file))
    except CodexTasksError:
        return errors
    if loaded is None or not load_errors:  # loading passed: `errors` are already the later checks'
        return errors
    more = load_errors + check_placeholders(loaded, declared_names(loaded.spec))
    seen = {(e.file, e.line, e.col, e.message) for e in errors}
    merged = errors + [e for e in more if (e.file, e.line, e.col, e.message) not in seen]
    main = str(loaded.file)
    return sorted(merged, key=lambda e: (e.file != main, str(e.file), e.line or 0, e.col or 0))


def _at_declaration(file: str, exc: ParamError) -> SpecError:
    """A parameter error located at the parameter's declaration (`params` or `cli_parameters`)."""
    if exc.param:
        origin = load_sequence(resolve_sequence_ref(file)).origin
        for section in ("params", "cli_parameters"):
            path = origin.base + (section, exc.param)
            if path in origin.positions or path + ("<key>",) in origin.positions:
                return origin.error(exc.message, section, exc.param, key=True, hint=exc.hint)
    return SpecError(exc.message, file=file, hint=exc.hint)
