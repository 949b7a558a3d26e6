"""Inventory stage: YAML inventories and group_vars/host_vars files, text to builder (pure).

Walks the YAML node tree of model.yamlnodes (libyaml's parser) instead of `safe_load`'s
data, so every group, host and variable keeps the line it came from.
Structure as Ansible's plugins/inventory/yaml.py: groups with `hosts`, `children`, `vars`.
"""

from __future__ import annotations

import json
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from fleetmon.errors import InventoryError, did_you_mean
from fleetmon.inventory.data import Builder, Origin, checked
from fleetmon.inventory.ranges import RangeError, expand_host_pattern
from fleetmon.inventory.values import from_json, json_hook, register_yaml_tags
from fleetmon.model.yamlnodes import NULL_TAG, STR_TAG, FastLoader, YamlDoc, is_null, kind


class _Loader(FastLoader):
    """The shared fast loader, reading Ansible's `!vault`, `!unsafe` and `!!set` as Ansible's."""


register_yaml_tags(_Loader)
_SECTIONS = ("vars", "children", "hosts")


class _Doc(YamlDoc):
    """A YAML inventory or vars file: its nodes, with Origins for the builder."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text, file, error=InventoryError, loader=_Loader)
        self._json: bool | None = None  # known when a variable is first read

    def var(self, node: Node, what: str) -> Any:
        """A variable's value: in a file Ansible reads as JSON (it tries JSON first, with
        its decoder), `{"__ansible_vault": text}` is a vault value, `__ansible_unsafe` unsafe."""
        if self._json is None:
            self._json = _is_json(self._text)
        value = self.value(node, what)
        return from_json(value) if self._json else value

    def origin(self, node: Node, path: str) -> Origin:
        return Origin(self.file, self.line(node), path)

    def names(self, node: MappingNode) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping whose keys are names."""
        out: list[tuple[str, Node, Node]] = []
        for k, v in self.pairs(node):
            if not isinstance(k, ScalarNode) or k.tag == NULL_TAG:
                raise self.origin(k, "").error(f"expected a name as key, got {kind(k)}")
            out.append((k.value, k, v))
        return out

    def repeated_keys(self) -> list[str]:
        """Warnings for the keys given twice in one mapping: the last value is used, as
        Ansible's loader uses it ("Found duplicate mapping key")."""
        return [
            str(
                self.origin(k, "").error(
                    f"duplicate key {self._key_text(k)!r}: its last value is used, "
                    "as Ansible uses it"
                )
            )
            for k in self.duplicates()
        ]

    def _key_text(self, node: Node) -> str:
        return node.value if isinstance(node, ScalarNode) else kind(node)


def _is_json(text: str) -> bool:
    """Whether Ansible's DataLoader reads this text as JSON (json.loads with its legacy
    decoder, a marker of a type it refuses failing it), not as YAML."""
    if not text.lstrip().startswith("{"):
        return False  # a mapping is all an inventory or vars file may be
    try:
        json.loads(text, object_hook=json_hook)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _mapping(doc: _Doc, node: Node, path: str, what: str = "a mapping") -> MappingNode | None:
    """The node as a mapping, None for an empty value, an error for anything else."""
    if is_null(node):
        return None
    if not isinstance(node, MappingNode):
        raise doc.origin(node, path).error(f"expected {what}, got {kind(node)}")
    return node


def parse_yaml_inventory(text: str, file: str, b: Builder) -> None:
    """Read a YAML inventory into the builder; InventoryError at the offending line."""
    with _Doc(text, file) as doc:
        if doc.root is None or is_null(doc.root):
            return  # an empty inventory, as Ansible reads it (its INI plugin takes the file)
        root = _mapping(doc, doc.root, "", "a mapping of groups (all: hosts: ...)")
        assert root is not None  # not null, checked above
        for name, knode, vnode in doc.names(root):
            if name == "plugin":
                raise doc.origin(knode, name).error(
                    "inventory plugin configurations are not supported (static inventories only)"
                )
            at = doc.origin(knode, name)
            if not is_null(vnode) and not isinstance(vnode, MappingNode):
                # Ansible skips such a top-level entry with a warning and reads the rest.
                b.warn(
                    at,
                    f"not a group (a mapping with hosts, children or vars): skipped, "
                    f"as Ansible skips it; got {kind(vnode)}",
                )
                continue
            _check_name(doc, knode, at, "group")
            _group(doc, b, name, vnode, at)
        b.warnings.extend(doc.repeated_keys())


def _group(doc: _Doc, b: Builder, name: str, node: Node, at: Origin) -> None:
    b.group(name, at)
    data = _mapping(doc, node, at.path, "a mapping with hosts, children or vars")
    if data is None:
        return
    for key, knode, vnode in doc.names(data):
        here = doc.origin(knode, f"{at.path}.{key}")
        if key not in _SECTIONS:
            # Ansible's yaml plugin warns and goes on (`host:` for `hosts:` is a typo).
            b.warn(here, f"unknown key: skipped, as Ansible skips it{did_you_mean(key, _SECTIONS)}")
            continue
        if isinstance(vnode, ScalarNode) and not is_null(vnode):
            if key == "vars":
                # Ansible turns the text into a variable of that name with no value.
                b.warn(
                    here,
                    f"not a mapping: Ansible reads {vnode.value!r} as the name of a "
                    "variable with no value (write `vars: {name: value}`)",
                )
                b.set_group_var(name, vnode.value, None, here)
                continue
            # Ansible accepts `hosts: web1` and `children: kvm` for a single entry.
            where = doc.origin(vnode, f"{here.path}")
            _check_name(doc, vnode, where, "host" if key == "hosts" else "group", key=False)
            _entry(doc, b, name, key, vnode.value, None, where)
            continue
        section = _mapping(doc, vnode, here.path)
        if section is None:
            continue
        for entry, enode, evalue in doc.names(section):
            where = doc.origin(enode, f"{here.path}.{entry}")
            if key != "vars":
                _check_name(doc, enode, where, "host" if key == "hosts" else "group")
            _entry(doc, b, name, key, entry, evalue, where)


def _check_name(doc: _Doc, node: Node, at: Origin, what: str, *, key: bool = True) -> None:
    """Refuse a group or host name that YAML reads as something other than text (`1234`,
    `no`, `on`, `2024-01-01`), as Ansible refuses it ("expected a string but got int",
    "Invalid empty/false group name", "requires a dictionary")."""
    if node.tag == STR_TAG or not isinstance(node, ScalarNode):
        return
    value = doc.value(node, at.path or None)
    if isinstance(value, bool):
        reads = f"the boolean {str(value).lower()}"
    elif isinstance(value, int | float):
        reads = "a number"
    else:
        reads = f"a {type(value).__name__}"  # a date, a datetime
    quoted = f"'{node.value}':" if key else f"'{node.value}'"
    raise at.error(
        f"a {what} name must be a string (YAML reads {node.value} as {reads}): quote it ({quoted})"
    )


def _entry(
    doc: _Doc, b: Builder, group: str, section: str, key: str, node: Node | None, at: Origin
) -> None:
    if section == "vars":
        assert node is not None
        b.set_group_var(group, key, doc.var(node, at.path), at)
    elif section == "children":
        b.add_child(group, key, at)
        _group(doc, b, key, node if node is not None else ScalarNode(NULL_TAG, ""), at)
    else:
        _hosts(doc, b, group, key, node, at)


def _hosts(doc: _Doc, b: Builder, group: str, pattern: str, node: Node | None, at: Origin) -> None:
    try:
        names, port = expand_host_pattern(pattern, b.max_hosts)
    except RangeError as e:
        raise at.error(str(e)) from None
    if (
        node is not None
        and not is_null(node)
        and not isinstance(node, MappingNode)
        and not doc.value(node, at.path)
    ):
        # Ansible's yaml plugin takes `h1: ''` (or [], 0, false) as no variables (`or {}`).
        b.warn(
            at,
            f"expected a mapping of variables, got {kind(node)}: read as none, as Ansible reads it",
        )
        node = None
    hvars = _mapping(doc, node, at.path, "a mapping of variables") if node is not None else None
    defs: list[tuple[str, Any, Origin]] = []
    if port is not None:
        defs.append(("ansible_port", port, at))
    if hvars is not None:
        for var, vk, vv in doc.names(hvars):
            defs.append((var, doc.var(vv, f"{at.path}.{var}"), doc.origin(vk, f"{at.path}.{var}")))
    for name in names:
        host = b.add_host(name, group, at)
        for var, value, origin in defs:
            b.set_host_var(host, var, value, origin)


def parse_vars_file(
    text: str, file: str, warnings: list[str] | None = None
) -> tuple[dict[str, Any], dict[str, Origin]]:
    """The variables of a group_vars/host_vars YAML file (empty file: none), with origins;
    what Ansible warns about (a key given twice) is added to `warnings`."""
    with _Doc(text, file) as doc:
        if doc.root is None or is_null(doc.root):
            return {}, {}
        root = _mapping(doc, doc.root, "", "a mapping of variables")
        assert root is not None
        values: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        for var, knode, vnode in doc.names(root):
            origin = doc.origin(knode, var)
            values[var] = doc.var(vnode, var)
            checked(var, values[var], origin)
            origins[var] = origin
        if warnings is not None:
            warnings.extend(doc.repeated_keys())
        return values, origins


def is_yaml_mapping(text: str) -> bool:
    """Whether the text is a YAML document whose top is a mapping (Ansible tries YAML first)."""
    try:
        doc = _Doc(text, "")
    except InventoryError:
        return False
    with doc:
        return isinstance(doc.root, MappingNode)
