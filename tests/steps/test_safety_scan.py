"""The `safety_scan` step. Fake secrets are assembled at run time so this file holds none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_tasks.core.redact import clear_values, redact
from codex_tasks.errors import StepFailed
from codex_tasks.steps import safety_scan

# Assembled from pieces: the scanner never sees a whole secret in this source file.
GH = "ghp" + "_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
AWS_ID = "AKIA" + "QW3RT5YU7IO9PA1SD3FG"[:16]
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzEXAMPLEKEY12"[:18]
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PEM = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\nabc\n-----END RSA PRIVATE KEY-----"
PW = "Tr0ub4dor" + "&3x"
RANDOM_VAL = "q8Xv2LmN4" + "pR7tZ1wK9"


def tree(ws: Path) -> dict[str, tuple[int, str]]:
    """Write files with planted secrets; returns path -> (line, rule)."""
    files = {
        "app/settings.py": (f'DEBUG = True\nGITHUB_TOKEN = "{GH}"\n', 2, "github-token"),
        "app/aws.py": (f'import boto3\n\nKEY_ID = "{AWS_ID}"\n', 3, "aws-access-key-id"),
        "app/aws2.py": (f'aws_secret_access_key = "{AWS_SECRET}"\n', 1, "aws-secret-access-key"),
        "app/pay.py": (f'\n\nstripe.api_key = "{STRIPE}"\n', 3, "stripe-key"),
        "app/key.py": (f'X = 1\nKEY = """{PEM}"""\n', 2, "private-key"),
        "app/annotated.py": (f'class C:\n    admin_password: str = "{PW}"\n', 2, "password-assignment"),
        "app/db.py": (f'URL = "postgresql://app:{RANDOM_VAL}@db:5432/x"\n', 1, "connection-string-password"),
        "deploy/.env.example": (f"# sample\nAPI_TOKEN={RANDOM_VAL}\n", 2, "secret-assignment"),
        "deploy/config.yaml": (f"db:\n  password: {PW}\n", 2, "password-assignment"),
        "deploy/settings.json": (f'{{\n  "client_secret": "{RANDOM_VAL}"\n}}\n', 2, "secret-assignment"),
        "deploy/setup.cfg": (f"[auth]\npasswd = {PW}\n", 2, "password-assignment"),
        "deploy/app.toml": (f'[svc]\napi_key = "{RANDOM_VAL}"\n', 2, "secret-assignment"),
    }
    out = {}
    for rel, (text, line, rule) in files.items():
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        out[rel] = (line, rule)
    return out


CLEAN = '''\
import hashlib, uuid, tokenize
from os import environ

SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
RUN = "0b1f5c2e-3a4b-4c5d-8e9f-001122334455"
token = tokenize.NAME
password = environ["DB_PASSWORD"]
api_key = os.environ.get("API_KEY")
secret_name = "prod/db/password"
max_tokens = 4096
password = "<your password>"
token = "${TOKEN}"
password_prompt = "Enter password: "
def login(user, password=None, token: str = ""):
    pass
'''


@pytest.fixture(autouse=True)
def _forget():
    clear_values()
    yield
    clear_values()


def scan(make_ctx, ws, **kw):
    ctx = make_ctx(workspace=ws)
    return safety_scan.run(safety_scan.With(**kw), ctx), ctx


def test_finds_every_planted_secret_with_redacted_previews(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    planted = tree(ws)
    with pytest.raises(StepFailed) as exc:
        scan(make_ctx, ws)
    ctx = make_ctx(workspace=ws)
    findings = json.loads((ctx.step_dir / "findings.json").read_text())
    got = {(f["path"], f["line"]): f["rule"] for f in findings}
    for rel, (line, rule) in planted.items():
        assert got.get((rel, line)) == rule, (rel, line, rule, got)
    raw = (ctx.step_dir / "findings.json").read_text()
    for secret in (GH, AWS_ID, AWS_SECRET, STRIPE, PW, RANDOM_VAL, "MIIEowIBAAKCAQEA7x"):
        assert secret not in raw
        assert secret not in exc.value.context
    assert all({"path", "line", "rule", "severity", "preview", "fingerprint"} <= set(f) for f in findings)
    # The values found are now redacted from anything written.
    assert redact(f"log line with {PW} inside") == "log line with [REDACTED] inside"
    events = (ctx.run_dir / "events.ndjson").read_text()
    assert PW not in events and GH not in events


def test_clean_code_has_no_findings(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "clean.py").write_text(CLEAN)
    (ws / "README.md").write_text("Set `password: ${DB_PASSWORD}` and commit 3f2a9c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49.\n")
    res, _ = scan(make_ctx, ws)
    assert res.summary["findings"] == 0


def test_allowlist_paths_fingerprints_and_inline_marker(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    (ws / "tests" / "fixtures").mkdir(parents=True)
    (ws / "tests" / "fixtures" / "fake.py").write_text(f'TOKEN = "{GH}"\n')
    (ws / "inline.py").write_text(f'TOKEN = "{STRIPE}"  # codex: allow-secret\n')
    (ws / "known.py").write_text(f'password = "{PW}"\n')
    with pytest.raises(StepFailed):
        scan(make_ctx, ws, allowlist={"paths": ["tests/fixtures/**"]})
    ctx = make_ctx(workspace=ws)
    findings = json.loads((ctx.step_dir / "findings.json").read_text())
    assert [f["path"] for f in findings] == ["known.py"]
    res, _ = scan(make_ctx, ws, allowlist={"paths": ["tests/fixtures/**"], "fingerprints": [findings[0]["fingerprint"]]})
    assert res.summary["findings"] == 0 and res.summary["allowlisted"] == 2


def test_fail_on_levels(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "conf.py").write_text(f'password = "{PW}"\n')  # an assignment: medium
    res, _ = scan(make_ctx, ws, fail_on="high")
    assert res.summary["findings"] == 1 and res.summary["high"] == 0
    res, _ = scan(make_ctx, ws, fail_on="none")
    assert res.summary["findings"] == 1
    with pytest.raises(StepFailed, match="conf.py:1"):
        scan(make_ctx, ws, fail_on="any")


def test_forbidden_files(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    (ws / ".github" / "workflows").mkdir(parents=True)
    (ws / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    (ws / ".env").write_text("DEBUG=1\n")
    (ws / "svc").mkdir()
    (ws / "svc" / ".env.local").write_text("DEBUG=1\n")
    (ws / ".env.example").write_text("DEBUG=1\n")
    res, ctx = scan(make_ctx, ws, fail_on="none")
    findings = json.loads((ctx.step_dir / "findings.json").read_text())
    assert sorted(f["path"] for f in findings if f["rule"] == "forbidden-file") == [
        ".env", ".github/workflows/ci.yml", "svc/.env.local"]
    res, _ = scan(make_ctx, ws, forbid=[])
    assert res.summary["findings"] == 0


def test_binary_large_and_pruned_files_are_skipped(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    (ws / ".venv" / "lib").mkdir(parents=True)
    (ws / ".venv" / "lib" / "x.py").write_text(f'T = "{GH}"\n')
    (ws / "blob.bin").write_bytes(b"\0\1\2" + GH.encode())
    (ws / "big.txt").write_text(f"token = {GH}\n" + "x" * 5000)
    res, _ = scan(make_ctx, ws, max_file_bytes=1000)
    assert res.summary["findings"] == 0


def test_extra_rules_and_paths(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    (ws / "a").mkdir(parents=True)
    (ws / "b").mkdir()
    (ws / "a" / "x.txt").write_text("internal id: CORP-" + "123456789\n")
    (ws / "b" / "y.txt").write_text("internal id: CORP-" + "987654321\n")
    with pytest.raises(StepFailed, match="a/x.txt:1 \\(corp-id\\)"):
        scan(make_ctx, ws, paths=["a"], rules=[{"name": "corp-id", "regex": r"CORP-(\d{9})"}])
    with pytest.raises(StepFailed, match="does not exist"):
        scan(make_ctx, ws, paths=["nope"])


def test_parallel_scan_matches_sequential(tmp_path):
    from codex_tasks.repo.secret_scan import iter_files, scan_paths

    root = tmp_path / "many"
    root.mkdir()
    for k in range(240):
        body = "x = 1\n" * 20
        if k % 40 == 0:
            body += f'password = "{PW}{k}"\n'
        (root / f"m{k}.py").write_text(body)
    files = list(iter_files(root, None, []))
    seq, n1 = scan_paths(files, workers=1)
    par, n2 = scan_paths(files, workers=2)
    assert n1 == n2 == 240
    assert [(f.path, f.line, f.rule) for f in seq] == [(f.path, f.line, f.rule) for f in par]
    assert len(seq) == 6


def test_progress_events(make_ctx, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("x = 1\n")
    _, ctx = scan(make_ctx, ws)
    events = [json.loads(line) for line in (ctx.run_dir / "events.ndjson").read_text().splitlines()]
    assert any(e["type"] == "progress" and e["unit"] == "files" for e in events)
