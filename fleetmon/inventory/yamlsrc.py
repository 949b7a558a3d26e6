"""Inventory stage: YAML inventories and group_vars/host_vars files, text to builder (pure).

Walks PyYAML's composed node tree (libyaml's CSafeLoader when present) instead of
`safe_load`, so every group, host and variable keeps the line it came from.
Structure as Ansible's plugins/inventory/yaml.py: groups with `hosts`, `children`, `vars`.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fleetmon.errors import InventoryError, did_you_mean
from fleetmon.inventory.data import Builder, Origin, checked
from fleetmon.inventory.ranges import RangeError, expand_host_pattern
from fleetmon.inventory.values import register_yaml_tags

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """The safe loader with its implicit-tag resolver memoized per document: libyaml calls
    it in Python for every scalar, and an inventory repeats the same keys 50,000 times.
    Safe: the safe loader's tag depends only on (kind, value, implicit), no path resolvers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[type[Node], str, tuple[bool, bool]], str] = {}

    def descend_resolver(self, current_node: Node | None, current_index: object) -> None:
        return None  # path resolvers: the safe loader has none (libyaml calls this per node)

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        key = (kind, value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag


register_yaml_tags(_Loader)  # !vault, !unsafe, as Ansible's loader
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_SECTIONS = ("vars", "children", "hosts")


def _yaml_error(e: yaml.YAMLError, file: str) -> InventoryError:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or e.context or "invalid YAML"
        if "!vault" in problem:
            return InventoryError("vault-encrypted values are not supported", file=file, line=line)
        return InventoryError(f"invalid YAML: {problem}", file=file, line=line)
    return InventoryError(f"invalid YAML: {' '.join(str(e).split())}", file=file)


class _Doc:
    """One composed YAML document and the loader that turns its nodes into values."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        if text.lstrip().startswith("$ANSIBLE_VAULT;"):
            raise InventoryError("vault-encrypted files are not supported", file=file, line=1)
        self.loader = _Loader(text)
        try:
            self.root: Node | None = self.loader.get_single_node()
        except yaml.YAMLError as e:
            raise _yaml_error(e, file) from None

    def origin(self, node: Node, path: str) -> Origin:
        return Origin(self.file, node.start_mark.line + 1, path)

    def value(self, node: Node) -> Any:
        if node.tag == _STR and isinstance(node, ScalarNode):
            return node.value  # what construct_yaml_str gives, without its call chain
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise _yaml_error(e, self.file) from None

    def pairs(self, node: MappingNode) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping, with `<<` merge keys applied."""
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as e:
            raise _yaml_error(e, self.file) from None
        out: list[tuple[str, Node, Node]] = []
        for k, v in node.value:
            if not isinstance(k, ScalarNode) or k.tag == _NULL:
                raise self.origin(k, "").error(f"expected a name as key, got {_kind(k)}")
            out.append((k.value, k, v))
        return out

    def close(self) -> None:
        self.loader.dispose()


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a sequence"
    return "nothing" if node.tag == _NULL else repr(node.value)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _mapping(doc: _Doc, node: Node, path: str, what: str = "a mapping") -> MappingNode | None:
    """The node as a mapping, None for an empty value, an error for anything else."""
    if _is_null(node):
        return None
    if not isinstance(node, MappingNode):
        raise doc.origin(node, path).error(f"expected {what}, got {_kind(node)}")
    return node


def parse_yaml_inventory(text: str, file: str, b: Builder) -> None:
    """Read a YAML inventory into the builder; InventoryError at the offending line."""
    doc = _Doc(text, file)
    try:
        if doc.root is None or _is_null(doc.root):
            raise InventoryError("inventory is empty", file=file)
        root = _mapping(doc, doc.root, "", "a mapping of groups (all: hosts: ...)")
        assert root is not None  # not null, checked above
        for name, knode, vnode in doc.pairs(root):
            if name == "plugin":
                raise doc.origin(knode, name).error(
                    "inventory plugin configurations are not supported (static inventories only)"
                )
            _group(doc, b, name, vnode, doc.origin(knode, name))
    finally:
        doc.close()


def _group(doc: _Doc, b: Builder, name: str, node: Node, at: Origin) -> None:
    b.group(name, at)
    data = _mapping(doc, node, at.path, "a mapping with hosts, children or vars")
    if data is None:
        return
    for key, knode, vnode in doc.pairs(data):
        here = doc.origin(knode, f"{at.path}.{key}")
        if key not in _SECTIONS:
            raise here.error(f"unknown key{did_you_mean(key, _SECTIONS)}")
        if isinstance(vnode, ScalarNode) and not _is_null(vnode) and key != "vars":
            # Ansible accepts `hosts: web1` and `children: kvm` for a single entry.
            _entry(doc, b, name, key, vnode.value, None, doc.origin(vnode, f"{here.path}"))
            continue
        section = _mapping(doc, vnode, here.path)
        if section is None:
            continue
        for entry, enode, evalue in doc.pairs(section):
            _entry(doc, b, name, key, entry, evalue, doc.origin(enode, f"{here.path}.{entry}"))


def _entry(
    doc: _Doc, b: Builder, group: str, section: str, key: str, node: Node | None, at: Origin
) -> None:
    if section == "vars":
        assert node is not None
        b.set_group_var(group, key, doc.value(node), at)
    elif section == "children":
        b.add_child(group, key, at)
        _group(doc, b, key, node if node is not None else ScalarNode(_NULL, ""), at)
    else:
        _hosts(doc, b, group, key, node, at)


def _hosts(doc: _Doc, b: Builder, group: str, pattern: str, node: Node | None, at: Origin) -> None:
    try:
        names, port = expand_host_pattern(pattern)
    except RangeError as e:
        raise at.error(str(e)) from None
    hvars = _mapping(doc, node, at.path, "a mapping of variables") if node is not None else None
    defs: list[tuple[str, Any, Origin]] = []
    if port is not None:
        defs.append(("ansible_port", port, at))
    if hvars is not None:
        for var, vk, vv in doc.pairs(hvars):
            defs.append((var, doc.value(vv), doc.origin(vk, f"{at.path}.{var}")))
    for name in names:
        host = b.add_host(name, group, at)
        for var, value, origin in defs:
            b.set_host_var(host, var, value, origin)


def parse_vars_file(text: str, file: str) -> tuple[dict[str, Any], dict[str, Origin]]:
    """The variables of a group_vars/host_vars YAML file (empty file: none), with origins."""
    doc = _Doc(text, file)
    try:
        if doc.root is None or _is_null(doc.root):
            return {}, {}
        root = _mapping(doc, doc.root, "", "a mapping of variables")
        assert root is not None
        values: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        for var, knode, vnode in doc.pairs(root):
            origin = doc.origin(knode, var)
            values[var] = doc.value(vnode)
            checked(var, values[var], origin)
            origins[var] = origin
        return values, origins
    finally:
        doc.close()


def is_yaml_mapping(text: str) -> bool:
    """Whether the text is a YAML document whose top is a mapping (Ansible tries YAML first)."""
    try:
        doc = _Doc(text, "")
    except InventoryError:
        return False
    try:
        return isinstance(doc.root, MappingNode)
    finally:
        doc.close()
