"""`codex-tasks new NAME [--from builtin:X]`: a new sequence file from the shipped template or a built-in."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from codex_tasks.core.resources import resolve_sequence_ref, template_path
from codex_tasks.errors import UsageError
from codex_tasks.reference.schema import json_schema

TEMPLATE = "new_sequence.yaml.j2"
SCHEMA_COMMENT = "# yaml-language-server: $schema="
SCHEMA_FILE = Path("docs") / "schema" / "task-sequence.schema.json"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


def new_sequence(name: str, *, from_ref: str | None = None, dest_dir: Path) -> Path:
    """Write `dest_dir/NAME.yaml` from the template (or a copy of `from_ref`); returns its path.

    Refuses to overwrite an existing file. The first line points editors at the JSON Schema.
    """
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    if not _NAME.match(stem):
        raise UsageError(f"bad sequence name {name!r}",
                         hint="use letters, digits, '_', '-' or '.', e.g. codex-tasks new nightly_audit")
    dest_dir = Path(dest_dir)
    if not dest_dir.is_dir():
        raise UsageError(f"no such folder: {dest_dir}")
    dest = dest_dir / f"{stem}.yaml"
    if dest.exists():
        raise UsageError(f"{dest} already exists; refusing to overwrite it",
                         hint="pick another NAME, or delete the file first")
    schema = schema_ref(dest_dir)
    if from_ref:
        text = _copy_of(from_ref, schema)
    else:
        text = _render_template(stem, schema)
    try:
        with open(dest, "x", encoding="utf-8") as f:  # "x": never clobber a file created meanwhile
            f.write(text)
    except FileExistsError:
        raise UsageError(f"{dest} already exists; refusing to overwrite it") from None
    return dest


def schema_ref(dest_dir: Path) -> str:
    """A relative path from `dest_dir` to a JSON Schema of the format that editors can read.

    Inside a codex-tasks source checkout that is `docs/schema/`; anywhere else the schema is
    written to `.codex/schema/` of the folder (the tool's own folder, ignored by git).
    """
    for folder in (dest_dir.resolve(), *dest_dir.resolve().parents):
        if (folder / SCHEMA_FILE).is_file():
            return os.path.relpath(folder / SCHEMA_FILE, dest_dir.resolve()).replace(os.sep, "/")
    target = dest_dir / ".codex" / "schema" / "task-sequence.schema.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    return ".codex/schema/task-sequence.schema.json"


def _render_template(name: str, schema: str) -> str:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    source = template_path(TEMPLATE).read_text(encoding="utf-8")
    title = re.sub(r"[_.-]+", " ", name).strip().capitalize() or name
    return env.from_string(source).render(name=name, title=title, schema=schema)


def _copy_of(ref: str, schema: str) -> str:
    src = resolve_sequence_ref(ref)
    if not src.is_file():
        raise UsageError(f"no such sequence file: {ref}", hint="a path, or builtin:NAME (codex-tasks new --help)")
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and lines[0].startswith(SCHEMA_COMMENT):
        lines = lines[1:]
    return f"{SCHEMA_COMMENT}{schema}\n" + "".join(lines)
