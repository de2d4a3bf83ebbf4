"""Pydantic models of the task-sequence format (both dialects, one model).

`metadata`, `policy`, and the items of `series` and `related_sequences` are open mappings kept as
given; everything else is strict, so a typo is an error. Field descriptions become the JSON Schema
and `docs/reference.md`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ParamType = Literal["str", "int", "float", "bool", "path", "secret", "list", "dict"]
OnError = Literal["stop", "continue"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _as_id(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let the str check reject it
    if isinstance(value, int | float):
        return str(value)
    return value


class OutputSpec(_Strict):
    """A file a step must leave behind."""

    path: str = Field(description="Path (relative to the workspace) that must exist after the step.")
    description: str | None = Field(None, description="What the file is.")


class ParamSpec(_Strict):
    """A parameter: `params` (typed dialect) or `cli_parameters` (legacy dialect)."""

    type: ParamType | None = Field(
        None, description="Value type; defaults to the type of `default` (str when there is none)."
    )
    default: Any = Field(None, description="Value used when `--param NAME=VALUE` is not given.")
    description: str | None = Field(None, description="What the parameter does.")
    choices: list[Any] | None = Field(None, description="Allowed values.")
    env: str | None = Field(
        None,
        description="For `secret` parameters: the environment variable holding the value "
        "(default: the parameter name in upper case). Secrets never come from the YAML.",
    )
    required: bool = Field(False, description="The run fails with exit 2 when no value is given.")


class RelatedSequence(BaseModel):
    """Another sequence this one relates to (kept as given)."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    path: str | None = None
    description: str | None = None


class Schedule(_Strict):
    """A schedule used by `codex-tasks serve` when no flag is given."""

    cron: str | None = Field(None, description="Cron expression, e.g. '0 3 * * *'.")
    interval: float | None = Field(None, gt=0, le=31_622_400, description="Seconds between runs.")

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of 'cron' or 'interval'")
        return self


class StepDefaults(_Strict):
    """Defaults applied to every step that does not set the field itself."""

    retries: int | None = Field(None, ge=0, le=100, description="How many times a failed step is retried.")
    retry_delay: float | None = Field(None, ge=0, le=86_400, description="Seconds between retries.")
    timeout: float | None = Field(None, gt=0, le=604_800, description="Seconds before the step is stopped and failed.")
    on_error: OnError | None = Field(None, description="`stop` (fail closed) or `continue`.")
    cache: bool | None = Field(None, description="Cache steps (see each kind's default).")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for every step.")


class Step(_Strict):
    """One step: shell lines (`actions`/`commands`/`assertions`) or a built-in kind (`uses`)."""

    id: str = Field(description="Unique id of the step (numbers such as 1.1 are kept as written).")
    description: str | None = Field(None, description="What the step does; a step with only this is manual.")
    name: str | None = Field(None, description="A short display name.")
    actions: list[str] = Field(default_factory=list, description="Shell lines run first.")
    commands: list[str] = Field(default_factory=list, description="Shell lines run after `actions`.")
    assertions: list[str] = Field(
        default_factory=list, description="Shell tests run last; each must exit 0 or the step fails."
    )
    outputs: list[OutputSpec] = Field(default_factory=list, description="Files that must exist afterwards.")
    template: str | None = Field(None, description="This step's own error-block template.")
    conditions: list[str] = Field(
        default_factory=list, description="Prose preconditions (v1.1); shown, not enforced."
    )
    policy: dict[str, Any] = Field(default_factory=dict, description="Free mapping (v1.1); shown, not enforced.")
    uses: str | None = Field(None, description="A built-in step kind (`codex-tasks steps` lists them).")
    with_: dict[str, Any] | None = Field(None, alias="with", description="The kind's settings.")
    needs: list[str] | None = Field(
        None,
        description="Step ids this step waits for; `[]` depends on nothing. "
        "Without it a step waits for the step before it in its phase.",
    )
    retries: int | None = Field(None, ge=0, le=100, description="How many times a failed step is retried.")
    retry_delay: float | None = Field(None, ge=0, le=86_400, description="Seconds between retries.")
    timeout: float | None = Field(None, gt=0, le=604_800, description="Seconds before the step is stopped and failed.")
    on_error: OnError | None = Field(None, description="`stop` (default): later steps do not run; `continue`.")
    cache: bool | None = Field(None, description="Cache this step (shell steps need `outputs` too).")
    deps: list[str] = Field(default_factory=list, description="Paths/globs whose content keys the cache.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for this step.")
    when: str | None = Field(None, description="Jinja2 condition; the step is skipped when it is false.")

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        return _as_id(v)

    @field_validator("needs", mode="before")
    @classmethod
    def _needs(cls, v: Any) -> Any:
        if isinstance(v, str | int | float) and not isinstance(v, bool):
            v = [v]
        return [_as_id(x) for x in v] if isinstance(v, list) else v

    @field_validator("actions", "commands", "assertions", "conditions", mode="before")
    @classmethod
    def _one_line_is_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("id")
    @classmethod
    def _id_text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("an id may not be empty")
        return v

    @property
    def shell_lines(self) -> bool:
        return bool(self.actions or self.commands or self.assertions)


class Phase(_Strict):
    """A phase: an ordered group of steps. Phases run one after another."""

    id: str | None = Field(None, description="Unique id of the phase (or give `number`).")
    number: Annotated[int, Field(ge=0, le=1_000_000_000)] | str | None = Field(
        None, description="The v1.1 phase number, used as its id.")
    name: str | None = Field(None, description="Display name.")
    description: str | None = Field(None, description="What the phase is for.")
    steps: list[Step] = Field(default_factory=list, description="The phase's steps.")

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        return _as_id(v)

    @model_validator(mode="after")
    def _has_id(self) -> Phase:
        if self.id is None and self.number is None:
            raise ValueError("a phase needs an 'id' (or a v1.1 'number')")
        return self

    @property
    def key(self) -> str:
        return self.id if self.id is not None else str(self.number)


class Sequence(_Strict):
    """A task sequence."""

    version: str = Field("1.0", description="Format version (both dialects share one model).")
    title: str = Field(description="The sequence's title.")
    description: str | None = Field(None, description="What it does.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Free mapping. Its values are parameters of lowest precedence; `default_X` also provides `X`.",
    )
    params: dict[str, ParamSpec] = Field(default_factory=dict, description="Typed parameters.")
    cli_parameters: dict[str, ParamSpec] = Field(
        default_factory=dict, description="Legacy parameters (`name: {default, description}`)."
    )
    defaults: StepDefaults = Field(default_factory=StepDefaults, description="Defaults for every step.")
    include: list[str] = Field(
        default_factory=list, description="Other sequence files whose phases (and params) are added first."
    )
    phases: list[Phase] = Field(default_factory=list, description="The phases, run in order.")
    series: list[dict[str, Any]] = Field(default_factory=list, description="Patch series (kept as given).")
    related_sequences: list[RelatedSequence] = Field(
        default_factory=list, description="Related sequences (kept as given)."
    )
    schedule: Schedule | None = Field(None, description="Default schedule for `codex-tasks serve`.")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return _as_id(v)

    @field_validator("include", mode="before")
    @classmethod
    def _include(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def all_params(self) -> dict[str, ParamSpec]:
        """`cli_parameters` and `params` together (`params` wins on a clash)."""
        return {**self.cli_parameters, **self.params}

    def steps(self) -> list[tuple[Phase, Step]]:
        return [(p, s) for p in self.phases for s in p.steps]
