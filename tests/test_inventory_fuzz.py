"""Random text as an inventory: an Inventory or one InventoryError line, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetmon.errors import InventoryError
from fleetmon.inventory.data import Builder
from fleetmon.inventory.inisrc import parse_ini_inventory
from fleetmon.inventory.yamlsrc import parse_yaml_inventory

# Characters that matter to both readers, so random text reaches deep paths quickly.
ALPHABET = st.sampled_from([*"[]:=!&~*{}\"'#;,- \n\tabkvm0129.@|>", "all", "hosts"])
TEXTS = st.one_of(st.text(), st.lists(ALPHABET, max_size=80).map("".join))
STRUCTURED = st.lists(
    st.sampled_from(
        [
            "all:\n",
            "  hosts:\n",
            "  children:\n",
            "  vars:\n",
            "    kvm[01:03]:\n",
            "    kvm:\n",
            "      ansible_port: x\n",
            "      hosts: [a]\n",
            "[kvm]\n",
            "[kvm:children]\n",
            "[kvm:vars]\n",
            "kvm01 ansible_port=22 x='a b'\n",
            "xen\n",
            "a=[1,\n",
        ]
    ),
    max_size=12,
).map("".join)


def _load(text: str, fmt: str) -> None:
    b = Builder("fuzz")
    message = ""
    try:
        if fmt == "yaml":
            parse_yaml_inventory(text, "fuzz", b)
        else:
            parse_ini_inventory(text, "fuzz", b)
        b.reconcile()
    except InventoryError as e:
        message = str(e)
    if message:
        assert message.startswith("fuzz")
        assert "\n" not in message


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXTS, STRUCTURED))
def test_yaml_reader_never_crashes(text: str) -> None:
    _load(text, "yaml")


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXTS, STRUCTURED))
def test_ini_reader_never_crashes(text: str) -> None:
    _load(text, "ini")
