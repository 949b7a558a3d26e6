"""Inventory stage: the groups and hosts a source declares, as Ansible's InventoryData (pure).

The YAML and INI readers call the builder; `reconcile` then applies Ansible's implicit rules
(every parentless group under `all`, hosts of no group in `ungrouped`, group depth).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fleetmon.errors import InventoryError
from fleetmon.inventory.ranges import MAX_HOSTS, RAISE_HINT
from fleetmon.inventory.vars import CONTROL, KNOWN_VARS, check_var

#: Entries (a host named in a group) allowed per host: a fleet lists a host in a few groups.
ENTRIES_PER_HOST = 10


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was defined: file, 1-based line, and key path (`all.vars.x`)."""

    file: str
    line: int | None
    path: str = ""

    def error(self, detail: str) -> InventoryError:
        """An InventoryError at this place: `file:line: path: detail`."""
        message = f"{self.path}: {detail}" if self.path else detail
        return InventoryError(message, file=self.file, line=self.line)

    def child(self, key: str, line: int | None = None) -> Origin:
        """The origin of `key` below this one."""
        path = f"{self.path}.{key}" if self.path else key
        return Origin(self.file, self.line if line is None else line, path)


@dataclass(slots=True)
class GroupData:
    """A group while the inventory is read (mutable)."""

    name: str
    origin: Origin
    children: dict[str, None] = field(default_factory=dict)  # ordered set
    parents: dict[str, None] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    priority: int = 1
    depth: int = 0


@dataclass(slots=True)
class HostData:
    """A host while the inventory is read (mutable): direct groups and its own variables."""

    name: str
    origin: Origin
    groups: dict[str, None] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    source: str = ""  # the file that declared it first: Ansible's inventory_file


def checked(key: str, value: Any, origin: Origin) -> None:
    """Validate one variable's name, raising at its origin. A known variable's value is
    checked for each host that ends up with it (resolve.py), as Ansible checks it only
    when connecting: a bad one overridden, or on hosts not selected, costs nothing."""
    if not isinstance(key, str) or not key:
        raise origin.error(f"variable name must be a non-empty string, got {key!r}")
    if key in KNOWN_VARS:
        return
    try:
        check_var(key, value)  # an unknown fleetmon_* name: a typo wherever it is
    except ValueError as e:
        raise origin.error(str(e)) from None


#: Ansible's C.INVALID_VARIABLE_NAMES: a group name should be an identifier.
_INVALID_NAME = re.compile(r"^[\d\W]|[^\w]")


def _where(origin: Origin) -> str:
    return f"{origin.file}:{origin.line}" if origin.line is not None else origin.file


class Builder:
    """Collects groups, hosts and their variables in definition order.

    At most `max_hosts` hosts, named at most ENTRIES_PER_HOST times as many times in all
    (a host may be listed in several groups): the work stays bounded whatever the sources.
    """

    def __init__(self, file: str, max_hosts: int = MAX_HOSTS) -> None:
        self.file = file  # the source being read (several sources share one builder)
        self.max_hosts = max_hosts
        self._entries_left = max_hosts * ENTRIES_PER_HOST
        self.groups: dict[str, GroupData] = {}
        self.hosts: dict[str, HostData] = {}
        #: What Ansible would warn about and read anyway: `file:line: message`, in order.
        self.warnings: list[str] = []
        start = Origin(file, None)
        self.group("all", start)
        self.group("ungrouped", start)
        self.add_child("all", "ungrouped", start)

    def group(self, name: str, origin: Origin) -> GroupData:
        """The group called `name`, created on first mention."""
        g = self.groups.get(name)
        if g is None:
            if not name:
                raise origin.error("empty group name")
            g = self.groups[name] = GroupData(name, origin)
        return g

    def add_child(self, parent: str, child: str, origin: Origin) -> None:
        """Make `child` a child group of `parent`, refusing loops as Ansible does."""
        p, c = self.group(parent, origin), self.group(child, origin)
        if child in p.children:
            return
        if child == "all" or child == parent or self._reaches(child, parent):
            raise origin.error(f"adding group {child!r} to {parent!r} creates a dependency loop")
        p.children[child] = None
        c.parents[parent] = None

    def _reaches(self, start: str, target: str) -> bool:
        todo, seen = [start], {start}
        while todo:
            for kid in self.groups[todo.pop()].children:
                if kid == target:
                    return True
                if kid not in seen:
                    seen.add(kid)
                    todo.append(kid)
        return False

    def add_host(self, name: str, group: str, origin: Origin) -> HostData:
        """Declare host `name` in `group`; a second declaration is the same host."""
        self._entries_left -= 1
        if self._entries_left < 0:
            limit = self.max_hosts * ENTRIES_PER_HOST
            raise origin.error(
                f"hosts are named more than {limit:,} times in all, ten times the "
                f"{self.max_hosts:,} hosts allowed ({RAISE_HINT})"
            )
        h = self.hosts.get(name)
        if h is None:
            if CONTROL.search(name):
                # A name is printed in every report and passed to ssh: like a user name,
                # it may not carry a line break, an escape sequence or another control.
                raise origin.error(f"host name {name!r}: control characters are not allowed")
            if len(self.hosts) >= self.max_hosts:
                raise origin.error(
                    f"the inventory would have more than {self.max_hosts:,} hosts ({RAISE_HINT})"
                )
            h = self.hosts[name] = HostData(name, origin, source=self.file)
        h.groups[group] = None
        self.groups[group].hosts[name] = None
        return h

    def warn(self, origin: Origin, detail: str) -> None:
        """Record a warning at this place (`file:line: path: detail`)."""
        self.warnings.append(str(origin.error(detail)))

    def set_group_var(self, group: str, key: str, value: Any, origin: Origin) -> None:
        """Set a group variable from the inventory source (later definitions win)."""
        checked(key, value, origin)
        g = self.groups[group]
        if key == "ansible_group_priority":
            # Ansible keeps it as the group's priority, not as a variable, int()ed as the
            # group is read: a bad one fails the source (inventory/group.py).
            try:
                check_var(key, value)
            except ValueError as e:
                raise origin.error(str(e)) from None
            g.priority = int(value)
            return
        g.vars[key] = value
        g.origins[key] = origin

    def set_host_var(self, host: HostData, key: str, value: Any, origin: Origin) -> None:
        """Set a host variable from the inventory source (later definitions win)."""
        checked(key, value, origin)
        host.vars[key] = value
        host.origins[key] = origin

    def reconcile(self) -> None:
        """Apply Ansible's implicit structure (InventoryData.reconcile_inventory)."""
        self._warn_group_names()
        for g in list(self.groups.values()):
            if g.name != "all" and not g.parents:
                self.add_child("all", g.name, g.origin)
        ungrouped = self.groups["ungrouped"]
        for h in self.hosts.values():
            others = set(h.groups) - {"all", "ungrouped"}
            if "ungrouped" in h.groups and others:
                # The host is in a real group too: not ungrouped after all.
                del h.groups["ungrouped"]
                del ungrouped.hosts[h.name]
            elif not others:
                h.groups["ungrouped"] = None
                ungrouped.hosts[h.name] = None
        self._depths()

    def _warn_group_names(self) -> None:
        """Ansible warns about group names that are not identifiers (group.py
        to_safe_group_name with C.INVALID_VARIABLE_NAMES), once; so does this, with where."""
        bad = [g for g in self.groups.values() if _INVALID_NAME.search(g.name)]
        if not bad:
            return
        shown = ", ".join(f"{g.name!r} ({_where(g.origin)})" for g in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        self.warnings.append(
            f"group names with characters other than letters, digits and _ (Ansible warns "
            f"about them; they are not usable as variable names in templates): {shown}{more}"
        )

    def _depths(self) -> None:
        """Depth = longest path from `all`, the first key of Ansible's group sort."""
        order: list[str] = []
        marks: dict[str, bool] = {}

        def visit(name: str) -> None:  # post-order DFS: children before parents
            if name in marks:
                return
            marks[name] = True
            for kid in self.groups[name].children:
                visit(kid)
            order.append(name)

        visit("all")
        for name in reversed(order):  # a topological order: parents first
            g = self.groups[name]
            for kid in g.children:
                k = self.groups[kid]
                k.depth = max(k.depth, g.depth + 1)
