"""The run options (`codex-tasks run`, `tui FILE`, `run --tui`, a resume from the TUI): one
dataclass and one parser, so every way to start a run accepts the same flags.

Cheap to import (argparse and dataclasses only): the CLI builds its parser from it.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks.errors import UsageError

if TYPE_CHECKING:
    from codex_tasks.runs.rundir import RunDir

# `--resume` / `--resume=RUN`, `--force` / `--force=IDS`: a value only after '=', so the FILE that
# follows is never taken for one.
OPTIONAL_VALUE_FLAGS = ("--resume", "--force")
RUN_EPILOG = "--resume[=RUN] continues a failed or killed run; --force[=IDS] reruns cached steps."


@dataclass
class RunOptions:
    """How to run one sequence file."""

    file: str
    params: list[str] = field(default_factory=list)  # `K=V` strings, as given to --param
    only: list[str] | None = None
    from_step: str | None = None
    dry_run: bool = False
    resume: str | bool | None = None  # True: the newest resumable run of this sequence
    force: set[str] | None = None  # None: nothing forced; empty set: every step
    max_parallel: int = 4
    runner: str = "local"
    strict: bool = False
    workspace: str | None = None
    agent: str | None = None
    unsandboxed_agents: bool = False
    quiet: bool = False
    bind: bool = True  # bindings from declared outputs to kinds (`--no-bind` turns them off)
    on_event: Callable[[dict[str, Any]], None] | None = None
    on_started: Callable[[RunDir], None] | None = None
    cancel_event: threading.Event | None = None  # set it to stop the run cleanly (as SIGUSR1 does)


class UsageParser(argparse.ArgumentParser):
    """An argparse parser whose mistakes are `UsageError`s (exit 2, one line and a hint)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", hint=f"{self.prog} --help")


def split_optional_values(argv: list[str]) -> tuple[list[str], dict[str, str | bool]]:
    """Take `--resume[=RUN]` and `--force[=IDS]` out of `argv`: (the rest, {flag: value or True})."""
    rest: list[str] = []
    found: dict[str, str | bool] = {}
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in OPTIONAL_VALUE_FLAGS:
            found[name] = value if eq else True
        else:
            rest.append(arg)
    return rest, found


def ids(text: str | None) -> list[str] | None:
    """`a, b,c` -> ['a', 'b', 'c']; None stays None."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def add_run_arguments(parser: argparse.ArgumentParser, *, file: bool = True) -> None:
    """The run options (and, with `file`, the FILE argument) on `parser`."""
    if file:
        parser.add_argument("file", help="the sequence file, or builtin:NAME")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="K=V", help="set a parameter")
    parser.add_argument("--only", metavar="IDS", help="run only these step ids (comma-separated)")
    parser.add_argument("--from", dest="from_step", metavar="ID", help="start at this step")
    parser.add_argument("--dry-run", action="store_true", help="print what each step would do; execute nothing")
    parser.add_argument("--max-parallel", type=int, default=4, metavar="N", help="independent steps at once (4)")
    parser.add_argument("--runner", default="local", help="local, dask, or dask=tcp://HOST:PORT")
    parser.add_argument("--strict", action="store_true", help="manual (description-only) steps fail")
    parser.add_argument("--workspace", "-w", metavar="DIR", help="where paths resolve and .codex/ lives (cwd)")
    parser.add_argument("--agent", metavar="AGENT",
                        help="hand description-only steps to a coding agent: `codex` (the Codex CLI) or any command")
    parser.add_argument("--unsandboxed-agents", action="store_true",
                        help="let agents run where no sandbox (bubblewrap) is available")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the final line")
    parser.add_argument("--no-bind", action="store_true", help="no bindings from declared outputs to kinds")
    parser.epilog = RUN_EPILOG


def options_from_args(args: argparse.Namespace, optional: dict[str, str | bool], *,
                      file: str | None = None, workspace: str | None = None) -> RunOptions:
    """RunOptions from parsed run arguments and the `--resume`/`--force` values split off before."""
    if args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    force_opt = optional.get("--force")
    force = None if force_opt is None else (set() if force_opt is True else set(ids(str(force_opt)) or []))
    return RunOptions(
        file=file if file is not None else args.file, params=list(args.param), only=ids(args.only),
        from_step=args.from_step, dry_run=args.dry_run, resume=optional.get("--resume"), force=force,
        max_parallel=args.max_parallel, runner=args.runner, strict=args.strict,
        workspace=args.workspace or workspace, agent=args.agent, quiet=args.quiet, bind=not args.no_bind,
        unsandboxed_agents=args.unsandboxed_agents,
    )


def parse_run_args(file: str, run_args: list[str] | None, workspace: str | None = None) -> RunOptions:
    """`codex-tasks tui FILE [run options]`: the options after FILE as RunOptions."""
    rest, optional = split_optional_values(list(run_args or []))
    parser = UsageParser(prog="codex-tasks tui", add_help=False)
    add_run_arguments(parser, file=False)
    return options_from_args(parser.parse_args(rest), optional, file=file, workspace=workspace)


def resume_options(state: dict[str, Any], run_id: str) -> RunOptions:
    """`--resume=RUN` for the run whose `state.json` is `state`, with the options it was started with."""
    opts = state.get("options") or {}
    return RunOptions(
        file=str(state.get("sequence_file")),
        resume=run_id,
        workspace=str(state.get("workspace") or Path.cwd()),
        only=opts.get("only"),
        from_step=opts.get("from"),
        strict=bool(opts.get("strict")),
        max_parallel=int(opts.get("max_parallel") or 4),
        runner=str(opts.get("runner") or "local"),
    )
