"""Why a rule file is no YAML or no list of plays, when the fix is plain (pure).

`warning: > 80` starts a folded block, `critical: @90:100` and `` ` `` cannot start a
value, `warning: 10:` is a mapping, `message: {{ value }}` a flow mapping and `message:
"{{ value }}" on {{ host }}` a quoted text with more after it: YAML's own messages ("expected
a comment or a line break, but found '8'") do not say that quoting the value is the fix,
which Ansible's error for the same lines does. A file of one play without its `- ` is
told so too.
"""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_KEY_VALUE = re.compile(r"\s*(?:-\s+)?([A-Za-z_]+)\s*:\s+(\S.*?)\s*")
_COMMENT = re.compile(r"\s+#.*")
_STR, _NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
_KINDS = {
    "tag:yaml.org,2002:int": "the number",
    "tag:yaml.org,2002:float": "the number",
    "tag:yaml.org,2002:bool": "the boolean",
    "tag:yaml.org,2002:timestamp": "the date",
}


def quote_hint(text: str, line: int | None, keys: frozenset[str]) -> str:
    """' (quote the value: warning: "> 80")' when line `line` (1-based) of `text` gives
    one of `keys` a value that YAML cannot read unquoted, else ''."""
    lines = text.splitlines()
    if line is None or not 1 <= line <= len(lines):
        return ""
    m = _KEY_VALUE.fullmatch(lines[line - 1])
    if m is None or m.group(1) not in keys:
        return ""
    key, value = m.groups()
    if value[0] in "\"'":
        closing = value.find(value[0], 1)
        if closing in (-1, len(value) - 1):  # unterminated, or a whole quoted text
            return ""
    else:
        value = _COMMENT.sub("", value)
        if value[0] not in ">|@`%{[" and not value.endswith(":") and ": " not in value:
            return ""
    if '"' not in value:
        quoted = f'"{value}"'
    elif "'" not in value:
        quoted = f"'{value}'"
    else:
        return " (quote the whole value)"
    return f" (quote the whole value: {key}: {quoted})"


def play_hint(root: Node) -> str:
    """' (...)' when a rule file's top level is one play, written without its `- `."""
    if not isinstance(root, MappingNode):
        return ""
    keys = {k.value for k, _ in root.value if isinstance(k, ScalarNode)}
    if not keys & {"hosts", "rules"}:
        return ""
    return ", not one play: start it with '- ' (- hosts: ...), as in an Ansible playbook"


def not_text(node: Node, text: str = "text") -> str:
    """', got the number 123: quote it ("123") to write text' for a value YAML reads as
    no text (`text`: what the quoted value is, "an expression")."""
    if isinstance(node, MappingNode | SequenceNode):
        return f", got a {'list' if isinstance(node, SequenceNode) else 'mapping'}"
    if not isinstance(node, ScalarNode) or node.tag in (_STR, _NULL) or node.style:
        return ""  # text (empty or blank), nothing, or a quoted value
    kind = _KINDS.get(node.tag, "a value")
    return f', got {kind} {node.value}: quote it ("{node.value}") to write {text}'
