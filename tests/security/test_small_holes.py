"""The smaller holes: bad --runner / --force values are exit 2 before a run folder exists, a patch
root never leaves the workspace, a failed multi-file write names the file that failed, and an
unknown `{{ name }}` is reported as written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from codex_tasks.errors import StepFailed
from tests.conftest import run_cli


def _seq(tmp_path: Path, step: str = 'commands: ["true"]') -> Path:
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent(f"""\
        version: "2"
        title: holes
        phases:
          - id: p
            steps:
              - id: only
                {step}
        """))
    return f


@pytest.mark.parametrize(("args", "named"), [(["--runner", "dask=notaurl"], "dask=notaurl"),
                                              (["--runner", "bogus"], "bogus"),
                                              (["--force=nope"], "nope")])
def test_bad_run_options_are_exit_2_and_leave_no_run(args, named, tmp_path):
    f = _seq(tmp_path)
    proc = run_cli("run", str(f), *args, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert named in out and "Traceback" not in out
    assert not (tmp_path / ".codex" / "runs").exists() or not any((tmp_path / ".codex" / "runs").iterdir())
    resume = run_cli("run", str(f), "--resume", cwd=tmp_path)
    assert resume.returncode == 2 and "no failed" in resume.stdout + resume.stderr


@pytest.mark.parametrize("root", ["..", "sub/../..", "/tmp"])
def test_patch_root_outside_the_workspace_is_refused_at_validate(root, tmp_path):
    f = _seq(tmp_path, f'uses: patch\n                with: {{patch: "x.diff", root: "{root}"}}')
    proc = run_cli("validate", str(f), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "leaves the workspace" in proc.stdout + proc.stderr


def test_a_failed_multi_file_write_names_the_file_that_failed(tmp_path):
    from codex_tasks.repo.patch_apply import plan_patches
    from codex_tasks.repo.patch_parse import parse_patch
    from codex_tasks.repo.patch_write import commit_plan

    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    patch = textwrap.dedent("""\
        --- a/a.txt
        +++ b/a.txt
        @@ -1 +1 @@
        -a
        +A
        --- a/b.txt
        +++ b/b.txt
        @@ -1 +1 @@
        -b
        +B
        """)
    plan = plan_patches(tmp_path, parse_patch(patch))
    (tmp_path / "b.txt").unlink()
    (tmp_path / "b.txt").mkdir()  # the second write fails
    with pytest.raises(StepFailed) as info:
        commit_plan(plan)
    assert "writing b.txt failed" in info.value.message
    assert (tmp_path / "a.txt").read_text() == "a\n"  # the first was put back


def test_unknown_jinja_name_is_reported_as_written(tmp_path):
    f = _seq(tmp_path, 'commands: ["echo {{ nme }}"]')
    proc = run_cli("validate", str(f), cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "{{ nme }}" in out and "{nme}" not in out.replace("{{ nme }}", "")
