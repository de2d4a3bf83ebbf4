"""No input hangs or exhausts memory: alias bombs and deep nesting are refused at FILE:LINE:COL
within budgets, and every number a user gives has an upper bound."""

from __future__ import annotations

import importlib
import pkgutil
import textwrap
import types
import typing
from pathlib import Path

import annotated_types
import pytest
from pydantic import BaseModel

import codex_tasks.steps as step_kinds
from codex_tasks.errors import SpecError
from codex_tasks.sequence import models as sequence_models
from codex_tasks.sequence.yaml_loader import MAX_ALIAS_NODES, MAX_DEPTH, load_yaml_with_positions
from tests.conftest import run_cli


def _alias_bomb(levels: int, fan: int = 9) -> str:
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * fan) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * fan) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [7, 9])
def test_alias_bomb_is_refused_where_the_expansion_crosses_the_budget(levels):
    text = _alias_bomb(levels)
    with pytest.raises(SpecError) as info:
        load_yaml_with_positions(text, "bomb.yaml")
    err = info.value
    assert "aliases" in err.message and f"{MAX_ALIAS_NODES:,}" in err.message
    assert err.file == "bomb.yaml" and err.line is not None and err.line > 1


def test_a_few_aliases_are_fine():
    data, _ = load_yaml_with_positions(_alias_bomb(2, fan=3), "ok.yaml")
    assert data["a2"] == [[["lol"] * 3] * 3] * 3


def test_deep_nesting_is_located_where_it_crosses_the_limit():
    text = "title: x\nphases:\n  - " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(SpecError) as info:
        load_yaml_with_positions(text, "deep.yaml")
    err = info.value
    assert f"{MAX_DEPTH} levels" in err.message
    assert (err.line, err.col) == (3, 5 + MAX_DEPTH - 2)  # the bracket that opens level MAX_DEPTH + 1


def test_nesting_within_the_limit_loads():
    depth = MAX_DEPTH - 1  # the top mapping is one level
    data, _ = load_yaml_with_positions("a: " + "[" * depth + "]" * depth + "\n", "ok.yaml")
    value, levels = data["a"], 1
    while value:
        value, levels = value[0], levels + 1
    assert levels == depth


def test_validate_refuses_the_390_byte_bomb_quickly(tmp_path):
    f = tmp_path / "bomb.yaml"
    f.write_text("title: bomb\n" + _alias_bomb(9))
    proc = run_cli("validate", str(f), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "bomb.yaml:" in proc.stdout + proc.stderr and "aliases" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- numeric bounds


def _numeric_parts(annotation: object, field_metadata: list[object]) -> list[list[object]]:
    """The metadata that constrains each numeric member of an annotation."""
    if annotation in (int, float):
        return [field_metadata]
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        flat: list[object] = []
        for m in meta:
            flat += list(getattr(m, "metadata", [m]))
        return _numeric_parts(base, flat)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [p for a in typing.get_args(annotation) for p in _numeric_parts(a, field_metadata)]
    return []


def _submodels(annotation: object) -> list[type[BaseModel]]:
    out = [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
    for a in typing.get_args(annotation):
        out += _submodels(a)
    return out  # type: ignore[return-value]


def _all_numeric_fields() -> list[tuple[str, list[object]]]:
    roots = [m for m in vars(sequence_models).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    for info in pkgutil.iter_modules(step_kinds.__path__):
        module = importlib.import_module(f"codex_tasks.steps.{info.name}")
        if isinstance(getattr(module, "With", None), type):
            roots.append(module.With)
    seen: set[type] = set()
    out: list[tuple[str, list[object]]] = []
    stack = list(roots)
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            for meta in _numeric_parts(field.annotation, list(field.metadata)):
                out.append((f"{model.__module__}.{model.__qualname__}.{name}", meta))
            stack += _submodels(field.annotation)
    return out


def test_every_numeric_field_of_every_model_has_an_upper_bound():
    fields = _all_numeric_fields()
    assert len(fields) > 40  # the walk reaches the step kinds' nested models (train's model, lora, ...)
    unbounded = [name for name, meta in fields
                 if not any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in meta)]
    assert unbounded == []


@pytest.mark.parametrize(("field", "value"), [("retries", "10**29"), ("retries", 101), ("timeout", 1e26)])
def test_huge_numbers_in_a_step_are_refused_at_validate(field, value, tmp_path):
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(f"""\
        version: "2"
        title: big
        phases:
          - id: p
            steps:
              - id: s
                commands: ["true"]
                {field}: {value}
        """))
    proc = run_cli("validate", str(f), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "seq.yaml:8:" in proc.stdout + proc.stderr


def test_huge_max_steps_in_train_is_refused(tmp_path: Path):
    from codex_tasks.steps.train import With

    with pytest.raises(ValueError, match="max_steps"):
        With.model_validate({"model": {"config": {"type": "gpt2"}}, "data": "d", "max_steps": 10**26})
