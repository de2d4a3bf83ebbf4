"""`python -m codex_tasks.tui [FILE | RUN] [--workspace DIR] [run options]` (until the CLI wires `tui`)."""

from __future__ import annotations

import sys

from codex_tasks.errors import CodexTasksError


def cli(argv: list[str]) -> int:
    target = None
    workspace = None
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("-w", "--workspace"):
            workspace = next(args, None)
        elif arg.startswith("--workspace="):
            workspace = arg.partition("=")[2]
        elif target is None and not arg.startswith("-"):
            target = arg
        else:
            rest.append(arg)
    from codex_tasks.tui import main

    try:
        return main(target, rest, workspace)
    except CodexTasksError as exc:
        print(f"codex-tasks: {exc.render()}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
