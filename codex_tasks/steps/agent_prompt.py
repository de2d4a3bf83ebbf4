"""The agent's prompt: `templates/agent_prompt.md.j2`, or a step's / sequence's own template.

What goes in (all of it redacted before it is written or sent): the step's description with its
placeholders rendered, its declared outputs as the contract, its `conditions` and `policy`, the
guardrails the sequence's `metadata` asks for, relevant audit findings, earlier steps' outputs
(copied into the scratch copy), the run's last error blocks, a killed attempt's partial diff and,
for a repair, the failing step's error block.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import redact
from codex_tasks.core.resources import template_path
from codex_tasks.errors import StepFailed
from codex_tasks.render.templating import render_string
from codex_tasks.steps.base import StepContext

_SIMPLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_description(text: str, values: dict[str, Any]) -> str:
    """Placeholders rendered; prose braces that name no parameter are left as written."""
    try:
        return render_string(text, values)
    except Exception:  # noqa: BLE001 - prose is not a template (stray braces): render `{name}` only
        return _SIMPLE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def guardrails(params: dict[str, Any], sequence_rel: str | None) -> list[str]:
    """The rules the agent is told (and the gates enforce), from the sequence's metadata."""
    rules = ["Do not edit anything under `.git` or `.codex/`, and do not write outside the current directory "
             "(no symlinks pointing out of it)."]
    if _truthy(params.get("offline_only")):
        rules.append("Work offline: no network access, no downloads, no remote APIs.")
    if params.get("forbid_github_workflows") is not False:
        rules.append("Do not create or edit files under `.github/workflows`.")
    if sequence_rel:
        rules.append(f"Do not edit the task sequence file `{sequence_rel}`.")
    rules.append("Do not delete or weaken tests; do not add secrets (keys, tokens, passwords) to any file.")
    extra = params.get("guardrails")
    if isinstance(extra, list):
        rules.extend(str(g) for g in extra)
    elif isinstance(extra, str) and extra.strip():
        rules.append(extra.strip())
    return rules


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.lower() in ("1", "true", "yes", "on"))


def audit_findings(run_dir: Path, limit: int) -> list[dict[str, Any]]:
    """Findings of this run's audit steps (`stub_scan.json`), the first `limit`."""
    findings: list[dict[str, Any]] = []
    for scan in sorted((run_dir / "steps").glob("*/stub_scan.json")):
        try:
            findings.extend(json.loads(scan.read_text()).get("findings", []))
        except ValueError:
            continue
    return findings[:limit]


def last_error_blocks(run_dir: Path, n: int = 3) -> list[str]:
    """The run's last `n` error blocks, as rendered (what a person would have pasted)."""
    captures = run_dir / "error_captures.ndjson"
    blocks: list[str] = []
    if captures.is_file():
        for line in captures.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            blocks.append(str(rec.get("rendered") or f"[{rec.get('step_id')}] {rec.get('error_message', '')}").strip())
    return blocks[-n:]


@dataclass
class PromptInputs:
    """What the prompt is made of, besides the step context."""

    outputs: list[dict[str, str]] = field(default_factory=list)
    earlier_outputs: list[str] = field(default_factory=list)
    sequence_rel: str | None = None
    partial_diff: str = ""
    repair: str = ""
    max_findings: int = 30


def load_template(template: str | None, ctx: StepContext) -> str:
    """The template text: `template` (a file path, or inline Jinja2), `metadata.agent_prompt_template`
    (a path), or the shipped `templates/agent_prompt.md.j2`."""
    for ref in (template, ctx.params.get("agent_prompt_template")):
        if not ref or not isinstance(ref, str):
            continue
        if "\n" not in ref and ref.endswith((".j2", ".md", ".txt")):
            path = ctx.resolve(ref)
            if not path.is_file():
                raise StepFailed(f"prompt template {ref} not found", hint="give a path relative to the workspace")
            return path.read_text(encoding="utf-8")
        return ref
    return template_path("agent_prompt.md.j2").read_text(encoding="utf-8")


def render_prompt(ctx: StepContext, task: str, inputs: PromptInputs, template: str | None = None) -> str:
    """The redacted prompt for this step."""
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    values = dict(ctx.params)
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=False)
    fields = {
        "step_id": ctx.step_id,
        "task": render_description(task, values),
        "description": render_description(task, values),
        "outputs": inputs.outputs,
        "conditions": list(getattr(ctx, "conditions", []) or []),
        "policy": dict(getattr(ctx, "policy", {}) or {}),
        "guardrails": guardrails(values, inputs.sequence_rel),
        "earlier_outputs": inputs.earlier_outputs,
        "findings": audit_findings(ctx.run_dir, inputs.max_findings),
        "errors": last_error_blocks(ctx.run_dir),
        "partial_diff": inputs.partial_diff[-6000:],
        "repair": inputs.repair,
        # every parameter reaches the agent too, as the CODEX_PARAM_<NAME> its commands also see
        "parameters": {k: v for k, v in sorted(ctx.env.items()) if k.startswith("CODEX_PARAM_")},
    }
    try:
        text = env.from_string(load_template(template, ctx)).render(**fields)
    except TemplateError as exc:
        raise StepFailed(f"the agent's prompt template does not render: {exc}") from exc
    return redact(text)
