"""`test`: run pytest in the workspace with a JUnit XML report; summarise it in `test_results.json`.

pytest writes nothing of its own into the run folder: its output reaches `pytest.log` through a
pipe and its JUnit report through a FIFO, both read here and written through the redaction hook,
since a test may print (or fail on) a secret. (The module is not called `test.py` so pytest never
collects it.)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import IO, Any

from pydantic import Field

from codex_tasks.core.files import write_json_atomic, write_text_atomic
from codex_tasks.core.process import Sandbox, kill_tree, spawn
from codex_tasks.core.redact import MASK, LineRedactor, redact, registered_values
from codex_tasks.errors import DiskFull, StepFailed, StepTimeout
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "test"
CACHE = "opt_in"


class With(WithModel):
    """Run pytest and record the results."""

    paths: list[str] = Field(default_factory=list, description="Test files or folders (default: pytest's own discovery).")
    args: list[str] = Field(default_factory=list, description="Extra pytest arguments, e.g. `[-x, -k, fast]`.")
    allow_failures: bool = Field(default=False, description="Record failing tests without failing the step.")
    cwd: str = Field(default=".", description="Folder to run pytest in, relative to the workspace.")
    python: str | None = Field(default=None, description="Python interpreter to run pytest with (default: the one running codex-tasks).")
    coverage: bool = Field(default=False, description="Collect line coverage with pytest-cov (`coverage` percent in test_results.json).")
    coverage_threshold: float | None = Field(
        default=None, ge=0, le=100, description="With `coverage`: fail the step when total coverage is below this percent.")


def parse_junit(path: Path) -> dict[str, Any]:
    """Counts, durations and failing test ids from a JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    res: dict[str, Any] = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "total": 0, "duration_s": 0.0,
                           "failing": [], "durations": []}
    for suite in suites:
        res["duration_s"] += float(suite.get("time", 0) or 0)
        for case in suite.iter("testcase"):
            cls = case.get("classname", "")
            test_id = f"{cls.replace('.', '/')}.py::{case.get('name')}" if cls else str(case.get("name"))
            dur = float(case.get("time", 0) or 0)
            res["total"] += 1
            res["durations"].append({"id": test_id, "seconds": round(dur, 4)})
            if case.find("failure") is not None:
                res["failed"] += 1
                msg = case.find("failure")
                res["failing"].append({"id": test_id, "message": (msg.get("message") or "")[:500] if msg is not None else ""})
            elif case.find("error") is not None:
                res["errors"] += 1
                msg = case.find("error")
                res["failing"].append({"id": test_id, "message": (msg.get("message") or "")[:500] if msg is not None else ""})
            elif case.find("skipped") is not None:
                res["skipped"] += 1
            else:
                res["passed"] += 1
    res["durations"].sort(key=lambda d: -d["seconds"])
    res["durations"] = res["durations"][:20]  # the slowest
    res["duration_s"] = round(res["duration_s"], 3)
    return res


class _LogPump:
    """Copies pytest's output to `path` line by line through the redaction hook (a private key
    printed over several lines is masked line by line), in a thread; `rename`: (old, new) text,
    so pytest's "generated xml file" line names the report, not the FIFO. A failed write (a full
    disk) never stops the reading, which would block pytest on a full pipe: `finish` raises it."""

    def __init__(self, stream: IO[bytes], path: Path, rename: tuple[str, str]) -> None:
        self.stream, self.path, self.rename = stream, path, rename
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._pump, name="pytest-output", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pem = LineRedactor()
        try:
            out: IO[str] | None = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            self.error, out = exc, None
        for raw in self.stream:
            if out is None:
                continue  # drain: pytest must not block on a full pipe
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n").replace(*self.rename)
            try:
                out.write(pem.feed(line) + "\n")
                out.flush()  # `pytest.log` is readable while the tests run
            except OSError as exc:
                self.error = exc
                with contextlib.suppress(OSError):
                    out.close()
                out = None
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()

    def finish(self) -> None:
        """Wait for the rest of the output (the pipe closes with pytest's PID namespace)."""
        self.thread.join(timeout=10)
        if self.error is not None:
            if self.error.errno == errno.ENOSPC:
                raise DiskFull(self.path)
            raise self.error


class _ReportPipe:
    """A FIFO that pytest writes its JUnit report into; read into memory here, so the report
    reaches the disk only through the redaction hook (`save`)."""

    def __init__(self) -> None:
        # in a private temp folder, not the run folder: a FIFO left by a killed run there would
        # block whatever reads every file of it (an archive)
        self.folder = Path(tempfile.mkdtemp(prefix="codex-tasks-junit-"))
        self.path = self.folder / "junit.xml"
        os.mkfifo(self.path, 0o600)
        self.data = b""
        self.thread = threading.Thread(target=self._read, name="pytest-junit", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as fh:  # blocks until pytest opens it to write its report
            self.data = fh.read()

    def close(self) -> None:
        """After pytest ended: release a reader still waiting (pytest wrote no report), remove the FIFO."""
        while self.thread.is_alive():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: the reader is not (yet, or any more) in its open()
                if exc.errno != errno.ENXIO:
                    raise
            else:
                os.close(fd)  # the reader's open() returns and reads an empty report
            self.thread.join(timeout=0.05)
        shutil.rmtree(self.folder, ignore_errors=True)

    def save(self, path: Path) -> bool:
        """Write the report to `path` through the redaction hook; False when pytest wrote none."""
        if not self.data:
            return False
        text = redact(self.data.decode("utf-8", errors="replace"))
        for value in registered_values():  # as XML escapes it, in text and in attributes
            for form in {escape(value, quote=False), escape(value)} - {value}:
                text = text.replace(form, MASK)
        write_text_atomic(path, text, redacted=False)
        return True


def run_pytest(
    cwd: Path, report_dir: Path, paths: list[str], args: list[str], *, python: str | None = None,
    timeout: float | None = None, env: dict[str, str] | None = None, log: Any = None, cancel: Any = None,
) -> dict[str, Any]:
    """Run pytest in `cwd`; returns the parsed results plus `exit_code`. Writes junit.xml and
    pytest.log, both through the redaction hook (see the module docstring)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    junit = report_dir / "junit.xml"
    junit.unlink(missing_ok=True)
    report = _ReportPipe()
    cmd = [python or sys.executable, "-m", "pytest", f"--junitxml={report.path}", "-p", "no:cacheprovider",
           *args, *paths]
    log_path = report_dir / "pytest.log"
    full_env = {**os.environ, **(env or {}), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        # a PID namespace that dies with the run (core/process.py): no test process outlives it
        proc = spawn(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
                     sandbox=Sandbox("pid"))
        assert proc.stdout is not None
        pump = _LogPump(proc.stdout, log_path, (str(report.path), str(junit)))
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if (deadline and time.monotonic() > deadline) or (cancel is not None and cancel()):
                    kill_tree(proc, grace=0.0)
                    raise StepTimeout(f"pytest ran past its timeout of {timeout} s" if deadline else "cancelled") from None
        pump.finish()
    finally:
        report.close()
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:] if log_path.is_file() else ""
    saved = report.save(junit)
    if proc.returncode == 5:  # no tests collected
        results: dict[str, Any] = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "total": 0,
                                   "duration_s": 0.0, "failing": [], "durations": []}
    elif saved:
        results = parse_junit(junit)
    else:
        raise StepFailed(f"pytest exited with code {proc.returncode} and wrote no report", context=tail)
    results["exit_code"] = proc.returncode
    results["command"] = [f"--junitxml={junit}" if a == f"--junitxml={report.path}" else a for a in cmd]
    results["log_tail"] = tail
    if log:
        for line in tail.splitlines()[-5:]:
            log(line)
    return results


def _coverage_percent(path: Path) -> float | None:
    """Total line coverage (percent, 2 decimals) from pytest-cov's JSON report."""
    try:
        return round(float(json.loads(path.read_text())["totals"]["percent_covered"]), 2)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run(cfg: With, ctx: StepContext) -> StepResult:
    cwd = ctx.resolve(cfg.cwd)
    if not cwd.is_dir():
        raise StepFailed(f"test folder does not exist: {cwd}")
    ctx.progress(0, None, "tests")
    args = list(cfg.args)
    cov_json = ctx.step_dir / "coverage.json"
    if cfg.coverage:
        import importlib.util

        if importlib.util.find_spec("pytest_cov") is None:
            raise StepFailed("coverage was asked for but pytest-cov is not installed", hint="pip install pytest-cov")
        cov_json.unlink(missing_ok=True)
        args += ["-p", "pytest_cov", "--cov=.", f"--cov-report=json:{cov_json}", "--cov-report="]
    res = run_pytest(cwd, ctx.step_dir, cfg.paths, args, python=cfg.python, timeout=ctx.timeout,
                     env=ctx.env, log=ctx.log, cancel=lambda: ctx.cancelled)
    if cfg.coverage:
        res["coverage"] = _coverage_percent(cov_json)
    tail = res.pop("log_tail")
    out = ctx.step_dir / "test_results.json"
    write_json_atomic(out, res)
    ctx.progress(res["total"], res["total"], "tests")
    for key in ("passed", "failed", "skipped", "errors"):
        ctx.metric(f"tests.{key}", res[key])
    note = f"{res['passed']} passed, {res['failed']} failed, {res['errors']} errors, {res['skipped']} skipped"
    summary = {k: res[k] for k in ("passed", "failed", "skipped", "errors", "exit_code")}
    outputs = [str(out), str(ctx.step_dir / "junit.xml"), str(ctx.step_dir / "pytest.log")]
    bad = res["failed"] + res["errors"]
    if (bad or res["exit_code"] not in (0, 5)) and not cfg.allow_failures:
        first = res["failing"][0]["id"] if res["failing"] else f"exit code {res['exit_code']}"
        raise StepFailed(f"{bad} test(s) failed; first: {first}", context=tail[-2000:])
    if cfg.coverage and cfg.coverage_threshold is not None:
        got = res.get("coverage")
        if got is None or got < cfg.coverage_threshold:
            raise StepFailed(f"coverage {got if got is not None else 'unknown'}% is under the threshold of "
                             f"{cfg.coverage_threshold}%", hint="add tests, or lower coverage_threshold")
    return StepResult(outputs=[o for o in outputs if Path(o).exists()], summary=summary, note=note)
