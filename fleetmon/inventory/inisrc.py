"""Inventory stage: INI inventories, text to builder (pure).

Follows Ansible's plugins/inventory/ini.py: lines before any section are `ungrouped` hosts;
`[g]` hosts, `[g:children]` group names, `[g:vars]` key=value; host lines split like a shell
(quotes, `#` comments); every value goes through `ast.literal_eval` and stays a string when
that fails (`2222` -> int, `True` -> bool, `yes` -> 'yes', `'a b'` -> 'a b'); then, as
Ansible's _parse_recursive_coerce_types_and_tag: tuples and sets become lists, bytes
untemplated (unsafe) text, `...` and complex numbers the text Python prints for them.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from fleetmon.errors import did_you_mean
from fleetmon.inventory.data import Builder, Origin
from fleetmon.inventory.ranges import RangeError, expand_host_pattern
from fleetmon.inventory.values import Unsafe

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_STATES = ("hosts", "children", "vars")
_INT = re.compile(r"^(?:[1-9][0-9]*|0)$")
# Text that literal_eval cannot take (a name, `web-01`, `192.0.2.7`): no quote to make it a
# u''/r''/b'' string, no bracket or paren to make it a container or a call (`set()`).
_NOT_LITERAL = re.compile(r"^(?:[A-Za-z_][^'\"#(\[{]*|\d+(?:\.\d+){2,})$")
_LITERAL_NAMES = {"True": True, "False": False, "None": None}
_FAST_SPLIT = re.compile(r"['\"\\#]")  # without these, shlex.split is a whitespace split


def parse_value(text: str) -> Any:
    """Ansible's INI `_parse_value`: a Python literal when it is one, else the text itself."""
    # Fast paths for the common shapes, with the results literal_eval would give.
    if _INT.match(text):
        return int(text)
    if _NOT_LITERAL.match(text):
        return _LITERAL_NAMES.get(text, text)
    try:
        if "\\" in text:
            with warnings.catch_warnings():
                # "\d" in a quoted Windows path warns (Deprecation- in 3.11, SyntaxWarning
                # from 3.12); under -W error the compiler would make it a SyntaxError.
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                value = ast.literal_eval(text)
        else:
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _coerce(value)


def _coerce(value: Any) -> Any:
    """Python literals that are not variable types, as Ansible turns them into some."""
    if isinstance(value, list | tuple | set):
        return [_coerce(v) for v in value]
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)  # `1+2j` -> '(1+2j)', as Ansible prints it
    if isinstance(value, bytes):
        # Ansible decodes it but does not trust it as a template: it is `!unsafe` text.
        return Unsafe(value.decode("utf-8", "surrogateescape"))
    return value


def _tokens(line: str, at: Origin) -> list[str]:
    if not _FAST_SPLIT.search(line):
        return line.split()
    try:
        return shlex.split(line, comments=True)
    except ValueError as e:
        raise at.error(f"cannot parse host line ({e}): {line}") from None


class _Reader:
    def __init__(self, b: Builder, file: str) -> None:
        self.b = b
        self.file = file
        self.group = "ungrouped"
        self.state = "hosts"
        # Groups named in [x:children] or [x:vars] before any [x] or [x:children] header:
        # Ansible accepts them only if declared later in the file.
        self.pending: dict[str, tuple[str, Origin]] = {}

    def line(self, lineno: int, raw: str) -> None:
        line = raw.strip()
        if not line or line[0] in "#;":
            return
        at = Origin(self.file, lineno)
        m = _SECTION.match(line)
        if m:
            self.section(m.group(1), m.group(2), line, at)
        elif line.startswith("[") and line.endswith("]"):
            raise at.error(f"invalid section header {line} (no spaces, one ':' at most)")
        elif self.state == "hosts":
            self.host_line(line, lineno)
        elif self.state == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise at.error(f"[{self.group}:vars]: expected key=value, got {line!r}")
            key = key.strip()
            here = at.child(f"{self.group}.vars.{key}")
            self.b.set_group_var(self.group, key, parse_value(value.strip()), here)
        else:
            m = _GROUP_NAME.match(line)
            if not m:
                raise at.error(f"[{self.group}:children]: expected a group name, got {line!r}")
            child = m.group(1)
            here = at.child(f"{self.group}.children.{child}")
            if child not in self.b.groups:
                self.pending.setdefault(child, ("children", here))
            self.b.add_child(self.group, child, here)

    def section(self, name: str, state: str | None, line: str, at: Origin) -> None:
        state = state or "hosts"
        if state not in _STATES:
            hint = did_you_mean(state, _STATES)
            raise at.error(f"{line}: unknown section type {state!r}{hint}")
        if name not in self.b.groups and state == "vars":
            self.pending.setdefault(name, ("vars", at))
        if state != "vars":
            self.pending.pop(name, None)
        self.b.group(name, at.child(name))
        self.group, self.state = name, state

    def host_line(self, line: str, lineno: int) -> None:
        at = Origin(self.file, lineno, f"{self.group}.hosts")
        tokens = _tokens(line, at)
        if not tokens:
            return  # only a comment after all
        if tokens[0] == "---":
            raise at.error("'---' looks like YAML: name the file .yaml or .yml")
        try:
            names, port = expand_host_pattern(tokens[0], self.b.max_hosts)
        except RangeError as e:
            raise at.child(tokens[0]).error(str(e)) from None
        path = f"{self.group}.hosts.{tokens[0]}"
        at = Origin(self.file, lineno, path)
        defs: list[tuple[str, Any, Origin]] = []
        if port is not None:
            defs.append(("ansible_port", port, at))
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep or not key:
                raise at.error(f"expected key=value host variable, got {token!r}")
            defs.append((key, parse_value(value), Origin(self.file, lineno, f"{path}.{key}")))
        for name in names:
            host = self.b.add_host(name, self.group, at)
            for key, value, origin in defs:
                self.b.set_host_var(host, key, value, origin)

    def finish(self) -> None:
        for name, (state, at) in self.pending.items():
            if state == "vars":
                raise at.error(f"[{name}:vars] is for a group that is never declared")
            raise at.error(f"group {name!r} is never declared ([{name}] section missing)")


def parse_ini_inventory(text: str, file: str, b: Builder) -> None:
    """Read an INI inventory into the builder; InventoryError at the offending line."""
    reader = _Reader(b, file)
    for lineno, raw in enumerate(text.splitlines(), 1):
        reader.line(lineno, raw)
    reader.finish()
