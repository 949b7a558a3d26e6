"""Simulator (edge): read a probe script, answer it in the probe's section format.

The answer has two parts: everything up to the sleep (or xentop) between the samples, and the
rest; the server waits the script's interval between them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fleetmon.sim import containers, render
from fleetmon.sim.captures import SYSSTAT_UPTIME_S, Captures
from fleetmon.sim.hosts import HostProfile
from fleetmon.sim.render import Moment
from fleetmon.sim.virt import render_virt
from fleetmon.sim.xentop import render_xentop
from fleetmon.sources.sections import (
    ONCE_SECTIONS,
    PROBE_VERSION,
    SAMPLE_SECTIONS,
    TICK_END_SECTION,
)

# The script may arrive on stdin as built, or pasted into a command line (quoted by sh -c).
_NONCE_RE = re.compile(r"M=['\"]?@@fleetmon-([0-9a-f]{8,64})@@")
_SLEEP_RE = re.compile(r"sleep\s+['\"]?([0-9]+(?:\.[0-9]*)?)")
_HV_RE = re.compile(r"FM_HV=['\"]*(auto|kvm|xen|none)\b")
#: The streaming collector's looping script (collect.probe.build_stream_script), and its
#: tick limit when it has one.
_STREAM_RE = re.compile(r"\bFM_STREAM=1\b")
_TICKS_RE = re.compile(r"while \[ \$N -le ([0-9]+) \]")
_XENTOP_DELAY_RE = re.compile(r"xentop -b -f -i 2 -d ([0-9]+)")

#: What dash says for a command that is not installed (exit status 127).
_NOT_FOUND = "sh: 1: {}: not found\n"
#: dash's `times` builtin: shell user/system, then children user/system.
_TIMES = "0m0.004000s 0m0.008000s\n0m0.012000s 0m0.016000s\n"


@dataclass(frozen=True, slots=True)
class ScriptInfo:
    """What the simulator needs from a probe script."""

    nonce: str
    interval_s: float
    hypervisor: str  # auto, kvm, xen or none
    #: The looping script of the streaming collector, and its tick limit (None: forever).
    stream: bool = False
    ticks: int | None = None
    xentop_delay_s: int = 1  # xentop's -d, whole seconds


def parse_script(text: str) -> ScriptInfo | None:
    """The probe's nonce, interval and hypervisor mode; None when `text` is no probe script."""
    nonce = _NONCE_RE.search(text)
    if nonce is None:
        return None
    sleep = _SLEEP_RE.search(text)
    hv = _HV_RE.search(text)
    ticks = _TICKS_RE.search(text)
    delay = _XENTOP_DELAY_RE.search(text)
    return ScriptInfo(
        nonce=nonce.group(1),
        interval_s=float(sleep.group(1)) if sleep else 1.0,
        hypervisor=hv.group(1) if hv else "auto",
        stream=_STREAM_RE.search(text) is not None,
        ticks=int(ticks.group(1)) if ticks else None,
        xentop_delay_s=int(delay.group(1)) if delay else 1,
    )


def section(marker: str, sample: int, name: str, text: str, rc: int) -> str:
    """One section exactly as the probe's `fm` function prints it."""
    return f"{marker} begin {sample} {name}\n{text}\n{marker} end {sample} {name} {rc}\n"


@dataclass(frozen=True, slots=True)
class Answer:
    """Renders one host's answer to one probe script."""

    cap: Captures
    host: HostProfile
    info: ScriptInfo
    df_k: str
    df_i: str

    @property
    def marker(self) -> str:
        return f"@@fleetmon-{self.info.nonce}@@"

    @property
    def hypervisor(self) -> str:
        if self.info.hypervisor != "auto":
            return self.info.hypervisor
        return {"kvm": "kvm", "xen": "xen"}.get(self.host.kind, "none")

    @property
    def xentop(self) -> bool:
        """Whether this answer has xentop's two iterations (a Xen host that has it)."""
        xen = self.hypervisor == "xen" and self.host.kind == "xen"
        return xen and self.host.has_xentop

    @property
    def wait_s(self) -> float:
        """Seconds between the two samples: xentop's iterations where it runs, else the sleep."""
        return float(self.info.xentop_delay_s) if self.xentop else self.info.interval_s

    def _sample_files(self, at: Moment) -> dict[str, Callable[[], tuple[str, int]]]:
        cap, host = self.cap, self.host
        since = at.uptime(host) - SYSSTAT_UPTIME_S
        # sysstat's busiest disk is 6.4 % utilised: 14.5 times that is 93 %, on hot hosts only.
        disk_scale = 14.5 if host.hot else min(host.activity, 8.0)

        def psi(kind: str) -> Callable[[], tuple[str, int]]:
            if not host.has_psi:  # kernel before 4.20, or psi=0: the file is missing
                return lambda: ("", 1)
            # Stall time is a share of wall time: it grows with load, not with CPU count.
            return lambda: (dict(cap.pressure)[kind].render(0.5 + host.busy_share, since), 0)

        return {
            "uptime": lambda: (render.render_uptime(host, at), 0),
            "boot_id": lambda: (host.boot_id + "\n", 0),
            "stat": lambda: (render.render_stat(cap, host, at), 0),
            "meminfo": lambda: (render.render_meminfo(cap, host), 0),
            "vmstat": lambda: (cap.vmstat.render(host.activity, since), 0),
            "loadavg": lambda: (render.render_loadavg(host, at), 0),
            "diskstats": lambda: (cap.diskstats.render(disk_scale, since), 0),
            "net_dev": lambda: (render.render_net_dev(cap, host, at), 0),
            "pressure_cpu": psi("cpu"),
            "pressure_io": psi("io"),
            "pressure_memory": psi("memory"),
            # A host without containers: the probe's find finds nothing, successfully.
            "cgroup": lambda: (
                containers.render_counters(
                    host, at.uptime(host), containers.vm_cgroups(cap, host, at)
                ),
                0,
            ),
        }

    def _sample(self, n: int, at: Moment) -> list[str]:
        files = self._sample_files(at)
        out = []
        for name, _ in SAMPLE_SECTIONS:
            text, rc = files[name]() if name in files else ("", 1)
            out.append(section(self.marker, n, name, text, rc))
        hv = self.hypervisor
        if hv == "kvm":
            out.append(section(self.marker, n, "virsh_domstats", *self._virsh(at)))
        elif hv == "xen":
            out.append(section(self.marker, n, "xl_list", *self._xl_list(at)))
        return out

    def _virsh(self, at: Moment) -> tuple[str, int]:
        if self.host.kind != "kvm":
            return _NOT_FOUND.format("virsh"), 127
        return render.render_domstats(self.cap, self.host, at), 0

    def _xl_list(self, at: Moment) -> tuple[str, int]:
        if self.host.kind != "xen":
            return _NOT_FOUND.format("xl"), 127
        return render.render_xl_list(self.cap, self.host, at), 0

    def _meta(self) -> str:
        kind = self.host.kind
        meta = (
            f"probe={PROBE_VERSION}\nhypervisor={self.hypervisor}\n"
            f"virsh={'/usr/bin/virsh' if kind == 'kvm' else ''}\n"
            f"xl={'/usr/sbin/xl' if kind == 'xen' else ''}\n"
            f"xentop={'/usr/sbin/xentop' if self.xentop else ''}\n"
            f"become=\nxentop_delay_s={self.info.xentop_delay_s}\n"
        )
        return section(self.marker, 0, "meta", meta, 0)

    def first(self, at: Moment) -> str:
        """Detection and sample 1, up to the wait between the samples."""
        return "".join([self._meta(), *self._sample(1, at), *self._xentop(at)])

    def _xentop(self, at: Moment) -> list[str]:
        """The wait after a sample taken at `at`, on Xen: xentop's two iterations, -d seconds
        apart, in place of the sleep; without xentop, its failure (the script then sleeps
        and xl list's Time(s) gives VM CPU)."""
        if self.xentop:
            text = render_xentop(self.cap, self.host, at, self.info.xentop_delay_s)
            return [section(self.marker, 0, "xentop", text, 0)]
        if self.hypervisor == "xen":
            return [section(self.marker, 0, "xentop", _NOT_FOUND.format("xentop"), 127)]
        return []

    def _once(self) -> list[str]:
        host = self.host
        out = []
        df_k = render.fill_root(self.df_k, 0.985) if host.full_fs else self.df_k
        once = {"df_k": df_k, "df_i": self.df_i}
        # The guests' memory and pids do not move with time: any moment gives them.
        vms = containers.vm_cgroups(self.cap, host, Moment(0.0, 0.0))
        if host.containers or vms:
            once["cgroup_mem"] = containers.render_gauges(host, vms)
        if host.containers:
            once["ctr_names"] = containers.render_names(host)
        if host.guest_of:  # SMBIOS system UUID = the domain UUID (sim/guests.py)
            once["product_uuid"] = render.vm_uuid(host.guest_of) + "\n"
        once["virt"] = render_virt(host)  # what it runs on (sim/virt.py)
        for name, _ in ONCE_SECTIONS:
            text = once.get(name, "")
            out.append(section(self.marker, 0, name, text, 0 if text else 1))
        if self.hypervisor == "kvm":
            ok = host.kind == "kvm"
            text = render.render_nodeinfo(self.cap, host) if ok else _NOT_FOUND.format("virsh")
            out.append(section(self.marker, 0, "virsh_nodeinfo", text, 0 if ok else 127))
            text = render.render_uuids(host) if ok else _NOT_FOUND.format("virsh")
            out.append(section(self.marker, 0, "vm_uuids", text, 0 if ok else 127))
        elif self.hypervisor == "xen":
            ok = host.kind == "xen"
            text = render.render_xl_info(self.cap, host) if ok else _NOT_FOUND.format("xl")
            out.append(section(self.marker, 0, "xl_info", text, 0 if ok else 127))
        return out

    def second(self, at: Moment) -> str:
        """Sample 2 and the once-per-run sections."""
        out = [*self._sample(2, at), *self._once()]
        out.append(section(self.marker, 0, "times", _TIMES, 0))
        return "".join(out)

    def tick(self, number: int, at: Moment, once: bool) -> str:
        """Tick `number` of the streaming loop: the meta section first (tick 1), or on Xen
        the wait since the previous tick (xentop's iterations from `at` less the wait), the
        once-per-run sections when `once`, sample `number`, and its `times` (the tick's end)."""
        if number == 1:
            out = [self._meta()]
        else:
            wait = self.wait_s
            out = self._xentop(Moment(at.since_start_s - wait, at.epoch_s - wait))
        if once:
            out += self._once()
        out += self._sample(number, at)
        out.append(section(self.marker, number, TICK_END_SECTION, _TIMES, 0))
        return "".join(out)
