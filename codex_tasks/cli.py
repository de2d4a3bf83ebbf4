"""The command line: parses, calls, prints. Imports lazily so `--help` and `validate` stay fast."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks import __version__
from codex_tasks.errors import CodexTasksError, SpecError, SpecErrors, UsageError
from codex_tasks.orchestrate.options import (
    UsageParser,
    add_run_arguments,
    options_from_args,
    split_optional_values,
)
from codex_tasks.orchestrate.options import ids as _ids

if TYPE_CHECKING:
    from codex_tasks.tui import Launcher


def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(prog="codex-tasks", description="Offline-first task runner for ML code repositories.")
    p.add_argument("--version", action="version", version=f"codex-tasks {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)

    sp = sub.add_parser("run", help="run a sequence")
    add_run_arguments(sp)
    sp.add_argument("--with-related", action="store_true", help="then run the sequence's related_sequences")
    sp.add_argument("--tui", action="store_true", help="show the run in the TUI")

    sp = sub.add_parser("tui", help="run a sequence in the TUI, or watch / replay a run")
    sp.add_argument("target", nargs="?", help="a sequence FILE (or builtin:NAME), or a RUN id/folder; default: newest run")
    sp.add_argument("run_args", nargs=argparse.REMAINDER, help="run options, as for `run`")
    sp.add_argument("--workspace", "-w", metavar="DIR")

    sp = sub.add_parser("rollback", help="restore the files a patch step changed")
    sp.add_argument("run", help="run id or folder")
    sp.add_argument("step", help="the patch step's id")
    sp.add_argument("--force", action="store_true", help="restore even files changed since the patch")
    sp.add_argument("--workspace", "-w", metavar="DIR")

    sp = sub.add_parser("apply", help="apply an agent step's kept change (`apply: false`), with a rollback bundle")
    sp.add_argument("run", help="run id or folder")
    sp.add_argument("step", help="the agent step's id")
    sp.add_argument("--workspace", "-w", metavar="DIR")

    sp = sub.add_parser("verify", help="check an archive against its SHA-256 manifest")
    sp.add_argument("zip")

    sp = sub.add_parser("mlflow", help="the MLflow UI on this workspace's store (foreground)")
    sp.add_argument("--workspace", "-w", metavar="DIR")
    sp.add_argument("--port", type=int, default=0, help="default: the first free port from 5000")

    sp = sub.add_parser("validate", help="check sequence files (exit 0, or 2 with FILE:LINE:COL errors)")
    sp.add_argument("files", nargs="+")
    sp.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    sp.add_argument("--strict", action="store_true", help="declared outputs nothing writes are errors")
    sp.add_argument("--no-bind", action="store_true", help="no bindings from declared outputs to kinds")

    sp = sub.add_parser("plan", help="the DAG: what would run and what is cached")
    sp.add_argument("file")
    sp.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    sp.add_argument("--only", metavar="IDS")
    sp.add_argument("--from", dest="from_step", metavar="ID")
    sp.add_argument("--workspace", "-w", metavar="DIR")
    sp.add_argument("--format", choices=["text", "json", "mermaid", "dot"], default="text")
    sp.add_argument("--strict", action="store_true", help="declared outputs nothing writes are errors")
    sp.add_argument("--no-bind", action="store_true", help="no bindings from declared outputs to kinds")

    sp = sub.add_parser("runs", help="list runs; runs prune --keep N; runs show RUN")
    sp.add_argument("action", nargs="?", choices=["ls", "prune", "show", "errors"], default="ls")
    sp.add_argument("run", nargs="?")
    sp.add_argument("--keep", type=int, default=10)
    sp.add_argument("--workspace", "-w", metavar="DIR")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--patch", action="store_true", help="show: the agent steps' patches")

    for name, help_ in (("show", "a run's steps and outputs"), ("errors", "a run's error blocks (or a legacy error file)")):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("run", nargs="?", help="run id, run folder, or (errors) an error file; default: newest")
        sp.add_argument("--workspace", "-w", metavar="DIR")
        sp.add_argument("--json", action="store_true")
        if name == "show":
            sp.add_argument("--patch", action="store_true", help="the agent steps' patches")

    sp = sub.add_parser("cancel", help="stop a running run cleanly (state saved, resumable)")
    sp.add_argument("run", nargs="?")
    sp.add_argument("--workspace", "-w", metavar="DIR")

    sp = sub.add_parser("cache", help="the step cache: ls | clear")
    sp.add_argument("action", choices=["ls", "clear"])
    sp.add_argument("--workspace", "-w", metavar="DIR")

    sp = sub.add_parser("server", help="the local Prefect server: start | stop | status [--json] | open")
    sp.add_argument("action", choices=["start", "stop", "status", "open"])
    sp.add_argument("--json", action="store_true")

    sp = sub.add_parser("serve", help="run a sequence on a schedule through Prefect (foreground)")
    sp.add_argument("file")
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--cron", metavar="EXPR")
    group.add_argument("--interval", type=float, metavar="SECONDS")
    sp.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    sp.add_argument("--name", help="schedule (deployment) name; default: from the title")
    sp.add_argument("--workspace", "-w", metavar="DIR")
    sp.add_argument("--max-parallel", type=int, default=4, metavar="N")

    sp = sub.add_parser("schedule", help="scheduled sequences: ls | pause NAME | resume NAME")
    sp.add_argument("action", choices=["ls", "pause", "resume"])
    sp.add_argument("name", nargs="?")
    sp.add_argument("--json", action="store_true")

    sp = sub.add_parser("new", help="a new sequence file from a template (or a copy of a built-in)")
    sp.add_argument("name", help="writes NAME.yaml")
    sp.add_argument("--from", dest="from_ref", metavar="REF", help="copy this sequence instead: builtin:NAME or a path")
    sp.add_argument("--dir", dest="dest_dir", metavar="DIR", default=".", help="folder to write into (.)")

    sp = sub.add_parser("doctor", help="check this machine and workspace: versions, device, servers, agent, disk")
    sp.add_argument("--workspace", "-w", metavar="DIR")
    sp.add_argument("--json", action="store_true")
    sp = sub.add_parser("completion", help="print a shell completion script: completion bash|zsh")
    sp.add_argument("shell", choices=["bash", "zsh"])

    sub.add_parser("schema", help="JSON Schema of the format (for editors)")
    sp = sub.add_parser("steps", help="the step kinds and their with: fields")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--bindings", action="store_true", help="the legacy output -> kind bindings table")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv)
    except CodexTasksError as exc:  # the one place an error meets the user: `render()` and the exit code
        located = isinstance(exc, SpecError | SpecErrors)  # these start with FILE:LINE:COL
        print(exc.render() if located else f"codex-tasks: {exc.render()}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("codex-tasks: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 0
    sys.stdout.flush()
    return code


def _main(argv: list[str]) -> int:
    argv, optional = split_optional_values(argv)
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 0
    if optional and args.command not in ("run", "tui", "rollback"):
        raise UsageError(f"{', '.join(optional)} only applies to 'run'")
    if args.command == "rollback" and optional.get("--force") is True:
        args.force = True
    handler = globals()[f"cmd_{args.command}"]
    return int(handler(args, optional))


# ---------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace, optional: dict[str, str | bool]) -> int:
    from codex_tasks.orchestrate.console import RunConsole

    printer = RunConsole(quiet=args.quiet)
    opts = options_from_args(args, optional)
    if args.tui:
        from codex_tasks.tui import run_with_tui

        return int(run_with_tui(opts, tui_launcher()))
    opts.on_started = printer.follow
    code = _run_and_report(opts, printer, args.file)
    if args.with_related:
        code = _run_related(opts, args.file, code)
    return code


def _run_related(opts: Any, file: str, code: int) -> int:
    """`--with-related`: each existing `related_sequences` path runs after the sequence, with the same options."""
    import dataclasses

    from codex_tasks.core.resources import resolve_sequence_ref
    from codex_tasks.sequence.load import load_sequence

    main_file = resolve_sequence_ref(file)
    for rel in load_sequence(main_file).spec.related_sequences:
        path = (main_file.parent / rel.path) if rel.path else None
        if path is None or not path.is_file():
            print(f"codex-tasks: related sequence {rel.name or rel.path!r}: {rel.path} not found; skipped", file=sys.stderr)
            continue
        print(f"== related sequence {rel.name or rel.path}: {path}")
        from codex_tasks.orchestrate.console import RunConsole

        printer = RunConsole(quiet=opts.quiet)
        related = dataclasses.replace(opts, file=str(path), only=None, from_step=None, resume=None,
                                      on_started=printer.follow)
        code = max(code, _run_and_report(related, printer, str(path)))
    return code


def _run_and_report(opts: Any, printer: Any, file: str) -> int:
    from codex_tasks.orchestrate.runner import run_sequence

    try:
        result = run_sequence(opts)
    finally:
        printer.stop()
    rd = result.rundir
    if rd is not None:
        counts = json.loads((rd.path / "summary.json").read_text()).get("counts", {})
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        dry = " (dry run)" if rd.state.get("dry_run") else ""
        print(f"run {rd.run_id}{dry} {result.status}: {parts}")
        print(f"  report: {rd.path / 'report.md'}")
        if result.status == "failed":
            print(f"  errors: codex-tasks errors {rd.run_id}   resume: codex-tasks run {file} --resume")
        manual = manual_steps(rd)
        if manual:  # the last line leads with what is left to a person
            n = len(manual)
            print(f"{n} step{'s' if n != 1 else ''} need{'' if n != 1 else 's'} a person or an agent: "
                  f"{', '.join(manual)} (run {result.status})")
    return result.exit_code


def manual_steps(rd: Any) -> list[str]:
    """Ids of the run's steps left manual, in plan order."""
    return [sid for sid, st in rd.state.get("steps", {}).items() if st.get("status") == "manual"]


def cmd_tui(args: argparse.Namespace, optional: dict[str, str | bool]) -> int:
    from codex_tasks.tui import main as tui_main

    extra = [k if v is True else f"{k}={v}" for k, v in optional.items()]
    return int(tui_main(args.target, list(args.run_args) + extra, args.workspace, tui_launcher()))


def tui_launcher() -> Launcher:
    """How the TUI starts, checks and resumes runs (it never imports the runner itself)."""
    from codex_tasks.orchestrate.options import parse_run_args, resume_options
    from codex_tasks.orchestrate.prepare import prepare_options
    from codex_tasks.orchestrate.runner import run_sequence
    from codex_tasks.tui import Launcher

    return Launcher(parse=parse_run_args, check=prepare_options, run=run_sequence, resume=resume_options)


def cmd_rollback(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.rundir import find_run
    from codex_tasks.steps.patch import rollback

    rd = find_run(_workspace(args), args.run)
    restored = rollback(rd.path, args.step, force=bool(args.force))
    print(f"restored {len(restored)} file(s)" + "".join(f"\n  {p}" for p in restored))
    return 0


def cmd_apply(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.rundir import find_run
    from codex_tasks.steps.agent_apply import apply_change

    rd = find_run(_workspace(args), args.run)
    ws = Path(rd.state.get("workspace") or _workspace(args))
    written = apply_change(rd.step_dir(args.step), ws)
    print(f"applied {len(written)} file(s)" + "".join(f"\n  {p}" for p in written))
    print(f"  undo: codex-tasks rollback {rd.run_id} {args.step}")
    return 0


def cmd_verify(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.steps.archive import verify_zip

    if not Path(args.zip).is_file():
        raise UsageError(f"{args.zip}: no such file")
    result = verify_zip(args.zip)
    if result.ok:
        print(f"{args.zip}: ok ({result.files} files match the manifest)")
        return 0
    for problem in result.problems:
        print(f"{args.zip}: {problem}", file=sys.stderr)
    return 1


def cmd_mlflow(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.engine.mlflow_ui import serve_mlflow

    return serve_mlflow(_workspace(args), port=args.port)


def cmd_validate(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.orchestrate.validate import validate_file

    failed = 0
    for f in args.files:
        warnings: list[str] = []
        errors, info = validate_file(f, args.param, strict=args.strict, bind=not args.no_bind, warnings=warnings)
        for w in warnings:
            print(f"{f}: warning: {w}", file=sys.stderr)
        if errors:
            failed += 1
            for e in errors:
                print(e.render(), file=sys.stderr)
        else:
            print(f"{f}: ok ({info})")
    return 2 if failed else 0


def cmd_plan(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.orchestrate.planview import show_plan

    print(show_plan(args.file, args.param, only=_ids(args.only), from_step=args.from_step,
                    workspace=args.workspace, fmt=args.format, strict=args.strict, bind=not args.no_bind))
    return 0


def _workspace(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "workspace", None) or os.getcwd()).resolve()


def cmd_runs(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.rundir import list_run_dirs, prune_runs

    ws = _workspace(args)
    if args.action == "prune":
        removed = prune_runs(ws, args.keep)
        print(f"removed {len(removed)} run(s)" + (": " + ", ".join(removed) if removed else ""))
        return 0
    if args.action in ("show", "errors"):
        return int(globals()[f"cmd_{args.action}"](args, {}))
    rows = []
    for d in list_run_dirs(ws):
        try:
            st = json.loads((d / "state.json").read_text())
        except (OSError, ValueError):
            continue
        rows.append({"run_id": d.name, "status": st.get("status"), "title": st.get("title"),
                     "started": st.get("started"), "duration": st.get("duration"), "attempt": st.get("attempt"),
                     "dry_run": bool(st.get("dry_run"))})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no runs in {ws / '.codex' / 'runs'}")
    else:
        for r in rows:
            dry = "  (dry run)" if r["dry_run"] else ""
            print(f"{r['run_id']}  {str(r['status']):<11} {r['duration'] or '':>8}  {r['title']}{dry}")
    return 0


def _clip(text: str, width: int) -> str:
    """`text` on one line in at most `width` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[width // 2:] else cut) + "…"


def cmd_show(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.report import STATUS_MARK, write_summary
    from codex_tasks.runs.rundir import find_run

    rd = find_run(_workspace(args), args.run)
    summary_file = rd.path / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else write_summary(rd, None)
    if getattr(args, "patch", False):
        from codex_tasks.steps.agent_apply import describe_changes

        print(describe_changes(rd.path, [r["id"] for r in summary["steps"]]), end="")
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['title']}  run {summary['run_id']}  {summary['status']}  ({summary.get('duration')} s)")
    for r in summary["steps"]:
        note = r.get("error") or r.get("note") or ""
        print(f"  {STATUS_MARK.get(r['status'], '?')} {r['id']:<16} {r['status']:<10} {_clip(note, 90)}")
        for o in r.get("outputs", []):
            print(f"      {o['path']}  sha256:{o['sha256'][:16]}  {o.get('size')} B")
    print(f"report: {rd.path / 'report.md'}")
    return 0


def cmd_errors(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.errorcap import read_error_file
    from codex_tasks.runs.rundir import find_run

    target = Path(args.run) if args.run else None
    if target is not None and target.is_file():
        records = read_error_file(target)
    else:
        rd = find_run(_workspace(args), args.run)
        f = rd.path / "error_captures.ndjson"
        records = read_error_file(f) if f.exists() else []
    if args.json:
        print(json.dumps(records, indent=2))
    elif not records:
        print("no errors captured")
    else:
        for r in records:
            print(str(r.get("rendered", "")).rstrip())
            if r.get("answer"):
                print("\n**Answer**\n" + str(r["answer"]).rstrip())
            print()
    return 0


def cmd_cancel(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.cancel import cancel_run

    print(cancel_run(_workspace(args), args.run))
    return 0


def cmd_cache(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.runs.cache import CacheIndex

    idx = CacheIndex(_workspace(args))
    if args.action == "clear":
        print(f"removed {idx.clear()} cache entr(ies)")
        return 0
    for e in idx.list():
        print(f"{e['fingerprint'][:16]}  {e.get('step_id'):<16} {e.get('kind'):<10} run {e.get('run_id')}  "
              f"{len(e.get('outputs', []))} output(s)")
    return 0


def cmd_server(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.orchestrate.prefect import server

    if args.action == "start":
        url = server.ensure_server()
        print(f"Prefect server running at {url.removesuffix('/api')}")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    elif args.action == "status":
        st = server.status()
        if args.json:
            print(json.dumps(st))
        else:
            print(f"{'running' if st['running'] else 'not running'}" + (f" at {st['ui_url']}" if st.get("ui_url") else ""))
        return 0
    elif args.action == "open":
        url = server.ensure_server().removesuffix("/api")
        print(url)
        import webbrowser

        if os.environ.get("DISPLAY") or sys.platform == "darwin":
            webbrowser.open(url)
    return 0


def cmd_serve(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.orchestrate.schedule import serve

    if args.interval is not None and args.interval <= 0:
        raise UsageError("--interval must be positive")
    return serve(args.file, cron=args.cron, interval=args.interval, params=args.param, name=args.name,
                 workspace=args.workspace, max_parallel=args.max_parallel)


def cmd_schedule(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.orchestrate import schedule

    if args.action == "ls":
        rows = schedule.list_schedules()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no schedules (start one with codex-tasks serve FILE --cron EXPR)")
        for r in rows if not args.json else []:
            print(f"{r['name']:<28} {'paused' if r['paused'] else 'active':<7} {', '.join(r['schedules'])}")
        return 0
    if not args.name:
        raise UsageError(f"schedule {args.action} needs a NAME", hint="codex-tasks schedule ls")
    print(schedule.set_paused(args.name, args.action == "pause"))
    return 0


def cmd_new(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.reference.scaffold import new_sequence

    path = new_sequence(args.name, from_ref=args.from_ref, dest_dir=Path(args.dest_dir))
    print(f"wrote {path}")
    print(f"  next: codex-tasks validate {path}   codex-tasks run {path}")
    return 0


def cmd_doctor(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.orchestrate.doctor import as_json, render, run_checks

    checks = run_checks(_workspace(args))
    print(json.dumps(as_json(checks), indent=2) if args.json else render(checks))
    return 0 if all(c.status != "fail" for c in checks) else 1


def cmd_completion(args: argparse.Namespace, _: dict[str, Any]) -> int:
    import shtab

    # --resume[=RUN] and --force[=IDS] are parsed before argparse (a value only after '='): offer them too
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in commands.choices.items():
        for action in sp._actions:
            if action.dest in ("file", "files", "zip"):  # sequence files and archives: complete paths
                action.complete = shtab.FILE
        if name in ("run", "tui"):
            sp.add_argument("--resume", nargs="?", metavar="RUN", help="continue a failed or killed run")
            sp.add_argument("--force", nargs="?", metavar="IDS", help="rerun these (or all) steps from scratch")
    print(shtab.complete(parser, shell=args.shell))
    return 0


def cmd_schema(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.reference.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_steps(args: argparse.Namespace, _: dict[str, Any]) -> int:
    from codex_tasks.reference.schema import describe_kinds

    if args.bindings:
        from codex_tasks.orchestrate.bindings import describe_bindings

        rows = describe_bindings()
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print("Declared output (file name) -> built-in kind that writes it where the step declares it")
        for r in rows:
            sink = "  (run-level sink)" if r["sink"] else ""
            print(f"  {r['file']:<28} {r['kind']:<11} {r['what']}{sink}")
        return 0
    kinds = describe_kinds()
    if args.json:
        print(json.dumps(kinds, indent=2))
        return 0
    for k in kinds:
        print(f"{k['name']}  (cache: {k['cache']})  {k['doc']}")
        for f in k["fields"]:
            default = "" if f["required"] else f" = {json.dumps(f['default'], default=str)}"
            print(f"    {f['name']}: {f['type']}{default}  {f['description']}")
        print()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
