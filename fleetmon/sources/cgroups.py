"""Parse stage for container cgroups (pure): the probe's one-pass read of the cgroup tree.

The probe runs one awk under the cgroup root (awk_read, find_command) that prints one line
per container cgroup, `<cgroup path>\t<key>=<value> ...`; probes before it printed grep's
lines, still read by sources/cgrouplines.py (raw folders saved then). cgroup v2
(kernel 4.5+; PSI files 4.20+, `memory.events` oom_kill 4.13+) puts every controller's
files in one directory; cgroup v1 has one tree per controller, so the path starts with the
controller's mount (`./memory/docker/<id>/memory.stat`), which the parser strips. Units:
v2 cpu.stat in µs, v1 cpuacct.usage and cpu.stat throttled_time in ns, memory in bytes,
PSI totals in µs (Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/{cpuacct,memory}.rst).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetmon.sources import MAX_DIGITS

#: Files read at each of the two samples (counters), and once after the second (gauges;
#: the OOM kill count as it stands; PSI as the kernel's own 10 s averages, which spares
#: reading three files per container twice: 200 containers cost ~4 µs a file; the
#: freezer's state: `podman pause`/`docker pause` freeze the cgroup, v2 `cgroup.events`
#: `frozen` (5.2+; with its ancestors' freeze: effective), v1 `freezer.state`).
COUNTER_FILES = ("cpu.stat", "cpuacct.usage", "io.stat", "blkio.throttle.io_service_bytes")
GAUGE_FILES = (
    "memory.current", "memory.max", "memory.stat", "pids.current", "memory.events",
    "memory.usage_in_bytes", "memory.limit_in_bytes", "memory.oom_control",
    "cpu.pressure", "memory.pressure", "io.pressure", "cgroup.events", "freezer.state",
)  # fmt: skip

#: Where runtimes put their containers' cgroups, as globs below a hierarchy's root:
#: Docker (systemd, cgroupfs; rootless under the user's systemd: moby's WithCgroups gives
#: `user.slice:docker:<id>`), Podman (systemd, cgroupfs; in a pod, either; rootless under
#: the user's systemd, alone or in a pod), containerd outside Kubernetes (nerdctl with systemd,
#: rootful and rootless; ctr and nerdctl with cgroupfs in the `default` namespace) and
#: under the rootless kubelet (the user's systemd, no QoS level), CRI-O
#: outside kubepods, Kubernetes (systemd: Guaranteed pods, then Burstable/BestEffort;
#: cgroupfs the same), LXC 4+ and older, systemd-nspawn and machinectl, libvirt QEMU and
#: LXC with systemd (machine.slice) and without (machine/). A glob costs a readdir of its
#: parents; one whose parents do not exist, a failed lookup.
_USER = "user.slice/user-*.slice/user@*.service/user.slice"
CONTAINER_GLOBS = (
    "system.slice/docker-*.scope", "docker/*", f"{_USER}/docker-*.scope",
    "machine.slice/libpod-*.scope", "libpod_parent/libpod-*", "libpod_parent/*/libpod-*",
    "machine.slice/machine-libpod_pod_*.slice/libpod-*.scope",
    f"{_USER}/libpod-*.scope", f"{_USER}/user-libpod_pod_*.slice/libpod-*.scope",
    "system.slice/nerdctl-*.scope", f"{_USER}/nerdctl-*.scope", "default/*",
    f"{_USER}/cri-containerd-*.scope",
    "system.slice/crio-*.scope",
    "kubepods.slice/kubepods-pod*.slice/*.scope",
    "kubepods.slice/kubepods-*.slice/kubepods-*-pod*.slice/*.scope",
    "kubepods/pod*/*", "kubepods/*/pod*/*",
    "lxc.payload.*", "lxc/*",
    "machine.slice/machine-*.scope", "machine.slice/systemd-nspawn@*.service",
    "machine/*.libvirt-qemu", "machine/*.libvirt-lxc",
)  # fmt: skip
#: The files of those that cgroup v2 has (the others are v1's): a v2 host's awk tries
#: these only, not an open that fails for each v1 name of each container.
V2_FILES = frozenset({
    "cpu.stat", "io.stat", "memory.current", "memory.max", "memory.stat", "pids.current",
    "memory.events", "cpu.pressure", "memory.pressure", "io.pressure", "cgroup.events",
})  # fmt: skip
#: cgroup v1: the hierarchy (mount) each file lives in; `unified` is a hybrid host's cgroup2
#: mount without controllers, which still has cpu.stat's usage and the PSI files (5.2+).
V1_MOUNTS_OF = {
    "cpu.stat": ("cpu", "unified"), "cpuacct.usage": ("cpuacct",),
    "blkio.throttle.io_service_bytes": ("blkio",),
    "cpu.pressure": ("unified",), "memory.pressure": ("unified",), "io.pressure": ("unified",),
    "memory.usage_in_bytes": ("memory",), "memory.limit_in_bytes": ("memory",),
    "memory.stat": ("memory",), "memory.oom_control": ("memory",), "pids.current": ("pids",),
    # Read with the memory mount's files, at the same path under the freezer's (_awk_file):
    # not 23 more globs and a line more a container (the v1 probe cost ~4 ms more so).
    "freezer.state": ("memory",),
}  # fmt: skip

#: Short keys of the compact lines (below): file, or file's key -> what the parser stores.
#: Single-number files, by file name.
_AWK_ONE = (
    "memory.current m memory.usage_in_bytes m memory.max l memory.limit_in_bytes l"
    " cpuacct.usage ca pids.current p"
)
#: `key value` lines, by key (cpu.stat, memory.stat, memory.events, memory.oom_control).
_AWK_KEY = (
    "usage_usec u nr_periods np nr_throttled nt throttled_usec tu throttled_time tn"
    " oom_kill o anon a total_rss a file f total_cache f inactive_file i"
    " total_inactive_file i frozen fz"
)


def _pairs(table: str) -> dict[str, str]:
    words = table.split()
    return dict(zip(words[0::2], words[1::2], strict=True))


#: `key value` files: the keys of _AWK_KEY each has, in the order the kernel prints them, by
#: file and mount (v2: none). v2 cpu.stat (and a hybrid host's `unified` one): usage_usec
#: (then user_ and system_usec, 6.0's core_sched.force_idle_usec), then the CFS bandwidth's
#: nr_periods, nr_throttled, throttled_usec (then 5.14's nr_bursts, burst_usec); v1's:
#: nr_periods, nr_throttled, throttled_time (then nr_bursts, burst_time). v2 memory.stat:
#: anon, file, ... inactive_file among the LRU lists; v1's: the cgroup's own counters
#: (inactive_file among them), then the hierarchy's total_ ones in the same order.
#: memory.events (oom_kill 4.13+) and memory.oom_control: oom_kill once. cgroup.events:
#: populated, then frozen (5.2+; kernel/cgroup/cgroup.c cgroup_events_show).
_KEYS_IN_ORDER = {
    ("cpu.stat", ""): "usage_usec nr_periods nr_throttled throttled_usec",
    ("cpu.stat", "unified"): "usage_usec nr_periods nr_throttled throttled_usec",
    ("cpu.stat", "cpu"): "nr_periods nr_throttled throttled_time",
    ("memory.stat", ""): "anon file inactive_file",
    ("memory.stat", "memory"): "inactive_file total_cache total_rss total_inactive_file",
    ("memory.events", ""): "oom_kill",
    ("memory.oom_control", "memory"): "oom_kill",
    ("cgroup.events", ""): "frozen",
}  # fmt: skip
#: A PSI line at the start of s, `some avg10=%lu.%02lu avg60=...` or `full ...`
#: (kernel/sched/psi.c): its avg10 x 100, the dot dropped, then its leading zeros, as the
#: kernel prints its other values (0.00 as 0), so that the parser takes a whole run of plain
#: numbers by one call; not by `v += 0`, which busybox awk reads as octal; a value not of
#: that form left as it is for the parser to refuse. As p<resource initial><kind initial>
#: (k: ` p<resource initial>`).
_AWK_PSI_LINE = (
    'x = substr(s, 12, index(s, " avg60=") - 12); if (x == "0.00") x = 0;'
    ' else if (x ~ /^[0-9]+[.][0-9][0-9]$/) { sub(/[.]/, "", x);'
    ' if (x ~ /^0/) { sub(/^0+/, "", x); if (x == "") x = 0 } }'
    ' kt = kt k substr(s, 1, 1); t = t " " x'
)
#: A PSI file: its `some` line, then its `full` line where it has one (cpu: 5.13+).
_AWK_PSI = (
    f"function avg10(g, k,  s, x, j) {{ if ((getline s < g) > 0) {{ {_AWK_PSI_LINE};"
    ' if ((j = index(s, "\\n")) && (s = substr(s, j + 1)) != "")'
    f" {{ {_AWK_PSI_LINE} }} }} close(g) }}"
)
#: io.stat and blkio: r and w, their devices' bytes joined by + (the parser sums them), and
#: when the file gives them: a device's, or blkio's `Total` line alone (a cgroup without I/O
#: says 0).
_AWK_IO = {
    "io.stat": (  # `<maj:min> rbytes=N wbytes=N rios=N ...` a device
        'x = s; while (j = index(x, " rbytes=")) { x = substr(x, j + 8);'
        ' rs = rs "+" substr(x, 1, index(x, " ") - 1) }'
        ' x = s; while (j = index(x, " wbytes=")) { x = substr(x, j + 8);'
        ' ws = ws "+" substr(x, 1, index(x, " ") - 1) }',
        'rs != "" || ws != ""',
    ),
    "blkio.throttle.io_service_bytes": (  # `<maj:min> Read N` ... a device, then `Total N`
        's = "\\n" s "\\n"; x = s; while (j = index(x, " Read ")) { x = substr(x, j + 6);'
        ' rs = rs "+" substr(x, 1, index(x, "\\n") - 1) }'
        ' x = s; while (j = index(x, " Write ")) { x = substr(x, j + 7);'
        ' ws = ws "+" substr(x, 1, index(x, "\\n") - 1) }',
        'rs != "" || ws != "" || index(s, "\\nTotal ")',
    ),
}


#: RS: a single-number file's first line; another file whole, by one getline (\001: a byte
#: no cgroup file has).
_LINE, _WHOLE = "\\n", "\\001"


def _awk_key(key: str) -> str:
    """A key's value in a `key value` file read whole (s, a newline put before and after):
    from its space to its line's end."""
    return (
        f' if (j = index(s, "\\n{key} ")) {{ x = substr(s, j + {len(key) + 1});'
        f' kt = kt " {_pairs(_AWK_KEY)[key]}"; t = t substr(x, 1, index(x, "\\n") - 1) }}'
    )


#: v1 freezer.state, one word (kernel/cgroup/legacy_freezer.c freezer_state_strs) as the
#: v2 `frozen` value: FROZEN 1, and FREEZING 1 too (frozen in part: `podman pause` waits
#: for FROZEN, so a container stays there only while a task will not freeze; it is not
#: running either), THAWED 0; another word left as it is for the parser to refuse.
_AWK_FREEZER = (
    'if (x == "THAWED") x = 0; else if (x == "FROZEN" || x == "FREEZING") x = 1;'
    ' kt = kt " fz"; t = t " " x'
)


def _awk_file(f: str, mount: str) -> tuple[str, str]:
    """One file's read, appending to the directory's keys (kt) and values (t), and the RS
    it is read with."""
    if f.endswith(".pressure"):
        return f'if (psi) avg10(p "/{f}", " p{f[0]}")', _WHOLE
    if f == "freezer.state":  # v1 only, read in the memory mount's turn (V1_MOUNTS_OF)
        return (
            f'g = "freezer/" d "/{f}"; if ((getline x < g) > 0) {{ {_AWK_FREEZER} }} close(g)',
            _LINE,
        )
    one = _pairs(_AWK_ONE).get(f)
    keys = _KEYS_IN_ORDER.get((f, mount))
    if one is not None:
        var, rs, body = "x", _LINE, f'kt = kt " {one}"; t = t " " x'
    elif keys is not None:
        var, rs, body = "s", _WHOLE, 's = "\\n" s "\\n";' + "".join(map(_awk_key, keys.split()))
    else:
        io, found = _AWK_IO[f]
        var, rs = "s", _WHOLE
        body = (
            f'rs = ""; ws = ""; {io} if ({found}) {{ kt = kt " r w";'
            ' t = t " " (rs == "" ? 0 : substr(rs, 2)) " " (ws == "" ? 0 : substr(ws, 2)) }'
        )
    return f'g = p "/{f}"; if ((getline {var} < g) > 0) {{ {body} }} close(g)', rs


def _awk_block(files: list[str], mount: str) -> str:
    """One directory's files read, RS set before each run of files read with the same."""
    out, rs = [], ""
    for f in files:
        code, want = _awk_file(f, mount)
        if want != rs:
            out.append(f'RS = "{want}"')
            rs = want
        out.append(code)
    return "; ".join(out)


def awk_read(files: tuple[str, ...]) -> str:
    """The probe's reader of `files` in every container directory given, one awk program
    (find_command runs it on the shell's globs): a file missing or unreadable gives getline
    -1 and is passed over; a line is printed a directory that gave a value,
    `<path below the root>\\t<value> <value> ...`, as soon as it is read, and before it,
    when its keys are not those of the line before, a line of them, `#k <key> <key> ...`
    (the usual host: one for the whole section; v1: one a mount). v1=1: the path starts
    with the file's mount (V1_MOUNTS_OF), dropped from the line (one container's mounts
    give lines of one path, which the parser merges). psi=0: no PSI file read.

    Against a grep of every file with its path on each line (650 KB for 200 containers):
    one glob per directory, not per file, a sixth of the bytes; and the keys said once, not
    at every value, so that the client splits a run of lines of the same keys at once and
    takes a key's values by one slice (sources/cgroupcols.py: 200 containers' three
    sections in a third of the time a token at a time took), at the awk's cost of
    `key=value` tokens. POSIX awk only (mawk, gawk, busybox); values are copied as text,
    never computed (awk's numbers are doubles). The program is written out for its files,
    no loop over them, and reads a file by one getline: its values found by index() after
    their keys, not by a getline, a split and a lookup a line (most of gawk's and
    busybox's time went there: a getline costs busybox some 7,000 instructions, a line's
    or a whole file's). So it takes the kernel's forms for granted, as reading a line at a
    time did not: a file's keys once each, in _KEYS_IN_ORDER's order; a key's value up to
    its line's end; a PSI file's `some` and `full` lines only (tests/test_cgroup_awks.py:
    the same lines as before from the kernels' files). A tab or newline in a directory's
    name (an LXC container may be called anything) is printed as `?`: one line per
    directory."""
    v2 = _awk_block([f for f in files if f in V2_FILES], "")
    v1 = " else ".join(
        f'if (m == "{m}") {{ {_awk_block([f for f in files if m in V1_MOUNTS_OF.get(f, ())], m)} }}'
        for m in dict.fromkeys(m for f in files for m in V1_MOUNTS_OF.get(f, ()))
    )
    psi = _AWK_PSI + " " if any(f.endswith(".pressure") for f in files) else ""
    return (
        psi + 'BEGIN { for (k = 1; k < ARGC; k++) { p = ARGV[k]; kt = ""; t = "";'
        ' if (v1) { j = index(p, "/"); m = substr(p, 1, j - 1); d = substr(p, j + 1);'
        f" {v1} }} else {{ d = p; {v2} }}"
        ' if (t != "") { if (kt != pk) { print "#k" kt; pk = kt }'
        r' if (d ~ /[\t\n]/) gsub(/[\t\n]/, "?", d); print d "\t" substr(t, 2) } } }'
    )


def _dirs(files: tuple[str, ...], v1: bool) -> str:
    """The container directory globs (v1: below each mount that holds one of `files`)."""
    if not v1:
        return " ".join(CONTAINER_GLOBS)
    mounts = dict.fromkeys(m for f in files for m in V1_MOUNTS_OF.get(f, ()))
    return " ".join(f"{m}/{d}" for m in mounts for d in CONTAINER_GLOBS)


def find_command(files: tuple[str, ...]) -> str:
    """The sh command reading `files` of every container cgroup under $FM_CG with one awk
    (awk_read's program). The section's first line, KEYED_HEAD and the version, is the
    shell's (so that an awk's error message never comes before it).

    The shell's globs find the containers' directories (a readdir of a few parent folders;
    no walk of the whole tree, no process per container); a glob that matches nothing stays
    as written and awk finds no file in it. cgroup v2 has cgroup.controllers at its root.
    The directories are awk's arguments: some 10,000 containers (paths of 100-200 bytes)
    reach ARG_MAX's 2 MiB (a quarter of the stack limit), and awk cannot be started (E2BIG:
    the shell's status 126). Then xargs -0 (GNU, busybox, BSD) runs awk on as many as fit
    at a time, in their order: the same lines. Where xargs cannot, the section says
    TOO_MANY, and the host's note that its containers are not reported.

    A file that opens but cannot be read ends mawk (Debian's and Ubuntu's awk): a cgroup
    removed while it was read (ENODEV), or a PSI file where PSI is off (EOPNOTSUPP; `psi=0`,
    or kernels built with it off by default, as RHEL's). Then each directory is read again
    by an awk of its own, so that one container costs only its own line; and where the
    host's /proc/pressure/cpu cannot be read (PSI off), the cgroups' PSI files are not
    read at all: no failure at every sample, no awk per container at every sample. (Past
    ARG_MAX, such a failure costs the rest of its xargs batch for that sample: an awk per
    directory of 10,000 would cost the host more than the sample is worth.)
    """
    psi = any(f.endswith(".pressure") for f in files)
    no_psi = " psi=1; { read -r _ </proc/pressure/cpu; } 2>/dev/null || psi=0;" if psi else ""
    args = "-v v1=$v1 -v psi=$psi" if psi else "-v v1=$v1"
    return (
        '(cd "$FM_CG" 2>/dev/null || exit 1; if [ -f cgroup.controllers ];'
        f" then v1=0; set -- {_dirs(files, False)};"
        f" else v1=1; set -- {_dirs(files, True)}; fi;{no_psi}"
        f" echo \"{KEYED_HEAD}$((2 - v1))\"; a='{awk_read(files)}';"
        f' awk {args} "$a" "$@" 2>/dev/null; r=$?;'
        " if [ $r = 126 ]; then printf '%s\\0' \"$@\" |"
        f' xargs -0 awk {args} "$a" 2>/dev/null;'
        f" case $? in 0|123) ;; *) echo '{TOO_MANY}';; esac; r=0; fi;"
        f' [ $r = 2 ] && for d; do awk {args} "$a" "$d" 2>/dev/null; done; true)'
    )


#: What the section says when the container directories exceed ARG_MAX and xargs cannot
#: pass them in batches (E2BIG's strerror, as the shell printed it before xargs was used).
TOO_MANY = "Argument list too long"

#: A value of more than MAX_DIGITS digits is refused, as a host's garbled output.
BOUND = 10**MAX_DIGITS
#: Values at or above this are "no limit" (v1 prints PAGE_COUNTER_MAX pages in bytes).
UNLIMITED = 1 << 62


@dataclass(frozen=True, slots=True)
class CgroupValues:
    """What one cgroup's files said: field -> value (ns, bytes, µs, counts)."""

    version: int  # 1 or 2
    values: Mapping[str, int | None]


#: The compact keys (awk_read) of one number -> (field, scale to ns, bytes or a count).
TOKENS = {
    "u": ("cpu_ns", 1000), "ca": ("cpuacct_ns", 1), "np": ("nr_periods", 1),
    "nt": ("nr_throttled", 1), "tu": ("throttled_ns", 1000), "tn": ("throttled_ns", 1),
    "o": ("oom_kills", 1), "a": ("mem_anon", 1), "f": ("mem_file", 1),
    "i": ("inactive_file", 1), "m": ("mem_usage", 1), "p": ("pids", 1),
    "fz": ("frozen", 1),
}  # fmt: skip
#: PSI averages: p<resource><kind> -> field (avg10 x 100).
_PSI = {
    f"p{res[0]}{kind[0]}": f"psi_{res}_{kind}_avg10_x100"
    for res in ("cpu", "memory", "io") for kind in ("some", "full")
}  # fmt: skip
TOKENS |= {k: (v, 1) for k, v in _PSI.items()}
#: Per-device keys, summed over the devices.
SUMMED = {"r": "read_bytes", "w": "write_bytes"}
#: The file each key came from, for error messages.
FILE_OF = dict.fromkeys(("u", "np", "nt", "tu", "tn"), "cpu.stat") | {
    "ca": "cpuacct.usage", "o": "memory.events", "a": "memory.stat", "f": "memory.stat",
    "i": "memory.stat", "m": "memory.current", "p": "pids.current", "l": "memory.max",
    "r": "io.stat", "w": "io.stat", "fz": "cgroup.events frozen (v1 freezer.state)",
} | {k: f"{v.split('_')[1]}.pressure" for k, v in _PSI.items()}  # fmt: skip
#: The first line of awk_read's section (and of the probes' before it, whose awk printed a
#: line a cgroup, `<path>\t<key>=<value> ...`: read_compact).
KEYED_HEAD = "#cgroup keyed v"
COMPACT_HEAD = "#cgroup v"


#: A `key value` line's key (_AWK_KEY) -> (field, scale): what the awk's short key stands
#: for (v1 memory.stat's total_ keys count the whole subtree and follow the local ones, so
#: they win).
KEYED_FIELDS = {key: TOKENS[short] for key, short in _pairs(_AWK_KEY).items()}
#: Single-number files (_AWK_ONE) -> field, the limit files apart (`max`, UNLIMITED).
SINGLE_FIELDS = {f: TOKENS[short][0] for f, short in _pairs(_AWK_ONE).items() if short != "l"}
#: Field -> (short key, the scale of the short key's unit): TOKENS, SUMMED and the limit
#: read backwards; throttled_ns by v1's ns key (`tn`), not v2's µs one.
SHORT_OF = (
    {field: (short, scale) for short, (field, scale) in TOKENS.items() if short != "tu"}
    | {field: (short, 1) for short, field in SUMMED.items()}
    | {"mem_limit": ("l", 1)}
)


def number(token: str) -> int:
    """A value's number: digits only, less than 10**MAX_DIGITS (ValueError else)."""
    if not token.isdigit() or int(token) >= BOUND:
        raise ValueError(token)
    return int(token)


def named(values: Mapping[str, int | None]) -> dict[str, int | None]:
    """read_compact's values of one cgroup by field name, in ns, bytes or counts."""
    out: dict[str, int | None] = {}
    for key, v in values.items():
        hit = TOKENS.get(key)
        if hit is not None and v is not None:
            out[hit[0]] = v * hit[1]
        elif key in SUMMED:
            out[SUMMED[key]] = v
        elif key == "l":
            out["mem_limit"] = None if v is None or v >= UNLIMITED else v
    return out
