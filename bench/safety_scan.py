"""Benchmark: the `safety_scan` scanner against detect-secrets 1.5.0 on a seeded corpus.

Builds >= --mb MB of real Python source from this interpreter's standard library, plants >= 50
secrets of mixed kinds (ground truth in corpus/ground_truth.json), and prints, for both tools:
recall, findings outside the planted set, wall time, MB/s, and the speed ratio.

    .venv/bin/python bench/safety_scan.py            # full size (detect-secrets takes ~2 minutes)
    .venv/bin/python bench/safety_scan.py --mb 3     # a quick run

Goals: recall >= 49/50 and >= detect-secrets; fewer non-planted findings; >= 20x its speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codex_tasks.repo.secret_scan import iter_files, scan_paths  # noqa: E402

RNG = random.Random(20261130)


def rand(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def b64(n: int) -> str:
    return rand(n, string.ascii_letters + string.digits + "+/")


def pem(kind: str) -> str:
    body = "\n".join(b64(64) for _ in range(6))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def jwt() -> str:
    return "eyJ" + rand(30, string.ascii_letters + string.digits + "_-") + ".eyJ" + rand(40) + "." + rand(43)


# (kind, file type, make) -> (text to plant, secret). "py" lines go into stdlib files; others are new files.
def planted_kinds() -> list[tuple[str, str, str]]:
    """50 secrets of mixed kinds: (kind, target, text with the secret)."""
    items: list[tuple[str, str, str]] = []
    add = items.append
    for _ in range(3):
        add(("aws-access-key-id", "py", f'AWS_ACCESS_KEY_ID = "AKIA{rand(16, string.ascii_uppercase + string.digits)}"'))
    for _ in range(2):
        add(("aws-secret-access-key", "py", f'aws_secret_access_key = "{b64(40)}"'))
    for _ in range(3):
        add(("github-token", "py", f'GH_TOKEN = "ghp_{rand(36)}"'))
    add(("github-fine-grained", "py", f'client = Github("github_pat_{rand(22)}_{rand(59)}")'))
    add(("gitlab-token", "py", f'headers = {{"PRIVATE-TOKEN": "glpat-{rand(20)}"}}'))
    for _ in range(2):
        add(("slack-token", "py", f'slack = WebClient(token="xoxb-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(24)}")'))
    add(("slack-webhook", "py", f'WEBHOOK = "https://hooks.slack.com/services/T{rand(8)}/B{rand(8)}/{rand(24)}"'))
    for _ in range(2):
        add(("stripe-key", "py", f'stripe.api_key = "sk_live_{rand(24)}"'))
    for _ in range(2):
        add(("google-api-key", "py", f'GOOGLE_KEY = "AIza{rand(35, string.ascii_letters + string.digits + "_-")}"'))
    for _ in range(3):
        add(("openai-key", "py", f'openai.api_key = "sk-proj-{rand(48)}"'))
    add(("npm-token", "py", f'NPM_TOKEN = "npm_{rand(36)}"'))
    add(("sendgrid-key", "py", f'sg = SendGridAPIClient("SG.{rand(22)}.{rand(43)}")'))
    add(("huggingface-token", "py", f'login("hf_{rand(34)}")'))
    for _ in range(2):
        add(("jwt", "py", f'AUTH_HEADER = "Bearer {jwt()}"'))
    for kind in ("RSA ", "EC ", "OPENSSH ", "", "DSA ", "ENCRYPTED "):
        add(("private-key", "py", f'KEY = """{pem(kind)}"""'))
    for _ in range(3):
        add(("connection-string", "py", f'DB_URL = "postgresql://app:{rand(14)}@db.internal:5432/prod"'))
    for _ in range(3):
        add(("password-assignment", "py", f'db_password = "{rand(6)}!{rand(5)}"'))
    for _ in range(3):
        add(("annotated-assignment", "py", f'admin_password: str = "{rand(12)}"'))
    add(("secret-assignment", "py", f'SECRET_KEY = "{rand(40, string.ascii_letters + string.digits + "!@#%^&*")}"'))
    add(("api-key-assignment", "py", f'config = {{"api_key": "{rand(32)}"}}'))
    for _ in range(2):
        add(("dotenv-unquoted", "env", f"DATABASE_PASSWORD={rand(16)}"))
    add(("dotenv-token", "env", f"API_TOKEN={rand(32)}"))
    for _ in range(2):
        add(("yaml-unquoted", "yaml", f"  password: {rand(14)}"))
    add(("json", "json", f'  "client_secret": "{rand(28)}",'))
    add(("ini-unquoted", "ini", f"password = {rand(12)}"))
    add(("toml", "toml", f'api_token = "{rand(36)}"'))
    return items


def build_corpus(out: Path, mb: float) -> list[dict[str, object]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    target = int(mb * 1024 * 1024)
    size = 0
    copied: list[Path] = []
    for src in sources:
        rel = src.relative_to(stdlib)
        dst = out / "stdlib" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        copied.append(dst)
        size += dst.stat().st_size
        if size >= target:
            break
    # Past the end of the stdlib, go round again under another folder.
    lap = 1
    while size < target:
        for src in sources:
            dst = out / f"stdlib{lap}" / src.relative_to(stdlib)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            copied.append(dst)
            size += dst.stat().st_size
            if size >= target:
                break
        lap += 1
    truth: list[dict[str, object]] = []
    targets = RNG.sample(copied, min(60, len(copied)))
    for k, (kind, where, text) in enumerate(planted_kinds()):
        if where == "py":
            path = targets[k]
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n" + text + "\n")  # a top-level statement after a blank line
            lineno = len(lines) + 1
        else:
            name = {"env": ".env", "yaml": "config.yaml", "json": "settings.json", "ini": "setup.cfg", "toml": "app.toml"}[where]
            path = out / "configs" / f"svc{k}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            header = {"env": "# service\nDEBUG=1\n", "yaml": "service:\n  name: api\n", "json": "{\n  \"name\": \"api\",\n",
                      "ini": "[db]\nhost = localhost\n", "toml": "[service]\nname = \"api\"\n"}[where]
            footer = {"json": "  \"port\": 8080\n}\n"}.get(where, "")
            path.write_text(header + text + "\n" + footer)
            lineno = header.count("\n") + 1
        truth.append({"path": path.relative_to(out).as_posix(), "line": lineno, "kind": kind})
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def corpus_size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name != "ground_truth.json")


def score(found: set[tuple[str, int]], truth: list[dict[str, object]]) -> tuple[int, int, list[str]]:
    planted = {(str(t["path"]), int(str(t["line"]))) for t in truth}
    hit = planted & found
    missed = sorted(f"{t['kind']} {t['path']}:{t['line']}" for t in truth if (t["path"], t["line"]) not in hit)
    return len(hit), len(found - planted), missed


def run_ours(out: Path, workers: int | None) -> tuple[set[tuple[str, int]], float]:
    t0 = time.perf_counter()
    files = [(p, rel) for p, rel in iter_files(out, None, ["ground_truth.json"])]
    findings, _ = scan_paths(files, workers=workers)
    dt = time.perf_counter() - t0
    return {(f.path, f.line) for f in findings}, dt


def run_detect_secrets(out: Path) -> tuple[set[tuple[str, int]], float]:
    exe = Path(sys.executable).parent / "detect-secrets"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "scan", "--all-files", "--exclude-files", "ground_truth\\.json", "."],
        cwd=out, capture_output=True, text=True, check=True,
    )
    dt = time.perf_counter() - t0
    results = json.loads(proc.stdout)["results"]
    found = {(Path(name).as_posix(), int(item["line_number"])) for name, items in results.items() for item in items}
    return found, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=30.0, help="corpus size in MB (default 30)")
    ap.add_argument("--workers", type=int, default=None, help="scanner processes (default: all cores)")
    ap.add_argument("--no-baseline", action="store_true", help="skip detect-secrets")
    ap.add_argument("--keep", type=Path, default=None, help="build the corpus here and keep it")
    args = ap.parse_args()

    out = args.keep or Path(tempfile.mkdtemp(prefix="codex-bench-secrets-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        truth = build_corpus(out, args.mb)
        size_mb = corpus_size(out) / 1e6
        print(f"corpus: {size_mb:.1f} MB, {sum(1 for _ in out.rglob('*.py'))} .py files, {len(truth)} planted secrets")
        found, dt = run_ours(out, args.workers)
        hit, extra, missed = score(found, truth)
        print(f"codex-tasks safety_scan: recall {hit}/{len(truth)}, non-planted findings {extra}, "
              f"{dt:.2f} s, {size_mb / dt:.1f} MB/s (cores: {os.cpu_count()})")
        for m in missed:
            print(f"  missed: {m}")
        if args.no_baseline:
            return
        ds_found, ds_dt = run_detect_secrets(out)
        ds_hit, ds_extra, ds_missed = score(ds_found, truth)
        print(f"detect-secrets 1.5.0:    recall {ds_hit}/{len(truth)}, non-planted findings {ds_extra}, "
              f"{ds_dt:.2f} s, {size_mb / ds_dt:.2f} MB/s")
        for m in ds_missed:
            print(f"  missed: {m}")
        print(f"speed ratio: {ds_dt / dt:.1f}x   recall: {hit} vs {ds_hit}   non-planted: {extra} vs {ds_extra}")
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
