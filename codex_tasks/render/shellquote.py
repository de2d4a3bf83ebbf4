"""Escaping a substituted value for its position in a bash script.

`shlex.quote` alone is not enough: inside double quotes `'$(cmd)'` still runs `cmd`. A small
lexer follows the quoting context of the WHOLE script (a step's lines joined, so a quote or a
here-document opened on one line and closed on the next is seen) — unquoted, 'single', "double",
$'ansi-c', `backticks`, $(substitution), here-document bodies, comments, arithmetic, [[ tests ]]
and ${expansions} — and each value is escaped for the context it lands in, so it is one piece of
literal text there. It also follows the words of the current simple command, because some words
are code whatever their quoting (`eval`, `trap`, `bash -c`, `python -c`, an awk program, a
here-document fed to an interpreter).

Two kinds of refusal, both with a hint to use the `$CODEX_PARAM_<NAME>` environment variable:
- by position (`always=True`): a code-evaluating word, right after a backslash, a non-int value
  in arithmetic or an array subscript. These fail at `validate` whatever the value.
- by value: a here-document line that a value would end or split, `$`/backquote inside [[ ]].
"""

from __future__ import annotations

import os
import re
import shlex

from codex_tasks.errors import UnsafePlaceholder

U, D, S, A, B, P, H, HQ, C, X, T, V = "U", "D", "S", "A", "B", "P", "H", "HQ", "C", "X", "T", "V"
_COMMAND_FRAMES = (U, P, B)
_WORD_BREAK = set(" \t\n;&|()<>")
_SEPARATORS = set(";&|()\n")
_INT = re.compile(r"[+-]?[0-9]+")
_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]+)'|\"([^\"\n]+)\"|\\?([A-Za-z0-9_.-]+))")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_OPEN_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*")
_BARE_REDIRECT = re.compile(r"[0-9]*(>>?|<|<>|>\||&>>?)")
_VALUE = "\x02"  # stands for a substituted value inside a tracked word

# words that run the words after them as a command (skipped to find the command itself)
_PREFIXES = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time", "exec", "command",
             "builtin", "nohup", "env", "sudo", "doas", "nice", "timeout", "xargs", "stdbuf", "setsid",
             "ionice", "chrt", "taskset", "unbuffer"}
# commands whose every argument is code
_EVALUATORS = {"eval", "trap", "alias", "watch"}
# shells: the first operand after an option containing `c` is code; no operand = stdin is code
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "su", "rbash", "script", "flock"}
# interpreters and the option whose argument is code
_INTERPRETERS = {"python": ("-c",), "python2": ("-c",), "python3": ("-c",), "pypy": ("-c",), "pypy3": ("-c",),
                 "perl": ("-e", "-E"), "ruby": ("-e",), "node": ("-e", "-p", "--eval", "--print"),
                 "nodejs": ("-e", "-p", "--eval", "--print"), "php": ("-r",), "Rscript": ("-e",),
                 "lua": ("-e",), "tclsh": (), "osascript": ("-e",), "ssh": ()}
_AWKS = {"awk", "gawk", "mawk", "nawk", "busybox-awk"}
# builtins that evaluate an array subscript in their arguments as arithmetic
_SUBSCRIPT_BUILTINS = {"unset", "declare", "typeset", "local", "readonly", "export", "read", "printf", "test", "[",
                       "let", "mapfile", "readarray"}

USE_ENV = "use the $CODEX_PARAM_<NAME> environment variable instead"
# how a shell step wraps each assertion line in its script (steps/shell.py builds it with these)
ASSERTION_OPEN = "if ! {\n"
ASSERTION_CLOSE = "\n}; then "


def _base(word: str) -> str:
    name = os.path.basename(word)
    return "python3" if re.fullmatch(r"python3\.\d+", name) else name


def _is_redirect(word: str) -> bool:
    return bool(re.match(r"[0-9]*[<>]", word)) or word.startswith("&>")


def _command_words(words: list[str]) -> tuple[int | None, list[str]]:
    """(index of the command word, the words without redirections), skipping assignments/prefixes."""
    clean: list[str] = []
    skip_next = False
    for w in words:
        if skip_next:
            skip_next = False
            continue
        if _is_redirect(w):
            skip_next = bool(_BARE_REDIRECT.fullmatch(w))
            continue
        clean.append(w)
    for i, w in enumerate(clean):
        if _ASSIGNMENT.match(w) or w in _PREFIXES or (i > 0 and clean[i - 1] in _PREFIXES and w.startswith("-")):
            continue
        if i > 0 and _base(clean[i - 1]) == "timeout" and re.fullmatch(r"[0-9.]+[smhd]?", w):
            continue
        return i, clean
    return None, clean


def code_position(words: list[str]) -> str | None:
    """Why the LAST word of `words` (the one a placeholder sits in) is code, or None."""
    if words and (_is_redirect(words[-1]) or (len(words) > 1 and _BARE_REDIRECT.fullmatch(words[-2]))):
        return None  # a redirection's target is a file name
    cmd, ws = _command_words(words)
    p = len(ws) - 1
    if cmd is None or cmd >= p:
        return None
    name = _base(ws[cmd])
    if name in _EVALUATORS:
        return f"an argument of {name!r} is run as shell code"
    for j in range(cmd, p):
        base = _base(ws[j])
        if base in _SHELLS:
            flag = False
            k = j + 1
            while k <= p:
                w = ws[k]
                if w in ("-o", "+o", "-O", "+O") and not flag:
                    k += 2
                    continue
                if w.startswith(("-", "+")) and w not in ("-", "--"):
                    flag = flag or "c" in w.lstrip("-+")
                    k += 1
                    continue
                if flag and k == p:
                    return f"the command string of '{base} -c' is shell code"
                break
        elif base in _INTERPRETERS:
            flags = _INTERPRETERS[base]
            for k in range(j + 1, p + 1):
                w = ws[k]
                if any(w.startswith(f) and len(w) > len(f) for f in flags if not f.startswith("--")) and k == p:
                    return f"the code argument of '{base}' runs as code"
                if w in flags and k + 1 == p:
                    return f"the argument of '{base} {w}' runs as code"
                if not w.startswith("-") or w in ("-m", "-"):
                    break
            if base == "ssh" and p > j + 1:
                return "the remote command of 'ssh' is shell code"
        elif base in _AWKS:
            k = j + 1
            while k <= p:
                w = ws[k]
                if w in ("-F", "-v", "-f", "-i", "-l"):
                    if w == "-f":
                        break  # the program comes from a file
                    k += 2
                    continue
                if w.startswith("-") and w != "-":
                    k += 1
                    continue
                if k == p:
                    return f"the program of '{base}' is code"
                break
    return None


def stdin_is_code(words: list[str]) -> str | None:
    """The command reads its program from stdin (a here-document fed to it is code)."""
    cmd, ws = _command_words(words)
    if cmd is None:
        return None
    name = _base(ws[cmd])
    if name in _EVALUATORS:
        return None
    if name in _SHELLS or name in _INTERPRETERS:
        rest = ws[cmd + 1:]
        operands = [w for w in rest if not w.startswith("-") or w == "-"]
        if not operands or operands[0] == "-" or name == "ssh":
            return f"a here-document fed to {name!r} is code"
    return None


class ShellLexer:
    """Tracks the quoting context while literal text is fed; escapes values for it."""

    def __init__(self) -> None:
        self.stack: list[dict[str, object]] = [self._command_frame(U)]
        self.pending: list[dict[str, object]] = []  # here-documents that start at the next newline
        self.line = ""  # the current line (for here-document delimiters)
        self.prev = ""  # the previous character ("" at the start)
        self.tail = ""  # the literal text fed since the last value (for the backslash rule)

    @staticmethod
    def _command_frame(kind: str, **extra: object) -> dict[str, object]:
        return {"k": kind, "words": [], "cur": "", **extra}

    @property
    def top(self) -> str:
        return str(self.stack[-1]["k"])

    def _push(self, kind: str, **extra: object) -> None:
        if kind in _COMMAND_FRAMES:
            self.stack.append(self._command_frame(kind, **extra))
        else:
            self.stack.append({"k": kind, "body": "", **extra})

    def _cmd(self) -> dict[str, object]:
        for frame in reversed(self.stack):
            if frame["k"] in _COMMAND_FRAMES:
                return frame
        return self.stack[0]

    def _word_char(self, ch: str) -> None:
        frame = self._cmd()
        frame["cur"] = str(frame["cur"]) + ch

    def _end_word(self, frame: dict[str, object], reset: bool = False) -> None:
        words: list[str] = frame["words"]  # type: ignore[assignment]
        if frame["cur"]:
            words.append(str(frame["cur"]))
            frame["cur"] = ""
        if reset:
            words.clear()

    def _words(self) -> list[str]:
        frame = self._cmd()
        words: list[str] = list(frame["words"])  # type: ignore[call-overload]
        return words + [str(frame["cur"])]

    def _at_word_start(self) -> bool:
        return self.prev == "" or self.prev in _WORD_BREAK

    def feed(self, text: str) -> None:
        self.tail += text
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
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
            if top in (S, A, D, V, X):
                frame["body"] = str(frame.get("body", "")) + ch
            if top == C:
                if ch == "\n":
                    self.stack.pop()
                    self._newline()
            elif top == S:
                if ch == "'":
                    self.stack.pop()
                else:
                    self._word_char(ch)
            elif top == A:
                if ch == "\\":
                    i += 1
                elif ch == "'":
                    self.stack.pop()
                else:
                    self._word_char(ch)
            elif top == D:
                if ch == "\\":
                    if i + 1 < n:
                        self._word_char(text[i + 1])
                    i += 1
                elif ch == '"':
                    self.stack.pop()
                else:
                    self._word_char(ch)
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
                elif ch == "]" and frame.get("bracket"):
                    self.stack.pop()
            else:  # U, P, B, T: shell words
                i = self._shell_char(text, i, top, frame)
            self.prev = text[i] if i < n else ch
            i += 1

    def _shell_char(self, text: str, i: int, top: str, frame: dict[str, object]) -> int:
        """One character in an unquoted context; returns the index of the last character consumed."""
        ch, two = text[i], text[i: i + 2]
        cmd = self._cmd()
        if ch == "\\":
            if i + 1 < len(text) and text[i + 1] != "\n":
                self._word_char(text[i + 1])
            return i + 1
        if top == T and two == "]]":
            self.stack.pop()
            return i + 1
        if ch == "'":
            self._push(S)
        elif ch == '"':
            self._push(D)
        elif two == "$'":
            self._push(A)
            return i + 1
        elif two == "$[":
            self._word_char(_VALUE)
            self._push(X, depth=0, bracket=True)
            return i + 1
        elif ch == "$":
            self._word_char(ch)
            return self._dollar(text, i)
        elif ch == "`":
            if top == B:
                self._end_word(frame)
                self.stack.pop()
            else:
                self._word_char(_VALUE)
                self._push(B)
        elif ch == "#" and self._at_word_start() and top != T:
            self._push(C)
        elif two == "((" and self._at_word_start():
            self._push(X, depth=0)
            return i + 1
        elif two == "[[" and self._at_word_start() and text[i + 2: i + 3] in (" ", "\t", ""):
            self._push(T)
            return i + 1
        elif two == "<<" and text[i + 2: i + 3] != "<":
            m = _HEREDOC.match(text, i)
            if m:
                delim = m.group(2) or m.group(3) or m.group(4)
                quoted = bool(m.group(2) or m.group(3)) or text[i + 2:].lstrip("-").lstrip().startswith("\\")
                code = stdin_is_code([w for w in self._words() if w])
                self.pending.append({"delim": delim, "quoted": quoted, "strip": bool(m.group(1)), "code": code})
                return m.end() - 1
            self._word_char(two)
            return i + 1
        elif ch == "(" and top == P:
            frame["depth"] = int(str(frame.get("depth", 0))) + 1
            self._end_word(cmd, reset=True)
        elif ch == ")" and top == P:
            if int(str(frame.get("depth", 0))) == 0:
                self.stack.pop()
            else:
                frame["depth"] = int(str(frame["depth"])) - 1
                self._end_word(cmd, reset=True)
        elif ch == "\n":
            self._end_word(cmd, reset=True)
            self._newline()
        elif ch in _SEPARATORS:
            self._end_word(cmd, reset=True)
        elif ch in " \t":
            self._end_word(cmd)
        elif ch in "<>":
            cur = str(cmd["cur"])
            if not (_is_redirect(cur) or cur.isdigit()):
                self._end_word(cmd)
            self._word_char(ch)
        else:
            self._word_char(ch)
        return i

    def _dollar(self, text: str, i: int) -> int:
        """`$((`, `$(`, `${`, `$[` at position i; returns the index of the last character consumed."""
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
        if text[i + 1: i + 2] == "[":
            self._push(X, depth=0, bracket=True)
            return i + 1
        return i

    def _newline(self) -> None:
        if self.top == U or self.top == P:
            self._start_heredoc()

    def _start_heredoc(self) -> None:
        if self.pending:
            doc = self.pending.pop(0)
            self._push(HQ if doc["quoted"] else H, delim=doc["delim"], strip=doc["strip"], code=doc["code"])

    # ------------------------------------------------------------------ values

    def ends_with_bare_dollar(self) -> bool:
        """A `$` right before a placeholder would change how bash reads the value ($'...')."""
        literal = self.tail
        if not literal.endswith("$") or self.top in (S, A, HQ, C):
            return False
        backslashes = len(literal[:-1]) - len(literal[:-1].rstrip("\\"))
        return backslashes % 2 == 0

    def _refuse_by_position(self) -> None:
        """Raise when a placeholder here is unsafe whatever its value."""
        top = self.top
        frame = self.stack[-1]
        backslashes = len(self.tail) - len(self.tail.rstrip("\\"))
        if backslashes % 2 == 1 and top not in (S, HQ, C):
            raise UnsafePlaceholder("a placeholder right after a backslash would join the value to an escape",
                                    USE_ENV + ", or remove the backslash", always=True)
        if top in (H, HQ) and frame.get("code"):
            raise UnsafePlaceholder(str(frame["code"]), USE_ENV + " (read it in the code)", always=True)
        if top in (C, H, HQ):
            return
        why = code_position([w for w in self._words()[:-1] if w] + [self._words()[-1]])
        if why:
            raise UnsafePlaceholder(f"a placeholder here is code: {why}", USE_ENV + " (and read it in the code)",
                                    always=True)

    def _arithmetic(self) -> str | None:
        """Why the current position is evaluated as arithmetic (only ints are accepted), or None."""
        top = self.top
        frame = self.stack[-1]
        if top == X:
            return "shell arithmetic"
        if top == V:
            body = str(frame.get("body", ""))
            if _OPEN_SUBSCRIPT.fullmatch(body.lstrip("#!")):
                return "an array subscript"
            if re.fullmatch(r"#?[A-Za-z_0-9@*]+(\[[^\]]*\])?:(?![-=?+]).*", body):
                return "a ${var:offset:length} expansion"
            return None
        if top in (U, P, B, S, D):
            words = self._words()
            word = words[-1].replace("'", "").replace('"', "")
            if _OPEN_SUBSCRIPT.fullmatch(word):
                cmd, ws = _command_words([w for w in words[:-1] if w] + [words[-1]])
                if cmd is None or cmd == len(ws) - 1 or _base(ws[cmd]) in _SUBSCRIPT_BUILTINS:
                    return "an array subscript"
            cmd, ws = _command_words([w for w in words if w])
            if cmd is not None and _base(ws[cmd]) == "let" and cmd < len(ws) - 1:
                return "a 'let' expression"
        return None

    def escape(self, value: str, raw: object = None) -> str:
        """`value` as literal text at the current position (or UnsafePlaceholder).

        `raw` is the typed value (arithmetic accepts only ints); `value` its text."""
        self._refuse_by_position()
        top = self.top
        arithmetic = self._arithmetic()
        if arithmetic:
            if raw is None and value == "":
                out = ""  # not set at validation time; a run requires it first
            elif not (isinstance(raw, int) and not isinstance(raw, bool)):
                raise UnsafePlaceholder(f"only int-typed parameters can be substituted in {arithmetic}, not {value!r}",
                                        "declare the parameter `type: int`, or " + USE_ENV, always=True)
            else:
                out = str(raw)
            if top not in (X, V):  # an assignment subscript: the word goes on
                self._word_char(_VALUE)
        elif top == V and len(self.stack) > 1 and self.stack[-2]["k"] == D:
            # inside "${VAR:-...}" bash pairs single quotes and ends at '}': no escaping is exact
            raise UnsafePlaceholder('a placeholder inside "${...}" cannot be quoted exactly', USE_ENV, always=True)
        elif top == T:
            if _INT.fullmatch(value.strip()):
                out = value.strip()
            elif "$" in value or "`" in value:
                raise UnsafePlaceholder("a value with '$' or '`' inside [[ ... ]] may be evaluated as arithmetic",
                                        USE_ENV)
            else:
                out = shlex.quote(value)
        elif top in (H, HQ):
            frame = self.stack[-1]
            if "\n" in value or "\r" in value or value.strip() == frame["delim"] \
                    or (self.line + value).strip("\t") == frame["delim"]:
                raise UnsafePlaceholder("a value in a here-document may not contain a newline or its delimiter",
                                        "write the value with printf '%s' \"$CODEX_PARAM_<NAME>\" instead")
            if frame.get("strip") and self.line.strip("\t") == "" and value.startswith("\t"):
                raise UnsafePlaceholder("a value starting with a tab at the start of a <<- here-document line loses it",
                                        "write the value with printf '%s' \"$CODEX_PARAM_<NAME>\" instead")
            out = re.sub(r"([\\$`])", r"\\\1", value) if top == H else value
            self.line += out
        elif top == C:
            out = value.replace("\n", " ").replace("\r", " ")
        elif top == D:
            out = re.sub(r'([\\$`"])', r"\\\1", value)
            self._word_char(_VALUE)
        elif top == S:
            out = "'" + shlex.quote(value) + "'"
            self._word_char(_VALUE)
        elif top == A:
            out = "'" + shlex.quote(value) + "$'"
            self._word_char(_VALUE)
        else:  # U, P, B, V (an unquoted ${VAR:-word} word is quoted like any word)
            out = shlex.quote(value)
            if top != V:
                self._word_char(_VALUE)
        # each enclosing `...` strips one level of \\, \` and \$ (and \" when it sits in "...")
        for idx in range(len(self.stack) - 1, 0, -1):
            if self.stack[idx]["k"] == B:
                chars = r'\\`$"' if self.stack[idx - 1]["k"] == D else r"\\`$"
                out = re.sub(f"([{chars}])", r"\\\1", out)
        self.prev = "x"
        self.tail = ""
        return out
