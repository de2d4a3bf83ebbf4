"""YAML loading with positions.

`load_yaml_with_positions(text, file)` returns the data and a map from a path tuple (keys and list
indexes) to the `(line, col)` of that value (1-based), plus `(path, "<key>")` entries for keys,
so validation errors can point at the exact place. Duplicate keys are errors. Step and phase
ids that YAML would read as numbers (`id: 1.1`) are kept as the text the user wrote.
"""

from __future__ import annotations

from typing import Any

import yaml

from codex_tasks.errors import SpecError

Path_ = tuple[str | int, ...]
Positions = dict[Path_, tuple[int, int]]

def _is_id_path(path: Path_) -> bool:
    """Phase and step ids and `needs` items: kept as the text written, even when YAML reads a number."""
    if len(path) == 3 and path[0] == "phases" and path[2] in ("id", "number"):
        return True
    if len(path) == 5 and path[0] == "phases" and path[2] == "steps" and path[4] in ("id", "needs"):
        return True
    return False


# Budgets that keep a hostile file from hanging `validate`/`run` or exhausting memory. A real
# sequence is a few thousand nodes, a few levels deep, and rarely uses an alias at all.
MAX_DEPTH = 64  # nesting levels of mappings and lists
MAX_ALIAS_NODES = 10_000  # nodes built by expanding aliases and merge keys (`*a`, `<<: *a`)
MAX_NODES = 500_000  # nodes in the whole document


class _Loader(yaml.SafeLoader):
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """The composer recurses once per level: refuse a document nested deeper than MAX_DEPTH
        where the level that crosses it starts (not at 1:1 after a RecursionError)."""
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooDeep(mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("too deep")
        self.mark = mark


class _Budget:
    """Counts the nodes built, and those built again through an alias."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.seen: set[int] = set()
        self.nodes = 0
        self.expanded = 0
        self.in_alias = 0
        self.where: yaml.Node | None = None  # the innermost node written out (not reached through an alias)

    def refuse(self, node: yaml.Node, what: str, limit: int) -> SpecError:
        at = (self.where or node).start_mark
        return SpecError(f"invalid YAML: {what} exceed the limit of {limit:,}", file=self.file,
                         line=at.line + 1, col=at.column + 1,
                         hint="aliases (*name) and merge keys (<<) that expand into huge documents are refused; "
                              "write the values out or use fewer levels of aliases")


def _merged_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """How many entries a mapping has once its merge keys (`<<`) are flattened (capped past `limit`)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = limit + 1  # a merge cycle counts as too big
    total = 0
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            subs = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            total += sum(_merged_size(sub, memo, limit) for sub in subs if isinstance(sub, yaml.MappingNode))
        else:
            total += 1
        if total > limit:
            break
    memo[key] = total
    return total


def _construct(node: yaml.Node, path: Path_, pos: Positions, file: str, raw_scalars: bool,
               budget: _Budget | None = None) -> Any:
    budget = budget or _Budget(file)
    alias = id(node) in budget.seen
    budget.seen.add(id(node))
    budget.nodes += 1
    if alias or budget.in_alias:
        budget.expanded += 1
        if budget.expanded > MAX_ALIAS_NODES:
            raise budget.refuse(node, "nodes expanded from aliases", MAX_ALIAS_NODES)
    if budget.nodes > MAX_NODES:
        raise budget.refuse(node, "nodes in the document", MAX_NODES)
    if not (alias or budget.in_alias):
        budget.where = node
    if alias:
        budget.in_alias += 1
        try:
            return _construct_node(node, path, pos, file, raw_scalars, budget)
        finally:
            budget.in_alias -= 1
    return _construct_node(node, path, pos, file, raw_scalars, budget)


def _construct_node(node: yaml.Node, path: Path_, pos: Positions, file: str, raw_scalars: bool,
                    budget: _Budget) -> Any:
    pos[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        loader = _Loader("")
        if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
            if _merged_size(node, {}, MAX_ALIAS_NODES) > MAX_ALIAS_NODES:
                raise budget.refuse(node, "entries merged with <<", MAX_ALIAS_NODES)
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | float | bool) or key is None:
                raise SpecError(
                    "mapping keys must be plain scalars",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    col=key_node.start_mark.column + 1,
                    path=_fmt(path),
                )
            key_s = key if isinstance(key, str) else str(key_node.value)
            if key_s in out:
                raise SpecError(
                    f"duplicate key {key_s!r}",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    col=key_node.start_mark.column + 1,
                    path=_fmt(path),
                    hint="each key may appear once in a mapping; remove or rename one",
                )
            pos[path + (key_s, "<key>")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key_s] = _construct(value_node, path + (key_s,), pos, file, _is_id_path(path + (key_s,)), budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), pos, file, raw_scalars, budget) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    try:
        value = _Loader("").construct_object(node)
    except yaml.constructor.ConstructorError:
        raise
    except Exception:  # a tag whose value does not fit: `!!int lots`
        raise SpecError(f"invalid YAML value {node.value!r} for tag {node.tag}", file=file,
                        line=node.start_mark.line + 1, col=node.start_mark.column + 1, path=_fmt(path),
                        hint="drop the explicit tag or fix the value") from None
    if raw_scalars and isinstance(value, int | float) and not isinstance(value, bool):
        return str(node.value)  # `id: 1.10` stays "1.10", not 1.1
    return value


def _fmt(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "<key>":
            continue
        else:
            out += ("." if out else "") + part
    return out


format_path = _fmt


def _ended_by_inner_quote(text: str, index: int) -> bool:
    """The parser stopped right after a `"` that closed a double-quoted string too early."""
    line_start = text.rfind("\n", 0, index) + 1
    before = text[line_start:index].rstrip()
    return before.endswith('"') and before.count('"') >= 2 and index < len(text) and text[index] not in ",]}#\n"


def load_yaml_with_positions(text: str, file: str = "<string>") -> tuple[Any, Positions]:
    """Parse one YAML document; return (data, positions). Raises `SpecError` on bad YAML."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except _TooDeep as exc:
        raise SpecError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", file=file,
                        line=exc.mark.line + 1, col=exc.mark.column + 1,
                        hint="flatten the structure; no sequence file needs this many levels") from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and exc.problem_mark is not None and (
                "end of stream" in str(exc.problem) or exc.problem_mark.index >= len(text) - 1):
            mark = exc.context_mark  # an unclosed quote or bracket: point where it opened
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc).splitlines()[0]
        if exc.context:
            problem = f"{problem} ({exc.context})"
        hint = "check indentation and quoting; a value containing ': ' or starting with '{' or '*' needs quotes"
        if mark is not None and _ended_by_inner_quote(text, mark.index):
            hint = ('a double quote inside a double-quoted string ends it early: escape it as \\" '
                    "or wrap the whole value in single quotes")
        raise SpecError(f"invalid YAML: {problem}", file=file, line=line, col=col, hint=hint) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    pos: Positions = {}
    if node is None:
        return None, pos
    try:
        data = _construct(node, (), pos, file, False)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise SpecError(
            f"invalid YAML: {exc.problem}",
            file=file,
            line=(mark.line + 1) if mark else 1,
            col=(mark.column + 1) if mark else 1,
        ) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=file) from None
    return data, pos
