"""Inventory stage: the resolved inventory, variable precedence and host order (pure).

Precedence is Ansible's VariableManager with the default VARIABLE_PRECEDENCE: `all`'s vars,
then each group's from the inventory file (sorted by depth, priority, name), then
group_vars/all, then the playbook folder's group_vars/all, then group_vars/<group> (same
order), then the playbook folder's group_vars/<group>, then the host's own inventory vars,
then host_vars/<host>, then the playbook folder's host_vars/<host>. Each layer replaces keys
of the one below (hash_behaviour=replace). With several sources, the vars files of each
source in turn (vars/plugins.py loops over the sources outside, the groups inside). The
playbook folder is the current one (`ansible` and `ansible-inventory` read it too), applied
even when it is also a source's folder: its files count at both levels, as Ansible reads
them twice (load.py reads them once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fleetmon.inventory.data import Builder, GroupData, Origin
from fleetmon.inventory.patterns import refuse_file, select_names
from fleetmon.inventory.values import is_deferred
from fleetmon.inventory.vars import HOST_VARS, KNOWN_VARS, check_var, resolve_host
from fleetmon.model import HostSpec

#: The variables of one file or definition layer, and where each was defined.
VarLayer = tuple[dict[str, Any], dict[str, Origin]]


@dataclass(frozen=True, slots=True)
class Group:
    """One inventory group: direct children and hosts in definition order, and its own vars
    (inventory file, then group_vars/)."""

    name: str
    children: tuple[str, ...]
    hosts: tuple[str, ...]
    vars: Mapping[str, Any] = field(default_factory=dict)
    depth: int = 0
    priority: int = 1


class Inventory:
    """A loaded inventory: hosts in Ansible's order with merged vars, groups, host patterns."""

    __slots__ = (
        "_files",
        "_members",
        "_origins",
        "_unusable",
        "groups",
        "hosts",
        "path",
        "warnings",
    )

    def __init__(
        self,
        path: str,
        hosts: dict[str, HostSpec],
        groups: dict[str, Group],
        origins: dict[str, dict[str, Origin]],
        files: Mapping[str, str] | None = None,
        warnings: Sequence[str] = (),
        unusable: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.path = path
        self.hosts: Mapping[str, HostSpec] = hosts
        self.groups: Mapping[str, Group] = groups
        self._origins = origins
        self._members: dict[str, list[str]] = {}
        self._files = files or {}
        #: What was read anyway, as Ansible would with a warning (`file:line: ...`).
        self.warnings: tuple[str, ...] = tuple(warnings)
        self._unusable = unusable or {}

    def source_file(self, host: str) -> str:
        """The inventory file that declared a host first (Ansible's `inventory_file`)."""
        return self._files.get(host, self.path)

    def group_hosts(self, group: str) -> list[str]:
        """Every host of a group and its descendants, in Ansible's order (Group.get_hosts)."""
        if group == "all":
            return list(self.hosts)  # all's own hosts first: the order the hosts were made in
        if group not in self._members:
            self._members[group] = members(group, self.groups)
        return self._members[group]

    def unusable(self, host: str) -> tuple[str, str] | None:
        """The first variable of a host whose value fleetmon cannot use (a ProxyCommand, a
        port that is no number...) and why; the host is skipped when collecting."""
        return self._unusable.get(host)

    def origin(self, host: str, var: str) -> Origin | None:
        """Where the winning value of a host's variable was defined."""
        return self._origins.get(host, {}).get(var)

    def select(
        self, pattern: str | None, warn: Callable[[str], None] | None = None
    ) -> list[HostSpec]:
        """The hosts a `--limit` pattern selects (None: all); InventoryError if it selects
        none; a part that matches nothing is given to `warn`, as Ansible warns."""
        if pattern is None:
            return list(self.hosts.values())
        return [self.hosts[n] for n in select_names(self, pattern, strict=True, warn=warn)]

    def select_quiet(self, pattern: str) -> list[HostSpec]:
        """Like select, but an empty selection is an answer, not an error (rule scopes): a
        part that cannot be matched selects nothing, and no `@file` is read."""
        names = select_names(self, pattern, strict=False, read=refuse_file)
        return [self.hosts[n] for n in names]


def members(group: str, groups: Mapping[str, Group]) -> list[str]:
    """Hosts of `group` then of its descendants breadth first, each once (Ansible's order)."""
    order, seen_groups, frontier = [group], {group}, [group]
    while frontier:
        nxt = []
        for g in frontier:
            for kid in groups[g].children:
                if kid not in seen_groups:
                    seen_groups.add(kid)
                    order.append(kid)
                    nxt.append(kid)
        frontier = nxt
    seen: dict[str, None] = {}
    for g in order:
        for h in groups[g].hosts:
            seen.setdefault(h, None)
    return list(seen)


def _layered(layers: list[tuple[Mapping[str, Any], Mapping[str, Origin]]]) -> VarLayer:
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    for v, o in layers:
        values.update(v)
        origins.update(o)
    return values, origins


def build_inventory(
    path: str,
    b: Builder,
    group_files: Sequence[Mapping[str, VarLayer]] = (),
    host_files: Sequence[Mapping[str, VarLayer]] = (),
    play_files: tuple[Mapping[str, VarLayer], Mapping[str, VarLayer]] = ({}, {}),
) -> Inventory:
    """The Inventory of a reconciled builder plus the group_vars/ and host_vars/ files of each
    source, in source order, and the playbook folder's (group_vars, host_vars)."""
    empty: VarLayer = ({}, {})
    play_groups, play_hosts = play_files
    groups = {
        name: Group(
            name=name,
            children=tuple(g.children),
            hosts=tuple(g.hosts),
            vars=_layered(
                [(g.vars, {}), *(gf.get(name, empty) for gf in (*group_files, play_groups))]
            )[0],
            depth=g.depth,
            priority=g.priority,
        )
        for name, g in b.groups.items()
    }
    order = members("all", groups)
    # Hosts declared right under `all` order first, as in Ansible, but are shown (and
    # published) only under `ungrouped`, where reconcile also put them.
    groups["all"] = replace(groups["all"], hosts=())
    ancestors = _ancestor_table(b.groups)
    check = _Checks()
    layers = _all_layers(b, (*group_files, play_groups), (*host_files, play_hosts))
    special = any(check.special(layer) for layer in layers)
    unusable: dict[str, tuple[str, str]] = {}
    by_groupset: dict[frozenset[str], tuple[tuple[str, ...], VarLayer]] = {}
    hosts: dict[str, HostSpec] = {}
    origins: dict[str, dict[str, Origin]] = {}
    for name in order:
        h = b.hosts[name]
        key = frozenset(h.groups)
        cached = by_groupset.get(key)
        if cached is None:
            cached = by_groupset[key] = _group_vars(
                b, h.groups, ancestors, group_files, play_groups
            )
        group_names, (gvars, gorigins) = cached
        hvalues, horigins = _layered(
            [(h.vars, h.origins), *(hf.get(name, empty) for hf in (*host_files, play_hosts))]
        )
        origins[name] = {**gorigins, **horigins}
        values = {**gvars, **hvalues}
        if not special:
            hosts[name] = resolve_host(name, values, group_names)
            continue
        hosts[name], bad = _resolved(name, values, group_names, check)
        if bad is not None:
            unusable[name] = bad
    files = {n: h.source for n, h in b.hosts.items()}
    return Inventory(path, hosts, groups, origins, files, b.warnings, unusable)


class _Checks:
    """Why fleetmon cannot use a variable's value (None: it can), each value checked once:
    a group's value is one object shared by its hosts."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        # (name, id(value)) -> (value, why); the value is kept so its id stays its.
        self._seen: dict[tuple[str, int], tuple[object, str | None]] = {}

    def __call__(self, var: str, value: object) -> str | None:
        hit = self._seen.get((var, id(value)))
        if hit is not None and hit[0] is value:
            return hit[1]
        why = None
        if var in HOST_VARS and not is_deferred(value):
            try:
                check_var(var, value)
            except ValueError as e:
                why = str(e)
        self._seen[(var, id(value))] = (value, why)
        return why

    def special(self, layer: Mapping[str, Any]) -> bool:
        """Whether a layer has a template, a vault value or a value fleetmon cannot use:
        only then are hosts' values sorted out one by one."""
        return any(
            is_deferred(layer[k]) or self(k, layer[k]) is not None
            for k in KNOWN_VARS.intersection(layer)
        )


def _resolved(
    name: str, values: dict[str, Any], group_names: tuple[str, ...], check: _Checks
) -> tuple[HostSpec, tuple[str, str] | None]:
    """The host's settings from its variables, and its first value fleetmon cannot use with
    the reason. Values had when connecting (templates, vault: connect.py) and unusable ones
    (the host is skipped: connect.py) are left out until then."""
    held = {k for k in KNOWN_VARS.intersection(values) if is_deferred(values[k])}
    bad = None
    for k in HOST_VARS:  # a fixed order: the first bad one is the reason given
        if k in values and k not in held and (why := check(k, values[k])) is not None:
            held.add(k)
            bad = bad or (k, why)
    plain = {k: v for k, v in values.items() if k not in held} if held else values
    return replace(resolve_host(name, plain, group_names), vars=values), bad


def _group_vars(
    b: Builder,
    host_groups: Iterable[str],
    ancestors: Mapping[str, frozenset[str]],
    group_files: Sequence[Mapping[str, VarLayer]],
    play_groups: Mapping[str, VarLayer],
) -> tuple[tuple[str, ...], VarLayer]:
    """A host's group names (its groups and their ancestors but `all`) and the variables
    they give it, layered as Ansible does: `all`, then the groups in sort_groups order
    (depth, priority, name), then group_vars/ files' `all` in source order, the playbook
    folder's `all`, the files' groups in source order, the playbook folder's groups."""
    mine = set().union(*(ancestors[g] for g in host_groups)) - {"all"}
    ordered = sorted(mine, key=lambda n: (b.groups[n].depth, b.groups[n].priority, n))
    empty: VarLayer = ({}, {})
    all_g = b.groups["all"]
    layers: list[tuple[Mapping[str, Any], Mapping[str, Origin]]] = [(all_g.vars, all_g.origins)]
    layers += [(b.groups[g].vars, b.groups[g].origins) for g in ordered]
    layers += [gf.get("all", empty) for gf in group_files]
    layers.append(play_groups.get("all", empty))
    layers += [gf.get(g, empty) for gf in group_files for g in ordered]
    layers += [play_groups.get(g, empty) for g in ordered]
    return tuple(sorted(mine)), _layered(layers)


def _all_layers(
    b: Builder,
    group_files: Sequence[Mapping[str, VarLayer]],
    host_files: Sequence[Mapping[str, VarLayer]],
) -> list[Mapping[str, Any]]:
    layers: list[Mapping[str, Any]] = [g.vars for g in b.groups.values()]
    layers += [h.vars for h in b.hosts.values() if h.vars]
    layers += [v for files in (*group_files, *host_files) for v, _ in files.values()]
    return layers


def _ancestor_table(groups: Mapping[str, GroupData]) -> dict[str, frozenset[str]]:
    """Each group with all its ancestors (itself included)."""
    table: dict[str, frozenset[str]] = {}

    def up(name: str) -> frozenset[str]:
        if name not in table:
            found = {name}
            for parent in groups[name].parents:
                found |= up(parent)
            table[name] = frozenset(found)
        return table[name]

    for name in groups:
        up(name)
    return table
