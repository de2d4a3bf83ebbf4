"""Where the shipped `templates/` and `tasks/` folders are, in a source tree or an installed wheel.

In the wheel they are the packages `codex_tasks.templates` and `codex_tasks.tasks` (a
package-dir mapping in pyproject.toml); in a source checkout they are the top-level folders.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from codex_tasks.errors import UsageError

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _shipped_dir(name: str) -> Path:
    source = _SOURCE_ROOT / name
    if source.is_dir() and (_SOURCE_ROOT / "pyproject.toml").is_file():
        return source
    return Path(str(resources.files(f"codex_tasks.{name}")))


def templates_dir() -> Path:
    """The folder of shipped Jinja2 templates."""
    return _shipped_dir("templates")


def tasks_dir() -> Path:
    """The folder of shipped task sequences (`builtin:NAME`)."""
    return _shipped_dir("tasks")


def template_path(name: str) -> Path:
    """A shipped template by file name, e.g. `error_block.txt.j2`."""
    return templates_dir() / name


def resolve_sequence_ref(ref: str) -> Path:
    """A sequence file path, or `builtin:NAME` from the shipped task library."""
    if ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        for cand in (tasks_dir() / name, tasks_dir() / f"{name}.yaml", tasks_dir() / f"{name}.yml"):
            if cand.is_file():
                return cand
        known = sorted(p.stem for p in tasks_dir().glob("*.yaml"))
        raise UsageError(f"no built-in sequence {name!r}", hint=f"built-ins: {', '.join(known) or 'none'}")
    return Path(ref)
