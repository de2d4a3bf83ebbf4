"""The one exception tree of codex-tasks.

User errors carry a location and a hint; the CLI prints them in one or two lines and exits 2.
A failed step is `StepFailed` (exit 1). Anything else that escapes is a bug and shows a traceback.
"""

from __future__ import annotations


class CodexTasksError(Exception):
    """Base of every error codex-tasks raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The one- or two-line text the CLI prints."""
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


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
        text = f"{where}{field}{self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class SpecErrors(CodexTasksError):
    """Several `SpecError`s found in one pass, printed one a line."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class ParamError(CodexTasksError):
    """A parameter value is missing, unknown or of the wrong type."""


class UsageError(CodexTasksError):
    """A bad command-line option or argument."""


class RunNotFound(CodexTasksError):
    """A run id or folder that does not exist."""


class ServerError(CodexTasksError):
    """The local Prefect server could not be started or reached."""


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
