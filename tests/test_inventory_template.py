"""Templated variables: rendered when connecting as ansible-core renders them, a host whose
value cannot be rendered skipped with the reason, `fleetmon inventory` unrendered.

The oracle is `ansible PATTERN -m ansible.builtin.debug`: it renders each host's connection
variables (and fails a host whose connection keywords cannot be rendered) without
connecting anywhere.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from ansible_oracle import connections
from clirun import fleetmon

from fleetmon.inventory import load_inventory, render_host
from fleetmon.inventory.connect import plan_hosts
from fleetmon.inventory.template import Renderer
from fleetmon.inventory.vault import Secret, encrypt

TEMPLATED = """\
all:
  vars:
    domain: example.com
    base_port: 2200
    admin: !vault |
{admin}
  hosts:
    web1:
      ansible_host: "{{{{ inventory_hostname }}}}.{{{{ domain }}}}"
      ansible_port: "{{{{ base_port + 22 }}}}"
      ansible_user: "{{{{ lookup('env', 'FLEETMON_TEST_USER') | default('ops', true) }}}}"
      ansible_ssh_private_key_file: "{{{{ inventory_dir }}}}/k/{{{{ inventory_hostname_short }}}}"
    web2.lan:
      ansible_host: "{{{{ hostvars['web1']['ansible_host'] | regex_replace('web1', 'web2') }}}}"
      ansible_user: "{{{{ admin }}}}"
      ansible_ssh_private_key_file: "{{{{ playbook_dir }}}}/id_{{{{ group_names | join('_') }}}}"
    raw:
      ansible_host: !unsafe "{{{{ not rendered }}}}"
    literal:
      ansible_host: "{{{{ '{{{{ inventory_hostname }}}}' }}}}-x"
      ansible_user: "{{{{ lookup('env', 'FLEETMON_TEST_TPL') }}}}"
  children:
    db:
      vars:
        ansible_connection: "{{{{ 'local' if 'web1' in groups['all'] else 'ssh' }}}}"
      hosts:
        db1:
        db2:
          ansible_port: "{{{{ [2201, 2202] | last }}}}"
    broken:
      hosts:
        undefined:
          ansible_host: "{{{{ nope }}}}.lan"
        filter:
          ansible_host: "{{{{ inventory_hostname | ipaddr }}}}"
        lookup:
          ansible_host: "{{{{ lookup('dig', 'example.com') }}}}"
        loop:
          ansible_host: "{{{{ a }}}}"
          a: "{{{{ ansible_host }}}}"
        notaport:
          ansible_port: "{{{{ 'abc' }}}}"
"""
PW = Secret("default", b"pw")


def _ansible(path: Path, tmp_path: Path) -> dict[str, Any]:
    """Each host's rendered connection values, or the reason Ansible failed it."""
    pw = tmp_path / "pw"
    return connections(
        "-i",
        path,
        "--vault-password-file",
        pw,
        home=tmp_path / "home",
        cwd=tmp_path,
        FLEETMON_TEST_USER="",
        FLEETMON_TEST_TPL="{{ inventory_hostname }}",
    )


def _inventory(tmp_path: Path) -> Path:
    admin = encrypt(b"admin-from-vault", PW, b"s" * 32)
    path = tmp_path / "inv" / "hosts.yml"
    path.parent.mkdir()
    path.write_text(TEMPLATED.format(admin=re.sub("^", " " * 6, admin.strip(), flags=re.M)))
    (tmp_path / "pw").write_text("pw\n")
    return path


def _fleetmon(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    inv = load_inventory(str(path))
    render = Renderer(
        inv,
        [PW],
        os.getcwd(),
        {"FLEETMON_TEST_USER": "", "FLEETMON_TEST_TPL": "{{ inventory_hostname }}"},
    )
    found: dict[str, Any] = {}
    for p in plan_hosts(inv, list(inv.hosts.values()), [PW], render):
        s = p.spec
        if p.skip is not None:
            found[s.name] = "failed: " + p.skip
        else:
            found[s.name] = [s.address, s.port, s.user, s.key_file, s.connection]
    return found


@pytest.mark.slow
def test_rendered_as_ansible_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _inventory(tmp_path)
    ansible = _ansible(path, tmp_path)
    assert ansible["web1"][3] == f"{tmp_path}/inv/k/web1"
    mine = _fleetmon(path, tmp_path, monkeypatch)
    ok = {h: v for h, v in ansible.items() if not str(v).startswith("failed")}
    assert {h: v for h, v in mine.items() if h in ok} == ok
    assert ok["web2.lan"] == [
        "web2.example.com",
        22,
        "admin-from-vault",
        f"{tmp_path}/id_ungrouped",
        "ssh",
    ]
    assert ok["raw"][0] == "{{ not rendered }}"
    # What a template gives is not rendered again (ansible-core 2.19), nor what the
    # environment holds.
    assert ok["literal"][0] == "{{ inventory_hostname }}-x"
    assert ok["literal"][2] == "{{ inventory_hostname }}"
    # The same hosts fail, each with a reason that names its variable and says why.
    assert {h for h, v in ansible.items() if v not in ok.values()} == {
        h for h, v in mine.items() if str(v).startswith("failed")
    }
    where = f"({path}:"
    assert {h: v.split(where)[0] + v.split(")", 1)[1] for h, v in mine.items() if h not in ok} == {
        "undefined": "failed: ansible_host : cannot render '{{ nope }}.lan': 'nope' is undefined",
        "filter": "failed: ansible_host : cannot render '{{ inventory_hostname | ipaddr }}': "
        "No filter named 'ipaddr' (fleetmon has Jinja's and the common ansible.builtin ones)",
        "lookup": "failed: ansible_host : lookup 'dig' is not available in fleetmon (only 'env')",
        "loop": "failed: ansible_host : recursive loop in templates: "
        "ansible_host -> a -> ansible_host",
        "notaport": "failed: ansible_port : expected an integer, got 'abc'",
    }


def test_inventory_views_keep_templates_and_runs_skip_only_the_broken(tmp_path: Path) -> None:
    path = _inventory(tmp_path)
    inv = load_inventory(str(path))
    shown = json.loads(render_host(inv, "web1"))
    assert shown["ansible_host"] == "{{ inventory_hostname }}.{{ domain }}"
    assert shown["ansible_port"] == "{{ base_port + 22 }}"
    local = tmp_path / "local.yml"
    local.write_text(
        "all:\n  vars:\n    how: local\n  hosts:\n    here:\n"
        '      ansible_connection: "{{ how }}"\n    there:\n'
        '      ansible_connection: "{{ how }}"\n      fleetmon_timeout: "{{ nope }}"\n'
    )
    r = fleetmon("run", local, "-q", "--no-rules", "--format", "json")
    hosts = {h["name"]: (h["status"], h["error"]) for h in json.loads(r.stdout)["hosts"]}
    assert hosts == {
        "here": ("ok", None),
        "there": (
            "skipped",
            f"fleetmon_timeout ({local}:9): cannot render '{{{{ nope }}}}': 'nope' is undefined",
        ),
    }


def test_a_group_s_template_is_compiled_once_for_all_its_hosts(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    hosts = "".join(f"    h{i}:\n" for i in range(50))
    path.write_text(
        "all:\n  vars:\n    dom: lan\n"
        '    ansible_host: "{{ inventory_hostname }}.{{ dom }}"\n'
        f"  hosts:\n{hosts}"
    )
    inv = load_inventory(str(path))
    render = Renderer(inv, [], str(tmp_path), {})
    compiled: list[str] = []
    from_string = render.env.from_string
    render.env.from_string = lambda text: compiled.append(text) or from_string(text)  # type: ignore[method-assign]
    plans = plan_hosts(inv, list(inv.hosts.values()), [], render)
    assert [p.spec.address for p in plans] == [f"h{i}.lan" for i in range(50)]
    assert compiled == ["{{ inventory_hostname }}.{{ dom }}"]
