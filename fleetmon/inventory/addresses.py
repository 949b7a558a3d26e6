"""Inventory stage: whether a text is one host address, as Ansible's parse_address (pure).

As lib/ansible/parsing/utils/addresses.py with ranges allowed: a host name, an IPv4 or an
IPv6 address (`2001:db8:0:0:0:0:0:7` as well as `2001:db8::7`), each part possibly a range
(`web[01:20]`), and a port (`host:22`, `[2001:db8::7]:22`). A `--limit` that is one address
is one pattern, not a list split on ':'.
"""

from __future__ import annotations

import re

_NUMERIC_RANGE = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX_RANGE = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"

_I6 = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"  # 0..ffff, or a range
_I4 = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC_RANGE})"  # 0..255, or a range
_LABEL = rf"(?:\w|{_ALNUM_RANGE})(?:[\w_-]|{_ALNUM_RANGE})*(?<![_-])"

_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_IPV4 = re.compile(rf"^(?:{_I4}\.){{3}}{_I4}$", re.I)
# Every way the 16-bit groups can be written, from `::` to 1:2:3:4:5:6:7:8, and IPv4 in IPv6.
_IPV6 = re.compile(
    rf"""^(
        (?:{_I6}:){{7}}{_I6}|
        (?:{_I6}:){{1,6}}:|
        (?:{_I6}:)(?::{_I6}){{1,6}}|
        (?:{_I6}:){{2}}(?::{_I6}){{1,5}}|
        (?:{_I6}:){{3}}(?::{_I6}){{1,4}}|
        (?:{_I6}:){{4}}(?::{_I6}){{1,3}}|
        (?:{_I6}:){{5}}(?::{_I6}){{1,2}}|
        (?:{_I6}:){{6}}(?::{_I6})|
        :(?::{_I6}){{1,6}}|
        {_I6}?::|
        (?:0:){{6}}(?:{_I6}\.){{3}}{_I6}|
        ::(?:ffff:)?(?:{_I6}\.){{3}}{_I6}|
        (?:0:){{5}}ffff:(?:{_I6}\.){{3}}{_I6}
    )$""",
    re.X | re.I,
)
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)


def is_address(text: str) -> bool:
    """Whether Ansible's parse_address(text, allow_ranges=True) reads the text as one host
    (a name, an IPv4 or IPv6 address, with ranges and an optional port)."""
    host = text
    # Ansible tries both port forms in turn, the second on what the first left.
    for form in (_BRACKETED_HOSTPORT, _HOSTPORT):
        m = form.match(host)
        if m:
            host = m.group(1)
    return any(p.match(host) for p in (_IPV4, _IPV6, _HOSTNAME))
