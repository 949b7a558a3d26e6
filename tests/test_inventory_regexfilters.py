"""The regexes of the inventory templates' filters and tests (`regex_search`, `match`...):
ordinary ones give what ansible-core gives; one that could take exponential time to match
ends the run with one line naming the file, line and variable (exit 4), as a costly `~regex`
host pattern does; one that does not compile skips the host instead of crashing the run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ansible_oracle import connections
from clirun import fleetmon

from fleetmon.errors import InventoryError
from fleetmon.inventory import load_inventory
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.regexcost import MAX_OPEN
from fleetmon.inventory.template import Renderer

#: Ordinary regexes, as inventories use them: each host's ansible_host is one result. A
#: backslash in a `{{ }}` string is kept as written (`'\\d'`, `'\\1'`), as in Ansible.
ORDINARY = {
    "search": r"{{ 'web-01.lan' | regex_search('[0-9]+') }}",
    "groups": r"{{ 'web-01.lan' | regex_search('(\w+)-(\d+)', '\2', '\1') | join('/') }}",
    "named": r"{{ 'web-01.lan' | regex_search('(?P<n>\d+)', '\g<n>') | first }}",
    "nomatch": r"{{ 'web' | regex_search('x') is none }}",
    "icase": r"{{ 'WEB-01' | regex_search('web', ignorecase=true) }}",
    "multi": r"{{ 'a\nb1' | regex_search('^b.$', multiline=true) }}",
    "replace": r"{{ 'db-01.lan' | regex_replace('^db-(\d+)\..*$', 'x\1.example.com') }}",
    "count": r"{{ 'a.b.c' | regex_replace('\.', '-', count=1) }}",
    "findall": r"{{ '10.0.0.1 10.0.0.2' | regex_findall('\d+\.\d+$|\d+') | join(',') }}",
    "labels": r"{{ 'a.b.example.com' | regex_replace('([a-z0-9-]+\.)+example', 'X') }}",
    "tests": r"{{ ['web01' is match('web'), 'web01' is search('0'), 'x' is regex('y')] }}",
    "four": r"{{ 'a-b-c-d' | regex_replace('^(.*)-(.*)-(.*)-(.*)$', '\4\3\2\1') }}",
}


def _write(tmp_path: Path, hosts: dict[str, str], extra: str = "") -> Path:
    """An inventory of local hosts, each with this ansible_host (a YAML block: as written)."""
    path = tmp_path / "hosts.yml"
    lines = ["all:", "  hosts:"]
    for name, template in hosts.items():
        lines += [f"    {name}:", "      ansible_connection: local", "      ansible_host: |-"]
        lines.append(f"        {template}")
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _mine(path: Path) -> dict[str, Any]:
    inv = load_inventory(str(path))
    render = Renderer(inv, (), os.getcwd(), {})
    return {
        p.spec.name: p.skip or p.spec.address
        for p in plan_hosts(inv, list(inv.hosts.values()), (), render)
    }


@pytest.mark.slow
def test_ordinary_regexes_render_as_ansible_renders_them(tmp_path: Path) -> None:
    path = _write(tmp_path, ORDINARY)
    ansible = {h: v[0] for h, v in connections("-i", path, home=tmp_path / "home").items()}
    mine = _mine(path)
    assert mine == {h: str(v) for h, v in ansible.items()}
    assert mine["groups"] == "01/web"
    assert mine["four"] == "dcba"
    assert mine["replace"] == "x01.example.com"
    assert mine["findall"] == "10,0,0,1,10,0,0.2"
    assert mine["tests"] == "[True, True, False]"


#: One catastrophic regex per filter and test, each against a text it hangs on.
COSTLY = [
    ("regex_search", r"{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' | regex_search('(a+)+$') }}"),
    (
        "regex_replace",
        r"{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' | regex_replace('(a|aa)+$', '') }}",
    ),
    ("regex_findall", r"{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' | regex_findall('(a*)*$') }}"),
    ("match", r"{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' is match('(\w+-?)+$') }}"),
    ("search", r"{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' is search('(.*a)+$') }}"),
    ("regex_search", r"{{ 'x' | regex_search('.*.*.*.*.*y') }}"),
]


@pytest.mark.parametrize(("name", "template"), COSTLY)
def test_a_costly_regex_is_refused_naming_its_file_line_and_variable(
    tmp_path: Path, name: str, template: str
) -> None:
    path = _write(tmp_path, {"fine": "{{ 'web' }}", "bad": template})
    with pytest.raises(InventoryError) as e:
        _mine(path)
    assert str(e.value).startswith(f"{path}:9: ansible_host: {name} '")
    assert e.value.file == str(path)
    assert e.value.line == 9
    pattern = template.split("(", 1)[1].split("'")[1]
    assert f"{name} {pattern!r}: " in str(e.value)
    words = "exponentially many ways" if "y" not in pattern else f"more than {MAX_OPEN} rep"
    assert words in str(e.value)


def test_the_run_ends_with_one_line_naming_the_variable_whose_template_holds_it(
    tmp_path: Path,
) -> None:
    costly = "{{ 'ab' | regex_search('(a|ab|b)+') }}"
    path = _write(tmp_path, {"h": "{{ short }}"}, f"  vars:\n    short: |-\n      {costly}\n")
    r = fleetmon("run", path, "-q", "--no-rules", timeout=30)
    assert r.returncode == 4
    assert r.stdout == ""
    assert r.stderr.startswith(f"fleetmon: error: {path}:8: short: regex_search '(a|ab|b)+': ")
    assert r.stderr.count("\n") == 1, r.stderr  # no traceback without --debug


def test_a_regex_that_does_not_compile_skips_the_host(tmp_path: Path) -> None:
    bad = "{{ 'x' | regex_search('(') }}"
    path = _write(tmp_path, {"ok": "{{ 'web' | regex_replace('w', 'W') }}", "bad": bad})
    mine = _mine(path)
    assert mine["ok"] == "Web"
    assert mine["bad"] == (
        f"ansible_host ({path}:9): cannot render {bad!r}: "
        "ValueError: regex_search: '(' is not a valid regular expression "
        "(missing ), unterminated subpattern at position 0)"
    )


def test_a_costly_regex_read_through_hostvars_is_named_where_it_is_set(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  hosts:\n    a:\n      ansible_connection: local\n      ansible_host: |-\n"
        "        {{ hostvars['b']['pat'] }}\n    b:\n      ansible_connection: local\n"
        "      pat: \"{{ 'x' | regex_findall('(x+x+)+y') }}\"\n"
    )
    with pytest.raises(InventoryError) as e:
        _mine(path)
    assert str(e.value).startswith(f"{path}:9: pat: regex_findall '(x+x+)+y': a repetition")
