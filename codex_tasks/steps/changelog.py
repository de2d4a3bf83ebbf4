"""`changelog`: append a dated entry about this run to a markdown changelog.

The entry is rendered from `templates/changelog_entry.md.j2` (or `template`) with `date`, `title`,
`run_id`, `description`, `steps` (`id`, `status`, `note` — from this run's events so far),
`artifacts` (`path`, `sha256`) and `notes`. The newest entry goes at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from codex_tasks.core.files import sha256_file, write_json_atomic
from codex_tasks.core.redact import redact
from codex_tasks.core.resources import template_path
from codex_tasks.errors import StepFailed
from codex_tasks.runs.events import read_events
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "changelog"
CACHE = "never"
HEADER = "# Codex changelog\n\nEntries appended by `codex-tasks` runs, newest last.\n"


class With(WithModel):
    """Append a dated entry (steps run, results, artifacts) to a changelog."""

    path: str = Field(default="CHANGELOG_CODEX.md", description="Changelog file, relative to the workspace (created if missing).")
    template: str | None = Field(default=None, description="A Jinja2 template file to render instead of the shipped `changelog_entry.md.j2`.")
    title: str | None = Field(default=None, description="Entry title (default: the sequence's title).")
    artifacts: list[str] = Field(default_factory=list, description="Files (relative to the workspace) to list with their SHA-256.")
    notes: str = Field(default="", description="Free text added at the end of the entry.")


def step_statuses(ctx: StepContext) -> list[dict[str, str]]:
    """The latest status of each step of this run (from events.ndjson), in first-seen order."""
    order: dict[str, dict[str, str]] = {}
    path = ctx.run_dir / "events.ndjson"
    if not path.is_file():
        return []
    for ev in read_events(path):
        typ = str(ev.get("type", ""))
        sid = ev.get("step_id")
        if not typ.startswith("step.") or not sid or sid == ctx.step_id:
            continue
        status = typ.split(".", 1)[1]
        if status in ("started", "retry"):
            status = "running" if status == "started" else "retrying"
        entry = order.setdefault(str(sid), {"id": str(sid), "status": status, "note": ""})
        entry["status"] = status
        note = ev.get("note") or ev.get("error_message") or ""
        if note:
            entry["note"] = str(note).splitlines()[0][:160]
    return list(order.values())


def _title(ctx: StepContext) -> str:
    seq = ctx.run_dir / "sequence.yaml"
    if seq.is_file():
        try:
            import yaml

            data = yaml.safe_load(seq.read_text())
            if isinstance(data, dict) and data.get("title"):
                return str(data["title"])
        except Exception:  # a sequence we cannot read still gets an entry
            pass
    return "codex-tasks run"


def run(cfg: With, ctx: StepContext) -> StepResult:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    tpl_path = ctx.resolve(cfg.template) if cfg.template else template_path("changelog_entry.md.j2")
    if not tpl_path.is_file():
        raise StepFailed(f"changelog template not found: {tpl_path}")
    artifacts = []
    for rel in cfg.artifacts:
        p = ctx.resolve(rel)
        if not p.is_file():
            raise StepFailed(f"artifact not found: {rel}")
        artifacts.append({"path": rel, "sha256": sha256_file(p)})
    data: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "title": cfg.title or _title(ctx),
        "run_id": ctx.run_id,
        "description": ctx.description,
        "steps": step_statuses(ctx),
        "artifacts": artifacts,
        "notes": cfg.notes,
    }
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=False)
    try:
        entry = env.from_string(tpl_path.read_text()).render(**data)
    except jinja2.TemplateError as exc:
        raise StepFailed(f"changelog template {tpl_path.name}: {exc}") from exc
    entry = redact(entry).strip("\n") + "\n"
    out = ctx.resolve(cfg.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = out.read_text() if out.is_file() else HEADER
    out.write_text(existing.rstrip("\n") + "\n\n" + entry)
    (ctx.step_dir / "entry.md").parent.mkdir(parents=True, exist_ok=True)
    (ctx.step_dir / "entry.md").write_text(entry)
    write_json_atomic(ctx.step_dir / "entry.json", data)
    return StepResult(outputs=[str(out), str(ctx.step_dir / "entry.md")], summary={"path": str(out), "steps": len(data["steps"])},
                      note=f"entry appended to {cfg.path}")
