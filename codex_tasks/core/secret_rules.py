"""Secret-detection rules shared by the redaction hook (`runs.redact`) and the `safety_scan` step.

This module is deliberately dependency-free: it sits below both `runs/` and `steps/`.

Two families of rules:

- provider token formats (`TOKEN_RULES`): specific prefixes, so false alarms are rare; each rule
  names literal keywords, and its regex only runs on text that contains one of them;
- assignments (`find_assignments`): a value assigned to a secret-ish name (`password`, `api_key`,
  `client_secret`, ...) in code, YAML, JSON, INI, TOML or `.env` — annotated assignments and
  unquoted values in text files too. Password-like names accept any non-placeholder value;
  other names need a random-looking one (length, character classes, Shannon entropy).

`redact_tokens` applies both to any text. Hex digests and UUIDs are never redacted by the generic
rules (they are how runs name files and commits); an exact value a scan found is redacted by the
hook's registered values instead.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


class LazyPattern:
    """A regex compiled on its first use. Every file writer imports the redaction hook, which
    imports these rules; compiling the ~30 of them costs ~50 ms, which `validate` (it redacts
    nothing) would otherwise pay at start-up."""

    __slots__ = ("_source", "_flags", "_compiled")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:  # two threads may both compile: the same pattern, harmless
            self._compiled = re.compile(self._source, self._flags)
        return self._compiled

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled.search(string, pos)

    def match(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled.match(string, pos)

    def finditer(self, string: str, pos: int = 0) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(string, pos)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str) -> str:
        return self.compiled.sub(repl, string)


@dataclass(frozen=True)
class SecretRule:
    """One provider format or assignment pattern."""

    name: str
    pattern: LazyPattern
    severity: str = "high"
    group: int = 0  # which group holds the secret itself (0: the whole match)
    keywords: tuple[str, ...] = field(default=())  # the regex runs only if one of these is in the text


def _rule(
    name: str, regex: str, severity: str = "high", group: int = 0, flags: int = 0, keywords: tuple[str, ...] = ()
) -> SecretRule:
    return SecretRule(name, LazyPattern(regex, flags), severity, group, keywords)


# Provider token formats.
TOKEN_RULES: list[SecretRule] = [
    _rule(
        "aws-access-key-id",
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
        keywords=("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"),
    ),
    _rule(
        "aws-secret-access-key",
        r"(?i)aws[\w.\-]{0,20}?(?:secret|sk)[\w.\-]{0,20}?[\"']?\s*[:=]{1,2}>?\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        group=1,
        keywords=("aws", "AWS", "Aws"),
    ),
    _rule("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", keywords=("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    _rule("github-fine-grained-token", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", keywords=("github_pat_",)),
    _rule("gitlab-token", r"\bgl(?:pat|dt|rt|cbt|ptt|ft|imt|agent)-[A-Za-z0-9_\-]{20,}\b", keywords=("glpat-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-")),
    _rule("slack-token", r"\bxox[baprse]-[A-Za-z0-9-]{10,}\b", keywords=("xox",)),
    _rule("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}", keywords=("hooks.slack",)),
    _rule("stripe-key", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b", keywords=("sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_")),
    _rule("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}\b", keywords=("AIza",)),
    _rule("google-oauth-client-secret", r"\bGOCSPX-[A-Za-z0-9_\-]{28}\b", keywords=("GOCSPX-",)),
    _rule("openai-key", r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}\b", keywords=("sk-",)),
    _rule("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}\b", keywords=("hf_",)),
    _rule("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", keywords=("npm_",)),
    _rule("pypi-token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}", keywords=("pypi-",)),
    _rule("sendgrid-key", r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b", keywords=("SG.",)),
    _rule(
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",
        keywords=("eyJ",),
    ),
    _rule(
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        keywords=("PRIVATE KEY",),
    ),
    _rule(
        "connection-string-password",
        # Starts at the literal `://` (fast to find); the scheme before it does not matter.
        r"://[^\s:/@'\"]+:([^\s@/'\"]{3,})@[^\s'\"]+",
        group=1,
        keywords=("://",),
    ),
]

# A private-key header without its end (a truncated or partial block) is still a finding.
PRIVATE_KEY_HEADER = LazyPattern(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

# --- assignments ------------------------------------------------------------------------------------

_NAME_KEYWORDS = LazyPattern(
    r"pass(?:wd|word|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"auth[_-]?key|credential|bearer|signing[_-]?key|encryption[_-]?key"
)
_PASSWORD_NAME = LazyPattern(r"passw|passwd|pwd|passphrase|(?:^|[_.\-])pass(?:$|[_.\-])")
_NAME_CHARS = LazyPattern(r"[A-Za-z0-9_.\-]*")
_NAME_CHARS_REV = LazyPattern(r"[A-Za-z0-9_.\-]*")
# Names that hold something about a secret, not the secret.
_NOT_SECRET_NAME = LazyPattern(
    r"(?:_|-|\.|^)(?:file|path|dir|name|names|env|var|length|len|type|types|id|field|prompt|prompts|"
    r"regex|pattern|count|size|timeout|expiry|expires|endpoint|method|format|class|mode|policy|label|"
    r"hint|header|url|uri|source|kind|param|params|key_id|input|enabled|required|fn|func|callback|"
    r"prefix|suffix|index|idx|position|pos|rule|rules|template|char|chars|separator|sep|cls|module|"
    r"store|manager|handler|provider|backend|class_name|max|min|limit|budget|usage|ids)$"
    r"|tokeniz|tokens$|^(?:max|min|num|n|total)_|_tokens_|passthrough|bypass|compass|password_reset"
)
_AFTER_NAME = LazyPattern(
    r"[\"']?\]?\s*(?::\s*[A-Za-z_][\w\[\]., |]*?\s*(?==))?(?P<op>:=|==|=>|=|:)\s*"
    r"(?:(?P<prefix>[bBrRuU]{0,2})(?P<q>[\"'`])(?P<qval>[^\"'`\n]*)(?P=q)|(?P<val>[^\s\"'`#;,)\]}]+))"
)
_PLACEHOLDER = LazyPattern(
    r"^(?:x+|\*+|\.+|-+|_+|#+|0+|none|null|nil|true|false|undefined|changeme|change_me|redacted|"
    r"\[redacted\]|example|dummy|fake|test|testing|secret|password|passwd|token|placeholder|"
    r"your[_\-]?\w*|my[_\-]?\w*|<[^>]*>|\$\{?\w+\}?|\{\{.*\}\}|\{[\w.]*\}|%\(?\w*\)?s|os\.environ.*|"
    r"env\(.*|getenv.*|process\.env.*|input\(.*|[a-z]+(?:_[a-z]+)+|[A-Z]+(?:_[A-Z]+)+|[a-z]+(?:\.[a-z_]+)+)$",
    re.IGNORECASE,
)
_HEX_OR_UUID = LazyPattern(
    r"^(?:[0-9a-fA-F]{7,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_CODE_SUFFIXES = frozenset(
    ".py .pyi .pyx .js .mjs .cjs .ts .tsx .jsx .java .kt .scala .go .rb .rs .c .h .cc .cpp .hpp .cs "
    ".php .swift .m .lua .r .jl .ipynb".split()
)


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def looks_random(value: str) -> bool:
    """A value that could be a generated key or token, not a word, path, number or identifier."""
    if len(value) < 10 or any(ch.isspace() for ch in value):
        return False
    classes = sum(
        (any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value))
    )
    if classes < 2:
        return False
    if "/" in value and not re.search(r"[A-Za-z0-9+/]{30,}", value):
        return False  # a path, not base64
    return shannon_entropy(value) >= 3.0


def _password_ok(value: str) -> bool:
    if len(value) < 6 or any(ch.isspace() for ch in value) or value.endswith(":"):
        return False
    return not re.fullmatch(r"[a-z]+", value) or len(value) >= 12 or shannon_entropy(value) >= 2.8


@dataclass(frozen=True)
class Assignment:
    """A secret value assigned to a secret-ish name, found in one line."""

    name: str
    value: str
    start: int  # offset of the value in the line
    end: int
    password: bool  # the name is password-like


def find_assignments(line: str, *, code: bool = False, for_redaction: bool = False) -> list[Assignment]:
    """Secret values assigned to secret-ish names in one line.

    `code`: the line is source code, where an unquoted right-hand side is an expression (skipped).
    `for_redaction`: hex digests and UUIDs are left alone.
    """
    lower = line.lower()
    found: list[Assignment] = []
    last_end = -1
    for m in _NAME_KEYWORDS.finditer(lower):
        if m.start() < last_end:
            continue
        start = m.start()
        while start > 0 and (lower[start - 1].isalnum() or lower[start - 1] in "_.-"):
            start -= 1
        end_m = _NAME_CHARS.match(lower, m.end())
        end = end_m.end() if end_m else m.end()
        name = lower[start:end].strip(".-")
        last_end = end
        if not name or _NOT_SECRET_NAME.search(name):
            continue
        a = _AFTER_NAME.match(line, end)
        if not a:
            continue
        quoted = a.group("q") is not None
        if a.group("op") == ":" and code and not quoted:
            continue
        if not quoted and code:
            continue
        value = a.group("qval") if quoted else a.group("val")
        if value is None:
            continue
        vstart = a.start("qval") if quoted else a.start("val")
        if quoted and a.group("prefix") and "f" in a.group("prefix").lower():
            continue
        if _PLACEHOLDER.match(value) or "{" in value or "$(" in value or "%s" in value:
            continue
        password = bool(_PASSWORD_NAME.search(name))
        if for_redaction and _HEX_OR_UUID.match(value):
            continue
        if password:
            if not _password_ok(value):
                continue
        elif not looks_random(value):
            continue
        found.append(Assignment(name, value, vstart, vstart + len(value), password))
        last_end = max(last_end, a.end())
    return found


def is_code_path(path: str) -> bool:
    """Source code, where an unquoted right-hand side is an expression, not a value."""
    dot = path.rfind(".")
    return dot > path.rfind("/") and path[dot:].lower() in _CODE_SUFFIXES


# Every keyword of every rule in one pattern: most text written (ids, paths, timestamps) has
# none, and one search answers that for all rules (~1 us instead of ~40 us a string).
_ANY_KEYWORD = re.compile("|".join(re.escape(k) for r in TOKEN_RULES for k in r.keywords))
_ALL_KEYWORDED = all(r.keywords for r in TOKEN_RULES)  # else a rule without keywords always runs


def _token_rules_for(text: str) -> list[SecretRule]:
    if _ALL_KEYWORDED and not _ANY_KEYWORD.search(text):
        return []
    return [r for r in TOKEN_RULES if not r.keywords or any(k in text for k in r.keywords)]


def redact_tokens(text: str, mask: str = "[REDACTED]") -> str:
    """Replace provider-format tokens and values assigned to secret-ish names in `text` by `mask`."""
    for rule in _token_rules_for(text):
        if rule.group:
            group = rule.group

            def mask_group(m: re.Match[str], g: int = group) -> str:
                return m.group(0).replace(m.group(g), mask)

            text = rule.pattern.sub(mask_group, text)
        else:
            text = rule.pattern.sub(mask, text)
    if _NAME_KEYWORDS.search(text.lower()):
        text = "".join(_redact_line(line, mask) for line in text.splitlines(keepends=True))
    return text


def _redact_line(line: str, mask: str) -> str:
    hits = find_assignments(line, for_redaction=True)
    for hit in reversed(hits):
        if hit.value != mask:
            line = line[: hit.start] + mask + line[hit.end :]
    return line
