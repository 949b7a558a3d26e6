"""Every rule-file example in the README and the playbooks' README is a file `rules lint`
accepts: a play (`- hosts: … rules: …`), never a bare list of rules a user cannot load."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import ROOT, fleetmon

DOCS = ("README.md", "fleetmon/playbooks/README.md")
_FENCE = re.compile(r"^( *)```[a-z]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def _blocks(doc: str) -> list[tuple[int, Any]]:
    """The fenced blocks of `doc` that parse as YAML lists of mappings, with their lines."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        try:
            data = yaml.safe_load(textwrap.dedent(m.group(2)))
        except yaml.YAMLError:
            continue
        if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
            out.append((text.count("\n", 0, m.start()) + 1, data))
    return out


def _is_play(item: dict[str, Any]) -> bool:
    return "hosts" in item and "rules" in item


def _is_rule(item: dict[str, Any]) -> bool:
    return "name" in item and bool({"metric", "expr", "warning", "critical"} & set(item))


EXAMPLES = [
    pytest.param(doc, line, data, id=f"{doc}:{line}")
    for doc in DOCS
    for line, data in _blocks(doc)
    if all(_is_play(d) for d in data)
]


def test_the_docs_have_rule_examples_and_no_bare_rule_lists() -> None:
    assert len([e for e in EXAMPLES if "playbooks" in e.id]) >= 3
    bare = [
        f"{doc}:{line}"
        for doc in DOCS
        for line, data in _blocks(doc)
        if any(_is_rule(d) and not _is_play(d) for d in data)
    ]
    assert bare == []  # a rule list outside a play's `rules:` is not a loadable file


@pytest.mark.parametrize(("doc", "line", "data"), EXAMPLES)
def test_each_rule_example_lints(doc: str, line: int, data: Any, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    got = fleetmon("rules", "lint", path)
    assert got.returncode == 0, f"{doc}:{line}: {got.stderr or got.stdout}"
    assert "OK" in got.stdout
