"""No secret is ever stored: secrets planted through parameters (a provider token, a password-named
value), a PEM private key printed over several lines, and credentials in audited source lines are
searched for in every byte the run wrote — the workspace (run folder, cache, audit outputs) and the
codex-tasks home (Prefect's SQLite database with its -wal file) — raw, URL-encoded, base64 and
JSON-escaped."""

from __future__ import annotations

import base64
import json
import os
import textwrap
import urllib.parse
from pathlib import Path

from tests.conftest import run_cli

TOKEN = "ghp_" + "Zq8vT3mK1pX7rW2nB5cY9dF4hJ6gL0sA1eU3"  # the GitHub token format the scanner knows
PASSWORD = "correct-Horse-battery-77"
URL_PASSWORD = "s3cretUrlPassw0rd"
PEM_BODY = "MIIEowIBAAKCAQEA7secretkeymaterial0123456789abcdefXYZ"


def _forms(secret: str) -> dict[str, bytes]:
    return {
        "raw": secret.encode(),
        "url-encoded": urllib.parse.quote(secret, safe="").encode(),
        "base64": base64.b64encode(secret.encode()).rstrip(b"="),
        "json-escaped": json.dumps(secret)[1:-1].encode(),
    }


def _leaks(roots: list[Path], secrets: list[str], planted: Path | None = None) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink() or (planted is not None and path.is_relative_to(planted)):
                continue  # the planted source file is input, not something codex-tasks wrote
            data = path.read_bytes()
            for secret in secrets:
                for form, needle in _forms(secret).items():
                    if needle in data:
                        found.append(f"{path}: {form} {secret[:6]}...")
    return found


def test_planted_secrets_are_written_nowhere(tmp_path, prefect_url):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "client.py").write_text(textwrap.dedent(f"""\
        import requests
        URL = "https://admin:{URL_PASSWORD}@db.example.com/api"
        requests.get(URL)  # TODO: move the credentials out
        """))
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent("""\
        version: "2"
        title: secrets
        params:
          api_token: {default: "none"}
          db_password: {default: "none"}
        phases:
          - id: p
            steps:
              - id: use
                commands:
                  - "echo token={api_token} password={db_password}"
                  - "env | grep CODEX_PARAM_ || true"
                  - "printf '%s\\\\n' '-----BEGIN RSA PRIVATE KEY-----' \\"$PEM_BODY\\" '-----END RSA PRIVATE KEY-----'"  # codex: allow-secret
              - id: audit
                uses: audit
                with: {root: src}
              - id: gate
                commands: ["test -f go.txt"]
        """))
    proc = run_cli("run", str(f), "--param", f"api_token={TOKEN}", "--param", f"db_password={PASSWORD}",
                   cwd=ws, env={"PEM_BODY": PEM_BODY})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the gate fails: the run is resumable
    run_dir = next((ws / ".codex" / "runs").iterdir())
    log = (run_dir / "steps" / "use" / "step.log").read_text()
    assert "token=[REDACTED]" in log and "BEGIN RSA PRIVATE KEY" not in log  # the step really printed them
    refs = (run_dir / "steps" / "audit" / "cost_incurring_refs.txt").read_text()
    assert "client.py:" in refs  # the finding keeps its file and line
    state = json.loads((run_dir / "state.json").read_text())
    assert set(state["params"]["api_token"]) == {"secret_sha256"}
    home = Path(os.environ["CODEX_TASKS_HOME"])
    leaks = _leaks([ws, home], [TOKEN, PASSWORD, URL_PASSWORD, PEM_BODY], ws / "src")
    assert leaks == []
    # a resume asks for the secret again, naming it (exit 2); given again, it goes on
    again = run_cli("run", str(f), f"--resume={run_dir.name}", cwd=ws)
    assert again.returncode == 2 and "api_token" in again.stdout + again.stderr
    (ws / "go.txt").touch()
    resumed = run_cli("run", str(f), f"--resume={run_dir.name}", "--param", f"api_token={TOKEN}",
                      "--param", f"db_password={PASSWORD}", cwd=ws, env={"PEM_BODY": PEM_BODY})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _leaks([ws, home], [TOKEN, PASSWORD, URL_PASSWORD, PEM_BODY], ws / "src") == []
