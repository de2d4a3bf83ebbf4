"""No secret is ever stored: secrets planted through every path a run has — a `type: secret` parameter
read from the environment, a provider token and a password given with `--param`, URL credentials
(a `--param` and an audited source line), a PEM private key printed over several lines — reach a
shell step's output, an audit, a test step whose test prints them (pytest.log, junit.xml), a tiny
real train step that renders them into its `with:` fields (MLflow run name, tags and params,
checkpoints' saved settings, train_summary.json), the cache index, the archive, the changelog,
Prefect's database (flow and task runs, logs, artifacts) and MLflow's. Every byte written under the
workspace and the codex-tasks home — both SQLite stores with their -wal files, every member of the
zip archive decompressed — is searched for them, raw, URL-encoded, base64 and JSON-escaped."""

from __future__ import annotations

import base64
import json
import os
import textwrap
import urllib.parse
import zipfile
from pathlib import Path

from tests.conftest import run_cli

TOKEN = "ghp_" + "Zq8vT3mK1pX7rW2nB5cY9dF4hJ6gL0sA1eU3"  # the GitHub token format the scanner knows
PASSWORD = "correct-Horse-battery-77"
URL_PASSWORD = "s3cretUrlPassw0rd"  # in an audited source line
PARAM_URL_PASSWORD = "Pr0xyPassw0rd-913"  # in a --param URL
ENV_SECRET = "envSecret-Value-8842"  # a `type: secret` parameter: no format the scanner knows
PEM_BODY = "MIIEowIBAAKCAQEA7secretkeymaterial0123456789abcdefXYZ"
SECRETS = [TOKEN, PASSWORD, URL_PASSWORD, PARAM_URL_PASSWORD, ENV_SECRET, PEM_BODY]

CORPUS = "def f{i}(x):\n    # a comment {i}\n    return x * {i} + 1\n\n\nclass C{i}:\n    value = '{i}'\n\n"

SEQ = textwrap.dedent("""\
    version: "2"
    title: secrets
    params:
      api_token: {default: "none"}
      db_password: {default: "none"}
      proxy_url: {default: "none"}
      env_secret: {type: secret, env: CT_ENV_SECRET}
    phases:
      - id: p
        steps:
          - id: use
            commands:
              - "echo token={api_token} password={db_password} proxy={proxy_url}"
              - "echo env secret: $CT_ENV_SECRET"
              - "env | grep CODEX_PARAM_ || true"
              - "printf '%s\\\\n' '-----BEGIN RSA PRIVATE KEY-----' \\"$PEM_BODY\\" '-----END RSA PRIVATE KEY-----'"  # codex: allow-secret
          - id: audit
            uses: audit
            with: {root: src}
          - id: tests
            uses: test
            with: {paths: [tests], args: ["-rP", "-o", "junit_logging=all"]}
          - id: tok
            uses: tokenize
            with: {corpus: ["corpus/*.py"], kind: sentencepiece, vocab_size: 300, block_size: 32,
                   eval_fraction: 0.1, seed: 3, out: data}
          - id: train
            uses: train
            with:
              model: {config: {type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, n_positions: 32}}
              data: data
              batch_size: 4
              max_steps: 4
              threads: 1
              checkpoint: {every: 2, keep_last: 2}
              mlflow:
                enabled: true
                run_name: "tiny-{api_token}"
                tags: {owner: "{env_secret}", password: "{db_password}", proxy: "{proxy_url}"}
              out: model
          - id: gate
            commands: ["test -f go.txt"]
          - id: notes
            uses: changelog
            with: {title: "trained with {api_token}", notes: "owner {env_secret}, password {db_password}"}
          - id: pack
            uses: archive
    """)

TEST_FILE = textwrap.dedent("""\
    import os


    def test_prints_the_secrets():
        for name in ("CODEX_PARAM_API_TOKEN", "CODEX_PARAM_DB_PASSWORD", "CODEX_PARAM_PROXY_URL", "CT_ENV_SECRET"):
            print(name, os.environ.get(name))
        print("-----BEGIN RSA PRIVATE " + "KEY-----")
        print(os.environ["PEM_BODY"])
        print("-----END RSA PRIVATE " + "KEY-----")
    """)


def _forms(secret: str) -> dict[str, bytes]:
    return {
        "raw": secret.encode(),
        "url-encoded": urllib.parse.quote(secret, safe="").encode(),
        "base64": base64.b64encode(secret.encode()).rstrip(b"="),
        "json-escaped": json.dumps(secret)[1:-1].encode(),
    }


def _contents(path: Path) -> list[tuple[str, bytes]]:
    """The file's bytes, and for a zip archive each member decompressed too."""
    data = path.read_bytes()
    out = [(str(path), data)]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            out += [(f"{path}!{name}", zf.read(name)) for name in zf.namelist()]
    return out


def _leaks(roots: list[Path], secrets: list[str], inputs: list[Path]) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink() or any(path.is_relative_to(i) for i in inputs):
                continue  # the planted sources are input, not something codex-tasks wrote
            for where, data in _contents(path):
                for secret in secrets:
                    for form, needle in _forms(secret).items():
                        if needle in data:
                            found.append(f"{where}: {form} {secret[:6]}...")
    return found


def test_planted_secrets_are_written_nowhere(tmp_path, prefect_url):
    from mlflow.tracking import MlflowClient

    ws = tmp_path / "ws"
    for folder in ("src", "tests", "corpus"):
        (ws / folder).mkdir(parents=True)
    (ws / "src" / "client.py").write_text(textwrap.dedent(f"""\
        import requests
        URL = "https://admin:{URL_PASSWORD}@db.example.com/api"
        requests.get(URL)  # TODO: move the credentials out
        """))
    (ws / "tests" / "test_prints.py").write_text(TEST_FILE)
    for k in range(4):
        (ws / "corpus" / f"m{k}.py").write_text("".join(CORPUS.format(i=i + 40 * k) for i in range(40)))
    f = tmp_path / "seq.yaml"
    f.write_text(SEQ)
    inputs = [ws / "src", ws / "tests", ws / "corpus"]
    params = ["--param", f"api_token={TOKEN}", "--param", f"db_password={PASSWORD}",
              "--param", f"proxy_url=http://proxy:{PARAM_URL_PASSWORD}@proxy.example.com:3128"]
    env = {"PEM_BODY": PEM_BODY, "CT_ENV_SECRET": ENV_SECRET, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = run_cli("run", str(f), *params, cwd=ws, env=env, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the gate fails: the run is resumable
    run_dir = next((ws / ".codex" / "runs").iterdir())
    steps = run_dir / "steps"
    # every path really carried the secrets, masked
    log = (steps / "use" / "step.log").read_text()
    assert "token=[REDACTED]" in log and "env secret: [REDACTED]" in log and "BEGIN RSA PRIVATE KEY" not in log
    assert "client.py:" in (steps / "audit" / "cost_incurring_refs.txt").read_text()  # file and line kept
    pytest_log = (steps / "tests" / "pytest.log").read_text()
    assert "CODEX_PARAM_API_TOKEN [REDACTED]" in pytest_log and "CT_ENV_SECRET [REDACTED]" in pytest_log
    assert "CT_ENV_SECRET [REDACTED]" in (steps / "tests" / "junit.xml").read_text()
    state = json.loads((run_dir / "state.json").read_text())
    assert set(state["params"]["api_token"]) == {"secret_sha256"}
    assert state["steps"]["train"]["status"] == "succeeded", state["steps"]["train"]
    ckpt = json.loads((ws / "model" / "checkpoints" / "step-00000004" / "state.json").read_text())
    assert ckpt["settings"]["mlflow"]["run_name"] == "tiny-[REDACTED]"
    client = MlflowClient(tracking_uri=f"sqlite:///{ws / '.codex' / 'mlflow.db'}")
    mlflow_run = client.get_run(state["steps"]["train"]["summary"]["mlflow_run_id"])
    assert mlflow_run.info.run_name == "tiny-[REDACTED]"
    assert mlflow_run.data.tags["owner"] == mlflow_run.data.tags["password"] == "[REDACTED]"
    assert list((ws / ".codex" / "cache" / "entries").glob("*.json"))  # the train step's cache entry
    home = Path(os.environ["CODEX_TASKS_HOME"])
    assert _leaks([ws, home], SECRETS, inputs) == []
    # a resume asks for the secret again, naming it (exit 2); given again, it goes on
    again = run_cli("run", str(f), f"--resume={run_dir.name}", cwd=ws, env=env)
    assert again.returncode == 2 and "api_token" in again.stdout + again.stderr
    (ws / "go.txt").touch()
    resumed = run_cli("run", str(f), f"--resume={run_dir.name}", *params, cwd=ws, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "owner [REDACTED]" in (ws / "CHANGELOG_CODEX.md").read_text()
    archive = run_dir / "codex_run_artifacts.zip"
    with zipfile.ZipFile(archive) as zf:
        assert any(n.endswith("pytest.log") for n in zf.namelist())  # the archive holds the run folder
    assert _leaks([ws, home], SECRETS, inputs) == []


def test_serve_refuses_a_secret_it_would_store_in_the_deployment(tmp_path):
    """`serve` keeps its --param values in the Prefect deployment (and every scheduled run shows
    them): one that looks like a secret is refused before anything starts, exit 2, naming it."""
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent("""\
        title: served
        params:
          api_token: {default: "none"}
        phases:
          - id: p
            steps:
              - id: s
                commands: ["echo {api_token}"]
        """))
    proc = run_cli("serve", str(f), "--interval", "60", "--param", f"api_token={TOKEN}", cwd=tmp_path, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "--param api_token: looks like a secret" in out and "type: secret" in out
    assert TOKEN not in out and "Traceback" not in out
