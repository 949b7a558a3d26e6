"""Model (pure): YAML text to PyYAML's composed node tree, every node keeping its line.

The inventory and rule loaders walk these nodes instead of `safe_load`'s plain data, so each
error names `file:line`. Aliases may not blow a small document up (a "billion laughs"),
nor collections nest past MAX_DEPTH (PyYAML builds and composes them recursively).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fleetmon.errors import InputError

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

#: Aliases may expand a document to ALIAS_FACTOR times the nodes it is written with, and
#: at least to ALIAS_FLOOR nodes. Hosts that share a 40-variable block through `<<: *common`
#: expand about 15 times; nine levels of ten aliases each (10**9 nodes) fail at once.
ALIAS_FACTOR = 20
ALIAS_FLOOR = 100_000

#: Collections may nest this deep, aliases followed (the value as built). Building a value
#: recurses in PyYAML's constructor (and its pure-Python composer) a few frames a level, so a
#: few hundred levels hit Python's recursion limit; libyaml itself stops at 1,000.
MAX_DEPTH = 100

#: Python's own limit on the digits of an int it converts from or to text (the default of
#: sys.set_int_max_str_digits, 3.11+): `int()` of a longer YAML integer is a ValueError, and
#: one given in hex (`0xfff…`, no limit) could never be printed (rules/budget.py, the same).
MAX_INT_DIGITS = 4300
TOO_MANY_DIGITS = "a number of more than 4,300 digits"
_INT_LIMIT = 10**MAX_INT_DIGITS
_SCALAR_KINDS = {
    INT_TAG: "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
}


class BadScalar(yaml.constructor.ConstructorError):
    """A scalar its tag cannot make (`2024-13-01`, `!!int abc`, 5,000 digits): PyYAML's
    constructors raise ValueError, KeyError or AttributeError for these, not a YAMLError."""


def _checked(construct: Callable[[Node, bool], Any], node: Node, deep: bool) -> Any:
    """construct(node, deep), a scalar's failure a BadScalar at its own line."""
    if not isinstance(node, ScalarNode):
        return construct(node, deep)
    try:
        value = construct(node, deep)
    except yaml.YAMLError:
        raise
    except (ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        raise BadScalar(None, None, _scalar_problem(node, exc), node.start_mark) from None
    if type(value) is int and not -_INT_LIMIT < value < _INT_LIMIT:
        raise BadScalar(None, None, TOO_MANY_DIGITS, node.start_mark)
    return value


def _scalar_problem(node: ScalarNode, exc: Exception) -> str:
    if node.tag == INT_TAG and sum(c.isdigit() for c in node.value) > MAX_INT_DIGITS:
        return TOO_MANY_DIGITS
    text = node.value if len(node.value) <= 40 else f"{node.value[:40]}…"
    if node.tag == TIMESTAMP_TAG:  # `2024-13-01`, unquoted, is a date to YAML 1.1
        why = f" ({exc})" if isinstance(exc, ValueError) else ""
        return f"{text!r} is not a date{why}: quote it for text"
    return f"{text!r} is not {_SCALAR_KINDS.get(node.tag, f'a {node.tag} value')}"


#: The most values (scalars, lists, mappings) PureLoader composes: it takes some 90 µs a
#: value, so a 16 MiB rule file of a million `- 1` took minutes. The largest shipped
#: playbook has 265; 100,000 is some 12,000 rules, composed in about 9 s.
MAX_PURE_NODES = 100_000


class TooManyNodes(yaml.YAMLError):
    """A document with more than MAX_PURE_NODES values, at the line where it passed it."""

    def __init__(self, line: int) -> None:
        super().__init__(f"more than {MAX_PURE_NODES:,} values")
        self.line = line


class PureLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, a scalar it cannot make a BadScalar; it keeps the
    line of each list item given by an alias (`- *base`: the node is the anchor's, and so
    is its start_mark), and composes at most MAX_PURE_NODES values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        #: (id(sequence), index) -> the 1-based line of an item that is an alias.
        self.alias_lines: dict[tuple[int, int], int] = {}
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._nodes += 1
        if self._nodes > MAX_PURE_NODES:
            raise TooManyNodes(self.get_mark().line + 1)
        if isinstance(parent, SequenceNode) and self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # (untyped in the stubs)
            self.alias_lines[(id(parent), index)] = event.start_mark.line + 1
        return super().compose_node(parent, index)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        return _checked(super().construct_object, node, deep)


_CBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FastLoader(_CBase):  # type: ignore[valid-type,misc]
    """libyaml's safe loader with its implicit-tag resolver memoized per document: libyaml
    calls it in Python for every scalar, and an inventory repeats the same keys 50,000 times.
    Safe: the safe loader's tag depends only on (kind, value, implicit), no path resolvers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[type[Node], str, tuple[bool, bool]], str] = {}
        #: Key nodes of the values it constructed that repeat an earlier key of their mapping.
        self.duplicates: list[Node] = []

    def descend_resolver(self, current_node: Node | None, current_index: object) -> None:
        return None  # path resolvers: the safe loader has none (libyaml calls this per node)

    def ascend_resolver(self) -> None:
        return None

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        return _checked(super().construct_object, node, deep)

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        key = (kind, value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The dict of a mapping; its repeated keys (the dict keeps their last value, as
        Ansible's loader does, which warns of each) are added to `duplicates`."""
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        if len(mapping) < len(node.value):  # merge keys applied: node.value is flat now
            seen: set[Any] = set()
            for knode, _ in node.value:
                key = self.construct_object(knode, deep=deep)
                if key in seen:
                    self.duplicates.append(knode)
                seen.add(key)
        return mapping


class YamlDoc:
    """One composed YAML document: its root node (None when empty), the values of its nodes,
    and errors of the caller's class at a node's line.

    `syntax` starts the message of a YAML error ("invalid YAML: did not find expected ','").
    `loader` is FastLoader (libyaml), a subclass that knows more tags, or PureLoader,
    PyYAML's pure-Python parser, whose syntax messages differ.
    """

    def __init__(
        self,
        text: str,
        file: str,
        *,
        error: type[InputError] = InputError,
        syntax: str = "invalid YAML",
        loader: type[yaml.SafeLoader] = FastLoader,
    ) -> None:
        self.file = file
        self._text = text
        self._error = error
        self._syntax = syntax
        self._repeated: list[Node] = []
        if text.lstrip().startswith("$ANSIBLE_VAULT;"):
            raise error("vault-encrypted files are not supported", file=file, line=1)
        try:
            # The pure-Python reader checks the text for unprintable characters right here.
            self._loader = loader(text)
        except yaml.YAMLError as e:
            raise self._yaml_error(e) from None
        try:
            self.root: Node | None = self._compose()
            if self.root is not None and "&" in text and "*" in text:
                _check_aliases(self, self.root)
            if isinstance(self.root, MappingNode | SequenceNode):
                _check_depth(self, self.root)
        except yaml.YAMLError as e:
            self.close()
            raise self._yaml_error(e) from None
        except InputError:
            self.close()
            raise

    def _compose(self) -> Node | None:
        try:
            root: Node | None = self._loader.get_single_node()
        except RecursionError:
            # PyYAML's pure-Python composer recurses a level at a time: where its reader
            # stopped is inside some 500 collections (past MAX_DEPTH, _check_depth's line).
            mark = getattr(self._loader, "get_mark", None)
            line = mark().line + 1 if mark is not None else None
            raise self._error(_TOO_DEEP, file=self.file, line=line) from None
        return root

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the loader's state (its anchors and constructed objects)."""
        self._loader.dispose()

    def line(self, node: Node) -> int:
        """The 1-based line a node starts on."""
        return node.start_mark.line + 1

    def alias_line(self, seq: SequenceNode, index: int) -> int | None:
        """The line of `seq`'s item `index` when an alias gives it (PureLoader only)."""
        lines: dict[tuple[int, int], int] = getattr(self._loader, "alias_lines", {})
        return lines.get((id(seq), index))

    def error(self, node: Node, message: str) -> InputError:
        """An error of the caller's class at the node's line."""
        return self._error(message, file=self.file, line=self.line(node))

    def value(self, node: Node, what: str | None = None) -> Any:
        """The plain data of a node, as `safe_load` would give it; a scalar in it that its
        tag cannot make is an error at the scalar's line, starting `what: ` when given."""
        if node.tag == STR_TAG and isinstance(node, ScalarNode):
            return node.value  # what construct_yaml_str gives, without its call chain
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            error = self._yaml_error(e)
            if what is not None and isinstance(e, BadScalar):
                error = self._error(f"{what}: {error.detail}", file=error.file, line=error.line)
            raise error from None

    def pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The (key node, value node) pairs of a mapping, with `<<` merge keys applied.

        A key given twice (or given by a merge key and again) has the place of its first
        pair and the nodes of its last, as in the dict `safe_load` makes; the later key
        nodes are kept for `duplicates`.
        """
        try:
            self._loader.flatten_mapping(node)
        except yaml.YAMLError as e:
            raise self._yaml_error(e) from None
        out: list[tuple[Node, Node]] = []
        place: dict[Any, int] = {}
        for knode, vnode in node.value:
            key = self._key(knode)
            at = place.setdefault(key, len(out))
            if at == len(out):
                out.append((knode, vnode))
            else:
                out[at] = (knode, vnode)
                self._repeated.append(knode)
        return out

    def duplicates(self) -> list[Node]:
        """The key nodes that repeat an earlier key of their mapping, among the mappings
        walked by `pairs` and the values constructed so far: each once, in document order."""
        found = {id(n): n for n in [*self._repeated, *getattr(self._loader, "duplicates", ())]}
        return sorted(found.values(), key=lambda n: (n.start_mark.line, n.start_mark.column))

    def _key(self, node: Node) -> Any:
        """What a key node is as a dict key: its text for a string, its value for another
        scalar (`1` and `true` are one key, as in Python), else the node itself."""
        if not isinstance(node, ScalarNode):
            return node
        if node.tag == STR_TAG:
            return node.value
        key = self.value(node)
        try:
            hash(key)
        except TypeError:  # a tagged scalar made a list (`!!set`): the caller refuses it
            return node
        return key

    def _yaml_error(self, e: yaml.YAMLError) -> InputError:
        if isinstance(e, TooManyNodes):  # no syntax error: more than a person writes
            problem = f"{e} (lists, mappings and scalars) in one file: split it"
            return self._error(problem, file=self.file, line=e.line)
        if isinstance(e, yaml.MarkedYAMLError):
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = e.problem or e.context or "invalid YAML"
            if isinstance(e, BadScalar):  # a value, not the syntax
                return self._error(problem, file=self.file, line=line)
            if problem == "exceeded maximum nesting depth":  # libyaml's own limit, 1,000
                return self._error(_TOO_DEEP, file=self.file, line=line)
            if "!vault" in problem:
                return self._error(
                    "vault-encrypted values are not supported", file=self.file, line=line
                )
            return self._error(f"{self._syntax}: {problem}", file=self.file, line=line)
        if isinstance(e, yaml.reader.ReaderError) and isinstance(e.position, int):
            # An unprintable character: its line, not its offset in "<unicode string>".
            line = self._text.count("\n", 0, e.position) + 1
            problem = str(e).split("\n", 1)[0]
            return self._error(f"{self._syntax}: {problem}", file=self.file, line=line)
        return self._error(f"{self._syntax}: {' '.join(str(e).split())}", file=self.file)


def kind(node: Node) -> str:
    """What a node holds, for messages: "a mapping", "a sequence", "nothing" or the scalar."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a sequence"
    return "nothing" if node.tag == NULL_TAG else repr(node.value)


def is_null(node: Node) -> bool:
    """Whether the node is YAML's null (`~`, `null` or nothing)."""
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


_TOO_DEEP = f"nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"


def _check_depth(doc: YamlDoc, root: Node) -> None:
    """Raise at the first collection (in document order) nested past MAX_DEPTH, before
    anything builds the value or walks it recursively. Aliases are followed, as the value
    is built: _check_aliases has refused cycles and capped the nodes this visits."""
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            raise doc.error(node, _TOO_DEEP)
        if isinstance(node, MappingNode):
            kids = [n for pair in node.value for n in pair if not isinstance(n, ScalarNode)]
        else:  # a sequence: scalars are never pushed
            kids = [n for n in node.value if not isinstance(n, ScalarNode)]
        stack.extend((c, level + 1) for c in reversed(kids))


def _check_aliases(doc: YamlDoc, root: Node) -> None:
    """Raise at the line where aliases blow the document up or make it contain itself.

    An alias is the very node its anchor names, so the tree is a graph: each collection's
    size as if expanded is counted once (memoized), in time linear in the document's nodes.
    """
    size: dict[int, int] = {}  # collections only: a scalar's size is 1
    inside: set[int] = set()  # the collections being counted: the current one's ancestors
    own = 1  # nodes as written: the root, then each child of a collection counted once
    stack: list[tuple[Node, Node, bool]] = [(root, root, False)]
    while stack:
        node, parent, done = stack.pop()
        key = id(node)
        if done:
            inside.discard(key)
            size[key] = 1 + sum(size.get(id(c), 1) for c in _children(node))
        elif key in inside:
            raise doc.error(parent, "a YAML alias refers to a node that contains it")
        elif key not in size and not isinstance(node, ScalarNode):
            children = _children(node)
            own += len(children)
            inside.add(key)
            stack.append((node, parent, True))
            stack.extend(
                (c, node, False) for c in reversed(children) if not isinstance(c, ScalarNode)
            )
    limit = max(ALIAS_FLOOR, ALIAS_FACTOR * own)
    if size.get(id(root), 1) <= limit:
        return
    node = root  # name the innermost node that passes the limit by itself
    while True:
        big = next((c for c in _children(node) if size.get(id(c), 1) > limit), None)
        if big is None:
            break
        node = big
    raise doc.error(
        node, f"YAML aliases expand this value to more than {limit} nodes (an alias bomb?)"
    )
