"""The flagship at two commits, on one frozen workspace: same step statuses, same bytes?

    .venv/bin/python bench/compare_commits.py OLD NEW [--workspace-from REV] [--keep DIR]
    .venv/bin/python bench/compare_commits.py --compare DIR      # the table again, from a kept DIR

What it does, offline, in a temporary folder (nothing in the checkout is written; `git archive`
reads the commits):

1. `git archive` each commit's tree into a source folder, and one venv for both: a hard-linked
   copy of the venv running this script, its editable finder and `bin/` shebangs rewritten to the
   copies (no install, no network; the installed third-party packages are the same for both).
2. Freezes one workspace: the tree of `--workspace-from` (default NEW) made a git repository of
   its own with a fixed author and date, so both runs see the same files and the same HEAD.
3. Runs the flagship (`codex_ready_task_sequence.yaml`) at OLD, then at NEW, one after the other,
   each on its own copy of the frozen workspace, with its own `CODEX_TASKS_HOME` (so its own
   managed Prefect server, stopped afterwards) and `HF_HUB_OFFLINE=1`. The source, the venv and
   the workspace sit at the same paths during both runs (swapped in by renaming), so an absolute
   path in an output is the same on both sides.
4. Compares every step's status (`state.json`) and every file in the two workspaces byte by byte
   (zip members and SQLite rows one by one; a file is paired with its twin once run ids are
   masked in its name), and prints a table: per step, its status at OLD and NEW and its files
   identical / differing, each difference with the first reason class whose masks (with those of
   every class before it) make the two sides equal:

   run id          codex-tasks', MLflow's and Prefect's run ids, pids, the server's port
   timestamp       dates, times, durations, rates, file mtimes; and the Python RNG's draw
                   count in a checkpoint (Prefect's websockets client draws ping payloads from
                   the global `random` as often as the clock says)
   machine reading system metrics (CPU, RAM, RSS, tokens/s: sampled by the clock), inode numbers
   timing order    the same content in another order (tests sorted by duration, concurrent
                   steps in the order they started)
   provenance      the provenance step's record of the environment (the code that ran)
   glob dialect    a step whose patterns match other paths at NEW (each step's `deps`, output
                   globs and tokenize's corpus are expanded by each side's own code in the
                   frozen workspace); `deps` only key the cache, so they explain fingerprints
   intended: NAME  a change made on purpose between OLD and NEW, in INTENDED_CHANGES below,
                   each checked to be named in NEW's CHANGELOG.md
   UNEXPLAINED     anything else: a behaviour change to investigate

   What a file records of another explained difference (its SHA-256 and size in state.json,
   the report, the archive's manifest; a fingerprint over explained inputs) takes that class.

Exit status: 0 when no difference is UNEXPLAINED and the statuses agree, 1 otherwise, 2 on bad
input (an unknown commit, a folder that is not a kept comparison).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLAGSHIP = "codex_ready_task_sequence.yaml"
FIXED_DATE = "2026-01-01T00:00:00+00:00"
SIDES = ("old", "new")


class BadInput(Exception):
    pass


# ----------------------------------------------------------------------------- setting up


def git(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BadInput(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def commit_of(rev: str) -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except BadInput:
        raise BadInput(f"{rev!r} is not a commit of {ROOT} (hint: git log --oneline)") from None


def export_tree(rev: str, dest: Path) -> None:
    """The commit's files (no .git) into `dest`."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-xf", "-", "-C", str(dest)], input=archive, check=True)


def clone_venv(dest: Path, src_tree: Path) -> Path:
    """A hard-linked copy of this interpreter's venv whose editable install points at `src_tree`.

    Every rewritten file is unlinked first, so the original venv's inodes are never written.
    """
    venv = Path(sys.prefix)
    if venv == Path(sys.base_prefix):
        raise BadInput("run this script with the project's venv (.venv/bin/python), not a bare interpreter")
    if subprocess.run(["cp", "-al", str(venv), str(dest)], capture_output=True).returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(venv, dest, symlinks=True)
    site = next((dest / "lib").glob("python3*/site-packages"))
    finders = sorted(site.glob("__editable___codex_tasks_*_finder.py"))
    if not finders:
        raise BadInput(f"{venv} has no editable install of codex-tasks (hint: make install)")
    source_root = _editable_root(finders[0])

    def rewrite(path: Path, old: str, new: str) -> None:
        data = path.read_bytes()
        if old.encode() in data:
            path.unlink()
            path.write_bytes(data.replace(old.encode(), new.encode()))
            shutil.copymode(venv / path.relative_to(dest), path)

    for f in (dest / "bin").iterdir():
        if f.is_file() and not f.is_symlink():
            rewrite(f, str(venv), str(dest))
    rewrite(dest / "pyvenv.cfg", str(venv), str(dest))
    for finder in finders:
        rewrite(finder, f"'{source_root}/", f"'{src_tree}/")
        for pyc in (finder.parent / "__pycache__").glob(finder.stem + ".*"):
            pyc.unlink()
    return dest


def _editable_root(finder: Path) -> str:
    m = re.search(r"'codex_tasks': '(.*)/codex_tasks'", finder.read_text())
    if not m:
        raise BadInput(f"cannot read the source folder from {finder}")
    return m.group(1)


def freeze_workspace(rev: str, dest: Path) -> None:
    """The flagship's workspace: the repository at `rev`, committed with a fixed author and date."""
    export_tree(rev, dest)
    env = {**os.environ, "GIT_AUTHOR_NAME": "compare", "GIT_AUTHOR_EMAIL": "compare@localhost",
           "GIT_COMMITTER_NAME": "compare", "GIT_COMMITTER_EMAIL": "compare@localhost",
           "GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", f"frozen workspace ({rev})"]):
        git(*args, cwd=dest, env=env)


def run_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment of a flagship run: ours, minus anything that would point it elsewhere."""
    drop = ("PREFECT_", "CODEX_", "MLFLOW_", "VIRTUAL_ENV", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and ".venv" not in p]
    env.update(PATH=os.pathsep.join([str(venv / "bin"), *path]), VIRTUAL_ENV=str(venv),
               CODEX_TASKS_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def run_side(base: Path, side: str, rev: str) -> dict[str, Any]:
    """Swap this side's source and workspace into the shared paths, run the flagship, swap back."""
    src, ws, venv = base / "src", base / "ws", base / "venv"
    (base / f"src-{side}").rename(src)
    (base / f"ws-{side}").rename(ws)
    env = run_env(venv, base / f"home-{side}")
    log = base / f"{side}.log"
    t0 = time.perf_counter()
    try:
        with log.open("w") as out:
            proc = subprocess.run([str(venv / "bin" / "codex-tasks"), "run", FLAGSHIP, "--quiet"], cwd=ws,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        wall = time.perf_counter() - t0
        subprocess.run([str(venv / "bin" / "codex-tasks"), "server", "stop"], cwd=ws, env=env,
                       capture_output=True)
        ws.rename(base / f"ws-{side}")
        src.rename(base / f"src-{side}")
    return {"rev": rev, "exit": proc.returncode, "wall_s": round(wall, 1)}


def prepare_and_run(old: str, new: str, workspace_from: str, base: Path) -> None:
    revs = {"old": commit_of(old), "new": commit_of(new)}
    ws_rev = commit_of(workspace_from)
    for side in SIDES:
        export_tree(revs[side], base / f"src-{side}")
    clone_venv(base / "venv", base / "src")
    freeze_workspace(ws_rev, base / "frozen")
    meta: dict[str, Any] = {"workspace_from": ws_rev}
    for side in SIDES:
        shutil.copytree(base / "frozen", base / f"ws-{side}", symlinks=True)
        print(f"running the flagship at {side.upper()} {revs[side][:10]} ...", file=sys.stderr, flush=True)
        meta[side] = run_side(base, side, revs[side])
        print(f"  exit {meta[side]['exit']} in {meta[side]['wall_s']} s", file=sys.stderr, flush=True)
    (base / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


PROBE = r'''
import json, sys
from pathlib import Path
ws, plan = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
from codex_tasks.runs.hashing import expand
from codex_tasks.engine.corpus import find_files
from codex_tasks.steps import tokenize
out = {}
for step in plan["steps"]:
    found = {}
    for pat in step.get("deps") or []:
        found["deps " + pat] = [p.relative_to(ws).as_posix() for p in expand(pat, ws)]
    for o in step.get("outputs") or []:
        if any(c in o["path"] for c in "*?["):
            found["outputs " + o["path"]] = [p.relative_to(ws).as_posix() for p in expand(o["path"], ws)]
    if step["kind"] == "tokenize":
        cfg = tokenize.With(**step["with"])
        found["corpus"] = [p.relative_to(ws).as_posix() for p in find_files(ws, cfg.corpus, cfg.exclude)]
    if found:
        out[step["id"]] = found
print(json.dumps(out))
'''


def probe_globs(base: Path, side: str, plan: Path) -> dict[str, dict[str, list[str]]]:
    """What each step's path patterns match in the frozen workspace, by this side's own code."""
    src = base / "src"
    (base / f"src-{side}").rename(src)
    try:
        proc = subprocess.run([str(base / "venv" / "bin" / "python"), "-P", "-c", PROBE, str(base / "frozen"), str(plan)],
                              cwd=base / "frozen", env=run_env(base / "venv", base / f"home-{side}"),
                              capture_output=True, text=True)
    finally:
        src.rename(base / f"src-{side}")
    if proc.returncode != 0:
        raise RuntimeError(f"the glob probe failed at {side.upper()}:\n{proc.stderr}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- comparing

# Reason classes, tried in this order: a difference gets the first class whose masks (together
# with every earlier class's) make the two sides equal.
RUN_ID, TIMESTAMP, MACHINE, ORDER = "run id", "timestamp", "machine reading", "timing order"
PROVENANCE, GLOB, UNEXPLAINED = "provenance", "glob dialect", "UNEXPLAINED"
INTENDED = "intended"  # shown as "intended: <the change>", each named in the CHANGELOG
MASKED = (RUN_ID, TIMESTAMP, MACHINE, ORDER, PROVENANCE, GLOB)

NUM = rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
UUID_RE = rb"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
# Masked numbers become -1, so a masked JSON document is still JSON.
REGEX_MASKS: dict[str, list[tuple[bytes, bytes]]] = {
    RUN_ID: [
        (UUID_RE, b"<uuid>"),                                   # Prefect's flow and task run ids
        (rb'"pid":\s*\d+', b'"pid": -1'),
        (rb"127\.0\.0\.1:\d+", b"127.0.0.1:<port>"),           # the managed server's port
    ],
    TIMESTAMP: [
        # the Python RNG's draw count: websockets (Prefect's event client) draws ping payloads from
        # the global `random` while training runs, as often as the clock says
        (rb'("python": \[\s*3,\s*\[(?:\s*\d+,){624}\s*)\d+', rb"\1-1"),
        (rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d| UTC)?", b"<time>"),
        (rb"\b\d{4}-\d\d-\d\d\b", b"<date>"),
        (rb"\b\d{8}-\d{6}\b", b"<time>"),
        (rb"(?<![\d.])1[6-9]\d{8}\.\d+(?![\d.])", b"-1"),        # epoch seconds (time.time())
        (rb"(?<![\d.])1[6-9]\d{11}(?![\d.])", b"-1"),            # epoch milliseconds
        (rb"(?<![\d.])1[6-9]\d{17}(?![\d.])", b"-1"),            # epoch nanoseconds (file mtimes)
        # clock readings under their keys, and "in 1.2 s"
        (rb'("(\w*(duration|elapsed|seconds|wall|time|rate)\w*|\w+_(s|ms))"\s*:\s*)' + NUM, rb"\1-1"),
        (rb'((duration|elapsed|seconds|time|rate)\w*=")' + NUM, rb'\1-1'),     # junit.xml
        (rb"(?<![\w.])\d+(\.\d+)?\s?(s|ms|sec|seconds)\b", b"-1 s"),
        (rb"\| \d+\.\d+ \|", b"| -1 |"),                       # the duration column of a report
        # how far parallel work (the audit's file chunks, in worker processes) had got when it
        # reported: which chunk finishes first is the clock's choice
        (rb'("done":\s*)\d+(,\s*"total":\s*\d+,\s*"unit":\s*"files")', rb"\1-1\2"),
        (rb"<td>\d+\.\d+</td>", b"<td>-1</td>"),
    ],
    MACHINE: [
        # system metrics (CPU, RAM, RSS) are sampled by the clock: which steps carry them and their values
        (rb'(?m)^[^\n]*"split": "system"[^\n]*\n', b""),
        (rb"(?m)^[^\n]*,system,[^\n]*\n", b""),
        (rb"(?m)^[^\n]*'system[/_][^\n]*\n", b""),
        (rb'("(tokens_per_s|samples_per_s|throughput)\w*"\s*:\s*)' + NUM, rb"\1-1"),
        (rb'("(name|metric)": "tokens_per_s", "value": )' + NUM, rb"\1-1"),
        (rb"(,tokens_per_s,)" + NUM, rb"\1-1"),
        (rb"('(train_)?tokens_per_s',\s?)" + NUM, rb"\1-1"),
        # the hash memo's (size, mtime, inode, sha256): inode numbers are this copy's
        (rb"(\[\d+,\s*-?\d+,\s*)\d+(,\s*\"[0-9a-f]{64}\")", rb"\1-1\2"),
    ],
}


@dataclass(frozen=True)
class Intended:
    """A difference a commit between OLD and NEW made on purpose, named in NEW's CHANGELOG."""

    name: str
    changelog: str                    # a phrase CHANGELOG.md at NEW must contain
    paths: str                        # regex over the file's key (run id masked)
    masks: tuple[tuple[bytes, bytes], ...] = ()
    new_file: bool = False            # the file exists at NEW only


RUN_RECORDS = r"(state|summary)\.json$|events\.ndjson$|report\.(md|html)$|entry\.(md|json)$|CHANGELOG_CODEX\.md$"
# Each names the commit's CHANGELOG entry; its masks take out exactly what that change added.
INTENDED_CHANGES: tuple[Intended, ...] = (
    Intended("shell notes count commands", "a shell step's note counts the commands it ran",
             RUN_RECORDS, ((rb"\b(\d+) line\(s\)", rb"\1 commands"), (rb"\b(\d+) commands? ran", rb"\1 commands"))),
    Intended("training id", "each training has an id", r"checkpoints/.*/state\.json$|training\.json$",
             ((rb',?\s*"training":\s*"[^"]*"', b""),), new_file=True),
    Intended("train says it is setting up", "the train step says it is setting up",
             r"steps/train/step\.log$|events\.ndjson$", ((rb"(?m)^[^\n]*setting up: data [^\n]*\n", b""),)),
    # training.json is one more file in the artifacts the safety scan reads
    Intended("training id", "each training has an id", RUN_RECORDS,
             ((rb"(0 finding\(s\) \(0 high\) in )\d+", rb"\1-1"), (rb'"files":\s*\d+', b'"files": -1'),
              (rb'("step_id": "scan_artifacts", "done": )-?\d+(, "total": )\d+', rb"\1-1\2-1"))),
    Intended("MLflow run tags", "runs tagged with sequence, step id, run id and git commit",
             r"checkpoints/.*/state\.json$|mlflow\.db$",
             ((rb',?\s*"tags":\s*\{[^{}]*\}', b""),
              (rb"(?m)^INSERT INTO \"tags\" VALUES\('(sequence|step_id|run_id|mlflow\.source\.git\.commit)'[^\n]*\n", b""),
              (rb"(?m)^INSERT INTO \"experiment_tags\" VALUES\('mlflow\.experimentKind'[^\n]*\n", b""))),
    Intended("report charts", "report charts are drawn with matplotlib", r"report\.(md|html)$|charts/[^/]+\.png$",
             ((rb"(?s)(## Metrics|<h2>Metrics</h2>|<svg ).*", b"<metrics>"), (rb"(?s)<style>.*?</style>", b"<style>")),
             new_file=True),
    Intended("run lock", "a per-workspace run lock", r"^\.codex/run\.lock$", new_file=True),
    Intended("secret parameters listed", "the sequence's parameters are the flow run's parameters",
             r"(^|/)state\.json$", ((rb',?\s*"secret_params":\s*\[\]', b""),)),
    Intended("plan bindings", "declared outputs bound to built-in kinds", r"plan\.json$",
             ((rb',\s*"bindings":\s*\[\]', b""),)),
    Intended("hash memo written compact", "the hash memo (`.codex/cache/hashmemo.json`) is written compact", r"hashmemo\.json$", ((rb",\s", b","), (rb":\s", b":"))),
)


@dataclass
class Masks:
    """What both sides may differ by: exact pairs (run ids, fingerprints, hashes) and regexes."""

    pairs: dict[str, list[tuple[bytes, bytes, bytes]]] = field(
        default_factory=lambda: {c: [] for c in (*MASKED, INTENDED)})
    seen: set[tuple[bytes, bytes]] = field(default_factory=set)
    names: dict[bytes, str] = field(default_factory=dict)   # an intended pair's placeholder -> its class

    def pair(self, cls: str, old: str, new: str, placeholder: str) -> bool:
        if not old or not new or old == new or (old.encode(), new.encode()) in self.seen:
            return False
        self.seen.add((old.encode(), new.encode()))
        self.pairs[cls if cls in self.pairs else INTENDED].append((old.encode(), new.encode(), placeholder.encode()))
        self.names[placeholder.encode()] = cls
        return True

    def apply(self, data: bytes, side: str, upto: str, key: str = "") -> bytes:
        """`data` with the masks of every class up to `upto`; regexes only on text (a binary file
        differs by an identity written into it, or not at all)."""
        text = is_text(data)
        for cls in (*MASKED, INTENDED):
            for old, new, ph in self.pairs[cls]:
                data = data.replace(old if side == "old" else new, ph)
            if text:
                for pattern, repl in REGEX_MASKS.get(cls, []):
                    data = re.sub(pattern, repl, data)
                if cls == INTENDED:
                    for change in INTENDED_CHANGES:
                        if re.search(change.paths, key):
                            for pattern, repl in change.masks:
                                data = re.sub(pattern, repl, data)
            if cls == upto:
                break
        return data

    def path_key(self, rel: str, side: str) -> str:
        """A file's name with the run's identities masked, to pair files across the sides."""
        return self.apply(rel.encode(), side, INTENDED).decode()


def is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data


def unordered(data: bytes) -> list[str]:
    """The content with its order taken out: a JSON document with every list sorted, or the
    sorted lines (each JSON line with its lists sorted)."""
    def canon(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: canon(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return sorted((canon(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
        return obj

    text = data.decode("utf-8", "replace")
    try:
        return [json.dumps(canon(json.loads(text)), sort_keys=True)]
    except ValueError:
        pass
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.dumps(canon(json.loads(line)), sort_keys=True))
        except ValueError:
            lines.append(line)
    return sorted(lines)


@dataclass
class FileDiff:
    key: str
    cls: str          # "" when identical
    detail: str = ""
    sha: tuple[str, str] = ("", "")
    size: tuple[int, int] = (0, 0)


def intended_for(key: str) -> list[Intended]:
    return [c for c in INTENDED_CHANGES if re.search(c.paths, key)]


def classify_bytes(a: bytes, b: bytes, masks: Masks, allowed: set[str], key: str) -> str:
    """The first class whose masks make `a` and `b` equal; UNEXPLAINED if none does.

    `allowed` holds the classes that may explain what masks cannot: PROVENANCE for the
    provenance step's record, GLOB for a step whose input files the glob dialect changed."""
    if a == b:
        return ""
    for cls in MASKED:
        ma, mb = masks.apply(a, "old", cls, key), masks.apply(b, "new", cls, key)
        if ma == mb or (rank(cls) >= rank(ORDER) and is_text(ma) and unordered(ma) == unordered(mb)):
            return cls
    for cls in (PROVENANCE, GLOB):
        if cls in allowed:
            return cls
    ma, mb = masks.apply(a, "old", INTENDED, key), masks.apply(b, "new", INTENDED, key)
    if ma == mb or (is_text(ma) and unordered(ma) == unordered(mb)):
        names = [c.name for c in intended_for(key) if any(re.search(pat, a) or re.search(pat, b) for pat, _ in c.masks)]
        # and the changes whose files' hashes this one records (sizes are not unique: not named)
        names += [name for o, n, ph in masks.pairs[INTENDED] if o in a and n in b and ph.startswith(b"<sha256")
                  for name in masks.names[ph].removeprefix(f"{INTENDED}: ").split(", ")]
        return intended_class(names or ["recorded sizes"])
    return UNEXPLAINED


def intended_class(names: list[str]) -> str:
    return f"{INTENDED}: {', '.join(sorted(set(names)))}"


def rank(cls: str) -> int:
    order = ["", RUN_ID, TIMESTAMP, MACHINE, ORDER, PROVENANCE, GLOB, INTENDED, UNEXPLAINED]
    return order.index(INTENDED if cls.startswith(INTENDED) else cls)


def worst(classes: list[str]) -> str:
    return max(classes, key=rank, default="")


def classify_file(a: Path, b: Path, masks: Masks, allowed: set[str], key: str) -> tuple[str, str]:
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return "", ""
    if zipfile.is_zipfile(io.BytesIO(da)) and zipfile.is_zipfile(io.BytesIO(db)):
        return classify_zip(da, db, masks, allowed)
    if da.startswith(b"SQLite format 3\0") and db.startswith(b"SQLite format 3\0"):
        return classify_bytes(sqlite_dump(a), sqlite_dump(b), masks, allowed, key), "rows compared"
    return classify_bytes(da, db, masks, allowed, key), ""


def classify_zip(da: bytes, db: bytes, masks: Masks, allowed: set[str]) -> tuple[str, str]:
    """Member by member (a zip's own headers carry each member's mtime)."""
    with zipfile.ZipFile(io.BytesIO(da)) as za, zipfile.ZipFile(io.BytesIO(db)) as zb:
        ma = {masks.path_key(n, "old"): n for n in za.namelist()}
        mb = {masks.path_key(n, "new"): n for n in zb.namelist()}
        classes, differing = [], []
        for k in sorted(set(ma) | set(mb)):
            if k not in ma or k not in mb:
                new_ok = k in mb and any(c.new_file for c in intended_for(k))
                classes.append(f"{INTENDED}: {intended_for(k)[0].name}" if new_ok else UNEXPLAINED)
                differing.append(f"{k} (only at {'NEW' if k in mb else 'OLD'})")
                continue
            ba, bb = za.read(ma[k]), zb.read(mb[k])
            c = classify_bytes(ba, bb, masks, allowed, k)
            if c:
                classes.append(c)
                differing.append(f"{k}: {c}")
                if c != UNEXPLAINED:  # the archive's manifest records each member's hash and size
                    pair_records(masks, c, k, ba, bb)
        differing = [d for _, d in sorted(zip(classes, differing, strict=True), key=lambda cd: -rank(cd[0]))]
        if not classes:
            return TIMESTAMP, "member mtimes only"
        cls = worst(classes)
        if cls.startswith(INTENDED):
            cls = intended_class([n for c in classes if c.startswith(INTENDED)
                                  for n in c.removeprefix(f"{INTENDED}: ").split(", ")])
        return cls, f"{len(differing)} member(s) differ: " + "; ".join(differing[:4]) + (
            "; ..." if len(differing) > 4 else "")


def pair_records(masks: Masks, cls: str, key: str, a: bytes | tuple[str, str], b: bytes | tuple[int, int]) -> bool:
    """Masks for what other files record of an explained difference: its SHA-256 (whole, and the
    16-character prefix a report shows) and its size. One placeholder for all sizes (a size is not
    unique); -2 keeps a JSON document JSON."""
    if isinstance(a, bytes) and isinstance(b, bytes):
        sha, size = (hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()), (len(a), len(b))
    else:
        sha, size = a, b  # type: ignore[assignment]
    ph = f"<sha256 of {key}>"
    grew = masks.pair(cls, sha[0], sha[1], ph) | masks.pair(cls, sha[0][:16], sha[1][:16], ph)
    if size[0] != size[1]:
        for fmt in ('"size": {}', '"size":{}', '"bytes": {}', '"bytes":{}', "| {} |", "({} bytes)"):
            grew |= masks.pair(cls, fmt.format(size[0]), fmt.format(size[1]), fmt.format(-2))
    return grew


def sqlite_dump(path: Path) -> bytes:
    """The database's rows as SQL text, one a line, sorted."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        lines = sorted(con.iterdump())
    finally:
        con.close()
    return "\n".join(lines).encode() + b"\n"


def files_under(ws: Path) -> dict[str, Path]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(ws):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(ws) and d == ".git")]
        for name in filenames:
            p = Path(dirpath) / name
            out[p.relative_to(ws).as_posix()] = p
    return out


def only_run(ws: Path) -> Path:
    runs = sorted(p for p in (ws / ".codex" / "runs").iterdir() if p.is_dir())
    if len(runs) != 1:
        raise BadInput(f"{ws} holds {len(runs)} run folders, not 1")
    return runs[0]


def mlflow_run_ids(ws: Path) -> list[str]:
    db = ws / ".codex" / "mlflow.db"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT run_uuid FROM runs ORDER BY start_time")]
    finally:
        con.close()


def output_paths(entry: dict[str, Any], ws: Path) -> list[str]:
    out = []
    for o in entry.get("outputs") or []:
        p = Path(o["path"])
        try:
            out.append((p if p.is_absolute() else ws / p).relative_to(ws).as_posix())
        except ValueError:
            continue
    return out


@dataclass
class Side:
    ws: Path
    run: Path
    state: dict[str, Any]
    plan: dict[str, Any]

    @classmethod
    def load(cls, ws: Path) -> Side:
        run = only_run(ws)
        return cls(ws, run, json.loads((run / "state.json").read_text()), json.loads((run / "plan.json").read_text()))


def affected_by_globs(probe: dict[str, Any], sides: dict[str, Side]) -> tuple[dict[str, list[str]], set[str]]:
    """Steps whose patterns match other paths at OLD than at NEW (pattern -> what changed), and
    the steps whose content that changes: those reading a changed match (corpus, output globs),
    and every step that reads their outputs, transitively. (`deps` only key the cache.)"""
    changed: dict[str, list[str]] = {}
    content: set[str] = set()
    for step_id in sorted(set(probe["old"]) | set(probe["new"])):
        a, b = probe["old"].get(step_id, {}), probe["new"].get(step_id, {})
        for what in sorted(set(a) | set(b)):
            if a.get(what) != b.get(what):
                sa, sb = set(a.get(what, [])), set(b.get(what, []))
                changed.setdefault(step_id, []).append(
                    f"`{what}` matches {len(sa)} path(s) at OLD, {len(sb)} at NEW "
                    f"(only OLD: {', '.join(sorted(sa - sb)[:3]) or '-'}; only NEW: {', '.join(sorted(sb - sa)[:3]) or '-'})")
                if not what.startswith("deps "):
                    content.add(step_id)
    new = sides["new"]
    steps = {s["id"]: s for s in new.plan["steps"]}
    grew = True
    while grew:
        grew = False
        for sid, step in steps.items():
            if sid in content:
                continue
            text = json.dumps({k: step.get(k) for k in ("lines", "with", "deps", "needs")})
            for src in list(content):
                outs = output_paths(new.state["steps"].get(src, {}), new.ws)
                if src in step.get("needs", []) or any(_names_path(text, o) for o in outs):
                    content.add(sid)
                    grew = True
                    break
    return changed, content


def _names_path(text: str, path: str) -> bool:
    """Whether a step's definition names `path` or one of its folders (below the top one)."""
    parts = path.split("/")
    return any(f'"{"/".join(parts[:i])}' in text for i in range(2, len(parts) + 1))


class Comparison:
    """Both runs' files paired and classified; the masks grow from what is explained until the
    classification is stable (a hash recorded in state.json differs as its file differs)."""

    def __init__(self, base: Path) -> None:
        self.sides = {s: Side.load(base / f"ws-{s}") for s in SIDES}
        probe = {s: probe_globs(base, s, self.sides["new"].run / "plan.json") for s in SIDES}
        self.changed, self.content = affected_by_globs(probe, self.sides)
        self.masks = Masks()
        self.masks.pair(RUN_ID, self.sides["old"].run.name, self.sides["new"].run.name, "<run>")
        for a, b in zip(mlflow_run_ids(self.sides["old"].ws), mlflow_run_ids(self.sides["new"].ws), strict=False):
            self.masks.pair(RUN_ID, a, b, "<mlflow-run>")
        steps = list(self.sides["new"].state["steps"])
        self.steps = steps + [s for s in self.sides["old"].state["steps"] if s not in steps]
        self.listing = {s: files_under(self.sides[s].ws) for s in SIDES}
        self.diffs: dict[str, FileDiff] = {}
        self.owners: dict[str, list[str]] = {}
        self.fp_notes: dict[str, str] = {}
        for _ in range(8):
            before = len(self.masks.seen)
            self._classify()
            if not self._learn() and len(self.masks.seen) == before:
                break

    def _owners(self, rel: str, side: Side) -> list[str]:
        run_rel = side.run.relative_to(side.ws).as_posix()
        found = []
        for sid, entry in side.state["steps"].items():
            if rel.startswith(f"{run_rel}/steps/{sid}/") or (
                    entry.get("fingerprint") and rel == f".codex/cache/entries/{entry['fingerprint']}.json") or any(
                    rel == o or rel.startswith(o + "/") for o in output_paths(entry, side.ws)):
                found.append(sid)
        if found:
            return found
        return ["(run folder)"] if rel.startswith(run_rel + "/") else ["(other workspace files)"]

    def _classify(self) -> None:
        files: dict[str, dict[str, tuple[str, Path]]] = {}
        self.owners = {}
        for s in SIDES:
            for rel, path in self.listing[s].items():
                key = self.masks.path_key(rel, s)
                files.setdefault(key, {})[s] = (rel, path)
                self.owners.setdefault(key, self._owners(rel, self.sides[s]))
        self.diffs = {}
        for key, per in sorted(files.items()):
            own = self.owners[key]
            allowed = set()
            if any(self.sides["new"].state["steps"].get(o, {}).get("kind") == "provenance" for o in own):
                allowed.add(PROVENANCE)
            if any(o in self.content for o in own) or (self.changed and key == ".codex/cache/hashmemo.json"):
                allowed.add(GLOB)  # the hash memo holds a hash of every path a `deps` glob matched
            if len(per) == 1:
                only = "OLD" if "old" in per else "NEW"
                new_ok = only == "NEW" and [c for c in intended_for(key) if c.new_file]
                cls = (f"{INTENDED}: {new_ok[0].name}" if new_ok else GLOB if GLOB in allowed else UNEXPLAINED)
                self.diffs[key] = FileDiff(key, cls, f"only at {only}")
                continue
            cls, detail = classify_file(per["old"][1], per["new"][1], self.masks, allowed, key)
            da, db = per["old"][1].read_bytes(), per["new"][1].read_bytes()
            self.diffs[key] = FileDiff(key, cls, detail, (hashlib.sha256(da).hexdigest(), hashlib.sha256(db).hexdigest()),
                                       (len(da), len(db)))

    def _learn(self) -> bool:
        """Masks for what other files record of an explained difference; False when none is new."""
        grew = False
        for d in self.diffs.values():
            if d.cls and d.cls != UNEXPLAINED and d.sha[0]:
                grew |= pair_records(self.masks, d.cls, d.key, d.sha, d.size)
        # a fingerprint differs as its inputs do: deps (glob dialect) and upstream outputs
        for sid in self.steps:
            fa, fb = (self.sides[s].state["steps"].get(sid, {}).get("fingerprint") or "" for s in SIDES)
            if not fa or not fb or fa == fb:
                continue
            why = [GLOB] if sid in self.changed else []
            for up in self.sides["new"].state["steps"].get(sid, {}) and self._needs(sid):
                outs = {s: self.sides[s].state["steps"].get(up, {}).get("outputs", []) for s in SIDES}
                for oa, ob in zip(outs["old"], outs["new"], strict=False):
                    if oa.get("path") != ob.get("path"):
                        pa, pb = (self.masks.apply(str(o.get("path")).encode(), s, RUN_ID) for o, s in ((oa, "old"), (ob, "new")))
                        why.append(RUN_ID if pa == pb else UNEXPLAINED)
                    if oa.get("sha256") != ob.get("sha256"):
                        up_diff = self.diffs.get(self.masks.path_key(str(ob.get("path")), "new"))
                        why.append(up_diff.cls if up_diff and up_diff.cls else UNEXPLAINED)
                if len(outs["old"]) != len(outs["new"]):
                    why.append(UNEXPLAINED)
            cls = worst(why) if why else UNEXPLAINED
            self.fp_notes[sid] = f"fingerprint differs: {cls}" + (
                " (its upstream's output paths name the run folder)" if RUN_ID in why else "")
            if cls != UNEXPLAINED:
                grew |= self.masks.pair(cls, fa, fb, f"<fingerprint of {sid}>")
        return grew

    def _needs(self, sid: str) -> list[str]:
        for step in self.sides["new"].plan["steps"]:
            if step["id"] == sid:
                return list(step.get("needs") or [])
        return []

    def table(self) -> tuple[list[list[str]], list[str], bool]:
        rows_files: dict[str, list[FileDiff]] = {}
        for key, d in self.diffs.items():
            for o in self.owners[key]:
                rows_files.setdefault(o, []).append(d)
        rows, details, ok = [], [], True
        for sid in [*self.steps, "(run folder)", "(other workspace files)"]:
            is_step = sid in self.steps
            st = [self.sides[s].state["steps"].get(sid, {}).get("status", "-") for s in SIDES] if is_step else ["", ""]
            ok = ok and st[0] == st[1]
            diffs = rows_files.get(sid, [])
            by_cls: dict[str, int] = {}
            for d in diffs:
                if d.cls:
                    shown = INTENDED if d.cls.startswith(INTENDED) else d.cls  # the names are in the details
                    by_cls[shown] = by_cls.get(shown, 0) + 1
            ok = ok and UNEXPLAINED not in by_cls
            differing = ", ".join(f"{n} {c}" for c, n in sorted(by_cls.items(), key=lambda kv: rank(kv[0]))) or "-"
            same = sum(1 for d in diffs if not d.cls)
            rows.append([f"`{sid}`" if is_step else sid, st[0], st[1], str(same), differing])
            for d in diffs:
                if d.cls and d.cls not in (RUN_ID, TIMESTAMP):
                    details.append(f"{sid}: `{d.key}`: {d.cls}" + (f" ({d.detail})" if d.detail else ""))
        for sid, what in self.changed.items():
            details += [f"glob dialect, {sid}: {w}" for w in what]
        details += [f"{sid}: {note}" for sid, note in self.fp_notes.items()]
        return rows, details, ok


def check_changelog(base: Path) -> list[str]:
    """The intended changes whose phrase NEW's CHANGELOG.md lacks."""
    text = (base / "src-new" / "CHANGELOG.md").read_text(encoding="utf-8") if (base / "src-new" / "CHANGELOG.md").exists() else ""
    text = " ".join(text.split())
    return sorted({c.name for c in INTENDED_CHANGES if c.changelog not in text})


def markdown_table(rows: list[list[str]]) -> str:
    head = ["step", "status OLD", "status NEW", "identical files", "differing files (reason)"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("old", nargs="?", help="the old commit (any git revision)")
    ap.add_argument("new", nargs="?", default="HEAD", help="the new commit (default HEAD)")
    ap.add_argument("--workspace-from", default=None, metavar="REV",
                    help="the commit whose tree is the frozen workspace (default: NEW)")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (must not exist) and keep it")
    ap.add_argument("--compare", type=Path, metavar="DIR", help="only compare the runs kept in DIR")
    args = ap.parse_args(argv)
    try:
        if args.compare:
            base = args.compare.resolve()
            if not (base / "meta.json").is_file():
                raise BadInput(f"{base} is not a kept comparison (no meta.json) (hint: run with --keep DIR first)")
        else:
            if not args.old:
                raise BadInput("name the old commit (hint: bench/compare_commits.py e6f5b50 HEAD)")
            if args.keep:
                if args.keep.exists():
                    raise BadInput(f"{args.keep} exists (hint: name a new folder)")
                base = args.keep.resolve()
                base.mkdir(parents=True)
            else:
                base = Path(tempfile.mkdtemp(prefix="codex-compare-"))
        try:
            if not args.compare:
                prepare_and_run(args.old, args.new, args.workspace_from or args.new, base)
            meta = json.loads((base / "meta.json").read_text())
            rows, details, ok = Comparison(base).table()
            missing = check_changelog(base)
        finally:
            if not args.compare and not args.keep:
                shutil.rmtree(base, ignore_errors=True)
    except BadInput as e:
        print(f"compare_commits: {e}", file=sys.stderr)
        return 2
    for s in SIDES:
        print(f"{s.upper()} {meta[s]['rev'][:10]}: flagship exit {meta[s]['exit']} in {meta[s]['wall_s']} s")
    print(f"workspace: the tree of {meta['workspace_from'][:10]}, frozen\n")
    print(markdown_table(rows))
    if details:
        print("\nbeyond run ids and timestamps:")
        print("\n".join(f"- {d}" for d in details))
    for name in missing:
        print(f"- intended change not in CHANGELOG.md at NEW: {name}")
    ok = ok and not missing
    print("\nverdict: " + ("same statuses; every difference explained" if ok else "FINDINGS (see above)"))
    return 0 if ok and meta["old"]["exit"] == meta["new"]["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
