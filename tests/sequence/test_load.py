"""Loading both dialects: ids as written, open mappings kept, parameters resolved and typed, include."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from codex_tasks.cli import main
from codex_tasks.errors import ParamError, SpecError, SpecErrors
from codex_tasks.orchestrate.plan import build_plan
from codex_tasks.orchestrate.validate import validate_file
from codex_tasks.render.params import coerce_param, parse_cli_params, resolve_params
from codex_tasks.sequence.load import load_sequence
from codex_tasks.sequence.models import ParamSpec, Sequence
from tests.conftest import EXAMPLES

BUILTINS = {"run_id": "RID", "run_dir": "/ws/.codex/runs/RID", "workspace": "/ws", "timestamp": "TS"}


def write(tmp_path: Path, text: str, name: str = "seq.yaml") -> Path:
    f = tmp_path / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return f


def plan_of(path: Path, cli: dict[str, str] | None = None):
    loaded = load_sequence(path)
    values = resolve_params(loaded.spec, cli or {}, BUILTINS, environ={})
    return build_plan(loaded, values), values


# ---------------------------------------------------------------- the shared examples


@pytest.mark.parametrize("name", ["legacy_v1_0.yaml", "legacy_v1_1.yaml"])
def test_legacy_examples_validate(name):
    path = EXAMPLES / name
    errors, info = validate_file(str(path))
    assert errors == [], [e.render() for e in errors]
    assert "phases" in info


def test_typed_example_only_lacks_kinds_not_yet_registered():
    from codex_tasks.steps import KINDS

    path = EXAMPLES / "typed.yaml"
    errors, _ = validate_file(str(path))
    for e in errors:
        assert "unknown step kind" in e.message, e.render()
        kind = e.message.split("'")[1]
        assert kind not in KINDS, e.render()


def test_examples_validate_through_the_cli(capsys):
    files = [str(EXAMPLES / n) for n in ("legacy_v1_0.yaml", "legacy_v1_1.yaml")]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert all(f"{f}: ok" in out for f in files)


TYPED = """
# yaml-language-server: $schema=whatever.json
version: "1.0"
title: Typed
params:
  vocab: {type: int, default: 512, description: "Vocabulary size."}
  steps: {type: int, default: 200}
  precision: {type: str, default: bf16, choices: [fp32, bf16]}
  hub_token: {type: secret, description: "From the environment."}
defaults:
  retries: 1
  timeout: 1800
  on_error: continue
  env: {A: "1"}
phases:
  - id: prep
    name: Preparation
    steps:
      - id: first
        commands: ["echo first"]
      - id: side
        needs: []
        uses: shell
        with: {cwd: "."}
        commands: "echo side"
  - id: ml
    steps:
      - id: tok
        uses: tokenize
        with: {corpus: ["**/*.py"], vocab_size: "{{ vocab }}", block_size: 128, out: .codex/artifacts/tok}
      - id: summary
        needs: tok
        when: "{{ steps > 100 }}"
        commands: ["echo {{ steps }} {precision}"]
        retries: 2
        retry_delay: 1.5
        timeout: 10
        on_error: stop
        env: {B: "{vocab}"}
"""


def test_typed_dialect_loads_and_plans(tmp_path):
    plan, values = plan_of(write(tmp_path, TYPED))
    first, side, tok, summary = plan.steps()
    assert (first.kind, side.kind, tok.kind, summary.kind) == ("shell", "shell", "tokenize", "shell")
    assert side.needs == [] and side.explicit_needs
    assert side.lines == [("commands", "echo side")]  # a single string is one line
    assert tok.config.vocab_size == 512 and isinstance(tok.config.vocab_size, int)
    assert summary.needs == ["tok"]
    assert summary.skip is None  # steps=200 > 100
    assert summary.lines == [("commands", "echo 200 bf16")]
    assert (summary.retries, summary.retry_delay, summary.timeout, summary.on_error) == (2, 1.5, 10, "stop")
    assert (first.retries, first.timeout, first.on_error) == (1, 1800, "continue")
    assert summary.env == {"A": "1", "B": "512"}
    assert values["hub_token"] == ""


def test_when_false_skips(tmp_path):
    plan, _ = plan_of(write(tmp_path, TYPED), {"steps": "50"})
    assert plan.step("summary").skip and "false" in plan.step("summary").skip


# ---------------------------------------------------------------- v1.1: numeric ids as written


V11 = """
version: 1.1
title: Numbered
phases:
  - name: One
    number: 1
    steps:
      - id: 1.1
        commands: ["echo {step_id} {phase_id}"]
      - id: 1.10
        needs: [1.1]
        commands: ["true"]
      - id: 1.0
        needs: 1.10
  - name: Two
    number: 2
    steps:
      - id: 2
        conditions: ["The first phase succeeded."]
        policy: {allow_dry_run: true, limits: {max: 3, names: [a, b]}}
      - id: 2.1
        conditions: "One line."
"""


def test_numeric_ids_stay_as_written(tmp_path):
    loaded = load_sequence(write(tmp_path, V11))
    spec = loaded.spec
    assert spec.version == "1.1"
    ids = [s.id for _, s in spec.steps()]
    assert ids == ["1.1", "1.10", "1.0", "2", "2.1"]
    assert all(isinstance(i, str) for i in ids)
    assert spec.phases[0].steps[1].needs == ["1.1"]
    assert spec.phases[0].steps[2].needs == ["1.10"]


def test_phase_number_is_the_phase_id(tmp_path):
    plan, _ = plan_of(write(tmp_path, V11))
    assert [p.id for p in plan.phases] == ["1", "2"]
    assert [p.name for p in plan.phases] == ["One", "Two"]
    assert plan.step("1.1").lines == [("commands", "echo 1.1 1")]
    assert plan.step("1.10").needs == ["1.1"]


def test_conditions_and_policy_are_kept(tmp_path):
    plan, _ = plan_of(write(tmp_path, V11))
    s2 = plan.step("2")
    assert s2.conditions == ["The first phase succeeded."]
    assert s2.policy == {"allow_dry_run": True, "limits": {"max": 3, "names": ["a", "b"]}}
    assert s2.kind == "manual"
    assert plan.step("2.1").conditions == ["One line."]
    assert s2.as_dict()["policy"] == s2.policy


def test_v1_1_example_ids_and_template(tmp_path):
    path = EXAMPLES / "legacy_v1_1.yaml"
    spec = load_sequence(path).spec
    assert [s.id for _, s in spec.steps()] == ["1.1", "2.1", "2.2"]
    assert "{{step_number}}" in spec.phases[1].steps[1].template  # templates are kept, not rendered early


# ---------------------------------------------------------------- open mappings kept as given

OPEN = """
title: Open
metadata:
  seed: 11
  ratio: 0.25
  offline_only: true
  nothing: null
  tags: [a, 1, 2.5, false]
  nested: {deep: {deeper: [1, {x: y}]}, "with space": ok}
  anything_Goes-here: 1
series:
  - name: S1
    patches: [P1.md, P2.md]
    applied: false
    custom: {k: v}
related_sequences:
  - name: weekly
    path: tasks/weekly.yaml
    description: The weekly one.
    owner: someone
    extra: [1, 2]
phases: []
"""


def test_metadata_series_related_are_open_and_kept(tmp_path):
    spec = load_sequence(write(tmp_path, OPEN)).spec
    assert spec.metadata == {
        "seed": 11,
        "ratio": 0.25,
        "offline_only": True,
        "nothing": None,
        "tags": ["a", 1, 2.5, False],
        "nested": {"deep": {"deeper": [1, {"x": "y"}]}, "with space": "ok"},
        "anything_Goes-here": 1,
    }
    assert spec.series == [{"name": "S1", "patches": ["P1.md", "P2.md"], "applied": False, "custom": {"k": "v"}}]
    rel = spec.related_sequences[0]
    assert (rel.name, rel.path, rel.description) == ("weekly", "tasks/weekly.yaml", "The weekly one.")
    assert rel.model_dump() == {
        "name": "weekly", "path": "tasks/weekly.yaml", "description": "The weekly one.",
        "owner": "someone", "extra": [1, 2],
    }


def test_metadata_id_keys_keep_their_type(tmp_path):
    spec = load_sequence(write(tmp_path, """
        title: t
        metadata: {id: 7, needs: [1, 2], nested: {id: 3}}
        series: [{name: s, id: 4}]
        phases: []
    """)).spec
    assert spec.metadata == {"id": 7, "needs": [1, 2], "nested": {"id": 3}}
    assert spec.series == [{"name": "s", "id": 4}]


# ---------------------------------------------------------------- parameters


def test_legacy_default_logs_dir_provides_logs_dir(tmp_path):
    path = EXAMPLES / "legacy_v1_0.yaml"
    plan, values = plan_of(path)
    assert values["logs_dir"] == "hygiene_logs"
    assert values["default_logs_dir"] == "hygiene_logs"
    step = plan.step("H1.1")
    assert ("actions", "mkdir -p hygiene_logs") in step.lines
    assert ("actions", "export PYTHONHASHSEED=11") in step.lines
    assert step.outputs == [("hygiene_logs/python.txt", "Interpreter version.")]
    assert plan.step("H1.2").kind == "manual"
    assert plan.step("H2.1").template.startswith("Question for the on-call engineer {timestamp}")


def test_cli_overrides_default_logs_dir(tmp_path):
    f = write(tmp_path, """
        title: t
        metadata: {default_logs_dir: logs}
        phases:
          - id: p
            steps:
              - id: s
                commands: ["echo {logs_dir}"]
    """)
    plan, _ = plan_of(f, {"logs_dir": "other dir"})
    assert plan.step("s").lines == [("commands", "echo 'other dir'")]


def _spec(**kw) -> Sequence:
    return Sequence.model_validate({"title": "t", **kw})


def test_resolution_order_builtins_lowest():
    spec = _spec()
    values = resolve_params(spec, {}, BUILTINS, environ={})
    for k, v in BUILTINS.items():
        assert values[k] == v


def test_resolution_order_metadata_over_builtins():
    spec = _spec(metadata={"workspace": "meta-ws", "seed": 1})
    values = resolve_params(spec, {}, BUILTINS, environ={})
    assert values["workspace"] == "meta-ws"
    assert values["seed"] == 1


def test_resolution_order_metadata_x_over_default_x():
    spec = _spec(metadata={"default_seed": 1, "seed": 2, "default_only": 3})
    values = resolve_params(spec, {}, BUILTINS, environ={})
    assert values["seed"] == 2
    assert values["only"] == 3


def test_resolution_order_metadata_default_x_over_builtins():
    spec = _spec(metadata={"default_timestamp": "meta-ts"})
    values = resolve_params(spec, {}, BUILTINS, environ={})
    assert values["timestamp"] == "meta-ts"


def test_resolution_order_params_over_metadata():
    spec = _spec(metadata={"seed": 1, "default_logs": "meta"},
                 params={"seed": {"type": "int", "default": 2}},
                 cli_parameters={"logs": {"default": "cli-default"}})
    values = resolve_params(spec, {}, BUILTINS, environ={})
    assert values["seed"] == 2
    assert values["logs"] == "cli-default"


def test_param_without_default_keeps_metadata_value():
    spec = _spec(metadata={"seed": 1}, cli_parameters={"seed": {"description": "no default"}})
    assert resolve_params(spec, {}, BUILTINS, environ={})["seed"] == 1


def test_resolution_order_cli_over_everything():
    spec = _spec(metadata={"seed": 1, "workspace": "meta"},
                 params={"seed": {"type": "int", "default": 2}})
    values = resolve_params(spec, {"seed": "3"}, BUILTINS, environ={})
    assert values["seed"] == 3


def test_params_beat_cli_parameters_on_a_clash():
    spec = _spec(params={"seed": {"type": "int", "default": 2}}, cli_parameters={"seed": {"default": 9}})
    assert resolve_params(spec, {}, BUILTINS, environ={})["seed"] == 2


def test_builtins_cannot_be_set_from_the_cli():
    spec = _spec()
    with pytest.raises(ParamError) as ei:
        resolve_params(spec, {"run_id": "x"}, BUILTINS, environ={})
    assert ei.value.exit_code == 2


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        ({"type": "int"}, "7", 7),
        ({"type": "int"}, " 1_000 ", 1000),
        ({"type": "int"}, "-3", -3),
        ({"default": 5}, "8", 8),  # type from the default
        ({"type": "float"}, "1.5", 1.5),
        ({"type": "float"}, "2", 2.0),
        ({"default": 0.1}, "1e-3", 0.001),
        ({"type": "bool"}, "true", True),
        ({"type": "bool"}, "Yes", True),
        ({"type": "bool"}, "off", False),
        ({"type": "bool"}, "0", False),
        ({"default": False}, "on", True),
        ({"type": "list"}, "a,b, c", ["a", "b", "c"]),
        ({"type": "list"}, "[1, 2]", [1, 2]),
        ({"default": ["x"]}, "[y, z]", ["y", "z"]),
        ({"type": "dict"}, "{a: 1}", {"a": 1}),
        ({"type": "str"}, "  spaced = and = equals  ", "  spaced = and = equals  "),
        ({"type": "path"}, "a/b c", "a/b c"),
        ({}, "123", "123"),  # no type, no default: text
        ({"default": "x"}, "7", "7"),
    ],
)
def test_typed_coercion(spec, raw, expected):
    value = coerce_param("p", ParamSpec(**spec), raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("spec", "raw"),
    [
        ({"type": "int"}, "abc"),
        ({"type": "int"}, "1.5"),
        ({"type": "int"}, ""),
        ({"default": 3}, "three"),
        ({"type": "float"}, "fast"),
        ({"type": "bool"}, "maybe"),
        ({"default": True}, "2"),
        ({"type": "dict"}, "[1, 2]"),
        ({"type": "str"}, ["a"]),
    ],
)
def test_typed_coercion_errors(spec, raw):
    with pytest.raises(ValueError):
        coerce_param("p", ParamSpec(**spec), raw)


@pytest.mark.parametrize(("raw", "needle"), [("seed=abc", "integer"), ("precision=fp16", "not one of"),
                                             ("sed=1", "did you mean 'seed'")])
def test_param_errors_are_exit_2(raw, needle):
    spec = _spec(params={"seed": {"type": "int", "default": 1},
                         "precision": {"default": "bf16", "choices": ["fp32", "bf16"]}})
    with pytest.raises(ParamError) as ei:
        resolve_params(spec, parse_cli_params([raw]), BUILTINS, environ={})
    assert ei.value.exit_code == 2
    assert needle in ei.value.render()


def test_parse_cli_params_keeps_the_value_exactly():
    assert parse_cli_params(["a=b=c", "x= spaced ", "e="]) == {"a": "b=c", "x": " spaced ", "e": ""}


def test_secret_comes_from_the_environment_only():
    spec = _spec(params={"token": {"type": "secret"}, "key": {"type": "secret", "env": "MY_KEY"}})
    values = resolve_params(spec, {}, BUILTINS, environ={"TOKEN": "t0k", "MY_KEY": "k3y"})
    assert values["token"] == "t0k" and values["key"] == "k3y"
    with pytest.raises(ParamError):
        resolve_params(spec, {"token": "x"}, BUILTINS, environ={})


def test_required_param():
    spec = _spec(params={"name": {"type": "str", "required": True}})
    with pytest.raises(ParamError):
        resolve_params(spec, {}, BUILTINS, environ={})
    assert resolve_params(spec, {"name": "n"}, BUILTINS, environ={})["name"] == "n"


def test_legacy_cli_parameter_type_from_default(tmp_path, capsys):
    path = EXAMPLES / "legacy_v1_0.yaml"
    assert main(["validate", str(path), "--param", "seed=abc"]) == 2
    assert "integer" in capsys.readouterr().err
    assert main(["validate", str(path), "--param", "seed=12", "--param", "dry_run=yes"]) == 0


# ---------------------------------------------------------------- include


def test_include_merges_phases_first_and_params(tmp_path):
    write(tmp_path, """
        title: base
        params:
          vocab: {type: int, default: 100}
          only_in_base: {default: b}
        phases:
          - id: b1
            steps:
              - id: b1.1
                commands: ["echo {vocab} {only_in_base}"]
    """, "lib/base.yaml")
    top = write(tmp_path, """
        title: top
        include: lib/base.yaml
        params:
          vocab: {type: int, default: 200}
        phases:
          - id: t1
            steps:
              - id: t1.1
                needs: [b1.1]
                commands: ["echo {vocab}"]
    """)
    loaded = load_sequence(top)
    spec = loaded.spec
    assert [p.key for p in spec.phases] == ["b1", "t1"]
    assert spec.params["vocab"].default == 200  # the including file wins
    assert spec.params["only_in_base"].default == "b"
    assert loaded.step_origins["b1.1"].file.endswith("base.yaml")
    plan, values = plan_of(top)
    assert plan.step("b1.1").lines == [("commands", "echo 200 b")]
    assert values["vocab"] == 200
    errors, _ = validate_file(str(top))
    assert errors == []


def test_include_list_order(tmp_path):
    for name in ("a", "b"):
        write(tmp_path, f"""
            title: {name}
            phases:
              - id: {name}
                steps: [{{id: {name}1, commands: ["true"]}}]
        """, f"{name}.yaml")
    top = write(tmp_path, """
        title: top
        include: [a.yaml, b.yaml]
        phases:
          - id: top
            steps: [{id: t, commands: ["true"]}]
    """)
    assert [p.key for p in load_sequence(top).spec.phases] == ["a", "b", "top"]


def test_include_errors_point_into_the_included_file(tmp_path):
    inc = write(tmp_path, """
        title: bad
        phases:
          - id: p
            steps:
              - id: s
                comands: ["true"]
    """, "bad.yaml")
    top = write(tmp_path, """
        title: top
        include: bad.yaml
        phases: []
    """)
    with pytest.raises(SpecErrors) as ei:
        load_sequence(top)
    (err,) = ei.value.errors
    assert Path(err.file).resolve() == inc.resolve()
    assert err.line == 6 and "did you mean 'commands'" in err.render()


def test_include_cycle_is_an_error(tmp_path):
    write(tmp_path, "title: a\ninclude: b.yaml\nphases: []\n", "a.yaml")
    write(tmp_path, "title: b\ninclude: a.yaml\nphases: []\n", "b.yaml")
    with pytest.raises((SpecError, SpecErrors)) as ei:
        load_sequence(tmp_path / "a.yaml")
    assert "include cycle" in ei.value.render()


def test_include_duplicate_ids_are_errors(tmp_path):
    write(tmp_path, "title: a\nphases:\n  - id: p\n    steps: [{id: s, commands: ['true']}]\n", "a.yaml")
    top = write(tmp_path, "title: top\ninclude: a.yaml\nphases:\n  - id: q\n    steps: [{id: s}]\n")
    with pytest.raises(SpecErrors) as ei:
        load_sequence(top)
    assert "duplicate step id 's'" in ei.value.render()


def test_included_legacy_file_keeps_its_cli_parameters_and_metadata(tmp_path):
    write(tmp_path, """
        title: base
        metadata: {default_logs_dir: base_logs}
        cli_parameters:
          seed: {default: 5}
        phases:
          - id: b1
            steps:
              - id: b1.1
                commands: ["echo {seed} {logs_dir}"]
    """, "base.yaml")
    top = write(tmp_path, "title: top\ninclude: base.yaml\nphases: []\n")
    assert validate_file(str(tmp_path / "base.yaml"))[0] == []
    errors, _ = validate_file(str(top))
    assert errors == [], [e.render() for e in errors]


# ---------------------------------------------------------------- validate: every error, across stages

TWO_STAGES = """
    title: two stages
    params:
      seed: {type: int, default: 1}
    phases:
      - id: p
        steps:
          - id: prep
            commands: ['echo {sed}']
          - id: broken
            timeout: soon
            commands: ['echo {nope}']
          - id: after
            needs: [broken, prepp]
            commands: ['echo {seed}']
    """


def test_validate_reports_a_later_stages_errors_in_the_steps_that_validated(tmp_path, capsys):
    """A schema error in one step hides neither an unknown placeholder nor an unknown `needs` in the
    others; all come in file order, located, with their hints, exit 2 (issue 15.11). The broken
    step's own placeholder and the `needs` naming it are not reported: they are its cascade."""
    path = write(tmp_path, TWO_STAGES)
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{path}:8:20: phases[0].steps[0].commands[0]: unknown placeholder {{sed}} (hint: did you mean {{seed}}?)",
        f"{path}:10:18: phases[0].steps[1].timeout: Input should be a valid number, unable to parse string as a "
        "number (got str 'soon')",
        f"{path}:13:25: phases[0].steps[2].needs[1]: needs unknown step 'prepp' (hint: did you mean 'prep'?)",
    ]


def test_validate_runs_no_later_check_when_an_error_lies_outside_the_steps(tmp_path):
    """A broken parameter declaration makes every placeholder check a guess: only its error."""
    path = write(tmp_path, TWO_STAGES.replace("timeout: soon", "timeout: 5").replace(
        "seed: {type: int, default: 1}", "seed: {type: integer, default: 1}"))
    errors, _ = validate_file(str(path))
    assert [(e.line, e.path) for e in errors] == [(3, "params.seed.type")]
