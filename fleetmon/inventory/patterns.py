"""Inventory stage: Ansible host patterns for `--limit` and rule scopes (pure but for `@file`).

As lib/ansible/inventory/manager.py: `a,b` or `a:b` split, then plain patterns (union), then
`&` ones (intersection), then `!` ones (exclusion); each is a host name, a group, a glob
(`web*`), a `~regex` (re.match) or a subscript (`kvm[0]`, `kvm[1:3]`, inclusive, and the old
`kvm[1-3]` with a warning, so `web0[1-3]` is a subscript of `web0`, not a glob; a glob's
subscript counts a host each time it is found, as Ansible's); `@file`
reads one pattern per line (--limit only: a rule scope reads no file). A part that names
nothing is a warning, as in Ansible, unless nothing at all is selected. The selection keeps
the inventory's host order. `pattern_problem` checks a rule file's pattern when it loads.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fleetmon.errors import InventoryError, did_you_mean
from fleetmon.inventory.addresses import is_address
from fleetmon.inventory.inputfile import read_input
from fleetmon.inventory.regexcost import regex_problem
from fleetmon.model import HostSpec

#: A `--limit @FILE` lists host names, one a line: 100,000 of them fit 16 MiB many times.
MAX_LIMIT_FILE_BYTES = 16 << 20
#: Resolves a host pattern to the names of the hosts it selects (rules' `hosts:`).
Matcher = Callable[[str], Collection[str]]


class HostSet(Protocol):
    """What a pattern is matched against: an Inventory, or anything shaped like one."""

    @property
    def path(self) -> str: ...
    @property
    def hosts(self) -> Mapping[str, Any]: ...
    @property
    def groups(self) -> Mapping[str, Any]: ...
    def group_hosts(self, group: str) -> Sequence[str]: ...


_SPLIT = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
#: Why a rule file's `hosts:` may not read a file, as `--limit @FILE` does.
NO_FILE = "rule files' hosts: take no @file: name the hosts or groups"


class _NoMatch(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Item:
    """One pattern and where it came from, for error messages."""

    text: str
    file: str | None
    line: int | None
    context: str  # "--limit 'a:b': " or ""


@dataclass(frozen=True, slots=True)
class _Universe:
    hosts: Sequence[str]
    host_set: frozenset[str]
    groups: Sequence[str]
    group_set: frozenset[str]
    group_hosts: Callable[[str], Sequence[str]]


def split_patterns(pattern: str) -> list[str]:
    """Ansible's split_host_pattern: commas, else colons outside [...] unless it is one
    address (parse_address: a name, IPv4 or IPv6, with ranges and a port)."""
    if "," in pattern:
        parts = pattern.split(",")
    elif is_address(pattern):
        parts = [pattern]
    else:
        parts = _SPLIT.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def order_patterns(patterns: Sequence[str]) -> list[str]:
    """Unions first, then intersections (&), then exclusions (!); only-&/! patterns start
    from `all`."""
    regular = [p for p in patterns if p[0] not in "!&"]
    inter = [p for p in patterns if p[0] == "&"]
    exclude = [p for p in patterns if p[0] == "!"]
    return (regular or ["all"]) + inter + exclude


def _regex(expr: str) -> re.Pattern[str]:
    try:
        rx = re.compile(expr[1:] if expr.startswith("~") else fnmatch.translate(expr))
    except re.error as e:
        raise _NoMatch(f"{expr!r} is not a valid pattern ({e})") from None
    problem = regex_problem(expr[1:]) if expr.startswith("~") else None  # a glob: linear
    if problem is not None:
        raise _NoMatch(f"{expr!r}: {problem}")
    return rx


def _enumerate(u: _Universe, expr: str) -> tuple[list[str], bool]:
    """Hosts matching one bare pattern, and whether it named anything (a group or a host).

    As Ansible's _enumerate_matches: the hosts of each matching group, then the matching
    hosts, a host as many times as it is found (`web*` finds web01 in `web`, in `webdb` and
    by name): a subscript counts them all, so `web*[-1]` is the last host found by name.
    """
    special = expr.startswith("~") or any(c in expr for c in "*?[")
    if special:
        rx = _regex(expr)
        groups = [g for g in u.groups if rx.match(g)]
    else:
        groups = [expr] if expr in u.group_set else []
    found: list[str] = []
    for g in groups:
        found.extend(u.group_hosts(g))
    # Ansible also looks at host names when no group matched or the pattern is a glob/regex.
    if not groups or special or "." in expr:
        if special:
            found.extend(h for h in u.hosts if rx.match(h))
        elif expr in u.host_set:
            found.append(expr)
    return found, bool(groups) or bool(found)


def _match_one(u: _Universe, text: str, notes: list[str]) -> tuple[list[str], bool]:
    expr = text[1:] if text[0] in "!&" else text
    m = None if expr.startswith("~") else _SUBSCRIPT.match(expr)
    if m is None:
        return _enumerate(u, expr)
    base, index, start, sep, end = m.groups()
    if sep == "-":
        notes.append(f"{expr!r}: use [x:y] inclusive subscripts ([x-y] is deprecated)")
    hosts, named = _enumerate(u, base)
    if not hosts:
        return hosts, named
    if index is not None:
        i = int(index)
        if not -len(hosts) <= i < len(hosts):
            raise _NoMatch(f"{expr!r}: index {i} is out of range ({_count(base, hosts)})")
        return [hosts[i]], named
    first, last = int(start), int(end) if end else len(hosts) - 1
    if not last:  # Ansible's _apply_subscript: `[x:0]` is the single host x
        if first >= len(hosts):
            raise _NoMatch(f"{expr!r}: index {first} is out of range ({_count(base, hosts)})")
        return [hosts[first]], named
    return hosts[first : last + 1], named


def _count(base: str, hosts: Sequence[str]) -> str:
    distinct = len(set(hosts))
    if distinct == len(hosts):
        return f"{base} has {len(hosts)} hosts"
    return f"{base} finds {len(hosts)} hosts, counting each time one is found: {distinct} distinct"


def _evaluate(
    u: _Universe,
    items: Sequence[_Item],
    missing: list[InventoryError],
    notes: list[str],
    *,
    strict: bool = False,
) -> set[str]:
    """The names selected; the parts that name nothing are added to `missing`. A part that
    cannot be matched (a bad `~regex`, an index past the hosts found) is an error if strict
    (--limit), else it selects nothing: a rule scope's pattern, checked when its file loaded,
    may meet a smaller inventory, and must not fail a run after its hosts were collected."""
    by_text = {i.text: i for i in items}
    selected: dict[str, None] = {}
    for text in order_patterns([i.text for i in items]):
        item = by_text.get(text)
        if text in u.host_set:  # Ansible's shortcut: a plain host name is that host
            selected[text] = None
            continue
        try:
            hosts, named = _match_one(u, text, notes)
        except _NoMatch as e:
            if strict:
                raise _error(item, str(e)) from None
            hosts, named = [], True
        if not named and item is not None:
            bare = text.lstrip("!&")
            hint = did_you_mean(bare, [*u.groups, *u.hosts])
            missing.append(_error(item, f"{bare!r} matches no host or group{hint}"))
        if text[0] == "!":
            for h in hosts:
                selected.pop(h, None)
        elif text[0] == "&":
            keep = set(hosts)
            selected = {h: None for h in selected if h in keep}
        else:
            selected.update(dict.fromkeys(hosts))
    return set(selected)


def _error(item: _Item | None, detail: str) -> InventoryError:
    if item is None:
        return InventoryError(detail)
    return InventoryError(f"{item.context}{detail}", file=item.file, line=item.line)


def read_limit_file(path: str) -> str:
    """The text of an `@file` limit (I/O)."""
    try:
        return read_input(
            path, "a limit file", MAX_LIMIT_FILE_BYTES, InventoryError, pipes=True
        ).decode()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise InventoryError(f"cannot read limit file: {reason}", file=path) from None


def refuse_file(path: str) -> str:
    """The `read` of rule scopes: a play's `hosts:` reads no file (its file's loading
    refuses an `@` part; this is the guard behind that check)."""
    raise InventoryError(f"@{path}: {NO_FILE}")


def _items(pattern: str, file: str, read: Callable[[str], str], context: str) -> list[_Item]:
    items: list[_Item] = []
    for part in split_patterns(pattern):
        if not part.startswith("@"):
            items.append(_Item(part, file, None, context))
            continue
        for n, line in enumerate(read(part[1:]).splitlines(), 1):
            text = line.strip()
            if text and not text.startswith("#"):
                items.append(_Item(text, part[1:], n, ""))
    return items


def select_names(
    inv: HostSet,
    pattern: str,
    *,
    strict: bool,
    read: Callable[[str], str] = read_limit_file,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """Names of the hosts a pattern selects, in inventory order.

    strict (for --limit): InventoryError when nothing is selected (naming the first part that
    names nothing, if any) or a part cannot be matched; otherwise such parts are warnings, as
    Ansible's, given to `warn`. Not strict (rule scopes), a part that cannot be matched
    selects nothing and no message names --limit.
    """
    names = list(inv.hosts)
    u = _universe(names, list(inv.groups), inv.group_hosts)
    items = _items(pattern, inv.path, read, f"--limit {pattern!r}: " if strict else "")
    if not items:
        if strict:
            raise InventoryError(f"--limit {pattern!r} is empty", file=inv.path)
        return []
    if strict:
        _check_operators(items)
    missing: list[InventoryError] = []
    notes: list[str] = []
    chosen = _evaluate(u, items, missing, notes, strict=strict)
    result = [n for n in names if n in chosen]
    if strict and not result:
        raise (
            missing[0]
            if missing
            else InventoryError(f"--limit {pattern!r} selects no hosts", file=inv.path)
        )
    if strict and warn is not None:
        for message in [*notes, *(f"{e}; ignored" for e in missing)]:
            warn(message)
    return result


def _check_operators(items: Sequence[_Item]) -> None:
    """Refuse a `!` or `&` with no pattern after it (`web:!`): it would exclude or intersect
    with nothing, so the run would reach all of `web` (all hosts for `!` alone). Ansible
    fails on it ("string index out of range")."""
    for item in items:
        if item.text in ("!", "&"):
            does = "exclude" if item.text == "!" else "keep only"
            raise _error(
                item,
                f"{item.text!r} with no pattern after it "
                f"(write {item.text}PATTERN to {does} the hosts PATTERN selects)",
            )


def match_pattern(pattern: str, specs: Sequence[HostSpec]) -> list[str]:
    """Names of the hosts among `specs` that a pattern matches (groups from HostSpec.groups);
    no error for a pattern that matches nothing."""
    names = [s.name for s in specs]
    groups: dict[str, None] = {"all": None}
    for s in specs:
        groups.update(dict.fromkeys(s.groups))

    def group_hosts(g: str) -> list[str]:
        return names if g == "all" else [s.name for s in specs if g in s.groups]

    u = _universe(names, list(groups), group_hosts)
    items = [_Item(p, None, None, "") for p in split_patterns(pattern)]
    chosen = _evaluate(u, items, [], []) if items else set()
    return [n for n in names if n in chosen]


def matcher(hosts: Sequence[str], groups: Mapping[str, Collection[str]]) -> Matcher:
    """A Matcher over these host names (in order) and group memberships; `all` is implied."""
    names = list(hosts)
    members = {g: list(m) for g, m in groups.items()}
    members.setdefault("all", names)
    u = _universe(names, list(members), lambda g: members.get(g, []))

    def match(pattern: str) -> set[str]:
        items = [_Item(p, None, None, "") for p in split_patterns(pattern)]
        return _evaluate(u, items, [], []) if items else set()

    return match


def _universe(
    hosts: list[str], groups: list[str], group_hosts: Callable[[str], Sequence[str]]
) -> _Universe:
    return _Universe(hosts, frozenset(hosts), groups, frozenset(groups), group_hosts)


def pattern_problem(pattern: str) -> str | None:
    """Why a host pattern is malformed whatever the inventory, or None (pure: an `@file`
    part is a problem, not read). Rule files check their plays' `hosts:` with it."""
    parts = split_patterns(pattern)
    if not parts:
        return f"{pattern!r} names no host or group"
    for part in parts:
        expr = part[1:] if part[0] in "!&" else part
        if part.startswith("@"):
            return f"{part!r}: {NO_FILE}"
        if not expr:
            does = "exclude" if part == "!" else "keep only"
            return (
                f"{part!r} with no pattern after it "
                f"(write {part}PATTERN to {does} the hosts PATTERN selects)"
            )
        if expr.startswith("~"):
            try:
                _regex(expr)
            except _NoMatch as e:
                return str(e)
        elif problem := _subscript_problem(expr):
            return problem
    lost = [c for c in "[]" if pattern.count(c) != sum(p.count(c) for p in parts)]
    return f"{pattern!r}: unbalanced '{lost[0]}'" if lost else None


def _subscript_problem(expr: str) -> str | None:
    """Why a part's [...] is malformed: unbalanced, or with a ':' but no subscript's form
    (Ansible would take `kvm[1:2:3]` for a glob and match `kvm:`)."""
    rest = _BRACKETS.sub("", expr)
    if "[" in rest or "]" in rest:
        return f"{expr!r}: unbalanced '{'[' if '[' in rest else ']'}'"
    m = _SUBSCRIPT.match(expr)
    if m is None:
        # `[2001:db8::7]` is an address: a subscript follows a name.
        if not expr.startswith("[") and any(":" in s for s in _BRACKETS.findall(expr)):
            return f"{expr!r}: malformed subscript (write [i], [-i], [x:y] or [x:])"
        return None
    _base, _index, start, _sep, end = m.groups()
    if end and int(end) and int(start) > int(end):
        return f"{expr!r}: the subscript starts after it ends ({start} > {end})"
    return None
