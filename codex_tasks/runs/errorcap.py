"""Structured error capture: one error block per failed step.

The rendered block uses the step's own `template` when it has one, else the shipped default
(`templates/error_block.txt.j2`). Each block is one JSON line in `error_captures.ndjson`.
`read_error_file` also reads an older plain-text file of stacked "Question for ChatGPT" blocks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import redact, redact_obj
from codex_tasks.core.resources import template_path
from codex_tasks.render.templating import render_template_text
from codex_tasks.runs.events import EventLog, now_iso

DEFAULT_TEMPLATE = (
    "Question for ChatGPT {timestamp}:\n"
    "While performing [{step_id}:{step_description}], encountered the following error:\n"
    "{error_message}\n"
    "Context: {context}\n"
    "What are the possible causes, and how can this be resolved while preserving intended functionality?\n"
)


def default_template() -> str:
    try:
        return template_path("error_block.txt.j2").read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_TEMPLATE


def build_error_record(
    *,
    step_id: str,
    phase_id: str,
    description: str,
    error_type: str,
    error_message: str,
    context: str,
    traceback_tail: str = "",
    template: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """The NDJSON record, with the rendered block."""
    ts = timestamp or now_iso()
    fields = {
        "timestamp": ts,
        "step_id": step_id,
        "step_number": step_id,
        "step_description": description,
        "error_message": error_message,
        "context": context,
        "phase_id": phase_id,
    }
    rendered = render_template_text(template or default_template(), fields)
    record = {
        "timestamp": ts,
        "step_id": step_id,
        "phase_id": phase_id,
        "description": description,
        "error_type": error_type,
        "error_message": error_message,
        "context": context,
        "traceback_tail": traceback_tail,
        "rendered": rendered,
    }
    return redact_obj(record)  # type: ignore[no-any-return]


def append_error(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one whole line."""
    line = json.dumps(redact_obj(record), ensure_ascii=False, default=str)
    # reuse the events writer's whole-line append (lock + O_APPEND)
    EventLog(path, "")._append_line(line)


_BLOCK_START = re.compile(r"^Question for [^\n]*?(\d{4}-\d{2}-\d{2}[^\n:]*(?::\d\d)*[^\n]*?)?:\s*$", re.M)
_PERFORMING = re.compile(r"While performing \[(?P<id>[^:\]]*):(?P<desc>[^\]]*)\], encountered the following error:\s*(?P<rest>.*)", re.S)


def read_error_file(path: Path) -> list[dict[str, Any]]:
    """Error records from NDJSON, or from a legacy text file of stacked blocks."""
    text = path.read_text(encoding="utf-8", errors="replace")
    records: list[dict[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("{"):
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            if isinstance(obj, dict):
                records.append(obj)
        return records
    return [redact_obj(rec) for rec in read_legacy_blocks(text)]


_HEADER = re.compile(r"^Question (?:for|from) (?P<who>.*?)\s*(?P<ts>\d{4}-\d{2}-\d{2}[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?(?: ?UTC)?)?\s*:\s*$")
_ANSWER = re.compile(r"^\*\*Answer\*\*:?\s*(?P<rest>.*)$")


def parse_timestamp(text: str) -> str | None:
    """An ISO-8601 timestamp (`Z`, `UTC`, offsets, a space for the `T`) normalised; None when unreadable."""
    from datetime import datetime

    t = text.strip().replace(" UTC", "+00:00").replace("UTC", "+00:00")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(t).isoformat()
    except ValueError:
        return None


def read_legacy_blocks(text: str) -> list[dict[str, Any]]:
    """Stacked error blocks, plain or as Markdown blockquotes (`> Question from ChatGPT @codex TS:`),
    each with its parsed timestamp; `**Answer**` paragraphs after a block are kept apart as `answer`."""
    records: list[dict[str, Any]] = []
    rec: dict[str, Any] | None = None
    question: list[str] = []
    answer: list[str] | None = None

    def close() -> None:
        if rec is None:
            return
        block = "\n".join(question).strip()
        rec["rendered"] = block
        body = block.partition("\n")[2]
        m = _PERFORMING.search(body)
        if m:
            rec["step_id"] = m.group("id").strip()
            rec["description"] = m.group("desc").strip()
            msg, _, ctx = m.group("rest").partition("Context:")
            rec["error_message"] = msg.strip()
            rec["context"] = ctx.split("What are the possible causes", 1)[0].strip().rstrip(".")
        if answer is not None:
            rec["answer"] = "\n".join(answer).strip()
        records.append(rec)

    for raw in text.splitlines():
        quoted = raw.lstrip().startswith(">")
        line = re.sub(r"^\s*>\s?", "", raw) if quoted else raw
        head = _HEADER.match(line.strip())
        if head:
            close()
            ts = head.group("ts") or ""
            rec = {"timestamp": parse_timestamp(ts) or ts.strip(), "timestamp_raw": ts.strip(),
                   "asker": head.group("who").strip(), "step_id": "", "description": "",
                   "error_message": "", "context": ""}
            question, answer = [line.strip()], None
            continue
        if rec is None:
            continue
        ans = _ANSWER.match(line.strip())
        if ans and not quoted:
            answer = [ans.group("rest")] if ans.group("rest") else []
        elif answer is not None:
            answer.append(raw)
        elif quoted or line.strip():
            question.append(line)
        else:
            question.append("")
    close()
    return records


__all__ = ["append_error", "build_error_record", "default_template", "parse_timestamp", "read_error_file",
           "read_legacy_blocks", "redact"]
