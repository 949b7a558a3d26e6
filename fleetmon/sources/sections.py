"""Parse stage: the probe's sections and the splitter of its output (pure).

Every section is printed between two marker lines carrying a per-run nonce:

    @@fleetmon-<nonce>@@ begin <sample> <name>
    <the command's stdout, byte for byte>
    @@fleetmon-<nonce>@@ end <sample> <name> <exit status>

The end marker is preceded by one extra newline that the splitter removes, so a file
without a final newline (facter's loadavg) comes back exactly as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from fleetmon.errors import ProbeParseError
from fleetmon.sources.cgroups import COUNTER_FILES, GAUGE_FILES, find_command
from fleetmon.sources.ctrnames import NAMES_COMMAND
from fleetmon.sources.virt import COMMAND as VIRT_COMMAND

T = TypeVar("T")

PROBE_VERSION = 1

#: Sections read in each of the two samples: (name, sh command). `rd` is `cat` with errors
#: silenced: a missing file gives exit status 1 and empty text (old kernels). The probe
#: reads the files of ONE_READER's sections with one awk, not a cat each.
SAMPLE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("uptime", "rd /proc/uptime"),
    ("boot_id", "rd /proc/sys/kernel/random/boot_id"),
    ("stat", "rd /proc/stat"),
    ("meminfo", "rd /proc/meminfo"),
    ("vmstat", "rd /proc/vmstat"),
    ("loadavg", "rd /proc/loadavg"),
    ("pressure_cpu", "rd /proc/pressure/cpu"),
    ("pressure_io", "rd /proc/pressure/io"),
    ("pressure_memory", "rd /proc/pressure/memory"),
    ("diskstats", "rd /proc/diskstats"),
    ("net_dev", "rd /proc/net/dev"),
    # Containers' cgroup counters, one awk over their folders (sources/cgroups.py).
    ("cgroup", find_command(COUNTER_FILES)),
)

#: The `rd` sections one awk reads in a sample (collect/probe.py `fm_rd`: one process where
#: a cat each cost ~8 ms of the host's CPU a sample, against ~1 ms): files the kernel
#: prints whole at the first read (single_open: uptime, stat, meminfo, loadavg, the PSI
#: files; boot_id, a sysctl) or whose lines are counters of their own (vmstat), so that
#: awk's 4 KB reads give what cat's one 128 KB read gives. diskstats and net_dev list
#: devices, which a read in pieces could see twice or miss when one comes or goes between
#: the pieces (a hypervisor's tap devices): cat reads them, whole.
ONE_READER = frozenset(
    ("uptime", "boot_id", "stat", "meminfo", "vmstat", "loadavg", "pressure_cpu",
     "pressure_io", "pressure_memory")
)  # fmt: skip

#: The probe's time limits (timeout(1), where the host has it) by kind of command, in
#: seconds (collect/probe.py fm_to). Once a command of a kind times out, that kind's later
#: commands are skipped in the run, so a run waits at most one limit of each kind.
#: df: a hung NFS mount never answers, a healthy df takes milliseconds. virsh: domstats,
#: nodeinfo, list (a stuck libvirtd); reask: domstats of the domains --nowait passed over
#: (a busy monitor answers in milliseconds). xl: xl's lists and info and xentop, past its
#: own two iterations. sudo: the SMBIOS UUID's read through sudo.
GUARD_LIMITS_S: Mapping[str, int] = {"df": 5, "virsh": 10, "reask": 5, "xl": 10, "sudo": 5}
#: The longest the guarded commands can hold one run (or one tick of the streaming loop,
#: whose skipped kinds are tried again with the once-per-run sections): one timeout of each
#: kind a host runs. The default deadlines (cli/options.py, collect/base.py) exceed it.
WORST_GUARDED_S = (
    GUARD_LIMITS_S["df"]
    + GUARD_LIMITS_S["sudo"]
    + max(GUARD_LIMITS_S["virsh"] + GUARD_LIMITS_S["reask"], GUARD_LIMITS_S["xl"])
)
#: The exit status of a command past its time limit (GNU timeout's; busybox's 143 is made
#: this), and of one skipped because its kind timed out earlier in the run, whose text is
#: then one line: SKIPPED, the kind, SKIPPED_AFTER.
TIMED_OUT = 124
SKIPPED = "skipped: "
SKIPPED_AFTER = " timed out earlier in this run"

#: Sections read once, after the second sample (sample 0).
ONCE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("df_k", f"fm_to df {GUARD_LIMITS_S['df']} df -P -k 2>/dev/null"),
    ("df_i", f"fm_to df {GUARD_LIMITS_S['df']} df -P -i 2>/dev/null"),
    ("cgroup_mem", find_command(GAUGE_FILES)),
    # The SMBIOS UUID: a guest's libvirt domain UUID (analyse/guests.py). Root only (0400):
    # through sudo when become is on.
    (
        "product_uuid",
        "rd /sys/class/dmi/id/product_uuid"
        ' || { [ -n "$FM_BECOME" ] &&'
        f" fm_hv sudo {GUARD_LIMITS_S['sudo']} cat /sys/class/dmi/id/product_uuid 2>/dev/null; }}",
    ),
    # A Xen guest's domain UUID, world-readable (drivers/xen/sys-hypervisor.c, 0444): the
    # UUID of a PV or PVH guest, which has no SMBIOS table, and of an HVM guest read
    # without root. All zeros in dom0 (its handle), absent off Xen.
    ("xen_uuid", "rd /sys/hypervisor/uuid"),
    ("ctr_names", NAMES_COMMAND),
    # What the host runs on (a VM, a container, bare metal): DMI strings, Xen's and the
    # containers' marks, read without root (sources/virt.py).
    ("virt", VIRT_COMMAND),
)


#: The streaming loop's last section of each tick (collect.probe.build_stream_script): the
#: shell's cumulative CPU times, whose end marker tells the reader a sample is complete.
TICK_END_SECTION = "times"


def timeout_words(text: str, rc: int) -> str | None:
    """A guarded command's timeout in words (None: it did not time out): past the probe's
    time limit, or skipped because its kind had timed out earlier in the run."""
    if rc != TIMED_OUT:
        return None
    first = text.lstrip("\n").partition("\n")[0]
    if first.startswith(SKIPPED) and first.endswith(SKIPPED_AFTER):
        return first
    return "no answer within the probe's time limit (timed out)"


class Section(NamedTuple):
    """One section of probe output. A NamedTuple rather than a frozen dataclass: dozens per
    host per sample, and a fraction of the cost to build."""

    sample: int
    name: str
    text: str
    rc: int


@dataclass(frozen=True, slots=True)
class ProbeOutput:
    """A host's probe output, split into sections keyed by (sample, name)."""

    sections: Mapping[tuple[int, str], Section]
    #: Parsed sections by (section, parser, text): the streaming collector shares one between
    #: two consecutive pairs, so the sample they share is parsed once (None: no memo).
    memo: MutableMapping[tuple[str, str, str], Any] | None = field(default=None, compare=False)

    def get(self, sample: int, name: str) -> Section | None:
        """The section, or None when the probe did not print it."""
        return self.sections.get((sample, name))

    def text(self, sample: int, name: str) -> str | None:
        """The section's text when it exists and its command succeeded, else None."""
        sec = self.sections.get((sample, name))
        if sec is None or sec.rc != 0:
            return None
        return sec.text

    def timed_out(self, sample: int, name: str) -> str | None:
        """timeout_words of the section (None: absent, or not a timeout)."""
        sec = self.sections.get((sample, name))
        return None if sec is None else timeout_words(sec.text, sec.rc)

    def parsed(self, sample: int, name: str, parser: Callable[[str], T]) -> T | None:
        """parser(text) of the section, None when it is absent or its command failed. With a
        memo, a text already parsed by the same parser is not parsed again (the parsers are
        pure and their results frozen, so sharing them changes nothing)."""
        return self._parse(sample, name, parser, None)

    def parsed_shaped(
        self,
        sample: int,
        name: str,
        parser: Callable[[str], T],
        shaped: Callable[[str, Any], tuple[T, Any]],
    ) -> T | None:
        """parsed(sample, name, parser), where `shaped(text, shape)` gives parser(text) and
        the shape for the next text, reading the text faster when it has the layout of
        the one the shape came from (sources/domshape.py). With a memo, the section's
        latest shape is kept in it under SHAPE_TEXT, which a streamed host's memo keeps
        from pair to pair: every sample parsed is read by the shape of the one parsed
        before it, also when the samples between them were passed over unread."""
        return self._parse(sample, name, parser, shaped)

    def _parse(
        self,
        sample: int,
        name: str,
        parser: Callable[[str], T],
        shaped: Callable[[str, Any], tuple[T, Any]] | None,
    ) -> T | None:
        sec = self.sections.get((sample, name))  # self.text(), without a call more
        if sec is None or sec.rc != 0:
            return None
        text = sec.text
        if self.memo is None:
            return parser(text)
        pkey = _PARSER_KEYS.get(parser) or _parser_key(parser)
        key = (name, pkey, text)
        try:
            value: T = self.memo[key]
        except KeyError:
            if shaped is None:
                value = parser(text)
            else:
                skey = (name, "shape of " + pkey, SHAPE_TEXT)
                value, self.memo[skey] = shaped(text, self.memo.get(skey))
            self.memo[key] = value
        return value


#: The text of a memo's key under which a section's latest shape is kept
#: (ProbeOutput.parsed_shaped): no sample's text, so that it outlives the samples.
SHAPE_TEXT = ""


def _parser_key(parser: Callable[..., Any]) -> str:
    key = _PARSER_KEYS.get(parser)
    if key is not None:
        return key
    func = getattr(parser, "func", parser)  # functools.partial: its function and keywords
    kw = getattr(parser, "keywords", None)
    key = f"{func.__module__}.{func.__qualname__}{sorted(kw.items()) if kw else ''}"
    if func is parser and "<" not in key:
        # A module's own function (not a lambda, closure or partial made per call): it lives
        # as long as its module, so the cache stays as small as the parsers are few.
        _PARSER_KEYS[parser] = key
    return key


_PARSER_KEYS: dict[Callable[..., Any], str] = {}


def marker(nonce: str) -> str:
    """The marker that starts every line framing a section of a run with this nonce."""
    return f"@@fleetmon-{nonce}@@"


#: Sample numbers and exit statuses are small: a longer number is a malformed marker.
#: A marker line is the marker (whose nonce is hex) and what follows it on its line.
_NONCE_RE = re.compile(r"[0-9a-f]+")
_MARK_REST_RE = re.compile(r" (begin|end) ([0-9]{1,9}) ([a-z_0-9]+)(?: (-?[0-9]{1,9}))?")


def _mark(rest: str) -> tuple[str, int, str, int | None] | None:
    """A marker line's rest (what follows the marker) as its kind, sample, section name
    and exit status (None: a begin marker's); None when it is malformed."""
    m = _MARK_REST_RE.fullmatch(rest)
    if m is None:
        return None
    kind, sample, name, rc = m.groups()
    return kind, int(sample), name, None if rc is None else int(rc)


# The same marker lines come back tick after tick, host after host (a live fleet's samples
# are numbered alike): each read once. Only short ones are kept (marker lines are).
_marks = functools.lru_cache(maxsize=4096)(_mark)


def split_output(stdout: str, nonce: str) -> ProbeOutput:
    """Split probe output into sections; raise ProbeParseError on a broken structure."""
    sections: dict[tuple[int, str], Section] = {}
    mark = marker(nonce)
    hex_nonce = _NONCE_RE.fullmatch(nonce) is not None
    current: tuple[int, str] | None = None
    body = ""
    # A marker line is a line that starts with the marker: one C-speed split at each of
    # them (not a look at every line). Each piece is the rest of a marker line, then up to
    # the newline before the next marker line, which the probe prints as the extra one.
    for piece in ("\n" + stdout).split("\n" + mark)[1:]:
        rest, _, after = piece.partition("\n")
        read = None if not hex_nonce else _marks(rest) if len(rest) <= 64 else _mark(rest)
        if read is None:
            raise ProbeParseError("markers", f"malformed marker line {(mark + rest)[:80]!r}")
        kind, sample, name, rc = read
        if kind == "begin":
            if current is not None:
                raise ProbeParseError(current[1], "section not terminated")
            current, body = (sample, name), after
        else:
            if current != (sample, name) or rc is None:
                raise ProbeParseError(name, "end marker without matching begin")
            sections[current] = Section(sample, name, body, rc)
            current = None
    if current is not None:
        raise ProbeParseError(current[1], "output ends inside the section (truncated?)")
    if not sections:
        raise ProbeParseError("markers", f"no probe sections in the output{_printed(stdout)}")
    return ProbeOutput(sections)


def _printed(stdout: str) -> str:
    """What came back instead of the probe, for its parse error: the probe never ran, and a
    command that exits 0 in its place is a forced one (sshd's ForceCommand, a `command=`
    in authorized_keys) more often than not."""
    line = next((ln.strip() for ln in stdout.splitlines() if ln.strip()), "")
    hint = "a ForceCommand or an authorized_keys command= restriction?"
    if not line:
        return f"; the host printed nothing ({hint})"
    if not line.isprintable():
        return ""  # not text (the simulator's garbage): nothing worth quoting
    quoted = line if len(line) <= 120 else line[:117] + "..."
    return f"; the host printed: {quoted!r} ({hint})"


def tick_end_re(nonce: str) -> re.Pattern[bytes]:
    """The end-marker line of a streamed tick (its TICK_END_SECTION), found in raw bytes,
    with the newline that ends the line before it (the probe's extra one: never the first
    byte of a tick). A literal prefix rather than `^` under re.M: the regex engine then
    skips to each candidate at C speed instead of trying every position of the tick."""
    mark = re.escape(marker(nonce).encode())
    name = TICK_END_SECTION.encode()
    return re.compile(rb"\n" + mark + rb" end ([0-9]{1,9}) " + name + rb" -?[0-9]{1,9}\n")


@dataclass(frozen=True, slots=True)
class Tick:
    """One streamed sample: its number, its sections by name, and the sample-0 sections
    (meta, df, nodeinfo, UUIDs) that came with it, if any."""

    number: int
    sections: Mapping[str, Section]
    once: Mapping[str, Section]


def split_tick(stdout: str, nonce: str) -> Tick:
    """One streamed tick's text (up to its end marker) as a Tick; ProbeParseError when it
    holds anything but sample 0 and one sample N."""
    out = split_output(stdout, nonce)
    numbers = {sample for sample, _ in out.sections if sample != 0}
    if len(numbers) != 1:
        raise ProbeParseError("markers", f"a streamed tick holds samples {sorted(numbers)}")
    (number,) = numbers
    sections: dict[str, Section] = {}
    once: dict[str, Section] = {}
    for (sample, name), sec in out.sections.items():
        (sections if sample else once)[name] = sec
    return Tick(number, sections, once)


def pair_output(
    once: Mapping[str, Section],
    first: Mapping[str, Section],
    second: Mapping[str, Section],
    memo: MutableMapping[tuple[str, str, str], Any] | None = None,
) -> ProbeOutput:
    """Two consecutive streamed samples as the probe's two-sample output: `first` becomes
    sample 1, `second` sample 2, `once` sample 0. The analysis then reads them exactly as
    it reads `fleetmon run`'s probe (one implementation of every rate). The tick's `times`
    (the looping shell's CPU since it started) is left out: it is not one probe's cost.
    `memo` (ProbeOutput.memo) is kept by the caller from one pair to the next."""
    sections: dict[tuple[int, str], Section] = {
        (0, name): sec for name, sec in once.items() if name != TICK_END_SECTION
    }
    for sample, part in ((1, first), (2, second)):
        for name, sec in part.items():
            if name != TICK_END_SECTION:
                # Section(sample, name, text, rc), without the Python call of its __new__.
                sections[(sample, name)] = tuple.__new__(Section, (sample, name, sec.text, sec.rc))
    return ProbeOutput(sections, memo)


def keep_for_next(out: ProbeOutput) -> None:
    """Drop from a streamed pair's memo what the next pair cannot reuse: it keeps the parses
    of this pair's second sample and of the once-per-run sections (the next pair's sample 1
    is this one's 2), and the sections' latest shapes (SHAPE_TEXT)."""
    if out.memo is None:
        return
    keep = {id(sec.text) for (n, _), sec in out.sections.items() if n != 1}
    keep.add(id(SHAPE_TEXT))
    for key in [k for k in out.memo if id(k[2]) not in keep]:
        del out.memo[key]
