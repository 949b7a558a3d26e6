"""Inventory stage: the values an inventory holds besides plain data (pure).

`!vault |` values are decrypted only where fleetmon needs them; `!unsafe`
text is never rendered as a template; a string with `{{`, `{%` or `{#` is a template,
rendered when connecting (template.py) and shown as written. As Ansible's YAML
constructors (lib/ansible/_internal/_yaml/_constructor.py) and its JSON markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

#: The first word of a vault-encrypted file or value.
HEADER = "$ANSIBLE_VAULT"


@dataclass(frozen=True, slots=True)
class Vaulted:
    """An inline `!vault |` value as written: decrypted only where fleetmon needs it."""

    ciphertext: str


class Unsafe(str):
    """Text marked `!unsafe`: taken literally, never rendered."""

    __slots__ = ()


def is_encrypted(text: str | bytes) -> bool:
    """Whether a text (a file's or a value's) is vault-encrypted."""
    head = text.lstrip()[: len(HEADER)]
    return (head.decode("ascii", "replace") if isinstance(head, bytes) else head) == HEADER


def is_template(value: object) -> bool:
    """Whether a value is text that Ansible would render as a Jinja template."""
    return (
        isinstance(value, str)
        and not isinstance(value, Unsafe)
        and ("{{" in value or "{%" in value or "{#" in value)
    )


def is_deferred(value: object) -> bool:
    """Whether a value is only known when connecting: a template, or vault-encrypted."""
    return isinstance(value, Vaulted) or is_template(value)


def _vault(loader: yaml.BaseLoader, node: Node) -> Vaulted:
    if not isinstance(node, ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!vault must be a text (the vault block)", node.start_mark
        )
    return Vaulted(node.value)


def _unsafe(loader: yaml.BaseLoader, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        return Unsafe(node.value)
    raise yaml.constructor.ConstructorError(
        None, None, "!unsafe is supported on text only", node.start_mark
    )


def _ordered_set(loader: yaml.SafeLoader, node: Node) -> list[Any]:
    # A `!!set` becomes a list, as Ansible prints it, in the file's order (a Python set's
    # order would change from run to run).
    if not isinstance(node, MappingNode):
        return []
    return [loader.construct_object(k, deep=True) for k, _ in node.value]


def register_yaml_tags(loader: type[yaml.SafeLoader]) -> None:
    """Teach a loader class Ansible's `!vault`, `!vault-encrypted` and `!unsafe` tags."""
    loader.add_constructor("!vault", _vault)
    loader.add_constructor("!vault-encrypted", _vault)
    loader.add_constructor("!unsafe", _unsafe)
    loader.add_constructor("tag:yaml.org,2002:set", _ordered_set)


#: Ansible's JSON markers (its legacy profile's deserialize_map), in the order it tries them.
_MARKERS = ("__ansible_unsafe", "__ansible_vault")


def json_hook(pairs: dict[str, Any]) -> dict[str, Any]:
    """A json.loads object_hook failing as Ansible's decoder does: a marker that is not text
    is a TypeError (Ansible then reads a vars or inventory file as YAML, markers and all)."""
    for marker in _MARKERS:
        if marker in pairs and not isinstance(pairs[marker], str):
            raise TypeError(f"{marker} is {type(pairs[marker]).__name__}, not text")
    return pairs


def from_json(value: Any) -> Any:
    """A value from JSON Ansible reads with its decoder (a script's output, ansible-inventory's,
    a vars file or inventory written as JSON): an object with `"__ansible_unsafe": text` is
    that unsafe text, else one with `"__ansible_vault": text` a vault value, whatever other
    keys it has (as Ansible's object hook)."""
    if isinstance(value, dict):
        if isinstance(value.get("__ansible_unsafe"), str):
            return Unsafe(value["__ansible_unsafe"])
        if isinstance(value.get("__ansible_vault"), str):
            return Vaulted(value["__ansible_vault"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(value: Any, unsafe: bool = True) -> Any:
    """A value as ansible-inventory prints it: markers for vault and unsafe values (unsafe
    text as itself when not `unsafe`, as `--host` prints it), keys as text (JSON's own
    conversion) so mixed keys sort, sets and tuples as lists."""
    if isinstance(value, Vaulted):
        return {"__ansible_vault": value.ciphertext}
    if isinstance(value, Unsafe):
        return {"__ansible_unsafe": str(value)} if unsafe else str(value)
    if isinstance(value, Mapping):
        return {_key(k): to_json(v, unsafe) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v, unsafe) for v in value]
    return value


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    return str(key)
