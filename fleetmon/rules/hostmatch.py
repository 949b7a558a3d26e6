"""A small Ansible host-pattern resolver (pure), for when no inventory matcher is passed in.

Names, groups, globs, `~regex`, `all`/`*`, `a:b` (or `a,b`), `a:&b`, `a:!b`; Ansible's order:
unions first, then intersections, then exclusions. The inventory's own matcher is preferred.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection, Mapping, Sequence

#: Resolves a host pattern to the names of the hosts it selects.
Matcher = Callable[[str], Collection[str]]


def _split(pattern: str) -> list[str]:
    # A `~regex` may contain ':' only at the end of the pattern; commas always split.
    out: list[str] = []
    for chunk in pattern.split(","):
        out.extend(t for t in re.split(r":(?=[!&]?[^:])", chunk) if t)
    return out


def _term(term: str, order: Sequence[str], groups: Mapping[str, Collection[str]]) -> set[str]:
    if term in ("all", "*"):
        return set(order)
    if term.startswith("~"):
        rx = re.compile(term[1:])
        return {h for h in order if rx.search(h)}
    if term in groups:
        return set(groups[term])
    if any(c in term for c in "*?["):
        hit = {h for h in order if fnmatch.fnmatchcase(h, term)}
        for g in fnmatch.filter(groups, term):
            hit |= set(groups[g])
        return hit
    return {term} if term in order else set()


def matcher(hosts: Sequence[str], groups: Mapping[str, Collection[str]]) -> Matcher:
    """A Matcher over these host names and group memberships."""

    def match(pattern: str) -> set[str]:
        union: set[str] = set()
        inter: list[set[str]] = []
        exclude: set[str] = set()
        for term in _split(pattern.strip()):
            if term.startswith("!"):
                exclude |= _term(term[1:], hosts, groups)
            elif term.startswith("&"):
                inter.append(_term(term[1:], hosts, groups))
            else:
                union |= _term(term, hosts, groups)
        for s in inter:
            union &= s
        return union - exclude

    return match
