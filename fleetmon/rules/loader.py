"""Rule files: YAML text -> RuleSet (pure), plus the file/folder reader (I/O edge).

Walks the YAML node tree of model.yamlnodes rather than plain data, so every error names
`file:line`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fleetmon.errors import RuleError, did_you_mean
from fleetmon.inventory.inputfile import read_input
from fleetmon.inventory.patterns import pattern_problem
from fleetmon.model import Severity, catalog
from fleetmon.model.yamlnodes import PureLoader, YamlDoc, kind
from fleetmon.rules.expr import ExprError, compile_expr, compile_message
from fleetmon.rules.historykeys import compile_apply, history_key
from fleetmon.rules.ranges import ThresholdError, parse_threshold
from fleetmon.rules.ruleset import OFF_HINT, Rule, RuleSet, check_rule
from fleetmon.rules.yamlhint import not_text, play_hint, quote_hint

MERGE_TAG = "tag:yaml.org,2002:merge"
PLAY_KEYS = ("name", "hosts", "when", "rules")
RULE_KEYS = (
    "name",
    "metric",
    "expr",
    "scope",
    "warning",
    "critical",
    "severity",
    "message",
    "when",
    "enabled",
    "reason",
    "source",
    "apply",
    "for",
    "keep_firing_for",
    "min_points",
    "min_r2",
)
_KEYS = frozenset((*PLAY_KEYS, *RULE_KEYS))
#: Keys a name-only rule may set to tune an earlier rule of the same name.
TUNE_KEYS: tuple[str, ...] = (
    *("warning", "critical", "severity", "message", "when", "enabled", "reason", "source"),
    *("apply", "for", "keep_firing_for", "min_points", "min_r2"),
)
#: Rule keys whose Rule attribute is spelt otherwise (`for` is a Python keyword).
_ATTRS = {"for": "for_"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: The shipped playbooks are some 20 KB: 16 MiB is no file a person wrote.
MAX_RULE_FILE_BYTES = 16 << 20
#: Characters of `when:`, `expr:` and `message:` one file may have (the shipped ones: some
#: 10,000): compiling takes some 15 µs a character, 4 s for these.
MAX_FILE_SOURCE = 256 << 10


@dataclass(frozen=True, slots=True)
class _Tune:
    """A name-only rule: replaces some keys of the earlier rule called `name`."""

    name: str
    origin: str
    line: int
    changes: dict[str, Any]
    key_lines: dict[str, int] = dataclasses.field(default_factory=dict)


class _Doc(YamlDoc):
    """One rule file's nodes, turned into values with the file name and line at hand."""

    def __init__(self, text: str, filename: str) -> None:
        # PyYAML's pure-Python parser: the syntax messages rule files have always had.
        try:
            super().__init__(
                text, filename, error=RuleError, syntax="YAML syntax error", loader=PureLoader
            )
        except RuleError as exc:  # `warning: > 80`: say that quotes are what it lacks
            raise self.hinted(exc, text) from None
        self._flat: set[int] = set()  # the mappings checked for keys written twice
        self._compiled = 0  # characters of expressions and messages, for MAX_FILE_SOURCE

    def compiling(self, node: Node, text: str) -> str:
        """`text`, counted against MAX_FILE_SOURCE before it is compiled."""
        self._compiled += len(text)
        if self._compiled > MAX_FILE_SOURCE:
            raise self.error(
                node,
                f"the expressions and messages of this file pass {MAX_FILE_SOURCE:,} "
                "characters: split it",
            )
        return text

    def hinted(self, exc: RuleError, text: str) -> RuleError:
        """A YAML error with a hint when its line lacks quotes (`message: {{ value }}`)."""
        hint = quote_hint(text, exc.line, _KEYS) if exc.detail.startswith("YAML") else ""
        return RuleError(exc.detail + hint, file=exc.file, line=exc.line) if hint else exc

    def value(self, node: Node, what: str | None = None) -> Any:
        try:
            return super().value(node, what)
        except RuleError as exc:
            raise self.hinted(exc, self._text) from None

    def mapping(self, node: Node, what: str, keys: Sequence[str]) -> dict[str, Node]:
        """A mapping's keys and value nodes, `<<` merge keys applied (its own keys win); a
        key written twice in it is an error, one it gives over a merged one is not."""
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{what}: expected a mapping")
        if id(node) not in self._flat:  # pairs() flattens it: merged keys look its own
            own: set[str] = set()
            for knode, _ in node.value:
                key = None if knode.tag == MERGE_TAG else self._key_of(knode, what)
                if isinstance(key, str) and key in own:
                    raise self.error(knode, f"{what}: duplicate key '{key}'")
                if isinstance(key, str):
                    own.add(key)
            self._flat.add(id(node))
        out: dict[str, Node] = {}
        for knode, vnode in self.pairs(node):
            key = self._key_of(knode, what)
            if not isinstance(key, str) or key not in keys:
                hint = did_you_mean(key, keys) if isinstance(key, str) else ""
                if keys is PLAY_KEYS and key in RULE_KEYS and not hint:
                    hint = " (a rule's key: put rules under a play's `rules:`)"
                raise self.error(knode, f"{what}: unknown key '{key}'{hint}")
            out[key] = vnode
        return out

    def _key_of(self, knode: Node, what: str) -> Any:
        """A key's value; a list or mapping as a key (`? [a, b]`) is refused unbuilt."""
        if not isinstance(knode, ScalarNode):
            raise self.error(knode, f"{what}: a key must be a name, got {kind(knode)}")
        return self.value(knode, what)

    def name_of(self, node: Node) -> str | None:
        """The `name:` a mapping gives itself (its last, not a merged one), for messages."""
        name = None
        if isinstance(node, MappingNode):
            for knode, vnode in node.value:
                if knode.tag != MERGE_TAG and self.value(knode) == "name":
                    value = self.value(vnode)
                    name = value if isinstance(value, str) else name
        return name

    def string(self, node: Node, what: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():  # `name: 123`: say to quote it
            raise self.error(node, f"{what}: expected a non-empty string{not_text(node)}")
        return value


def parse_rules(text: str, filename: str) -> list[Rule | _Tune]:
    """Parse one rule file's text into rules (and tunes of earlier rules)."""
    with _Doc(text, filename) as doc:
        if doc.root is None:
            raise RuleError("empty rule file: expected a list of plays", file=filename)
        if not isinstance(doc.root, SequenceNode):
            raise doc.error(doc.root, "expected a list of plays" + play_hint(doc.root))
        out: list[Rule | _Tune] = []
        seen: dict[str, str] = {}
        for index, play_node in enumerate(doc.root.value, start=1):
            for entry in _play(doc, play_node, index, doc.alias_line(doc.root, index - 1)):
                if entry.name in seen:
                    line = int(entry.origin.rsplit(":", 1)[1])
                    raise RuleError(
                        f"rule '{entry.name}': duplicate rule name (first at {seen[entry.name]})",
                        file=filename,
                        line=line,
                    )
                seen[entry.name] = entry.origin
                out.append(entry)
        return out


def _play(doc: _Doc, node: Node, index: int, alias: int | None) -> list[Rule | _Tune]:
    """A play's rules; given by an alias (`- *play`, at line `alias`), its rules are too."""
    name = doc.name_of(node)
    label = f"play #{index}" if name is None else f"play '{name}'"  # #2: not a play named 2
    keys = doc.mapping(node, label, PLAY_KEYS)
    for required in ("hosts", "rules"):
        if required not in keys:
            raise doc.error(node, f"{label}: missing key '{required}'")
    hosts = doc.string(keys["hosts"], f"{label}: hosts")
    problem = pattern_problem(hosts)
    if problem:  # now, not after a run has collected every host
        raise doc.error(keys["hosts"], f"{label}: hosts: {problem}")
    play_when = None
    if "when" in keys:
        if not isinstance(doc.value(keys["when"]), str):  # `when: true`
            hint = not_text(keys["when"], "an expression")
            raise doc.error(keys["when"], f"{label}: when: expected a string{hint}")
        try:
            play_when = compile_expr(doc.compiling(keys["when"], doc.value(keys["when"])))
        except ExprError as exc:
            raise doc.error(keys["when"], f"{label}: when: {exc}") from exc
    rules_node = keys["rules"]
    if not isinstance(rules_node, SequenceNode):
        raise doc.error(rules_node, f"{label}: rules: expected a list of rules")
    play = str(index) if name is None else name
    base = Rule(name="", play=play, hosts=hosts, scope="host", origin="", play_when=play_when)
    return [
        _rule(doc, r, base, label, doc.alias_line(rules_node, i) or alias or doc.line(r))
        for i, r in enumerate(rules_node.value)
    ]


def _rule(doc: _Doc, node: Node, base: Rule, play: str, line: int) -> Rule | _Tune:
    """One rule, or tune, written at `line` (an alias's, `- *rule`, for its duplicate)."""
    if not isinstance(node, MappingNode):
        raise doc.error(node, f"{play}: rule: expected a mapping")
    name = doc.name_of(node)
    label = "rule" if name is None else f"rule '{name}'"
    keys = doc.mapping(node, label, RULE_KEYS)
    if "name" not in keys:
        raise doc.error(node, "rule without a name")
    name = doc.string(keys["name"], f"{label}: name")
    if not _NAME_RE.fullmatch(name):
        raise doc.error(keys["name"], f"{label}: name: use letters, digits, '-', '_' and '.'")
    origin = f"{doc.file}:{line}"
    fields = {_ATTRS.get(k, k): _field(doc, label, k, v) for k, v in keys.items() if k != "name"}
    if "apply" in fields and "metric" in fields:
        try:
            fields["apply"] = compile_apply(fields["apply"], fields["metric"])
        except ExprError as exc:
            raise doc.error(keys["apply"], f"{label}: apply: {exc}") from exc
    if "metric" not in fields and "expr" not in fields:
        if not fields:
            raise doc.error(node, f"{label}: needs metric or expr")
        return _Tune(name, origin, line, fields, {k: doc.line(v) for k, v in keys.items()})
    key_lines = tuple((k, doc.line(v)) for k, v in keys.items())
    rule = dataclasses.replace(base, name=name, origin=origin, key_lines=key_lines, **fields)
    if rule.metric is not None:
        scope = catalog.scope_of(rule.metric)
        if "scope" in fields and fields["scope"] != scope:
            raise doc.error(
                keys["scope"],
                f"{label}: scope '{rule.scope}' does not match metric "
                f"'{rule.metric}' (scope {scope})",
            )
        rule = dataclasses.replace(rule, scope=scope or "host")
    problem = check_rule(rule)
    if problem is not None:  # at the key it is about (the rule's first line for a missing one)
        key, text = problem
        raise doc.error(keys.get(key, node), f"{label}: {text}")
    return rule


def _field(doc: _Doc, label: str, key: str, node: Node) -> Any:
    """One rule key's value, validated and compiled."""
    what = f"{label}: {key}"
    raw = doc.value(node, what)
    try:
        if key == "metric":
            if not isinstance(raw, str) or catalog.scope_of(raw) is None:
                hint = did_you_mean(str(raw), catalog.kin(str(raw)))
                raise doc.error(node, f"{label}: unknown metric '{raw}'{hint}")
            return raw
        if key == "scope":
            if raw not in catalog.SCOPES:
                hint = did_you_mean(str(raw), catalog.SCOPES)
                raise doc.error(node, f"{label}: unknown scope '{raw}'{hint}")
            return raw
        if key in ("warning", "critical"):
            return None if raw is None else parse_threshold(raw)
        if key == "severity":
            if raw not in ("warning", "critical"):
                hint = did_you_mean(str(raw), ("warning", "critical"))
                raise doc.error(node, f"{what}: expected warning or critical, got '{raw}'{hint}")
            return Severity(raw)
        if key in ("expr", "when", "message") and not isinstance(raw, str):  # `when: true`
            text = "text" if key == "message" else "an expression"
            raise doc.error(node, f"{what}: expected a string{not_text(node, text)}")
        if key in ("expr", "when"):
            return compile_expr(doc.compiling(node, raw))
        if key == "message":
            return compile_message(doc.compiling(node, raw))
        if key == "enabled":
            if not isinstance(raw, bool):
                raise doc.error(node, f"{what}: expected true or false, got {raw!r}")
            return raw
        if key in ("apply", "for", "keep_firing_for", "min_points", "min_r2"):
            return history_key(key, raw)
        return doc.string(node, what)  # reason, source
    except (ThresholdError, ExprError, ValueError) as exc:
        raise doc.error(node, f"{what}: {exc}") from exc


def merge(rules: Sequence[Rule | _Tune], filename: str, into: dict[str, Rule]) -> None:
    """Add one file's rules: same-name rules replace earlier ones, tunes amend them."""
    for entry in rules:
        if isinstance(entry, Rule):
            into[entry.name] = entry
            continue
        earlier = into.get(entry.name)
        if earlier is None:
            hint = did_you_mean(entry.name, into)
            raise RuleError(
                f"rule '{entry.name}': needs metric or expr (no earlier rule of that name "
                f"to tune{hint})",
                file=filename,
                line=entry.line,
            )
        changes = dict(entry.changes)
        if isinstance(changes.get("apply"), str) and earlier.metric is not None:
            try:
                changes["apply"] = compile_apply(changes["apply"], earlier.metric)
            except ExprError as exc:
                raise RuleError(
                    f"rule '{entry.name}': apply: {exc}", file=filename, line=entry.line
                ) from exc
        tuned = dataclasses.replace(earlier, **changes)
        problem = check_rule(tuned)
        if problem is not None:
            line = entry.key_lines.get(problem[0], entry.line)
            text = problem[1] + OFF_HINT.get(problem[1], "")  # `warning: null, critical: null`
            raise RuleError(f"rule '{entry.name}': {text}", file=filename, line=line)
        into[entry.name] = dataclasses.replace(tuned, origin=f"{earlier.origin}, {entry.origin}")


def rule_files(paths: Sequence[str]) -> list[str]:
    """Expand folders into their sorted *.yaml/*.yml files (I/O: lists directories); a file
    reached twice (a shipped playbook also given with -r) is kept in its first place.

    As a shell's `*.yaml` and Ansible's folders, a name starting with `.` is left out: an
    editor's lock (`.#a.yaml`, a dangling symlink) or swap file, a hidden file; and `~`
    (`~$a.yaml` of an office suite; `a.yaml~` backups end in another suffix)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if not p:  # Path("") is the current folder: every *.yaml there read as rules
            raise RuleError('a rule file named by an empty string (-r "$UNSET"?)')
        if p == "-" and not path.exists():
            raise RuleError("no such file (standard input is /dev/stdin)", file=p)
        if path.is_dir():
            try:
                names = list(path.iterdir())
            except OSError as exc:
                raise RuleError(f"cannot list rule folder: {exc.strerror}", file=p) from None
            found = sorted(
                str(f)
                for f in names
                if f.suffix in (".yaml", ".yml") and not f.name.startswith((".", "~"))
            )
            if not found:
                raise RuleError("no *.yaml or *.yml rule files in this folder", file=p)
            out.extend(found)
        else:
            out.append(p)
    seen: set[str] = set()
    unique = []
    for f in out:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def load_rules(paths: Sequence[str]) -> RuleSet:
    """Read rule files and folders in order (I/O); RuleError naming file:line on any problem."""
    files = rule_files(paths)
    merged: dict[str, Rule] = {}
    for f in files:
        try:
            data = read_input(f, "a rule file", MAX_RULE_FILE_BYTES, RuleError, pipes=True)
        except OSError as exc:
            raise RuleError(f"cannot read rule file: {exc.strerror or exc}", file=f) from exc
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:  # at its line, as a YAML error is
            bad, line = data[exc.start], data.count(b"\n", 0, exc.start) + 1
            raise RuleError(
                f"not UTF-8 text (byte 0x{bad:02x}): save it as UTF-8", file=f, line=line
            ) from None
        merge(parse_rules(text, f), f, merged)
    return RuleSet(tuple(merged.values()), tuple(files))
