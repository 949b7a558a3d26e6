"""The YAML node walker shared by the inventory and rule loaders: lines, values, merge keys,
and the cap on alias expansion (the inventory and rule corpora hold an alias bomb each)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from clirun import fleetmon
from yaml.nodes import MappingNode, SequenceNode

from fleetmon.errors import InputError, RuleError
from fleetmon.model.yamlnodes import (
    ALIAS_FLOOR,
    MAX_DEPTH,
    FastLoader,
    PureLoader,
    YamlDoc,
    is_null,
    kind,
)


def _bomb(levels: int) -> str:
    """A "billion laughs": `levels` lists of ten aliases to the list before."""
    lines = ["laughs:", "  - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("loader", [FastLoader, yaml.SafeLoader])
def test_alias_bomb_fails_at_the_first_list_past_the_cap(loader: type[yaml.SafeLoader]) -> None:
    # l4 expands to 111,111 nodes, the first past the 100,000 floor; l8 would be 10**9.
    with pytest.raises(InputError) as e:
        YamlDoc(_bomb(9), "bomb.yaml", loader=loader)
    assert str(e.value) == (
        "bomb.yaml:6: YAML aliases expand this value to more than 100000 nodes (an alias bomb?)"
    )


def test_a_few_levels_of_aliases_stay_under_the_floor() -> None:
    with YamlDoc(_bomb(4), "ok.yaml") as doc:  # l3: 11,111 nodes
        assert doc.root is not None
        laughs = doc.value(doc.root)["laughs"]
    assert len(laughs[3]) == 10
    assert laughs[3][0] is laughs[2]  # shared, as safe_load shares it


def test_the_cap_grows_with_the_document() -> None:
    # 5,000 hosts each merging a 30-variable block: 4 nodes a host as written (name, mapping,
    # `<<`, alias), 64 as if expanded. Neither the floor alone nor a factor of 10 would do.
    common = "".join(f"    v{i}: {i}\n" for i in range(30))
    hosts = "".join(f"  h{i}:\n    <<: *common\n" for i in range(5000))
    text = f"common: &common\n{common}hosts:\n{hosts}"
    assert max(ALIAS_FLOOR, 10 * 5000 * 4) < 5000 * 64
    with YamlDoc(text, "fleet.yaml") as doc:
        assert isinstance(doc.root, MappingNode)
        _, hosts_node = doc.pairs(doc.root)[1]
        assert isinstance(hosts_node, MappingNode)
        first = hosts_node.value[0][1]
        assert isinstance(first, MappingNode)
        pairs = doc.pairs(first)  # the merge key applied
        assert [doc.value(k) for k, _ in pairs][:3] == ["v0", "v1", "v2"]
        assert len(pairs) == 30


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: &a\n  b: *a\n", 1), ("- x\n- &s [1, *s]\n", 2)],
)
def test_a_node_containing_itself_is_refused(text: str, line: int) -> None:
    with pytest.raises(RuleError) as e:
        YamlDoc(text, "loop.yaml", error=RuleError)
    assert str(e.value) == f"loop.yaml:{line}: a YAML alias refers to a node that contains it"


def _value_of(text: str, libyaml: bool) -> object:
    loader = FastLoader if libyaml else PureLoader
    with YamlDoc(text, "x.yaml", loader=loader) as doc:
        return None if doc.root is None else doc.value(doc.root)


@pytest.mark.parametrize(
    ("text", "libyaml", "message"),
    [
        ("a: [1\n", True, "x.yaml:2: invalid YAML: did not find expected ',' or ']'"),
        (
            "a: [1\n",
            False,
            "x.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "a: !vault |\n  $ANSIBLE_VAULT;1.1\n",
            True,
            "x.yaml:1: vault-encrypted values are not supported",
        ),
        (
            "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
            True,
            "x.yaml:1: vault-encrypted files are not supported",
        ),
        (
            "a: 1\nb: \x00\n",
            True,
            "x.yaml:2: invalid YAML: unacceptable character #x0000: "
            "control characters are not allowed",
        ),
        (
            "a: 1\nb: \x00\n",
            False,
            "x.yaml:2: invalid YAML: unacceptable character #x0000: "
            "special characters are not allowed",
        ),
        (
            "a: !!python/name:os.system x\n",
            True,
            "x.yaml:1: invalid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/name:os.system'",
        ),
    ],
)
def test_yaml_errors_are_one_line_at_their_line(text: str, libyaml: bool, message: str) -> None:
    with pytest.raises(InputError) as e:
        _value_of(text, libyaml)
    assert str(e.value) == message


NINES = "9" * 5000


@pytest.mark.parametrize("libyaml", [True, False])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        # int() of more than 4,300 digits is a ValueError, not a YAMLError: was exit 70.
        (f"a: 1\nb: {NINES}\n", "x.yaml:2: a number of more than 4,300 digits"),
        (f"a:\n  - [1, -{NINES}]\n", "x.yaml:2: a number of more than 4,300 digits"),
        (f"? {NINES}\n: 1\n", "x.yaml:1: a number of more than 4,300 digits"),
        # In hex int() has no limit: a number that could never be printed.
        (f"a: 0x{'f' * 4000}\n", "x.yaml:1: a number of more than 4,300 digits"),
        (f"a: 1{'0' * 4300}\n", "x.yaml:1: a number of more than 4,300 digits"),
        (
            "when: 2024-13-01\n",
            "x.yaml:1: '2024-13-01' is not a date (month must be in 1..12): quote it for text",
        ),
        ("a: !!int abc\n", "x.yaml:1: 'abc' is not an integer"),
        ("a: !!int ''\n", "x.yaml:1: '' is not an integer"),
        ("a: !!float 1x\n", "x.yaml:1: '1x' is not a number"),
        ("a: !!bool maybe\n", "x.yaml:1: 'maybe' is not a boolean"),
        ("a: !!timestamp soon\n", "x.yaml:1: 'soon' is not a date: quote it for text"),
    ],
)
def test_a_scalar_its_tag_cannot_make_is_an_error_at_its_line(
    text: str, message: str, libyaml: bool
) -> None:
    with pytest.raises(InputError) as e:
        _value_of(text, libyaml)
    assert str(e.value) == message


def test_the_largest_numbers_python_prints_are_read() -> None:
    assert _value_of(f"a: {NINES[:4300]}\nb: -{NINES[:4300]}\n", True) == {
        "a": int(NINES[:4300]),
        "b": -int(NINES[:4300]),
    }


def test_a_bad_scalar_names_what_it_is_for() -> None:
    with YamlDoc(f"x:\n  - {NINES}\n", "x.yaml", error=RuleError) as doc:
        assert isinstance(doc.root, MappingNode)
        with pytest.raises(RuleError) as e:
            doc.value(doc.root, "rule 'a': warning")
    assert str(e.value) == "x.yaml:2: rule 'a': warning: a number of more than 4,300 digits"


def test_huge_numbers_in_rule_files_inventories_and_web_configs_exit_4(tmp_path: Path) -> None:
    """Each was `internal error: ValueError: Exceeds the limit (4300 digits)`, exit 70."""
    rule = "- hosts: all\n  rules:\n    - name: a\n      metric: cpu.steal_pct\n"
    cases = {
        "warning.yaml": (rule + f"      warning: {NINES}\n", "rules", 5),
        "min.yaml": (rule + f"      warning: '> 1'\n      min_points: {NINES}\n", "rules", 6),
        "inv.yaml": (f"all:\n  hosts:\n    h1:\n      foo: {NINES}\n", "inventory", 4),
        "gv.yaml": (f"all:\n  vars:\n    foo: [{NINES}]\n  hosts:\n    h1:\n", "inventory", 3),
        "inv.toml": (f"[all.vars]\nfoo = {NINES}\n", "inventory", None),
    }
    expected = {
        "warning.yaml": "rule 'a': warning: ",
        "min.yaml": "rule 'a': min_points: ",
        "inv.yaml": "all.hosts.h1.foo: ",
        "gv.yaml": "all.vars.foo: ",
        "inv.toml": "invalid TOML: ",
    }
    for name, (text, command, line) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        args = ["rules", "lint", "--no-default-rules"] if command == "rules" else ["inventory"]
        r = fleetmon(*args, path, *(["--list"] if command == "inventory" else []))
        where = f"{path}:{line}" if line is not None else str(path)
        assert (r.returncode, r.stdout) == (4, ""), r.stderr
        assert r.stderr == (
            f"fleetmon: error: {where}: {expected[name]}a number of more than 4,300 digits\n"
        )


def test_the_pure_loader_keeps_the_line_of_an_alias_in_a_list() -> None:
    text = "- &a {x: 1}\n- *a\n- [*a, 2]\n"
    with YamlDoc(text, "x.yaml", loader=PureLoader) as doc:
        assert isinstance(doc.root, SequenceNode)
        items = doc.root.value
        assert items[1] is items[0]  # the anchor's node, and its line
        assert [doc.alias_line(doc.root, i) for i in range(3)] == [None, 2, None]
        inner = items[2]
        assert isinstance(inner, SequenceNode)
        assert [doc.alias_line(inner, i) for i in range(2)] == [3, None]
    with YamlDoc(text, "x.yaml") as doc:  # libyaml composes in C: no line to keep
        assert isinstance(doc.root, SequenceNode)
        assert doc.alias_line(doc.root, 1) is None


def test_nodes_keep_their_lines_and_kinds() -> None:
    with YamlDoc("# top\nkvm:\n  hosts:\n    - a\nempty:\n", "inv.yaml") as doc:
        assert isinstance(doc.root, MappingNode)
        (k1, v1), (k2, v2) = doc.pairs(doc.root)
        assert (doc.line(k1), doc.line(v1), doc.line(k2)) == (2, 3, 5)
        assert (kind(v1), kind(k2), kind(v2)) == ("a mapping", "'empty'", "nothing")
        assert is_null(v2)
        hosts = v1.value[0][1]
        assert isinstance(hosts, SequenceNode)
        assert kind(hosts) == "a sequence"
        assert str(doc.error(hosts, "here")) == "inv.yaml:4: here"
    with YamlDoc("", "empty.yaml") as doc:
        assert doc.root is None


def _nested(levels: int, block: bool) -> str:
    """`x:` holding `levels` lists in flow style, or `levels` mappings in block style."""
    if not block:
        return "x: " + "[" * levels + "]" * levels + "\n"
    return "".join("  " * i + "x:\n" for i in range(levels)) + "  " * levels + "y: 1\n"


@pytest.mark.parametrize("loader", [FastLoader, yaml.SafeLoader])
@pytest.mark.parametrize(("levels", "block"), [(500, False), (2000, False), (2000, True)])
def test_deep_nesting_is_one_error_line(
    loader: type[yaml.SafeLoader], levels: int, block: bool
) -> None:
    """No RecursionError from PyYAML's composer or constructor: an error at a line (libyaml
    stops at 1,000 levels itself: the same words)."""
    with pytest.raises(InputError) as e:
        YamlDoc(_nested(levels, block), "deep.yaml", loader=loader)
    message = str(e.value)
    assert message.startswith("deep.yaml:")
    assert "\n" not in message
    assert message.endswith(": nested too deeply (more than 100 levels of lists and mappings)")


@pytest.mark.parametrize("loader", [FastLoader, yaml.SafeLoader])
def test_nesting_is_refused_at_the_first_level_past_the_limit(
    loader: type[yaml.SafeLoader],
) -> None:
    with YamlDoc(_nested(MAX_DEPTH - 1, block=False), "ok.yaml", loader=loader) as doc:
        assert doc.root is not None
    with pytest.raises(InputError) as e:
        YamlDoc(_nested(MAX_DEPTH, True), "deep.yaml", loader=loader)
    assert str(e.value) == (
        f"deep.yaml:{MAX_DEPTH + 1}: nested too deeply (more than 100 levels of lists and mappings)"
    )
    # Aliases count as the value is built: each list one deeper than the one it names.
    lines = ["x:", "  - &l0 [1]", *(f"  - &l{i} [*l{i - 1}]" for i in range(1, MAX_DEPTH))]
    with pytest.raises(InputError, match=r"deep.yaml:2: nested too deeply"):
        YamlDoc("\n".join(lines) + "\n", "deep.yaml", loader=loader)


def test_deep_rule_files_and_inventories_exit_4(tmp_path: Path) -> None:
    """Both loaders use YamlDoc: the rule file of 500 nested lists and an inventory of 2,000
    nested mappings were `internal error: RecursionError` (exit 70)."""
    rules = tmp_path / "deep-rules.yaml"
    rules.write_text("- hosts: all\n  rules: " + "[" * 500 + "]" * 500 + "\n")
    inv = tmp_path / "deep-inv.yaml"
    inv.write_text("all:\n  vars:\n" + _nested(2000, block=True).replace("\n", "\n    ")[:-4])
    # 300 levels pass libyaml, and were a RecursionError as PyYAML built the variable.
    var = tmp_path / "deep-var.yaml"
    var.write_text("all:\n  hosts:\n    h1:\n      x: " + "[" * 300 + "]" * 300 + "\n")
    for args, name, line in (
        (["rules", "lint", rules], rules, 2),
        (["inventory", inv, "--list"], inv, 1002),
        (["inventory", var, "--list"], var, 4),
    ):
        r = fleetmon(*args)
        assert (r.returncode, r.stdout) == (4, "")
        assert r.stderr == (
            f"fleetmon: error: {name}:{line}: nested too deeply (more than 100 levels of lists "
            "and mappings)\n"
        )
