"""Parse stage: which container a cgroup path belongs to (pure).

Layouts, by runtime and cgroup driver (systemd: a `.scope` per container; cgroupfs: plain
directories), as the runtimes document them:
- Docker: `system.slice/docker-<id>.scope`, `docker/<id>` (cgroupfs); rootless below
  user.slice as Podman (moby daemon/oci_linux.go WithCgroups);
- Podman: `machine.slice/libpod-<id>.scope`, `libpod_parent/libpod-<id>` (cgroupfs); in a
  pod `machine.slice/machine-libpod_pod_<pod>.slice/libpod-<id>.scope`, with cgroupfs
  `libpod_parent/<pod>/libpod-<id>` (libpod/runtime_pod_linux.go); rootless under the
  user's systemd, `user.slice/user-<uid>.slice/user@<uid>.service/user.slice/libpod-<id>.scope`
  (in a pod `…/user.slice/user-libpod_pod_<pod>.slice/libpod-<id>.scope`) (podman's
  libpod/util_linux.go assembleSystemdCgroupName, libpod/container.go);
- containerd outside Kubernetes: nerdctl with systemd `system.slice/nerdctl-<id>.scope`
  (rootless: below user.slice as Podman), ctr and nerdctl with cgroupfs `/<namespace>/<id>`
  (containerd pkg/oci/spec.go; the `default` namespace is read; ctr's ids are names);
- CRI-O outside kubepods: `system.slice/crio-<id>.scope` (its conmon `crio-conmon-<id>` is
  not the container);
- Kubernetes (containerd, CRI-O, Docker): `kubepods[-<qos>].slice/…-pod<uid>.slice/
  cri-containerd-<id>.scope` | `crio-<id>.scope` | `docker-<id>.scope`, or with cgroupfs
  `kubepods/[<qos>/]pod<uid>/<id>`; no QoS level means Guaranteed; the rootless kubelet's
  containerd below user.slice as Podman (no kubepods, no QoS);
- LXC 4+: `lxc.payload.<name>` (older: `lxc/<name>`); libvirt-lxc `machine/<name>.libvirt-lxc`;
- systemd-nspawn: `machine.slice/systemd-nspawn@<name>.service`, `machine-<name>.scope`;
- libvirt QEMU: `machine.slice/machine-qemu\\x2d<n>\\x2d<name>.scope` (systemd),
  `machine/qemu-<n>-<name>.libvirt-qemu` or `machine/<name>.libvirt-qemu` (cgroupfs). In the
  first two `<name>` is the domain's name as its machine name has it (machine_name_part,
  cut at 64 characters in all); in the last (libvirt before machine names) the name itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import NamedTuple

from fleetmon.model import MetricValue


class Ident(NamedTuple):
    """A container (or libvirt VM) a cgroup belongs to (a tuple: made for every container
    of every host, at a fifth of a frozen dataclass's cost)."""

    #: docker, podman, containerd, cri-o, k8s (cgroupfs: runtime unknown), lxc, nspawn, or
    #: qemu (a libvirt VM)
    kind: str
    id: str  # the runtime's id (hex) or, for LXC/nspawn/libvirt, the name
    name: str | None = None  # when the path itself names it
    pod: str | None = None  # Kubernetes pod UID
    qos: str | None = None  # Kubernetes QoS class


_HEX = r"([0-9a-f]{64})"
#: A runtime's own leaf: `<prefix>-<id>.scope` (Podman with cgroupfs: no `.scope`), one
#: match for every runtime (the prefix then gives the runtime).
_LEAF_RE = re.compile(rf"(docker|libpod|cri-containerd|crio|nerdctl)-{_HEX}(\.scope)?")
_KIND_OF = {"docker": "docker", "libpod": "podman", "cri-containerd": "containerd",
            "crio": "cri-o", "nerdctl": "containerd"}  # fmt: skip
_LIBPOD_POD_RE = re.compile(r"^(?:machine|user)-libpod_pod_([0-9a-f]{64})\.slice$")
_POD_RE = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})"
)
_HEX_RE = re.compile(_HEX)
#: A Podman cgroupfs pod's directory (its containers' paths are not the usual's shape).
_CGROUPFS_POD_RE = re.compile(rf"libpod_parent/{_HEX}/")
_QOS = {"burstable": "Burstable", "besteffort": "BestEffort"}
_QEMU_SCOPE_RE = re.compile(r"^machine-qemu\\x2d[0-9]+\\x2d(.+)\.scope$")
_QEMU_DIR_RE = re.compile(r"^(?:qemu-[0-9]+-)?(.+)\.libvirt-qemu$")
_ESCAPE_RE = re.compile(r"\\x([0-9a-f]{2})")


def unescape(unit: str) -> str:
    """A systemd unit name's `\\xNN` escapes decoded (systemd.unit(5), "String Escaping")."""
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), unit)


def _kube(path: str, parent: str, kind: str, cid: str) -> Ident:
    if "kubepods" not in path:
        pod = _LIBPOD_POD_RE.match(parent) if "libpod_pod_" in parent else None
        return Ident(kind, cid, pod=pod.group(1) if pod else None)
    pod = _POD_RE.search(path)
    qos = next((q for k, q in _QOS.items() if k in path), "Guaranteed")
    uid = pod.group(1).replace("_", "-") if pod else None
    return Ident(kind, cid, pod=uid, qos=qos)


def identify(path: str) -> Ident | None:
    """The container whose own cgroup `path` is; None for anything else (a slice, a pod,
    a daemon, a container's sub-cgroup)."""
    m = _LEAF_RE.fullmatch(path, path.rfind("/") + 1)
    if m is not None and (m.group(3) or m.group(1) == "libpod"):
        if "kubepods" not in path and "libpod_pod_" not in path:  # the usual: no pod
            pod = None if m.group(3) else _cgroupfs_pod(path[: m.start()])
            return Ident(_KIND_OF[m.group(1)], m.group(2), pod=pod)
        parent = path[: m.start()].rstrip("/").rpartition("/")[2]
        return _kube(path, parent, _KIND_OF[m.group(1)], m.group(2))
    parts = path.split("/")
    leaf = parts[-1]
    parent = parts[-2] if len(parts) > 1 else ""
    if parent == "default" and len(parts) == 2 and leaf:  # containerd's namespace
        return Ident("containerd", leaf, None if re.fullmatch(_HEX, leaf) else leaf)
    if re.fullmatch(_HEX, leaf):
        if parent == "docker":
            return Ident("docker", leaf)
        if parent.startswith("pod") and "kubepods" in path:
            return _kube(path, parent, "k8s", leaf)
        return None
    if leaf.startswith("lxc.payload."):
        name = leaf[len("lxc.payload.") :]
        return Ident("lxc", name, name) if name else None
    if parent == "lxc" and len(parts) == 2:
        return Ident("lxc", leaf, leaf)
    if leaf.endswith(".libvirt-lxc") and parent == "machine":
        name = leaf[: -len(".libvirt-lxc")]
        return Ident("lxc", name, name)
    return _machine(parent, leaf)


def _cgroupfs_pod(parent: str) -> str | None:
    """The pod id of a Podman cgroupfs pod's container (`libpod_parent/<pod>/`), else None."""
    head, _, pod = parent.rstrip("/").rpartition("/")
    if (head == "libpod_parent" or head.endswith("/libpod_parent")) and _HEX_RE.fullmatch(pod):
        return pod
    return None


#: What a container id is made of (bytes.translate deletes them: nothing left).
_HEX_DIGITS = b"0123456789abcdef"


def identify_all(paths: Sequence[str]) -> list[Ident | None]:
    """identify() of each path. On a host without pods, the leaves of the shape of the
    first runtime leaf (`docker-<id>.scope`: the usual host's every container) are read
    by slicing and their ids checked by one C call (200 containers: 0.12 ms here, 0.32 by
    identify() on each); any other path by identify()."""
    joined = "\n".join(paths)
    if "kubepods" in joined or "libpod_pod_" in joined or _CGROUPFS_POD_RE.search(joined):
        return list(map(identify, paths))
    first = paths[0] if paths else ""
    m = _LEAF_RE.fullmatch(first, first.rfind("/") + 1)
    if m is not None and (m.group(3) or m.group(1) == "libpod"):
        # The usual host: every path the first's but for the id (one directory, runtime).
        at, end = m.span(2)
        tail = m.group(3) or ""
        if (
            {*map(len, paths)} == {len(first)}
            and all(map(str.startswith, paths, repeat(first[:at])))
            and all(map(str.endswith, paths, repeat(tail)))
        ):
            made = _idents(_KIND_OF[m.group(1)], [p[at:end] for p in paths])
            return list(map(identify, paths)) if made is None else made
    leaves = [p.rpartition("/")[2] for p in paths]
    first_m = next((m for m in map(_LEAF_RE.fullmatch, leaves) if m is not None), None)
    if first_m is None or not (first_m.group(3) or first_m.group(1) == "libpod"):
        return list(map(identify, paths))
    head, tail = f"{first_m.group(1)}-", first_m.group(3) or ""
    start, size = len(head), len(head) + 64 + len(tail)
    same = [len(x) == size and x.startswith(head) and x.endswith(tail) for x in leaves]
    ids = [x[start : start + 64] for x, ok in zip(leaves, same, strict=True) if ok]
    made = _idents(_KIND_OF[first_m.group(1)], ids)
    if made is None:
        return list(map(identify, paths))
    idents = iter(made)
    return [next(idents) if ok else identify(p) for p, ok in zip(paths, same, strict=True)]


def _idents(kind: str, ids: list[str]) -> list[Ident | None] | None:
    """Ident(kind, id) of each id when all are hex (a runtime's), else None."""
    if "".join(ids).encode().translate(None, _HEX_DIGITS):
        return None
    # tuple.__new__ as Ident._make calls it, without a Python call each
    made = zip(repeat(kind), ids, repeat(None), repeat(None), repeat(None))
    return list(map(tuple.__new__, repeat(Ident), made))


def _machine(parent: str, leaf: str) -> Ident | None:
    if parent == "machine.slice":
        m = _QEMU_SCOPE_RE.match(leaf)
        if m is not None:
            name = unescape(m.group(1))
            return Ident("qemu", name, name)
        if leaf.startswith("systemd-nspawn@") and leaf.endswith(".service"):
            name = unescape(leaf[len("systemd-nspawn@") : -len(".service")])
            return Ident("nspawn", name, name)
        if leaf.startswith("machine-") and leaf.endswith(".scope"):
            name = unescape(leaf[len("machine-") : -len(".scope")])
            return Ident("nspawn", name, name)
    if parent == "machine":
        m = _QEMU_DIR_RE.match(leaf)
        if m is not None:
            return Ident("qemu", m.group(1), m.group(1))
    return None


#: The characters libvirt keeps of a domain's name in its machine name.
_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
#: The machine name (`qemu-<id>-<part>`, whose cgroup the domain's QEMU runs in) is cut at
#: 64 characters: a part of this length or more may be a longer one's start.
MACHINE_NAME_CUT = 64 - len("qemu-1234567-") - 1


def machine_name_part(name: str) -> str:
    """A domain's name as libvirt puts it in the domain's machine name `qemu-<id>-<part>`
    (uncut): its letters and digits, one `-` or `.` where any run of them separates two,
    none leading or trailing; anything else (`_`, a space, non-ASCII) left out, so `web_01`
    runs in `machine/qemu-3-web01.libvirt-qemu` (libvirt src/hypervisor/domain_driver.c,
    virDomainMachineNameAppendValid)."""
    out: list[str] = []
    skip = True
    for ch in name:
        if ch in ".-":
            if not skip:
                out.append(ch)
                skip = True
        elif ch in _HOSTNAME_CHARS:
            out.append(ch)
            skip = False
    return "".join(out).rstrip("-.")


def vm_cgroup(
    vms: Mapping[str, Mapping[str, MetricValue]], domain: str
) -> Mapping[str, MetricValue]:
    """The host-side metrics of the running domain `domain` (in containers.CtrResult's
    vm_metrics), {} when none or several cgroups may be its: its cgroup is named after its
    machine name, not its name (machine_name_part: `web_01` runs in `qemu-3-web01`, as
    would a `web01`; a name too long for the machine name is cut), or by the name itself
    (libvirt before machine names)."""
    part = machine_name_part(domain)
    if part in vms:
        return vms[part]
    if domain in vms:
        return vms[domain]
    cut = [k for k in vms if MACHINE_NAME_CUT <= len(k) < len(part) and part.startswith(k)]
    return vms[cut[0]] if len(cut) == 1 else {}


def vm_table(
    vms: Iterable[tuple[str, Mapping[str, MetricValue]]],
) -> dict[str, Mapping[str, MetricValue]]:
    """VM name in the cgroup path -> its metrics; {} for a name two cgroups have (`web01`
    and `web_01` both run in a `qemu-<id>-web01`: which is which is unknown)."""
    out: dict[str, Mapping[str, MetricValue]] = {}
    for name, metrics in vms:
        out[name] = {} if name in out else metrics
    return out
