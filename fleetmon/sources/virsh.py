"""Parse stage for libvirt's virsh (pure): `domstats` records, `nodeinfo`, and virsh errors.

`virsh domstats --raw` prints, per domain, `Domain: '<name>'` then `  key=value` lines and
one blank line (virsh(1), tools/virsh-domain-monitor.c). Despite the man page, every time
(cpu.time, vcpu.N.time, vcpu.N.delay, block.N.rd.times) is in nanoseconds; balloon.* sizes
are KiB. A shut-off domain (state.state=5) carries only maxima and allocation fields.
With --nowait (libvirt 4.5+), a domain whose monitor is busy gets a record without what the
monitor gives; the probe asks for such domains again and prints their complete record
after: a later record of a domain replaces the earlier one, in the earlier one's place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import cast

from fleetmon.errors import ProbeParseError
from fleetmon.sources import MAX_DIGITS, bounded_int
from fleetmon.sources.sections import timeout_words

#: virDomainState (include/libvirt/libvirt-domain.h), index = state.state.
STATES = (
    "nostate",
    "running",
    "blocked",
    "paused",
    "shutdown",
    "shutoff",
    "crashed",
    "pmsuspended",
)

#: States whose domain has a QEMU process, hence counters.
ACTIVE_STATES = frozenset({"running", "blocked", "paused", "shutdown", "pmsuspended"})


#: Devices (net.N, block.N) read per domain at most; libvirt guests have a few dozen.
MAX_DEVICES = 4096
#: Domains per host at most: hosts run hundreds; a bound on the per-VM analysis time.
MAX_DOMAINS = 4096


@dataclass(frozen=True, slots=True)
class DomainStats:
    """One `Domain:` record: integer fields as int, the rest (names, paths) as str."""

    name: str
    fields: Mapping[str, int | str]
    #: indexed() per group, built once: the VM deltas ask for each group a dozen times.
    _index: dict[str, dict[str, dict[str, int | str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _slots: dict[str, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: vcpu_indices(), found once: the deltas and the history's counters both ask.
    _vcpus: list[tuple[int, ...]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def num(self, key: str) -> int | None:
        """The integer field, or None when absent or not an integer."""
        value = self.fields.get(key)
        return value if isinstance(value, int) else None

    def text(self, key: str) -> str | None:
        """The field as text, or None when absent."""
        value = self.fields.get(key)
        return None if value is None else f"{value}"

    @property
    def state(self) -> str | None:
        """The state's name (`running`, `shutoff`, ...), `state-N` when unknown."""
        code = self.num("state.state")
        if code is None:
            return None
        return STATES[code] if 0 <= code < len(STATES) else f"state-{code}"

    def indexed(self, group: str) -> dict[str, dict[str, int | str]]:
        """`net` or `block` entries keyed by their `.name`, each a dict of its sub-fields.

        Built once per group and shared: callers must not modify it.
        """
        cached = self._index.get(group)
        if cached is not None:
            return cached
        head = f"{group}."
        # One pass over the fields, bucketed by the N of `group.N.sub`.
        buckets: dict[str, dict[str, int | str]] = {}
        for k, v in self.fields.items():
            if k.startswith(head):
                idx, dot, sub = k[len(head) :].partition(".")
                if dot:
                    buckets.setdefault(idx, {})[sub] = v
        out: dict[str, dict[str, int | str]] = {}
        for i in self._slot_numbers(group):
            entry = buckets.get(str(i), {})
            name = entry.get("name")
            out[f"{name}" if name is not None else f"#{i}"] = entry
        self._index[group] = out
        return out

    def _slot_numbers(self, group: str) -> range:
        """0..`group.count`-1, but never more slots than this record has fields, nor more
        than MAX_DEVICES: the count is the host's word, not a size to allocate by."""
        count = self.num(f"{group}.count") or 0
        return range(max(0, min(count, MAX_DEVICES, len(self.fields))))

    def device_slots(self, group: str) -> dict[str, int]:
        """The keys of indexed(group) -> the N of their `group.N.*` fields (built once)."""
        cached = self._slots.get(group)
        if cached is not None:
            return cached
        out: dict[str, int] = {}
        for i in self._slot_numbers(group):
            name = self.fields.get(f"{group}.{i}.name")
            out[f"{name}" if name is not None else f"#{i}"] = i
        self._slots[group] = out
        return out

    def device_field(self, group: str, slot: int, key: str) -> int | str | None:
        """`group.<slot>.key`, or None when absent."""
        return self.fields.get(f"{group}.{slot}.{key}")

    def vcpu_indices(self) -> list[int]:
        """The N of every `vcpu.N.*` field, sorted."""
        return list(self._vcpu_numbers())

    def vcpu_keys(self, sub: str) -> tuple[str, ...]:
        """`vcpu.N.<sub>` for every N of vcpu_indices(), in its order."""
        return _vcpu_keys(self._vcpu_numbers(), sub)

    def _vcpu_numbers(self) -> tuple[int, ...]:
        if not self._vcpus:
            keys = tuple(self.fields)
            cached = len(keys) <= _SHAPE_MAX_KEYS
            self._vcpus.append(_cached_vcpu_numbers(keys) if cached else _vcpu_numbers(keys))
        return self._vcpus[0]


#: Records of more fields than this are scanned without the cache (which would keep them).
_SHAPE_MAX_KEYS = 2048


def _vcpu_numbers(keys: tuple[str, ...]) -> tuple[int, ...]:
    found: set[int] = set()
    for k in keys:
        if k[:5] == "vcpu.":
            n, dot, _ = k[5:].partition(".")
            # `vcpu.N.`, N of 1 to 9 ASCII digits (string tests, not a regex per key).
            if dot and 0 < len(n) <= 9 and n.isascii() and n.isdigit():
                found.add(int(n))
    return tuple(sorted(found))


# A function of a record's keys alone, and those are the same sample after sample (a VM's
# vCPUs change only when it is reconfigured), and the same for the VMs of one shape: cached
# by them, so a streamed host's records are not scanned at every tick.
_cached_vcpu_numbers = functools.lru_cache(maxsize=256)(_vcpu_numbers)


@functools.lru_cache(maxsize=256)
def _vcpu_keys(numbers: tuple[int, ...], sub: str) -> tuple[str, ...]:
    return tuple(f"vcpu.{n}.{sub}" for n in numbers)


_DOMAIN_RE = re.compile(r"^Domain: '(.*)'$")


#: Whitespace that splitlines() or strip() treats as such in ASCII text, besides the space
#: and the newline; in other text, the regex finds the rest of Unicode's (U+0085, U+2028...).
_ODD_ASCII_SPACE = "\t\r\x0b\x0c\x1c\x1d\x1e\x1f"
_ODD_SPACE_RE = re.compile(r"[^\S \n]")


# Memoised for the last two texts: the history's counters (analyse/counters.py) read the
# second sample again after the deltas did; the result is immutable, so it is shared.
@functools.lru_cache(maxsize=2)
def parse_domstats(text: str) -> tuple[DomainStats, ...]:
    """Every domain record of `virsh domstats` output, in the order printed; a domain printed
    twice (asked again after --nowait passed it over) has its last record."""
    fast = _domstats_fast(text)
    return fast if fast is not None else _domstats_lines(text)


def _domstats_fast(text: str) -> tuple[DomainStats, ...] | None:
    """parse_domstats() of virsh's usual output (`key=value` lines indented by two spaces,
    no space, sign or 20+ digits in a value) in C-speed passes over each record; None for
    anything else, which the line-by-line parser then reads (and names the line of any
    error). Without odd whitespace, splitlines() is split("\\n") and strip() strips spaces."""
    if any(c in text for c in _ODD_ASCII_SPACE) if text.isascii() else _ODD_SPACE_RE.search(text):
        return None
    records = ("\n" + text).split("\nDomain: '")
    if records[0].split() or len(records) > MAX_DOMAINS:
        return None
    domains: dict[str, DomainStats] = {}
    for record in records[1:]:
        head, newline, body = record.partition("\n")
        body = newline + body  # so that every line's indent follows a newline
        # Every space of the record in a two-space indent: split() gives its lines, stripped.
        if head[-1:] != "'" or body.count(" ") != 2 * body.count("\n  ") or "=-" in body:
            return None
        # Each line split at its first "=" is a [key, value] pair; dict() refuses the rest.
        pairs = cast(
            "Iterator[tuple[str, str]]", map(str.split, body.split(), repeat("="), repeat(1))
        )
        try:
            raw: dict[str, str] = dict(pairs)
        except ValueError:  # a line without "="
            return None
        values = list(raw.values())
        numeric = list(map(str.isdecimal, values))
        if "" in raw or max(map(len, compress(values, numeric)), default=0) >= MAX_DIGITS:
            return None
        fields: dict[str, int | str] = dict(raw)
        fields.update(zip(compress(raw, numeric), map(int, compress(values, numeric)), strict=True))
        domains[head[:-1]] = DomainStats(head[:-1], fields)
    return tuple(domains.values())


def _domstats_lines(text: str) -> tuple[DomainStats, ...]:
    """parse_domstats(), one line at a time."""
    domains: dict[str, DomainStats] = {}
    name: str | None = None
    fields: dict[str, int | str] = {}
    # Lines end at "\n" (a CRLF's "\r" dropped), never at what else splitlines() ends one at:
    # a domain may be called anything libvirt takes (U+2028, U+0085, \x1c...).
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        stripped = line.strip()
        if not stripped:
            continue
        if line.startswith("Domain: '") and (m := _DOMAIN_RE.match(line)):
            if name is not None:
                domains[name] = DomainStats(name, fields)
            if len(domains) >= MAX_DOMAINS:
                raise ProbeParseError(
                    "virsh_domstats", f"more than {MAX_DOMAINS} domains (not a real host)"
                )
            name, fields = m.group(1), {}
            continue
        key, sep, value = stripped.partition("=")
        if name is None or not sep or not key or " " in key:
            raise ProbeParseError(
                "virsh_domstats",
                f"line {lineno}: expected \"Domain: '<name>'\" or 'key=value', got {line[:60]!r}",
            )
        # isdecimal() is the regex `-?\d+`'s \d, without a regex call per line.
        digits = value[1:] if value[:1] == "-" else value
        if digits.isdecimal():
            # libvirt's numbers are (u)int64 at most: refuse a longer one before int().
            number = (
                int(digits)
                if len(digits) < MAX_DIGITS
                else bounded_int("virsh_domstats", digits, key[:60])
            )
            fields[key] = -number if value[:1] == "-" else number
        else:
            fields[key] = value
    if name is not None:
        domains[name] = DomainStats(name, fields)
    return tuple(domains.values())


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """`virsh nodeinfo`: the CPUs and memory libvirt sees."""

    cpus: int | None
    mem_bytes: int | None


def parse_nodeinfo(text: str) -> NodeInfo:
    """`CPU(s):` and `Memory size: N KiB` of `virsh nodeinfo`."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kv[key.strip()] = value.strip()
    cpus = kv.get("CPU(s)", "")
    mem = re.fullmatch(r"([0-9]+) KiB", kv.get("Memory size", ""))
    cpus = cpus if cpus.isascii() else ""
    if not cpus.isdigit() and mem is None:
        raise ProbeParseError("virsh_nodeinfo", "no 'CPU(s):' or 'Memory size:' line")
    return NodeInfo(
        bounded_int("virsh_nodeinfo", cpus, "CPU(s)") if cpus.isdigit() else None,
        bounded_int("virsh_nodeinfo", mem.group(1), "Memory size") * 1024 if mem else None,
    )


def failure_reason(text: str, rc: int) -> str:
    """Why a virsh (or xl, xentop) command failed, in words, from its output and exit status.

    The probe merges stderr into the section, so the last `error:` line (or the sudo
    message) is the reason; `sudo -n` prints "sudo: a password is required".
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if rc == 127:  # sh: "sh: 1: virsh: not found"; sudo: "sudo: virsh: command not found"
        return next((ln for ln in lines if ln.endswith("not found")), "command not found")
    timed_out = timeout_words(text, rc)  # timeout(1), or skipped after one
    if timed_out is not None:
        return timed_out
    # sudo warns "unable to resolve host X" on hosts whose name is missing from /etc/hosts,
    # before the message that matters (a password is required, unknown user...).
    sudo = [ln for ln in lines if ln.startswith("sudo:") and "unable to resolve host" not in ln]
    if sudo:
        return sudo[0]
    errors = [ln for ln in lines if ln.lower().startswith("error:")]
    if errors:
        return "; ".join(e.partition(":")[2].strip() for e in errors[-2:])
    if lines:
        return lines[-1][:200]
    return f"exit status {rc} and no output"
