"""Legacy error files: the blockquote form, parsed timestamps, **Answer** paragraphs kept apart."""

from __future__ import annotations

import json
import textwrap

from codex_tasks.cli import main
from codex_tasks.runs.errorcap import parse_timestamp, read_error_file

BLOCKQUOTE = textwrap.dedent("""\
    # Questions

    > Question from ChatGPT @codex 2025-08-13T10:22:01Z:
    > While performing [1.2:Validate the environment], encountered the following error:
    > ModuleNotFoundError: No module named 'yaml'
    > Context: python -c 'import yaml'
    > What are the possible causes, and how can this be resolved while preserving intended functionality?

    **Answer**
    Install PyYAML into the environment the steps use.

    It is listed in pyproject.toml.

    > Question from ChatGPT @codex 2025-08-13 11:00:00 UTC:
    > While performing [2.1:Scan], encountered the following error:
    > audit root is not a folder
    > Context: root=src
    """)


def test_blockquote_blocks_timestamps_and_answers(tmp_path):
    f = tmp_path / "codex_error_questions.md"
    f.write_text(BLOCKQUOTE)
    first, second = read_error_file(f)
    assert first["timestamp"] == "2025-08-13T10:22:01+00:00" and first["asker"] == "ChatGPT @codex"
    assert first["step_id"] == "1.2" and first["description"] == "Validate the environment"
    assert first["error_message"] == "ModuleNotFoundError: No module named 'yaml'"
    assert first["context"] == "python -c 'import yaml'"
    assert first["answer"] == "Install PyYAML into the environment the steps use.\n\nIt is listed in pyproject.toml."
    assert "Install PyYAML" not in first["rendered"] and first["rendered"].startswith("Question from ChatGPT")
    assert second["timestamp"] == "2025-08-13T11:00:00+00:00" and "answer" not in second
    assert second["step_id"] == "2.1" and second["context"] == "root=src"


def test_plain_blocks_still_read(tmp_path):
    f = tmp_path / "q.md"
    f.write_text("Question for ChatGPT 2026-01-02T03:04:05.678+00:00:\nWhile performing [a:b], encountered the "
                 "following error:\nboom\nContext: ctx\nWhat are the possible causes?\n")
    (rec,) = read_error_file(f)
    assert rec["timestamp"] == "2026-01-02T03:04:05.678000+00:00" and rec["error_message"] == "boom"


def test_parse_timestamp():
    assert parse_timestamp("not a time") is None
    assert parse_timestamp("2025-08-13T10:22:01+02:00") == "2025-08-13T10:22:01+02:00"


def test_errors_command_shows_answers_apart(tmp_path, capsys):
    f = tmp_path / "questions.md"
    f.write_text(BLOCKQUOTE)
    assert main(["errors", str(f)]) == 0
    out = capsys.readouterr().out
    assert "**Answer**\nInstall PyYAML" in out
    assert main(["errors", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["answer"].startswith("Install PyYAML")
