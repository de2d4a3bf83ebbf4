"""secret_rules: assignments, redaction, and what must never be redacted."""

from __future__ import annotations

import pytest

from codex_tasks.core.redact import redact
from codex_tasks.core.secret_rules import find_assignments, redact_tokens

PW = "Tr0ub4dor" + "&3x"
RND = "q8Xv2LmN4" + "pR7tZ1wK9"


@pytest.mark.parametrize(
    ("line", "code", "value"),
    [
        (f'admin_password: str = "{PW}"', True, PW),
        (f"DB_PASSWORD={PW}", False, PW),
        (f'"client_secret": "{RND}"', True, RND),
        (f"secret_key: {RND}", False, RND),
        (f"export API_TOKEN='{RND}'", False, RND),
        (f'conn.login(user, password="{PW}")', True, PW),
        (f'cfg["api_key"] = "{RND}"', True, RND),
    ],
)
def test_assignments_found(line, code, value):
    assert [a.value for a in find_assignments(line, code=code)] == [value]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("token = tokenize.NAME", True),
        ('password = input("Password: ")', True),
        ("max_tokens = 1024", False),
        ("password: ${DB_PASS}", False),
        ("def f(password: str = None):", True),
        (f"password = {PW}", True),  # an expression in code
        ('password_file = "/run/secrets/db"', True),
        ('token = "<your token>"', True),
        ('secret = "short"', True),
        ('api_key = "all_lowercase_identifier"', True),
    ],
)
def test_not_assignments(line, code):
    assert find_assignments(line, code=code) == []


def test_redaction_keeps_hashes_and_ids():
    sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    uid = "0b1f5c2e-3a4b-4c5d-8e9f-001122334455"
    commit = "3f2a9c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
    text = f"sha256={sha} run_id={uid} commit {commit} token={uid} api_key: {sha}"
    assert redact_tokens(text) == text


def test_redaction_masks_tokens_and_assignments():
    gh = "ghp" + "_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    text = f"push with {gh}\npassword={PW} ok\nurl postgres://u:{RND}@h/db\n"
    out = redact(text)
    assert gh not in out and PW not in out and RND not in out
    assert out.count("[REDACTED]") == 3 and out.endswith("@h/db\n")


def test_the_keyword_prefilter_lets_every_rule_with_its_keyword_run():
    """One pattern of all keywords decides whether any rule runs: it must not skip a rule whose
    keyword is in the text, and text without any keyword runs none (ids, paths, timestamps)."""
    from codex_tasks.core.secret_rules import TOKEN_RULES, _token_rules_for

    for rule in TOKEN_RULES:
        for keyword in rule.keywords:
            assert rule in _token_rules_for(f"see {keyword} here"), (rule.name, keyword)
    assert _token_rules_for("2026-11-30T13:29:16.123+00:00 step s1 succeeded /w/.codex/runs/x") == []
