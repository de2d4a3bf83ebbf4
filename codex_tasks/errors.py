"""The one exception tree of codex-tasks, and the one place low-level errors are mapped into it.

User errors carry a location and a hint; the CLI prints them (one line, `message (hint: ...)`)
and exits 2. A failed step is `StepFailed` (exit 1). Anything else that escapes is a bug and
shows a traceback. Code that calls a library whose errors are the user's (a YAML parser, a
template engine, a server) wraps the call in `map_exceptions({LibError: OurError})`, as httpx
does with its transports, instead of catching and re-raising by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager


def with_hint(message: str, hint: str | None) -> str:
    """The one way a hint is shown: `message (hint: do this)`."""
    return f"{message} (hint: {hint})" if hint else message


class CodexTasksError(Exception):
    """Base of every error codex-tasks raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text the CLI prints: the message and its hint."""
        return with_hint(self.message, self.hint)


class SpecError(CodexTasksError):
    """A task-sequence file is malformed: bad YAML, a wrong type, an unknown key, a bad reference."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "<string>",
        line: int = 1,
        col: int = 1,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.col = col
        self.path = path

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: "
        field = f"{self.path}: " if self.path else ""
        return with_hint(f"{where}{field}{self.message}", self.hint)


class SpecErrors(CodexTasksError):
    """Several `SpecError`s found in one pass, printed one a line."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class ParamError(CodexTasksError):
    """A parameter value is missing, unknown or of the wrong type."""

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.param = param  # the declared parameter it is about, so `validate` can point at it


class RenderError(CodexTasksError):
    """A placeholder or template could not be rendered; `name` is the unknown name, when that is the cause."""

    def __init__(self, message: str, *, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class UnsafePlaceholder(RenderError):
    """A parameter value that cannot be made inert at its position in a shell line."""

    def __init__(self, message: str, hint: str, *, always: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.always = always  # refused by position, whatever the value


class UsageError(CodexTasksError):
    """A bad command-line option or argument."""


class RunNotFound(CodexTasksError):
    """A run id or folder that does not exist."""


class ServerError(CodexTasksError):
    """The local Prefect server could not be started or reached."""


class WorkspaceUnwritable(CodexTasksError):
    """The workspace's `.codex/` folder cannot be created or written (read-only, not a folder, no permission)."""


class DiskFull(CodexTasksError):
    """A write failed because the file system is full (the run stays resumable)."""

    def __init__(self, path: object) -> None:
        super().__init__(f"disk full at {path}", hint="free some space, then `codex-tasks run FILE --resume`")


class AgentUnavailable(CodexTasksError):
    """The coding agent (e.g. the Codex CLI) or the sandbox it must run in is missing."""


class SandboxUnavailable(CodexTasksError):
    """A child must run sandboxed (bubblewrap) and this machine can't sandbox it."""


class StepFailed(CodexTasksError):
    """A step did not succeed; `context` is what the error block shows."""

    exit_code = 1

    def __init__(self, message: str, *, context: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.context = context


class StepTimeout(StepFailed):
    """A step ran past its `timeout`."""


class PatchConflict(StepFailed):
    """A patch does not apply; nothing was written."""


class RunInterrupted(CodexTasksError):
    """The run was interrupted (Ctrl-C or `codex-tasks cancel`); its state is saved."""

    exit_code = 130


ExceptionMap = Mapping[type[BaseException], Callable[[BaseException], CodexTasksError]]


@contextmanager
def map_exceptions(mapping: ExceptionMap) -> Iterator[None]:
    """Translate low-level errors into the tree at one boundary: inside the block, an exception
    of a type in `mapping` (the first that matches, in order) is raised again as `mapping[type](exc)`,
    chained to the original. Errors already in the tree and unmapped ones pass through."""
    try:
        yield
    except CodexTasksError:
        raise
    except Exception as exc:
        for from_type, to_error in mapping.items():
            if isinstance(exc, from_type):
                raise to_error(exc) from exc
        raise
