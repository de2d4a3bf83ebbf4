"""Escaping a substituted value for its position in a bash line.

`shlex.quote` alone is not enough: inside double quotes `'$(cmd)'` still runs `cmd`. A small
lexer follows the quoting context of the literal text around each placeholder — unquoted,
'single', "double", $'ansi-c', `backticks`, $(substitution), here-document bodies, comments,
arithmetic, [[ tests ]] and ${expansions} — and each value is escaped for the context it lands in,
so it is one piece of literal text there. Where no escaping can make a value inert (arithmetic
evaluates array subscripts; `${...}` words pair quotes oddly), only safe values are accepted and
anything else is refused with a hint to use the `$CODEX_PARAM_<NAME>` environment variable.
"""

from __future__ import annotations

import re
import shlex

U, D, S, A, B, P, H, HQ, C, X, T, V = "U", "D", "S", "A", "B", "P", "H", "HQ", "C", "X", "T", "V"
_WORD_BREAK = set(" \t\n;&|()<>")
_INT = re.compile(r"[+-]?[0-9]+")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\?([A-Za-z0-9_.-]+))")


class UnsafePlaceholder(ValueError):
    """A value that cannot be made inert at this position."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class ShellLexer:
    """Tracks the quoting context while literal text is fed; escapes values for it."""

    def __init__(self) -> None:
        self.stack: list[dict[str, object]] = [{"k": U}]
        self.pending: list[dict[str, object]] = []  # here-documents that start at the next newline
        self.line = ""  # the current line (for here-document delimiters)
        self.prev = ""  # the previous character ("" at the start)

    @property
    def top(self) -> str:
        return str(self.stack[-1]["k"])

    def _push(self, kind: str, **extra: object) -> None:
        self.stack.append({"k": kind, **extra})

    def _at_word_start(self) -> bool:
        return self.prev == "" or self.prev in _WORD_BREAK

    def feed(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            two = text[i: i + 2]
            top = self.top
            frame = self.stack[-1]
            if top in (H, HQ):
                if ch == "\n":
                    line = self.line.lstrip("\t") if frame.get("strip") else self.line
                    self.line = ""
                    if line == frame["delim"]:
                        self.stack.pop()
                        self._start_heredoc()
                else:
                    self.line += ch
                self.prev = ch
                i += 1
                continue
            if ch == "\n":
                self.line = ""
            else:
                self.line += ch
            if top == C:
                if ch == "\n":
                    self.stack.pop()
                    self._newline()
            elif top == S:
                if ch == "'":
                    self.stack.pop()
            elif top == A:
                if ch == "\\":
                    i += 1
                elif ch == "'":
                    self.stack.pop()
            elif top == D:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    self.stack.pop()
                else:
                    i = self._dollar(text, i)
                    if ch == "`":
                        self._push(B)
            elif top == V:
                if ch == "\\":
                    i += 1
                elif ch == "{":
                    frame["depth"] = int(str(frame.get("depth", 0))) + 1
                elif ch == "}":
                    if int(str(frame.get("depth", 0))) == 0:
                        self.stack.pop()
                    else:
                        frame["depth"] = int(str(frame["depth"])) - 1
            elif top == X:
                if ch == "(":
                    frame["depth"] = int(str(frame.get("depth", 0))) + 1
                elif ch == ")":
                    if int(str(frame.get("depth", 0))) == 0 and text[i + 1: i + 2] == ")":
                        self.stack.pop()
                        i += 1
                    else:
                        frame["depth"] = int(str(frame.get("depth", 0))) - 1
            else:  # U, P, B, T: shell words
                if ch == "\\":
                    i += 1
                elif top == T and two == "]]":
                    self.stack.pop()
                    i += 1
                elif ch == "'":
                    self._push(S)
                elif ch == '"':
                    self._push(D)
                elif two == "$'":
                    self._push(A)
                    i += 1
                elif ch == "$":
                    i = self._dollar(text, i)
                elif ch == "`":
                    if top == B:
                        self.stack.pop()
                    else:
                        self._push(B)
                elif ch == "#" and self._at_word_start() and top != T:
                    self._push(C)
                elif two == "((" and self._at_word_start():
                    self._push(X, depth=0)
                    i += 1
                elif two == "[[" and self._at_word_start() and text[i + 2: i + 3] in (" ", "\t", ""):
                    self._push(T)
                    i += 1
                elif two == "<<" and text[i + 2: i + 3] != "<":
                    m = _HEREDOC.match(text, i)
                    if m:
                        delim = m.group(2) or m.group(3) or m.group(4)
                        quoted = bool(m.group(2) or m.group(3)) or text[i + 2:].lstrip("-").lstrip().startswith("\\")
                        self.pending.append({"delim": delim, "quoted": quoted, "strip": bool(m.group(1))})
                        i = m.end() - 1
                elif ch == "(" and top == P:
                    frame["depth"] = int(str(frame.get("depth", 0))) + 1
                elif ch == ")" and top == P:
                    if int(str(frame.get("depth", 0))) == 0:
                        self.stack.pop()
                    else:
                        frame["depth"] = int(str(frame["depth"])) - 1
                elif ch == "\n":
                    self._newline()
            self.prev = text[i] if i < n else ch
            i += 1

    def _dollar(self, text: str, i: int) -> int:
        """`$((`, `$(`, `${` at position i; returns the index of the last character consumed."""
        if text[i] != "$":
            return i
        if text[i + 1: i + 3] == "((":
            self._push(X, depth=0)
            return i + 2
        if text[i + 1: i + 2] == "(":
            self._push(P, depth=0)
            return i + 1
        if text[i + 1: i + 2] == "{":
            self._push(V, depth=0)
            return i + 1
        return i

    def _newline(self) -> None:
        if self.top == U or self.top == P:
            self._start_heredoc()

    def _start_heredoc(self) -> None:
        if self.pending:
            doc = self.pending.pop(0)
            self._push(HQ if doc["quoted"] else H, delim=doc["delim"], strip=doc["strip"])

    # ------------------------------------------------------------------ values

    def ends_with_bare_dollar(self, literal: str) -> bool:
        """A `$` right before a placeholder would change how bash reads the value ($'...')."""
        if not literal.endswith("$") or self.top in (S, A, HQ, C):
            return False
        backslashes = len(literal[:-1]) - len(literal[:-1].rstrip("\\"))
        return backslashes % 2 == 0

    def escape(self, value: str) -> str:
        """`value` as literal text at the current position (or UnsafePlaceholder)."""
        top = self.top
        use_env = "use the $CODEX_PARAM_<NAME> environment variable instead"
        if top == V and len(self.stack) > 1 and self.stack[-2]["k"] == D:
            # inside "${VAR:-...}" bash pairs single quotes and ends at '}': no escaping is exact
            raise UnsafePlaceholder('a placeholder inside "${...}" cannot be quoted exactly', use_env)
        if top == X:
            if not _INT.fullmatch(value.strip()):
                raise UnsafePlaceholder(f"only integers can be substituted in shell arithmetic, not {value!r}",
                                        "make the parameter an int, or " + use_env)
            out = value.strip()
        elif top == T:
            if _INT.fullmatch(value.strip()):
                out = value.strip()
            elif "$" in value or "`" in value:
                raise UnsafePlaceholder("a value with '$' or '`' inside [[ ... ]] may be evaluated as arithmetic",
                                        use_env)
            else:
                out = shlex.quote(value)
        elif top in (H, HQ):
            frame = self.stack[-1]
            if "\n" in value or value.strip() == frame["delim"]:
                raise UnsafePlaceholder("a value in a here-document may not contain a newline or its delimiter",
                                        "write the value with printf '%s' \"$CODEX_PARAM_<NAME>\" instead")
            out = re.sub(r"([\\$`])", r"\\\1", value) if top == H else value
            self.line += out
        elif top == C:
            out = value.replace("\n", " ")
        elif top == D:
            out = re.sub(r'([\\$`"])', r"\\\1", value)
        elif top == S:
            out = "'" + shlex.quote(value) + "'"
        elif top == A:
            out = "'" + shlex.quote(value) + "$'"
        else:  # U, P, B, V (an unquoted ${VAR:-word} word is quoted like any word)
            out = shlex.quote(value)
        # each enclosing `...` strips one level of \\, \` and \$ (and \" when it sits in "...")
        for idx in range(len(self.stack) - 1, 0, -1):
            if self.stack[idx]["k"] == B:
                chars = r'\\`$"' if self.stack[idx - 1]["k"] == D else r"\\`$"
                out = re.sub(f"([{chars}])", r"\\\1", out)
        self.prev = "x"
        return out
