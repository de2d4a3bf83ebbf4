"""`enter` on a step: what ran (rendered command lines or `with:`), outputs with hashes, its log."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from codex_tasks.tui import format as fmt
from codex_tasks.tui.model import StepView


def command_text(plan_step: dict[str, Any]) -> str:
    """The rendered shell lines grouped by section, or the `with:` mapping as YAML."""
    lines = plan_step.get("lines") or []
    if lines:
        out: list[str] = []
        section = None
        for item in lines:
            if not isinstance(item, dict):
                continue
            if item.get("section") != section:
                section = item.get("section")
                out.append(f"# {section}")
            out.append(str(item.get("line", "")))
        return "\n".join(out)
    with_ = plan_step.get("with") or {}
    if with_:
        import yaml

        return yaml.safe_dump(with_, sort_keys=False, default_flow_style=False).rstrip()
    return "(no command: a manual step)" if plan_step.get("kind") == "manual" else "(no command)"


def outputs_text(state_step: dict[str, Any], plan_step: dict[str, Any]) -> str:
    rows = []
    for o in state_step.get("outputs") or []:
        if isinstance(o, dict):
            sha = str(o.get("sha256") or "")
            rows.append(f"{o.get('path')}  {o.get('size', '?')} B  sha256 {sha[:16]}{'…' if sha else ''}")
    expected = state_step.get("expected_outputs") or [o.get("path") for o in plan_step.get("outputs") or []
                                                      if isinstance(o, dict)]
    if not rows and expected:
        rows += [f"{p}  (expected)" for p in expected]
    return "\n".join(rows) or "(none)"


class StepDetailsScreen(Screen[None]):
    """One step's facts from plan.json and state.json, and its log."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "app.pop_screen", "Back"),
    ]

    DEFAULT_CSS = """
    StepDetailsScreen {
        & > #details-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
        & > VerticalScroll { height: auto; max-height: 60%; padding: 0 1; }
        & .section { color: $text-accent; text-style: bold; margin-top: 1; }
        & .command { background: $boost; padding: 0 1; }
        & > Log { height: 1fr; min-height: 4; border: round $primary 40%; }
    }
    """

    def __init__(self, view: StepView, plan_step: dict[str, Any], state_step: dict[str, Any],
                 log_lines: list[str]) -> None:
        super().__init__()
        self.view = view
        self.plan_step = plan_step
        self.state_step = state_step
        self.log_lines = log_lines

    def compose(self) -> ComposeResult:
        v = self.view
        yield Static(f"step {v.id}  {fmt.STATUS_MARKS.get(v.status, '?')} {v.word}", id="details-title")
        facts = [escape(f"phase {v.phase_id or '-'} · kind {v.kind or self.plan_step.get('kind') or '-'}")]
        dur = fmt.duration(v.duration if v.duration is not None else self.state_step.get("duration"))
        if dur:
            facts[0] += f" · {dur}"
        attempts = self.state_step.get("attempts") or v.attempt
        if attempts:
            facts[0] += f" · attempt {attempts}"
        if v.description:
            facts.append(escape(v.description))
        error = self.state_step.get("error")
        note = self.state_step.get("note") or v.note
        if error:
            facts.append(f"[b red]error[/]: {escape(str(error))}")
        elif note:
            facts.append(f"note: {escape(str(note))}")
        needs = self.plan_step.get("needs") or []
        if needs:
            facts.append(escape("needs: " + ", ".join(map(str, needs))))
        with VerticalScroll():
            yield Static("\n".join(facts[:1]) + ("\n" + "\n".join(facts[1:]) if facts[1:] else ""),
                         id="facts", markup=True)
            yield Static("command" if self.plan_step.get("lines") else "with", classes="section")
            yield Static(escape(command_text(self.plan_step)), classes="command", id="command")
            yield Static("outputs", classes="section")
            yield Static(escape(outputs_text(self.state_step, self.plan_step)), id="outputs")
        log = Log(id="details-log", auto_scroll=True)
        log.border_title = "log"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one(Log)
        log.write_lines(self.log_lines or ["(no log)"])
