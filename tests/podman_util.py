"""Real containers for the tests: rootful Podman with runc and the cgroupfs manager, explicit
ulimits and a busybox root filesystem from a local directory (../shared/lab/containers.md:
no image registry is reachable, crun refuses this hybrid cgroup host).

The root filesystem is Debian's busybox-static (`apt-get download` + `dpkg-deb -x`, nothing
installed), built once and cached under /var/tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rootonly import require_root

ROOTFS = Path("/var/tmp/fleetmon-test-rootfs-busybox")
PODMAN = ("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs")
#: podman's default nofile limit (1048576) exceeds this machine's hard limit.
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_podman() -> None:
    """Skip (fail under CI=true: tests/setup/system-deps.sh installs them) without podman
    and runc, or without root."""
    require_root("rootful podman")
    missing = [c for c in ("podman", "runc", "conmon", "apt-get", "dpkg-deb") if not _which(c)]
    if missing:
        msg = f"missing {', '.join(missing)} (tests/setup/system-deps.sh installs them)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)


def _which(cmd: str) -> bool:
    return shutil.which(cmd) is not None or Path(f"/usr/libexec/podman/{cmd}").exists()


def busybox_rootfs() -> Path:
    """A root filesystem holding busybox and its applets' links, built once."""
    if (ROOTFS / "bin" / "sh").exists():
        return ROOTFS
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["apt-get", "download", "busybox-static"],
            cwd=tmp, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        (deb,) = Path(tmp).glob("busybox-static_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"], check=True, timeout=60)
        build = Path(f"{ROOTFS}.tmp{os.getpid()}")
        for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
            (build / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f"{tmp}/x/bin/busybox", build / "bin" / "busybox")
        for applet in ("sh", "cat", "sleep", "dd", "head", "tr", "rm"):
            (build / "bin" / applet).symlink_to("busybox")
        build.rename(ROOTFS)
    return ROOTFS


def podman(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None, stdin: bytes = b""
) -> str:
    """`podman ARGS` with the runtime and cgroup manager that work here; its stdout."""
    proc = subprocess.run(
        [*PODMAN, *args], capture_output=True, input=stdin, timeout=timeout, check=False,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout.decode()


#: What each test container does: a CPU hog under a half-CPU quota (throttled), and a
#: shell holding ~30 MB of a 64 MB limit (busybox's tr needs room of its own: 50 MB of
#: 64 was OOM-killed).
WORKLOADS = {
    "cpu": (("--cpus", "0.5"), "while true; do :; done"),
    "mem": (
        ("--memory", "64m"),
        "x=$(head -c 30000000 /dev/zero | tr '\\0' a); while true; do sleep 1; done",
    ),
}


#: What podman says where / is no mount point (a chroot: fresh-machine.sh): runc cannot
#: pivot into a container's root, nor can the storage driver unpack an imported layer.
_NO_CONTAINERS_HERE = ("error preparing rootfs", "remount /, flags")


@contextmanager
def _startable() -> Iterator[None]:
    """Around a container's start or an image's import: where the machine cannot run
    containers at all, a skip, but a failure under CI=true."""
    try:
        yield
    except RuntimeError as exc:
        if not any(m in str(exc) for m in _NO_CONTAINERS_HERE) or _in_ci():
            raise
        pytest.skip(f"this machine cannot run a container: {exc}")


@contextmanager
def containers(prefix: str) -> Iterator[dict[str, str]]:
    """The WORKLOADS containers, started detached; role -> container id; removed after."""
    rootfs = busybox_rootfs()
    ids: dict[str, str] = {}
    try:
        for role, (opts, script) in WORKLOADS.items():
            with _startable():
                out = podman(
                    "run", "-d", "--name", f"{prefix}-{role}", *ULIMITS, *opts,
                    "--rootfs", str(rootfs), "sh", "-c", script,
                )  # fmt: skip
            ids[role] = out.strip().splitlines()[-1]
        yield ids
    finally:
        for role in WORKLOADS:
            subprocess.run(
                [*PODMAN, "rm", "-f", "-t", "0", f"{prefix}-{role}"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip


#: The pods' infra image: the busybox root filesystem imported (no registry, and no
#: catatonit here to build podman's own pause image), its command a sleep.
INFRA_IMAGE = "localhost/fleetmon-test-infra:busybox"


def _infra_image() -> str:
    if not podman("images", "-q", INFRA_IMAGE).strip():
        tar = subprocess.run(
            ["tar", "-C", str(busybox_rootfs()), "-c", "."],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        with _startable():
            podman("import", "--change", 'CMD ["sleep", "1000000"]', "-", INFRA_IMAGE,
                   stdin=tar.stdout, timeout=120)  # fmt: skip
    return INFRA_IMAGE


@contextmanager
def pod(prefix: str) -> Iterator[dict[str, str]]:
    """A pod `<prefix>-pod` with its infra container and one container in it, `<prefix>-in`
    (a shell holding ~10 MB); ids of the `pod`, its `infra` and the container `in`."""
    rootfs = busybox_rootfs()
    name = f"{prefix}-pod"
    with tempfile.TemporaryDirectory() as tmp:
        # `pod create` takes no --ulimit: the infra container's come from containers.conf.
        conf = Path(tmp) / "containers.conf"
        ulimits = '["nofile=1024:1024", "nproc=1024:1024"]'
        conf.write_text(f"[containers]\ndefault_ulimits = {ulimits}\n", "utf-8")
        env = {"CONTAINERS_CONF": str(conf)}
        try:
            pod_id = podman("pod", "create", "--name", name, "--infra-image", _infra_image(),
                            env=env).strip().splitlines()[-1]  # fmt: skip
            with _startable():  # the pod's infra container starts with it
                podman(
                    "run", "-d", "--pod", name, "--name", f"{prefix}-in", *ULIMITS,
                    "--rootfs", str(rootfs), "sh", "-c",
                    "x=$(head -c 10000000 /dev/zero | tr '\\0' a); while true; do sleep 1; done",
                    env=env,
                )  # fmt: skip
            inspect = json.loads(podman("pod", "inspect", name))
            ids = {"pod": pod_id, "infra": inspect["InfraContainerID"]}
            (ids["in"],) = (c["Id"] for c in inspect["Containers"] if c["Id"] != ids["infra"])
            yield ids
        finally:
            subprocess.run(
                [*PODMAN, "pod", "rm", "-f", "-t", "0", name],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
