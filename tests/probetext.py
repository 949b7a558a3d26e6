"""Probe stdout, markers and all, assembled from real captures (for whole-pipeline tests).

The host is a composite: /proc from sysstat's consecutive roots (an i7-2600 box) and,
when asked, `virsh domstats --raw` from the libvirt 9 lab captures; df from this project's
own capture. Only the assembly is ours: every section's text is a capture, byte for byte.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DATA = Path(__file__).parent / "data"
SYSSTAT = DATA / "sysstat"
LAB = DATA / "lab-libvirt9-qemu7-tcg"
NONCE = "0123456789abcdef"

PROC = {
    "uptime": "proc/uptime",
    "stat": "proc/stat",
    "meminfo": "proc/meminfo",
    "vmstat": "proc/vmstat",
    "loadavg": "proc/loadavg",
    "diskstats": "proc/diskstats",
    "net_dev": "proc/net/dev",
    "pressure_cpu": "proc/pressure/cpu",
    "pressure_io": "proc/pressure/io",
    "pressure_memory": "proc/pressure/memory",
}


def section(sample: int, name: str, text: str, rc: int = 0, nonce: str = NONCE) -> str:
    """One section exactly as the probe's `fm` function prints it."""
    mark = f"@@fleetmon-{nonce}@@"
    return f"{mark} begin {sample} {name}\n{text}\n{mark} end {sample} {name} {rc}\n"


def probe_stdout(roots: tuple[str, str] = ("root1", "root2"), *, kvm: bool = False) -> str:
    """What the probe prints on a host whose /proc is sysstat's roots[0] then roots[1]."""
    hv = "kvm" if kvm else "none"
    parts = [section(0, "meta", f"probe=1\nhypervisor={hv}\nvirsh=\nxl=\nxentop=\n")]
    for sample, root in ((1, roots[0]), (2, roots[1])):
        parts.append(section(sample, "boot_id", "6c7b0f4e-8d1c-4a53-9d1e-2f0e6a9b1c11\n"))
        for name, rel in PROC.items():
            path = SYSSTAT / root / rel
            if path.exists():
                parts.append(section(sample, name, path.read_text(encoding="utf-8")))
            else:
                parts.append(section(sample, name, "", rc=1))
        if kvm:
            domstats = (LAB / f"sample{sample}" / "domstats--raw.txt").read_text(encoding="utf-8")
            parts.append(section(sample, "virsh_domstats", domstats))
    for name, rel in (("df_k", "df-P-k.txt"), ("df_i", "df-P-i.txt")):
        parts.append(section(0, name, (DATA / "fleetmon-capture" / rel).read_text("utf-8")))
    if kvm:
        parts.append(section(0, "virsh_nodeinfo", (LAB / "sample1" / "nodeinfo.txt").read_text()))
    parts.append(section(0, "times", "0m0.010000s 0m0.020000s\n0m0.030000s 0m0.040000s\n"))
    return "".join(parts)


def env_without_awk(tmp_path: Path) -> dict[str, str]:
    """This environment with a PATH of every command of /usr/bin and /bin but awk's (the
    probe's output then goes out as the shell writes it)."""
    bin_dir = tmp_path / "bin-without-awk"
    bin_dir.mkdir()
    for d in ("/usr/bin", "/bin"):
        for entry in os.scandir(d):
            if "awk" not in entry.name and not (bin_dir / entry.name).exists():
                (bin_dir / entry.name).symlink_to(entry.path)
    env = {**os.environ, "PATH": str(bin_dir)}
    assert subprocess.run(["sh", "-c", "command -v awk"], env=env).returncode != 0
    return env
