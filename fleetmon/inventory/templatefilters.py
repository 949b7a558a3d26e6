"""Inventory stage: the ansible.builtin filters and tests inventory templates commonly use (pure).

Same names and arguments as ansible-core's (plugins/filter/core.py, plugins/test/core.py),
registered under their short and `ansible.builtin.` names; Jinja's own filters (default,
lower, replace, join, int...) come with Jinja. A filter that is not here is an error
naming it when a host needs the value.

Their regexes are checked as `~regex` host patterns are (regexcost.py): one that can take
exponential time to match raises CostlyRegex, which ends the run; one that does not compile
is a ValueError (the host is skipped, as Ansible fails it). Ansible checks neither.
"""

from __future__ import annotations

import base64
import functools
import json
import ntpath
import os.path
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import Undefined

from fleetmon.inventory.regexcost import CostlyRegex, regex_problem
from fleetmon.inventory.vars import parse_bool


def _bool(value: Any) -> bool:
    """Ansible's `bool` filter: lenient, anything not true-looking is False."""
    if value is None or isinstance(value, Undefined):
        return False
    try:
        return parse_bool(value)
    except ValueError:
        return False


def _ternary(value: Any, true_val: Any, false_val: Any, none_val: Any = None) -> Any:
    if value is None and none_val is not None:
        return none_val
    return true_val if value else false_val


def _flags(ignorecase: bool, multiline: bool) -> int:
    return (re.IGNORECASE if ignorecase else 0) | (re.MULTILINE if multiline else 0)


def _compile(
    name: str, pattern: str, ignorecase: bool = False, multiline: bool = False
) -> re.Pattern[str]:
    """`pattern` compiled for the filter or test `name`, once checked (regexcost.py)."""
    return _checked(name, pattern, _flags(ignorecase, multiline))


@functools.lru_cache(maxsize=256)  # a group's template runs the same regex for each host
def _checked(name: str, pattern: str, flags: int) -> re.Pattern[str]:
    try:
        rx = re.compile(pattern, flags)
    except re.error as e:  # not a ValueError: it would escape the renderer's handling
        raise ValueError(f"{name}: {pattern!r} is not a valid regular expression ({e})") from None
    problem = regex_problem(pattern, "value")
    if problem is not None:
        raise CostlyRegex(f"{name} {pattern!r}: {problem}")
    return rx


def _regex_replace(
    value: Any,
    pattern: str = "",
    replacement: str = "",
    ignorecase: bool = False,
    multiline: bool = False,
    count: int = 0,
) -> str:
    rx = _compile("regex_replace", pattern, ignorecase, multiline)
    return rx.sub(replacement, str(value), count=count)


def _regex_search(value: Any, regex: str, *groups: str, **kw: bool) -> Any:
    rx = _compile("regex_search", regex, kw.get("ignorecase", False), kw.get("multiline", False))
    m = rx.search(str(value))
    if m is None:
        return None
    if not groups:
        return m.group(0)
    picked = []
    for g in groups:
        ref = g[1:] if g.startswith("\\") else g
        ref = ref[2:-1] if ref.startswith("g<") and ref.endswith(">") else ref
        picked.append(m.group(int(ref) if ref.isdigit() else ref))
    return picked


def _regex_findall(
    value: Any, regex: str, multiline: bool = False, ignorecase: bool = False
) -> Any:
    return _compile("regex_findall", regex, ignorecase, multiline).findall(str(value))


def _split(value: Any, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    return str(value).split(sep, maxsplit)


def _mandatory(value: Any, msg: str | None = None) -> Any:
    if isinstance(value, Undefined):
        raise ValueError(msg or "mandatory variable not defined")
    return value


def _b64decode(value: Any, encoding: str = "utf-8") -> str:
    return base64.b64decode(str(value)).decode(encoding)


def _b64encode(value: Any, encoding: str = "utf-8") -> str:
    return base64.b64encode(str(value).encode(encoding)).decode("ascii")


def _combine(*dicts: Any, recursive: bool = False, list_merge: str = "replace") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        for item in d if isinstance(d, list) else [d]:
            out = _merge(out, item) if recursive else {**out, **item}
    return out


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _flatten(value: Any, levels: int | None = None) -> list[Any]:
    out: list[Any] = []
    for item in value:
        if isinstance(item, list) and (levels is None or levels > 0):
            out.extend(_flatten(item, None if levels is None else levels - 1))
        else:
            out.append(item)
    return out


def _dict2items(value: Mapping[str, Any], key_name: str = "key", value_name: str = "value") -> Any:
    return [{key_name: k, value_name: v} for k, v in value.items()]


def _items2dict(value: Any, key_name: str = "key", value_name: str = "value") -> dict[Any, Any]:
    return {item[key_name]: item[value_name] for item in value}


def _match(
    value: Any, pattern: str = "", ignorecase: bool = False, multiline: bool = False
) -> bool:
    return _compile("match", pattern, ignorecase, multiline).match(str(value)) is not None


def _search(
    value: Any, pattern: str = "", ignorecase: bool = False, multiline: bool = False
) -> bool:
    return _compile("search", pattern, ignorecase, multiline).search(str(value)) is not None


def _both(table: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    return {**table, **{f"ansible.builtin.{k}": f for k, f in table.items()}}


FILTERS = _both(
    {
        "bool": _bool,
        "ternary": _ternary,
        "regex_replace": _regex_replace,
        "regex_search": _regex_search,
        "regex_findall": _regex_findall,
        "regex_escape": lambda s, re_type="python": re.escape(str(s)),
        "basename": lambda p: posixpath.basename(str(p)),
        "dirname": lambda p: posixpath.dirname(str(p)),
        "win_basename": lambda p: ntpath.basename(str(p)),
        "expanduser": lambda p: os.path.expanduser(str(p)),
        "splitext": lambda p: list(posixpath.splitext(str(p))),
        "path_join": lambda parts: posixpath.join(*parts) if isinstance(parts, list) else parts,
        "quote": lambda s: shlex.quote(str(s)),
        "to_json": lambda v, **kw: json.dumps(v, **kw),
        "to_nice_json": lambda v, indent=4, **kw: json.dumps(v, indent=indent, sort_keys=True),
        "from_json": lambda s, **kw: json.loads(s),
        "split": _split,
        "mandatory": _mandatory,
        "b64decode": _b64decode,
        "b64encode": _b64encode,
        "combine": _combine,
        "flatten": _flatten,
        "dict2items": _dict2items,
        "items2dict": _items2dict,
        "type_debug": lambda v: type(v).__name__,
    }
)
TESTS = _both({"match": _match, "search": _search, "regex": _search})
