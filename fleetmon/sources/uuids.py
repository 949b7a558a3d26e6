"""Parse stage for the domains' UUIDs (pure): a VM's identity across renames and migrations.

libvirt: `virsh list --all --uuid --name` prints one `<uuid> <name>` line per domain
(virsh(1); tools/virsh-domain-monitor.c prints "%-36s %-30s"; with -q no header). Xen:
`xl list -v` adds a UUID column after Time(s) (tools/xl/xl_list.c, "verbose" list):
`Name ID Mem VCPUs State Time(s) UUID Reason-Code Security Label`.
An older virsh that refuses --uuid with --name, or any line that does not parse, gives no
UUID for that domain: its history is then keyed by host and name, as before.
"""

from __future__ import annotations

import re

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_VIRSH_LINE = re.compile(rf"\s*(?P<uuid>{_UUID})\s+(?P<name>\S.*?)\s*")
_XL_LINE = re.compile(
    rf"(?P<name>\S.*?)\s+\d+\s+\d+\s+\d+\s+[-rbpscd]{{6}}\s+[\d.]+\s+(?P<uuid>{_UUID})(?:\s.*)?"
)
#: dom0 (Xen) and the all-zero UUID identify no guest.
_NIL = "00000000-0000-0000-0000-000000000000"


_PRODUCT_UUID = re.compile(rf"\s*({_UUID})\s*")


#: SMBIOS UUIDs that name no one machine: unset (all zeros or ones), and AMI firmware's
#: placeholder that many boards ship unchanged (in either byte order of its first three
#: fields, analyse/guests.swapped), so it could pair a guest with an unrelated VM.
_NOT_ONE_MACHINE = frozenset({
    _NIL, "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009", "00020003-0004-0005-0006-000700080009",
})  # fmt: skip


def parse_product_uuid(text: str) -> str | None:
    """/sys/class/dmi/id/product_uuid (lowercase), or None: unreadable, empty, not a UUID,
    or one that names no one machine (_NOT_ONE_MACHINE)."""
    m = _PRODUCT_UUID.fullmatch(text)
    if m is None:
        return None
    uuid = m.group(1).lower()
    return None if uuid in _NOT_ONE_MACHINE else uuid


def parse_virsh_uuids(text: str) -> dict[str, str]:
    """Domain name -> UUID (lowercase) from `virsh -q list --all --uuid --name`."""
    out: dict[str, str] = {}
    for line in text.split("\n"):  # a domain's name may hold U+2028 (splitlines ends there)
        m = _VIRSH_LINE.fullmatch(line.removesuffix("\r"))
        if m and m.group("uuid") != _NIL:
            out[m.group("name")] = m.group("uuid").lower()
    return out


def parse_xl_uuids(text: str) -> dict[str, str]:
    """Domain name -> UUID (lowercase) from `xl list -v`; Domain-0 is left out."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _XL_LINE.fullmatch(line.rstrip())
        if m and m.group("name") != "Domain-0" and m.group("uuid") != _NIL:
            out[m.group("name")] = m.group("uuid").lower()
    return out
