"""The `audit` step on a generated tree whose findings are known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_tasks.errors import StepFailed
from codex_tasks.steps import audit

MODEL = '''\
import requests
from urllib.request import urlopen
import boto3 as b3
from abc import abstractmethod


# TODO: tune the layer sizes
def forward(x):
    """Run the model. TODO in a docstring does not count."""
    s = "TODO: not a real todo"  # FIXME real comment here
    t = """
    # XXX inside a string
    """
    return requests.get(x)


def stub_pass():
    pass


def stub_ellipsis(): ...


def stub_doc():
    """Only a docstring."""


class Empty:
    pass


class Base:
    def method(self):
        raise NotImplementedError

    def other(self):
        raise NotImplementedError("later")

    @abstractmethod
    def abstract(self): ...

    async def astub(self):
        pass


def fetch():
    b3.client("s3")
    return urlopen("http://example.com")


def not_a_stub():
    return 1
'''

BROKEN = "x = = 1\n# TODO in a file that does not parse\n"

TEST_FILE = '''\
def test_something():
    # XXX flaky
    assert True
'''

HUB = '''\
from transformers import AutoModel

model = AutoModel.from_pretrained("gpt2")
'''


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for rel, text in {
        "pkg/model.py": MODEL,
        "pkg/broken.py": BROKEN,
        "tests/test_x.py": TEST_FILE,
        "pkg/hub.py": HUB,
        "notes.md": "TODO: write docs\n",
        ".venv/lib/junk.py": "# TODO never scanned\n",
    }.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    return ws


def expected() -> set[tuple[str, int, str]]:
    m = "pkg/model.py"
    exp = {
        (m, line_of(MODEL, "# TODO: tune"), "todo"),
        (m, line_of(MODEL, "# FIXME real"), "todo"),
        (m, line_of(MODEL, "def stub_pass"), "stub"),
        (m, line_of(MODEL, "def stub_ellipsis"), "stub"),
        (m, line_of(MODEL, "def stub_doc"), "stub"),
        (m, line_of(MODEL, "async def astub"), "stub"),
        (m, line_of(MODEL, "raise NotImplementedError"), "not_implemented"),
        (m, line_of(MODEL, 'raise NotImplementedError("later")'), "not_implemented"),
        (m, line_of(MODEL, "import requests"), "remote"),
        (m, line_of(MODEL, "from urllib.request"), "remote"),
        (m, line_of(MODEL, "import boto3"), "remote"),
        (m, line_of(MODEL, "requests.get(x)"), "remote"),
        (m, line_of(MODEL, 'b3.client("s3")'), "remote"),
        (m, line_of(MODEL, "return urlopen"), "remote"),
        # A file that does not parse is still tokenized: its comment TODO counts.
        ("pkg/broken.py", 2, "todo"),
        ("tests/test_x.py", 2, "todo"),
        ("pkg/hub.py", 3, "remote"),
    }
    return exp


@pytest.mark.parametrize("workers", [1, 2])
def test_audit_counts_exactly(make_ctx, ws, workers):
    ctx = make_ctx(workspace=ws)
    res = audit.run(audit.With(root=".", workers=workers), ctx)
    scan = json.loads((ctx.step_dir / "stub_scan.json").read_text())
    got = {(f["path"], f["line"], f["kind"]) for f in scan["findings"]}
    assert got == expected()
    assert len(scan["findings"]) == len(expected())
    assert scan["unparsed"] == ["pkg/broken.py"]
    assert res.summary == {"files": 4, "todo": 4, "not_implemented": 2, "stub": 4, "remote": 7, "unparsed": 1}


def test_outputs_and_buckets(make_ctx, ws):
    ctx = make_ctx(workspace=ws)
    audit.run(audit.With(), ctx)
    scan = json.loads((ctx.step_dir / "stub_scan.json").read_text())
    by_line = {(f["path"], f["kind"], f["line"]): f for f in scan["findings"]}
    test_todo = by_line[("tests/test_x.py", "todo", 2)]
    assert "tests" in test_todo["buckets"] and test_todo["text"] == "XXX flaky"
    model_stub = by_line[("pkg/model.py", "stub", line_of(MODEL, "def stub_pass"))]
    assert "modeling" in model_stub["buckets"]
    mapping = json.loads((ctx.step_dir / "capability_mapping.json").read_text())
    assert set(mapping["buckets"]) >= {
        "tokenization", "modeling", "training", "config", "evaluation", "metrics", "logging", "checkpointing",
        "data", "safety", "tests", "deployment", "docs", "tracking", "extensibility",
    }
    assert "tests/test_x.py" in mapping["buckets"]["tests"]["files"]
    refs = (ctx.step_dir / "cost_incurring_refs.txt").read_text().splitlines()
    assert len(refs) == 7 and "pkg/hub.py:3: model = AutoModel.from_pretrained(\"gpt2\")" in refs
    summary = (ctx.step_dir / "audit_summary.md").read_text()
    assert "| stub | 4 |" in summary and "pkg/broken.py" in summary


def test_include_exclude_custom_buckets_and_patterns(make_ctx, ws):
    ctx = make_ctx(workspace=ws)
    res = audit.run(
        audit.With(
            include=["**/*.py", "**/*.md"],
            exclude=["tests/**", "pkg/broken.py"],
            buckets={"ml": {"paths": ["pkg/**"], "keywords": []}},
            remote_patterns=["boto3"],
        ),
        ctx,
    )
    assert res.summary["files"] == 3  # model.py, hub.py, notes.md
    assert res.summary["remote"] == 2  # the boto3 import and the b3.client call
    scan = json.loads((ctx.step_dir / "stub_scan.json").read_text())
    assert ("notes.md", 1, "todo") in {(f["path"], f["line"], f["kind"]) for f in scan["findings"]}
    mapping = json.loads((ctx.step_dir / "capability_mapping.json").read_text())
    assert list(mapping["buckets"]) == ["ml"] and mapping["unmapped_files"] == ["notes.md"]


def test_missing_root(make_ctx, tmp_path):
    with pytest.raises(StepFailed, match="not a folder"):
        audit.run(audit.With(root="nope"), make_ctx())


def test_unknown_with_key_is_an_error():
    with pytest.raises(Exception, match="extra"):
        audit.With(roots=".")


TRICKY = '''\
x = "# TODO not a comment"  # TODO real one
y = """
# FIXME inside a triple-quoted string
"""  # XXX after the string
z = 'it\\'s # XXX still a string'
w = r"\\"  # TODO after a raw string
v = "a" \\
    "# TODO continued string"
u = f"{x!r} # TODO in an f-string"
t = b'# XXX bytes'  # FIXME yes
'''


def test_fast_comment_lexer_agrees_with_tokenize(tmp_path):
    import sysconfig

    from codex_tasks.repo.audit_scan import _comment_todos, comment_todos_fast

    samples = [TRICKY.encode()]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    samples += [p.read_bytes() for p in sorted(stdlib.glob("*.py"))[:60]]
    for data in samples:
        exact = _comment_todos(data, "f.py")
        if exact is None:
            continue
        assert [(f.line, f.text) for f in comment_todos_fast(data, "f.py")] == [(f.line, f.text) for f in exact]
    assert [f.line for f in comment_todos_fast(TRICKY.encode(), "t.py")] == [1, 4, 6, 10]
