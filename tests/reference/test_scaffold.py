"""`codex_tasks.reference.scaffold`: `codex-tasks new NAME [--from builtin:X]`."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tasks.errors import UsageError
from codex_tasks.orchestrate.validate import validate_file
from codex_tasks.reference.scaffold import SCHEMA_COMMENT, new_sequence
from tests.conftest import ROOT, run_cli


def _valid(path: Path) -> None:
    errors, _ = validate_file(str(path), [])
    assert not errors, [e.render() for e in errors]


def test_new_from_template_validates_and_points_editors_at_the_schema(tmp_path: Path) -> None:
    path = new_sequence("nightly_check", dest_dir=tmp_path)
    assert path == tmp_path / "nightly_check.yaml"
    first, *_ = path.read_text().splitlines()
    assert first == f"{SCHEMA_COMMENT}.codex/schema/task-sequence.schema.json"
    assert (tmp_path / ".codex" / "schema" / "task-sequence.schema.json").is_file()
    assert 'title: "Nightly check"' in path.read_text()
    _valid(path)


def test_new_inside_a_checkout_uses_docs_schema(tmp_path: Path) -> None:
    (tmp_path / "docs" / "schema").mkdir(parents=True)
    (tmp_path / "docs" / "schema" / "task-sequence.schema.json").write_text("{}")
    (tmp_path / "seqs").mkdir()
    path = new_sequence("x.yaml", dest_dir=tmp_path / "seqs")
    assert path.name == "x.yaml"
    assert path.read_text().splitlines()[0] == f"{SCHEMA_COMMENT}../docs/schema/task-sequence.schema.json"


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("keep me\n")
    with pytest.raises(UsageError, match="refusing to overwrite"):
        new_sequence("mine", dest_dir=tmp_path)
    assert (tmp_path / "mine.yaml").read_text() == "keep me\n"


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "-rf", "sp ace"])
def test_new_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        new_sequence(name, dest_dir=tmp_path)


def test_new_from_builtin_copies_it_with_the_schema_comment(tmp_path: Path) -> None:
    path = new_sequence("audit", from_ref="builtin:audit_repo", dest_dir=tmp_path)
    text = path.read_text()
    original = (ROOT / "tasks" / "audit_repo.yaml").read_text().splitlines(keepends=True)
    assert text.splitlines()[0].startswith(SCHEMA_COMMENT)
    assert text.count(SCHEMA_COMMENT) == 1
    assert text.endswith("".join(original[1:]))
    _valid(path)


def test_new_from_unknown_builtin_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        new_sequence("x", from_ref="builtin:nope", dest_dir=tmp_path)
    assert "audit_repo" in exc.value.render()
    assert not (tmp_path / "x.yaml").exists()


def test_cli_new_then_run(tmp_path: Path, prefect_url: str) -> None:
    out = run_cli("new", "hello", cwd=tmp_path, check=0).stdout
    assert "hello.yaml" in out
    assert run_cli("new", "hello", cwd=tmp_path).returncode == 2
    run_cli("new", "lib", "--from", "builtin:nightly", cwd=tmp_path, check=0)
    run_cli("validate", "hello.yaml", "lib.yaml", cwd=tmp_path, check=0)
    proc = run_cli("run", "hello.yaml", cwd=tmp_path, check=0)
    assert "succeeded" in proc.stdout
