"""A stand-in guest on the lab hypervisor: a transient libvirt domain whose PID 1 prints its
SMBIOS UUID (/sys/class/dmi/id/product_uuid), the probe's `virt` section and two samples of
/proc to the serial console.

The lab's guests have no network path from this machine, so the guest's own view comes
back on its console (a file) instead of over SSH; its sections become the probe output of a
stand-in inventory host (tests/probetext.py's format). The kernel is the lab's; the
initramfs holds busybox-static (tests/podman_util.py's cached copy) and this PID 1.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from podman_util import busybox_rootfs

from fleetmon.sources.virt import COMMAND as VIRT_COMMAND

KERNEL = Path("/var/lib/libvirt/boot/fmlab-vmlinuz")
NAME = "fmctr-guest"
CONSOLE = Path(f"/var/log/libvirt/qemu/{NAME}-console.log")
#: The files the stand-in host's probe sections are made of, printed twice 1 s apart.
SAMPLED = {"uptime": "/proc/uptime", "stat": "/proc/stat", "meminfo": "/proc/meminfo",
           "loadavg": "/proc/loadavg", "boot_id": "/proc/sys/kernel/random/boot_id"}  # fmt: skip

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mark() { echo "@@fmguest@@ $1"; }
mark "begin 0 product_uuid"; cat /sys/class/dmi/id/product_uuid; mark "end 0 product_uuid"
mark "begin 0 virt"; sh /virt.sh; mark "end 0 virt"
for s in 1 2; do
  for pair in %s; do
    n=${pair%%=*}; f=${pair#*=}
    mark "begin $s $n"; cat "$f"; mark "end $s $n"
  done
  [ $s = 1 ] && sleep 1
done
mark done
while true; do sleep 3600; done
"""

_DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>96</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'>
      <source path='{console}'/>
      <target port='0'/>
    </serial>
    <memballoon model='virtio'><stats period='2'/></memballoon>
  </devices>
</domain>
"""


def _initrd(work: Path) -> Path:
    root = work / "root"
    for d in ("bin", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes((busybox_rootfs() / "bin" / "busybox").read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    pairs = " ".join(f"{k}={v}" for k, v in SAMPLED.items())
    (root / "init").write_text(INIT % pairs)
    (root / "init").chmod(0o755)
    # The probe's own `virt` command (sources/virt.py), run by the guest's busybox sh.
    (root / "virt.sh").write_text(VIRT_COMMAND + "\n")
    cpio = subprocess.run(
        "find . | ./bin/busybox cpio -o -H newc 2>/dev/null", shell=True, cwd=root,
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    out = work / "initrd.gz"
    out.write_bytes(gzip.compress(cpio))
    return out


@contextmanager
def stand_in_guest(uri: str = "qemu:///system", boot_s: float = 120) -> Iterator[tuple[str, str]]:
    """Start the transient guest; yield (its domain UUID per libvirt, its console text from
    the first marker on); destroy it after."""
    with tempfile.TemporaryDirectory(prefix="fmctr-guest-") as tmp:
        work = Path(tmp)
        initrd = _initrd(work)
        os.chmod(tmp, 0o755)  # QEMU (maybe another user) reads the initrd
        xml = work / "guest.xml"
        xml.write_text(_DOMAIN.format(name=NAME, kernel=KERNEL, initrd=initrd, console=CONSOLE))
        subprocess.run(["virsh", "-q", "-c", uri, "destroy", NAME], capture_output=True,
                       check=False)  # fmt: skip
        CONSOLE.write_text("")
        subprocess.run(["virsh", "-q", "-c", uri, "create", str(xml)], capture_output=True,
                       check=True, timeout=60)  # fmt: skip
        try:
            deadline = time.monotonic() + boot_s
            text = ""
            while "@@fmguest@@ done" not in text:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{NAME} did not print its sections: {text[-500:]!r}")
                time.sleep(0.5)
                text = CONSOLE.read_text(errors="replace").replace("\r\n", "\n")
            uuid = subprocess.run(
                ["virsh", "-q", "-c", uri, "domuuid", NAME],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.strip()  # fmt: skip
            yield uuid, text[text.index("@@fmguest@@ ") :]
        finally:
            subprocess.run(["virsh", "-q", "-c", uri, "destroy", NAME], capture_output=True,
                           check=False, timeout=60)  # fmt: skip


_SECTION_RE = re.compile(
    r"^@@fmguest@@ begin (\d) (\w+)\n(.*?)\n?@@fmguest@@ end \1 \2$", re.DOTALL | re.MULTILINE
)


def console_sections(text: str) -> dict[tuple[int, str], str]:
    """(sample, name) -> the file's text as the guest printed it."""
    return {(int(m.group(1)), m.group(2)): m.group(3) + "\n" for m in _SECTION_RE.finditer(text)}
