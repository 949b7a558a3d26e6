"""Inventory stage: refuse a `~regex` host pattern whose matching can take exponential time.

The regexes of the templates' filters and tests (`regex_search`, `match`...) are held to the
same rules (CostlyRegex), so a template cannot hang a run either.

Python's `re` backtracks and has no time limit: `~(a+)+$` against a 40-character host name
tries some 2**40 ways before failing, so a run (or `fleetmon rules list`) would never end.
The shape is a repetition inside a repetition, either without bound, that can split the
same text in many ways: `(a+)+`, `(a*)*`, `(\\w+-?)+`, `(.*a)+`; or a repetition of
alternatives one of which the others spell (`(a|aa)+`, `(ab|a|b)*`). One a character of its own
separates from the rest, `([a-z0-9-]+\\.)+example\\.com`, is linear and accepted, as are a
possessive repetition and an atomic group (`(a+)++`, `(?>a+)+`), which do not backtrack.
"""

from __future__ import annotations

import importlib
from typing import Any

# re's own parser and compiler: `sre_parse`, their public name, warns it is deprecated.
_sre: Any = importlib.import_module("re._parser")
_compiler: Any = importlib.import_module("re._compiler")
_c: Any = importlib.import_module("re._constants")
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT)
_ONE_CHAR = (_c.LITERAL, _c.NOT_LITERAL, _c.IN, _c.ANY, _c.CATEGORY)
#: A body's alternatives are looked at up to this many (`(a|b)(c|d)...` multiplies them).
_MAX_SEQUENCES = 64

#: Repetitions without bound (`*`, `+`, `{n,}`) a pattern may have: each one more
#: multiplies the ways to split a name by its length (`.*.*.*.*.*.*.*.*x` against a
#: 100-character name: minutes), four cost a 255-character name under a second.
MAX_OPEN = 4


def _nested(subject: str) -> str:
    return (
        f"a repetition that can split a {subject} in exponentially many ways (`(a+)+`, "
        "`(a|aa)+`) can take exponential time to match it: write each round to match one way"
    )


def _too_open(subject: str) -> str:
    return (
        f"more than {MAX_OPEN} repetitions without bound (`*`, `+`) can take hours to match "
        f"a long {subject}: use fewer"
    )


#: Why such a host pattern is refused.
NESTED = _nested("host name")
TOO_OPEN = _too_open("host name")


class CostlyRegex(Exception):
    """A regex of an inventory template's filter or test (`regex_search`...) refused as a
    host pattern would be. Not a ValueError, which skips one host: it ends the run (exit 4)
    as a costly `--limit` does, naming the variable (`var` of `host`) whose template holds it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.host: str | None = None
        self.var: str | None = None


def regex_problem(regex: str, subject: str = "host name") -> str | None:
    """Why matching `regex` (which compiles) against a host name (or another `subject`,
    in the words of the message) could take too long."""
    parsed = _sre.parse(regex)
    if _walk(parsed.data, parsed.state):
        return _nested(subject)
    return _too_open(subject) if _open(parsed.data) > MAX_OPEN else None


def _open(items: Any) -> int:
    """The backtracking repetitions without bound in a pattern, nested ones included."""
    count = 0
    for op, av in items:
        count += op in _REPEATS and av[1] == _c.MAXREPEAT
        count += sum(_open(sub) for sub in _children(op, av) if op != _c.ATOMIC_GROUP)
    return count


def _walk(items: Any, state: Any) -> bool:
    for op, av in items:
        if op in _REPEATS and av[1] > 1 and _ambiguous(av[2], av[1], state):
            return True
        if any(_walk(sub, state) for sub in _children(op, av)):
            return True
    return False


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one item (a group's, a branch's, a repetition's...)."""
    if op in (*_REPEATS, _c.POSSESSIVE_REPEAT):
        return [av[2]]
    if op == _c.SUBPATTERN:
        return [av[3]]
    if op == _c.BRANCH:
        return list(av[1])
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if op == _c.GROUPREF_EXISTS:
        return [b for b in av[1:] if b is not None]
    if op == _c.ATOMIC_GROUP:
        return [av]
    return []


def _ambiguous(body: Any, outer: int, state: Any) -> bool:
    """Whether a backtracking repetition's body holds a repetition (one of the two without
    bound) that nothing else in the body separates from the next round's."""
    seqs = _sequences(body)
    if outer == _c.MAXREPEAT and _spelt_twice(seqs):
        return True
    for seq in seqs:
        for i, (op, av) in enumerate(seq):
            if op in _REPEATS and av[1] > 1 and _c.MAXREPEAT in (outer, av[1]):
                rest = seq[:i] + seq[i + 1 :]
                if not any(_separates(r, av[2], state) for r in rest):
                    return True
    return False


def _spelt_twice(seqs: list[list[Any]]) -> bool:
    """Whether a word of the body's literal alternatives is also some of the others in a row
    (`(a|aa)+`, `(ab|a|b)*`): a name then splits in exponentially many ways."""
    words = {"".join(chr(av) for _, av in q) for q in seqs if all(o == _c.LITERAL for o, _ in q)}
    for word in words:
        # made[i]: word[:i] is made of the other words (made[0]: the empty start).
        made = [True] + [False] * len(word)
        for i in range(1, len(word) + 1):
            made[i] = any(made[i - len(w)] for w in words - {word} if word[:i].endswith(w))
        if made[-1] and word:
            return True
    return False


def _sequences(items: Any) -> list[list[Any]]:
    """A pattern as the flat sequences of items its groups and branches can be."""
    out: list[list[Any]] = [[]]
    for op, av in items:
        if op == _c.SUBPATTERN:
            alts = _sequences(av[3])
        elif op == _c.BRANCH:
            alts = [s for b in av[1] for s in _sequences(b)]
        else:
            alts = [[(op, av)]]
        out = [s + a for s in out for a in alts][:_MAX_SEQUENCES]
    return out


def _separates(item: Any, inner: Any, state: Any) -> bool:
    """Whether `item` must match a character (a literal) the repetition `inner` of one
    character (`\\w+`) cannot: the rounds of the outer repetition cannot overlap then."""
    op, av = item
    if op == _c.LITERAL:
        chars = [chr(av)]
    elif op == _c.IN and all(o == _c.LITERAL for o, _ in av):
        chars = [chr(v) for _, v in av]
    else:
        return False
    if len(inner.data) != 1 or inner.data[0][0] not in _ONE_CHAR:
        return False
    rx = _compiler.compile(_sre.SubPattern(state, list(inner.data)))
    return not any(rx.fullmatch(ch) for ch in chars)
