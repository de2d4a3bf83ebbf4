"""The run view under Pilot, replaying the shipped finished fixture run."""

from __future__ import annotations

from pathlib import Path

from conftest import RUN_ID, cell_text, run_async

from codex_tasks.tui.screens import ErrorsScreen, StepDetailsScreen
from codex_tasks.tui.widgets import LogPane, MetricsPanel, RunHeader, StepsTable


def test_replay_shows_every_status_and_the_header(fixture_run: Path, make_app) -> None:
    async def body() -> None:
        app = make_app(fixture_run)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            table = app.query_one(StepsTable)
            words = {sid: cell_text(table, sid, "status") for sid in table.shown_steps}
            assert words == {"setup": "✓ done", "review": "✎ manual", "deps": "↺ cached", "tokenize": "✓ done",
                             "train": "✓ done", "evaluate": "✓ done", "lint": "✗ failed", "docs": "– skipped",
                             "archive": "· not run"}
            assert cell_text(table, "train", "time") == "10s"
            assert "ruff check src" in cell_text(table, "lint", "note")
            assert cell_text(table, "phase:P2", "note").startswith("Train")
            header = app.query_one(RunHeader)
            assert (header.title, header.run_id, header.state, header.elapsed) == \
                ("Fixture pipeline", RUN_ID, "failed", 15.2)
            assert "1 failed" in str(table.border_title) and "1 error" in str(table.border_title)
            # a finished failed run opens on its failure, with that step's log
            assert table.selected_step == "lint"
            log = app.query_one(LogPane)
            assert log.step_id == "lint" and any("F401" in ln for ln in log.lines)
            metrics = app.query_one(MetricsPanel)
            assert metrics.step_id == "train" and not metrics.has_class("-empty")

    run_async(body)


def test_errors_panel_renders_the_block_copies_and_saves(fixture_run: Path, make_app, tmp_path: Path) -> None:
    async def body() -> None:
        app = make_app(fixture_run)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("e")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ErrorsScreen)
            text = screen.query_one("#block").text
            assert text.startswith("Question for ChatGPT 2026-11-30T12:00:15.000+00:00:")
            assert "While performing [lint:The linter must pass.]" in text
            await pilot.press("c")
            assert app.clipboard.startswith("Question for ChatGPT")
            await pilot.press("s")
            saved = tmp_path / "saved" / f"errors-{RUN_ID}.txt"
            assert saved.read_text().count("Question for ChatGPT") == 1
            await pilot.press("escape")
            assert not isinstance(app.screen, ErrorsScreen)

    run_async(body)


def test_filter_narrows_the_table_and_escape_clears_it(fixture_run: Path, make_app) -> None:
    async def body() -> None:
        app = make_app(fixture_run)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.query_one(StepsTable)
            await pilot.press("slash", *"ruff")
            await pilot.pause()
            assert table.shown_steps == ["lint"]
            await pilot.press("enter")  # keeps the filter, back to the table
            assert table.has_focus and table.shown_steps == ["lint"]
            await pilot.press("slash", *"P1")
            await pilot.pause()
            assert table.shown_steps == ["setup", "review", "deps"]
            await pilot.press("escape")
            await pilot.pause()
            assert len(table.shown_steps) == 9 and table.filter_text == ""

    run_async(body)


def test_enter_opens_step_details_from_plan_and_state(fixture_run: Path, make_app) -> None:
    async def body() -> None:
        app = make_app(fixture_run)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.query_one(StepsTable)
            table.select_step("setup")
            await pilot.press("enter")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, StepDetailsScreen)
            command = str(screen.query_one("#command").render())
            assert "# actions" in command and "echo ready > out/ready.txt" in command
            outputs = str(screen.query_one("#outputs").render())
            assert "out/ready.txt" in outputs and "sha256 9c1185a5c5e9fc54" in outputs
            assert "+ mkdir -p out" in screen.query_one("#details-log").lines
            await pilot.press("escape")
            table.select_step("train")
            await pilot.press("enter")
            await pilot.pause()
            command = str(app.screen.query_one("#command").render())
            assert "max_steps: 200" in command

    run_async(body)


def test_keys_follow_cancel_resume_and_quit_on_a_finished_run(fixture_run: Path, make_app) -> None:
    async def body() -> None:
        app = make_app(fixture_run)
        async with app.run_test(size=(80, 24)) as pilot:
            log = app.query_one(LogPane)
            assert log.follow
            await pilot.press("l")
            assert not log.follow and "paused" in str(log.border_subtitle)
            await pilot.press("l")
            assert log.follow
            await pilot.press("c")  # not running: nothing to cancel, the app says so
            await pilot.pause()
            assert any("not running" in n.message for n in app._notifications)
            # moving the cursor moves the log pane and the progress bar
            app.query_one(StepsTable).select_step("train")
            await pilot.pause()
            assert log.step_id == "train"
            assert app.query_one("ProgressPanel").step_ids == ["train"]
            await pilot.press("q")
        assert app.return_value is None  # a watched run just closes

    run_async(body)


def test_command_palette_lists_the_run_commands(fixture_run: Path, make_app) -> None:
    async def body() -> None:
        app = make_app(fixture_run)
        async with app.run_test(size=(100, 30)):
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Cancel run", "Resume run", "Errors", "Follow log", "Filter steps", "Step details"} <= titles

    run_async(body)


def test_scales_to_hundreds_of_steps_in_batches(tmp_path: Path, make_app) -> None:
    """300 steps and 30k events: the table holds every step and the last statuses."""
    import json

    run = tmp_path / "big"
    run.mkdir()
    lines = [json.dumps({"time": 0, "type": "run.started", "title": "Big"})]
    t = 0.0
    for i in range(300):
        sid = f"s{i:03d}"
        lines.append(json.dumps({"time": t, "type": "step.started", "step_id": sid, "phase_id": f"p{i // 50}"}))
        for k in range(100):
            t += 0.01
            lines.append(json.dumps({"time": t, "type": "progress", "step_id": sid, "done": k, "total": 100}))
        lines.append(json.dumps({"time": t, "type": "step.succeeded", "step_id": sid, "duration": 1.0}))
    lines.append(json.dumps({"time": t, "type": "run.finished", "status": "succeeded"}))
    (run / "events.ndjson").write_text("\n".join(lines) + "\n")

    async def body() -> None:
        app = make_app(run)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            table = app.query_one(StepsTable)
            assert len(table.shown_steps) == 300 and app.model.events_seen == len(lines)
            assert cell_text(table, "s299", "status") == "✓ done"
            assert app.query_one(RunHeader).state == "succeeded"

    run_async(body)
