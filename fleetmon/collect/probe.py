"""Collect stage: the remote probe, one POSIX sh script for a host (pure text building).

The script is sent on the stdin of `env LC_ALL=C nice -n 19 sh -s` (one exec channel, nothing
written on the target), and sets the C locale itself too. It prints every section between two
marker lines carrying a per-run nonce (fleetmon.sources.sections, which splits the output
again), so output from a host cannot fake a section boundary by accident. Sample 1 and 2 are
the two samples; sample 0 holds once-per-run sections (detection, df, nodeinfo, xentop).
Nothing from the inventory reaches the script unquoted: every value goes through
`shlex.quote`. A command that can hang (df, virsh, xl, sudo) runs under timeout(1) with its
kind's limit, and once one of a kind has timed out the others are skipped (GUARD_LIMITS_S).
"""

from __future__ import annotations

import math
import re
import secrets
import shlex
from dataclasses import dataclass, field

from fleetmon.model import HYPERVISOR_MODES
from fleetmon.sources.sections import (
    GUARD_LIMITS_S,
    ONCE_SECTIONS,
    ONE_READER,
    PROBE_VERSION,
    SAMPLE_SECTIONS,
    SKIPPED,
    SKIPPED_AFTER,
    TICK_END_SECTION,
    TIMED_OUT,
    marker,
)

#: The command run on the target; the script arrives on its stdin.
REMOTE_COMMAND = "env LC_ALL=C LANG=C nice -n 19 sh -s"


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Per-host settings that shape the script (from CLI options and inventory vars)."""

    interval_s: float = 1.0
    hypervisor: str = "auto"
    virsh_uri: str = "qemu:///system"
    become: bool = False
    become_user: str | None = None
    #: Where the cgroup tree is mounted (a test or benchmark points it at a recorded tree).
    cgroup_root: str = "/sys/fs/cgroup"
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))


def xentop_delay_s(interval_s: float) -> int:
    """xentop's `-d`: whole seconds (it parses with atoi, so 0.5 would mean 0), rounded up."""
    return max(1, math.ceil(interval_s))


def _interval_arg(interval_s: float) -> str:
    text = f"{interval_s:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _prelude(opts: ProbeOptions) -> list[str]:
    """The script's definitions and detection, up to and including the `sample` function:
    what the one-shot probe and the streaming loop share."""
    if opts.hypervisor not in HYPERVISOR_MODES:
        raise ValueError(f"hypervisor must be one of {HYPERVISOR_MODES}")
    if not re.fullmatch(r"[0-9a-f]{8,64}", opts.nonce):
        raise ValueError("nonce must be lowercase hex")
    xentop_delay = xentop_delay_s(opts.interval_s)
    q = shlex.quote
    return [
        f"M={q(marker(opts.nonce))}",
        # Every command reads /dev/null: the rest of this script is on sh's stdin.
        'fm() { _s=$1; _n=$2; shift 2; printf \'%s begin %s %s\\n\' "$M" "$_s" "$_n";'
        ' eval "$@" </dev/null; _rc=$?;'
        ' printf \'\\n%s end %s %s %s\\n\' "$M" "$_s" "$_n" "$_rc"; }',
        'rd() { cat "$1" 2>/dev/null; }',
        # xl and xentop live in /usr/sbin, which a non-root login's PATH often lacks.
        'PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"; export PATH',
        f"FM_HV={q(opts.hypervisor)}",
        f"FM_URI={q(opts.virsh_uri)}",
        f"FM_CG={q(opts.cgroup_root)}",
        f"FM_BECOME={'1' if opts.become else ''}",
        f"FM_BUSER={q(opts.become_user or '')}",
        *_GUARD_FUNCTIONS,
        # Detection: xl first (a Xen dom0 may also carry virsh for its libvirt xen driver).
        'if [ "$FM_HV" = auto ]; then FM_HV=none;'
        " if command -v xl >/dev/null 2>&1; then FM_HV=xen;"
        " elif command -v virsh >/dev/null 2>&1; then FM_HV=kvm; fi; fi",
        "fm_meta() { printf 'probe=%s\\nhypervisor=%s\\nvirsh=%s\\nxl=%s\\nxentop=%s\\n'"
        f' {PROBE_VERSION} "$FM_HV" "$(command -v virsh 2>/dev/null)"'
        ' "$(command -v xl 2>/dev/null)" "$(command -v xentop 2>/dev/null)";'
        f" printf 'become=%s\\nxentop_delay_s=%s\\n' \"$FM_BECOME\" {xentop_delay}; }}",
        "fm 0 meta fm_meta",
        *_KVM_FUNCTIONS,
        *_xen_functions(xentop_delay),
        *_reader_functions(),
        "sample() {",
        *_SAMPLE_LINES,
        '  if [ "$FM_HV" = kvm ]; then fm $1 virsh_domstats fm_domstats; fi',
        '  if [ "$FM_HV" = xen ]; then fm $1 xl_list fm_xl_list; fi',
        "}",
    ]


#: The guarded commands (sources/sections.py GUARD_LIMITS_S, TIMED_OUT, SKIPPED).
_GUARD_FUNCTIONS: tuple[str, ...] = (
    # timeout(1) where the host has it: GNU's exits 124 at its limit, busybox's 143 (TERM).
    "FM_T=; command -v timeout >/dev/null 2>&1 && FM_T=1",
    # `fm_to KIND SECONDS cmd...`: cmd under `timeout SECONDS`, unless a command of KIND
    # timed out earlier in the run (FM_OUT lists those kinds): then one line saying so and
    # 124, at once, so a stuck libvirtd or a hung NFS mount costs one limit, not one a call.
    # `fm_tm KIND STATUS` adds KIND to FM_OUT when STATUS is a timeout (then 124): fm_to
    # calls it, and so does the caller of an fm_to run in a command substitution (a
    # subshell, whose FM_OUT is its own).
    "FM_OUT=",
    'fm_to() { case " $FM_OUT " in *" $1 "*)'
    f" printf '{SKIPPED}%s{SKIPPED_AFTER}\\n' \"$1\"; return {TIMED_OUT};; esac;"
    ' _k=$1; _t=; [ -n "$FM_T" ] && _t="timeout $2"; shift 2; $_t "$@"; fm_tm "$_k" $?; }',
    f'fm_tm() {{ [ -n "$FM_T" ] && case $2 in {TIMED_OUT}|143) FM_OUT="$FM_OUT $1";'
    f" return {TIMED_OUT};; esac; return $2; }}",
    # `fm_hv KIND SECONDS cmd...`: fm_to, through `sudo -n` when become is on (a password
    # prompt fails at once instead of hanging).
    'fm_hv() { _h=$1; _w=$2; shift 2; if [ -z "$FM_BECOME" ]; then fm_to "$_h" "$_w" "$@";'
    ' elif [ -n "$FM_BUSER" ]; then fm_to "$_h" "$_w" sudo -n -u "$FM_BUSER" -- "$@";'
    ' else fm_to "$_h" "$_w" sudo -n -- "$@"; fi; }',
)

_LIMIT_S = GUARD_LIMITS_S

#: The KVM side's functions: `virsh domstats` (asked again for the domains --nowait passed
#: over), nodeinfo, the domains' UUIDs.
_KVM_FUNCTIONS: tuple[str, ...] = (
    # --nowait (libvirt 4.5+) does not wait for a domain whose monitor is busy: its record
    # then lacks what the monitor gives (balloon.rss and the other memory stats, block
    # rd/wr counters). Older virsh rejects the option: ask again without it. fm_reask
    # reads the answer from a here-document, in this shell: its FM_OUT is the probe's.
    "FM_NOWAIT=--nowait",
    "FM_STATS='--state --cpu-total --balloon --vcpu --interface --block'",
    f'fm_domstats() {{ _o=$(fm_hv virsh {_LIMIT_S["virsh"]} virsh -q -c "$FM_URI" domstats --raw'
    " $FM_NOWAIT $FM_STATS 2>&1); fm_tm virsh $?; _r=$?;"
    ' case "$_o" in *"option --nowait"*) FM_NOWAIT=; fm_domstats; return;; esac;'
    ' [ -n "$_o" ] && printf \'%s\\n\' "$_o";'
    ' [ "$_r" = 0 ] && [ -n "$FM_NOWAIT" ] && fm_reask <<FM_EOF\n$_o\nFM_EOF\nreturn $_r; }',
    # The running (1) or blocked (2) domains that --nowait answered without balloon.rss
    # are asked again, waiting for them up to GUARD_LIMITS_S["reask"] (a busy monitor
    # answers in milliseconds; a hung one must not cost the host its deadline): their
    # complete record, printed after, replaces the first (sources/virsh.py). A failed or
    # skipped re-ask adds nothing.
    "fm_reask() { set --; _d=; _up=; _rss=;"
    ' while IFS= read -r _l; do case "$_l" in'
    ' "Domain: \'"*"\'") [ -n "$_up" ] && [ -z "$_rss" ] && set -- "$@" "$_d";'
    ' _d=${_l#"Domain: \'"}; _d=${_d%"\'"}; _up=; _rss=;;'
    " '  state.state=1'|'  state.state=2') _up=1;; '  balloon.rss='*) _rss=1;;"
    " esac; done;"
    ' [ -n "$_up" ] && [ -z "$_rss" ] && set -- "$@" "$_d";'
    " [ $# -gt 0 ] || return 0;"
    f' _o=$(fm_hv reask {_LIMIT_S["reask"]} virsh -q -c "$FM_URI" domstats --raw $FM_STATS -- "$@"'
    ' 2>/dev/null); fm_tm reask $? && [ -n "$_o" ] && printf \'%s\\n\' "$_o"; return 0; }',
    f'fm_nodeinfo() {{ fm_hv virsh {_LIMIT_S["virsh"]} virsh -q -c "$FM_URI" nodeinfo 2>&1; }}',
    # The domains' UUIDs, a VM's identity in the history across renames and migrations:
    # domstats does not print them; one list does (sources/uuids.py).
    f'fm_uuids() {{ fm_hv virsh {_LIMIT_S["virsh"]} virsh -q -c "$FM_URI" list --all --uuid --name'
    " 2>&1; }",
)


def _xen_functions(xentop_delay: int) -> list[str]:
    """The Xen side's functions: xl's lists and info, xentop's two iterations (one kind of
    guarded command: the Xen toolstack; xentop's limit is its own wait plus xl's)."""
    xl, top = f"fm_hv xl {_LIMIT_S['xl']} xl", f"fm_hv xl {xentop_delay + _LIMIT_S['xl']} xentop"
    return [
        f"fm_xl_uuids() {{ {xl} list -v 2>&1; }}",
        f"fm_xl_list() {{ {xl} list 2>&1; }}",
        f"fm_xl_info() {{ {xl} info 2>&1; }}",
        # `fm_xt cmd...`: cmd's output with a `fm_uptime S` line (/proc/uptime) before each
        # xentop header as it arrives, and cmd's exit status. xentop -b flushes each
        # iteration whole once it has read the domains' counters, so the stamps' Δ is the
        # time between the two reads, which -d only approximates (it sleeps -d seconds
        # after the first read; the reads themselves take time: sources/xen.py).
        "fm_xt() { { \"$@\" 2>&1; printf 'fm_rc %s\\n' $?; } | ( _s=0;"
        ' while IFS= read -r _l; do case "$_l" in "fm_rc "*) _s=${_l#fm_rc }; continue;;'
        ' *NAME*STATE*"CPU(%)"*) read -r _u _x </proc/uptime'
        " && printf 'fm_uptime %s\\n' \"$_u\";; esac; printf '%s\\n' \"$_l\"; done;"
        ' exit "$_s" ); }',
        # xentop -d takes whole seconds (atoi); -f (full names) is Xen 4.6+: an older xentop
        # prints its usage for it, and is asked again without it (names cut to 10 chars).
        f"fm_xentop() {{ _o=$(fm_xt {top} -b -f -i 2 -d {xentop_delay}); fm_tm xl $?; _r=$?;"
        ' case "$_o" in *Usage:*|*"invalid option"*)'
        f" fm_xt {top} -b -i 2 -d {xentop_delay}; fm_tm xl $?; return;; esac;"
        ' [ -n "$_o" ] && printf \'%s\\n\' "$_o"; return $_r; }',
    ]


def _reader_functions() -> list[str]:
    """`fm_rd`, one awk reading many files' sections, and whether the host has an awk."""
    q = shlex.quote
    return [
        # `fm_rd N name file...`: the files' sections of sample N, read by one awk (each
        # as `fm N name 'rd file'` prints it: its text, then exit status 1 where it could
        # not be opened); by a cat each where the host has no awk, or where awk failed: mawk
        # ends on a read error (EOPNOTSUPP from /proc/pressure on a 4.18-5.x kernel booted
        # with psi=0, as RHEL 8 is; ENOTCONN from a crashed lxcfs), having printed only
        # whole sections, which the cats' then replace; and a cat each from then on.
        "command -v awk >/dev/null 2>&1 && FM_AWK=1",
        f'fm_rd() {{ _rs=$1; shift; [ -n "$FM_AWK" ] && awk -v M="$M" -v n="$_rs"'
        f' {q(_AWK_RD)} "$@" </dev/null 2>/dev/null && return; FM_AWK=;'
        ' while [ $# -gt 1 ]; do fm "$_rs" "$1" "rd $2"; shift 2; done; }',
    ]


#: fm_rd's awk: ARGV is name, file, name, file...; getline's -1 (not opened) is cat's 1.
#: Each file is read whole before its section is printed, so a read error that ends awk
#: leaves no section half printed.
_AWK_RD = (
    'BEGIN { for (i = 1; i < ARGC; i += 2) { f = ARGV[i + 1]; t = "";'
    ' r = (getline l < f); while (r > 0) { t = t l "\\n"; r = (getline l < f) } close(f);'
    ' printf "%s begin %s %s\\n%s\\n%s end %s %s %d\\n", M, n, ARGV[i], t, M, n, ARGV[i],'
    " r < 0 } }"
)


def _sample_lines() -> list[str]:
    """The `sample` function's body: ONE_READER's sections in one fm_rd (they come first in
    SAMPLE_SECTIONS, in their order), the others each by `fm`."""
    files = [(n, c) for n, c in SAMPLE_SECTIONS if n in ONE_READER]
    assert list(SAMPLE_SECTIONS[: len(files)]) == files, "ONE_READER's sections come first"
    assert all(c.startswith("rd /") and " " not in c[3:] for _, c in files)
    return [
        "  fm_rd $1 " + " ".join(f"{n} {c[3:]}" for n, c in files),
        *[f"  fm $1 {name} {shlex.quote(cmd)}" for name, cmd in SAMPLE_SECTIONS[len(files) :]],
    ]


_SAMPLE_LINES = _sample_lines()


def build_script(opts: ProbeOptions) -> str:
    """The sh script for one host."""
    interval = _interval_arg(opts.interval_s)
    xentop_delay_s(opts.interval_s)
    q = shlex.quote
    lines = [
        *_prelude(opts),
        "sample 1",
        # On Xen, xentop's two iterations take the place of the sleep between the samples.
        'if [ "$FM_HV" = xen ]; then fm 0 xentop fm_xentop;'
        f' [ "$_rc" = 0 ] || sleep {q(interval)}; else sleep {q(interval)}; fi',
        "sample 2",
        *[f"fm 0 {name} {q(cmd)}" for name, cmd in ONCE_SECTIONS],
        'if [ "$FM_HV" = kvm ]; then fm 0 virsh_nodeinfo fm_nodeinfo; fm 0 vm_uuids fm_uuids; fi',
        'if [ "$FM_HV" = xen ]; then fm 0 xl_info fm_xl_info; fm 0 vm_uuids fm_xl_uuids; fi',
        "fm 0 times times",
    ]
    return _compound(lines, _AWK_SECTION, f"{marker(opts.nonce)} end ")


#: awk's part in every script (_compound): its output, written in 4 KB blocks, flushed at
#: each section's end (the one-shot probe: a host past its deadline has sent the sections
#: awk has seen end, and the timeout's "N bytes of output so far" ends with a whole one, not
#: at a 4 KB block's end) or at each tick's end (the streaming loop: one tick, few packets).
#: busybox awk flushes before each read anyway; mawk reads a pipe a whole block at a time
#: (fin.c fillbuff: 4 KB, more after a longer line), so it sees the last few sections the
#: shell wrote only when more output comes, or the end.
_AWK_SECTION = "{ print } index($0, e) == 1 { fflush() }"
_AWK_TICK = (
    'index($0, e) == 1 && $4 == "pad" { next } { print }'
    ' index($0, e) == 1 && $4 == "' + TICK_END_SECTION + '" { fflush() }'
)
#: After each tick the streaming loop writes PAD_LINES lines of 1 KB that its awk passes
#: over (`<marker> end 0 pad ...`): mawk, Debian's and Ubuntu's awk, reads its input a whole
#: buffer at a time (fin.c fillbuff loops on read() until its 4 KB are full), so a tick's
#: last sections waited in the pipe for the next tick's output: every tick reached the
#: client one interval late. 16 KB fill that buffer past the tick's end (and one grown
#: to 16 KB by a long line); busybox awk reads a line at a time and only skips them.
PAD_LINES = 16


def _compound(lines: list[str], awk: str, end_line: str = "") -> str:
    """The script: `lines` as one compound command, so sh has read all of it before running
    any of it (a dropped connection cannot leave half a script executing), their output
    through one awk where the host has one.

    The shell's printf and each command write their own few bytes (some 15 writes a sample;
    45 with a cat per file, before fm_rd), and sshd sends what each read of its pipe gets
    as a packet of its own, which the client decrypts and handles one at a time: against
    OpenSSH a 10 KB streamed tick came in 35-43 packets, and in 3-4 through awk, whose
    output is buffered (4 KB blocks in mawk and busybox). benchmarks/stream_sshd.py
    measures both sides against the old way. awk passes the lines on as they are (bytes
    and NULs in mawk; a last line without a newline gets one, and every section ends with
    its marker line). `times` then counts the shell in the pipeline and its commands, not
    awk. `end_line`: the marker line's prefix that awk's program finds as `e` (_AWK_TICK).
    """
    e = f" -v e={shlex.quote(end_line)}" if end_line else ""
    return (
        # The C locale for the probe and its awk whatever runs the script: REMOTE_COMMAND
        # sets it too, but a ForceCommand `/bin/sh` ignores the command line, and a
        # translated df header ("Dosya sistemi" under tr_TR) is not one the parser knows.
        "{\nLC_ALL=C LANG=C; export LC_ALL LANG\nfm_probe() {\n"
        + "\n".join(lines)
        + "\n}\nif command -v awk >/dev/null 2>&1;"
        + f" then fm_probe | awk{e} {shlex.quote(awk)}; else fm_probe; fi\nexit 0\n}}\n"
    )


#: The streaming loop re-reads the once-per-run sections (df, nodeinfo, UUIDs) every this
#: many ticks: a filesystem filling or a VM defined shows within a minute at 2 s ticks.
ONCE_EVERY_TICKS = 30


def build_stream_script(opts: ProbeOptions, ticks: int | None = None) -> str:
    """The looping sh script of the streaming collector: sample N, `times`, sleep, sample N+1...

    Each tick is sample N (N = 1, 2, ...) ending with its `times` section, the tick's end
    for the reader (sources.sections.TICK_END_SECTION); the once-per-run sections come as
    sample 0 before samples 1, 1 + ONCE_EVERY_TICKS... The interval between two samples is
    measured on the remote clock (/proc/uptime), so the sleep's drift is harmless. On Xen,
    xentop's two iterations take the place of the sleep, as in the two-sample probe: its
    section (sample 0) opens the next tick, so the pair (N, N+1) has the xentop of the
    wait between them (a tick is then xentop's whole seconds); where xentop fails, the
    loop sleeps and VM CPU comes from xl list's Time(s). `ticks` ends the loop (tests).
    """
    interval = _interval_arg(opts.interval_s)
    q = shlex.quote
    more = "[ $N -le " + str(ticks) + " ]" if ticks is not None else ":"
    lines = [
        *_prelude(opts),
        # The kinds of command that timed out are tried again with the once-per-run
        # sections: a libvirtd or an NFS server back shows within ONCE_EVERY_TICKS.
        "fm_once() {",
        "  FM_OUT=",
        *[f"  fm 0 {name} {q(cmd)}" for name, cmd in ONCE_SECTIONS],
        '  if [ "$FM_HV" = kvm ]; then fm 0 virsh_nodeinfo fm_nodeinfo; fm 0 vm_uuids fm_uuids; fi',
        '  if [ "$FM_HV" = xen ]; then fm 0 xl_info fm_xl_info; fm 0 vm_uuids fm_xl_uuids; fi',
        "}",
        f'fm_wait() {{ if [ "$FM_HV" = xen ]; then fm 0 xentop fm_xentop;'
        f' [ "$_rc" = 0 ] || sleep {q(interval)}; else sleep {q(interval)}; fi; }}',
        "FM_STREAM=1",
        "N=1",
        # fm_pad: the lines after a tick that make mawk see its end (PAD_LINES), where
        # the output goes through an awk (the test _compound makes).
        f"FM_PAD={q(marker(opts.nonce) + ' end 0 pad ' + '.' * 1000)}",
        "command -v awk >/dev/null 2>&1 || FM_PAD=",
        'fm_pad() { [ -n "$FM_PAD" ] || return 0; _i=0;'
        f' while [ $_i -lt {PAD_LINES} ]; do echo "$FM_PAD"; _i=$((_i + 1)); done; }}',
        f"while {more}; do",
        f"  [ $(( (N - 1) % {ONCE_EVERY_TICKS} )) = 0 ] && fm_once",
        "  sample $N",
        f"  fm $N {TICK_END_SECTION} times",
        "  fm_pad",
        "  N=$((N + 1))",
        f"  {more} && fm_wait",
        "done",
    ]
    return _compound(lines, _AWK_TICK, f"{marker(opts.nonce)} end ")
