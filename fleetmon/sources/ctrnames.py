"""Parse stage for container names (pure): what the probe's `ctr_names` section gives.

Names come without a daemon call (no `docker ps`, no socket): the runtimes' own files on
the host, read by grep, and the kubelet's log links, listed by the shell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

#: Names without a daemon call: Docker's config.v2.json ("Name":"/web"), Podman's
#: container stores, rootful and rootless (containers.json: "id":"…","names":["web"], in
#: that key order; grep -h: no file name before each), and
#: for Kubernetes the links the kubelet keeps to each container's log,
#: /var/log/containers/<pod>_<namespace>_<container>-<id>.log (pkg/kubelet/kuberuntime
#: legacy.go, legacyLogSymlink), listed by the shell's printf (no process). Past ARG_MAX
#: (some 20,000 Docker containers), grep cannot be started (status 126): xargs -0 passes
#: the files in batches, as for the cgroups (sources/cgroups.py find_command).
DOCKER_CONFIGS = "/var/lib/docker/containers/*/config.v2.json"
#: Podman's container stores (containers/storage: `<graph root>/<driver>-containers/`, the
#: driver overlay, vfs or btrfs): root's, and each rootless user's below its home
#: ($XDG_DATA_HOME/containers/storage, ~/.local/share by default; readable by root).
PODMAN_STORES = (
    "/var/lib/containers/storage/*-containers/containers.json"
    " /home/*/.local/share/containers/storage/*-containers/containers.json"
)
_DOCKER_GREP = 'grep -H -o \'"Name":"/[^"]*"\''
NAMES_COMMAND = (
    f'(set -- {DOCKER_CONFIGS}; {_DOCKER_GREP} "$@" 2>/dev/null;'
    f" [ $? = 126 ] && printf '%s\\0' \"$@\" | xargs -0 {_DOCKER_GREP} 2>/dev/null);"
    ' grep -h -o \'"id":"[0-9a-f]*","names":\\["[^"]*"\''
    f" {PODMAN_STORES} 2>/dev/null;"
    " printf '%s\\n' /var/log/containers/*.log; true"
)


_DOCKER_NAME_RE = re.compile(r'/([0-9a-f]{64})/config\.v2\.json:"Name":"/([^"]*)"$')
_PODMAN_NAME_RE = re.compile(r'"id":"([0-9a-f]{64})","names":\["([^"]*)"')


#: A kubelet log link: pod, namespace and container names (DNS names: never a `_`), id.
#: The kubelet cuts a link's name at ext4's 255 bytes (legacyLogSymlink), the id's end first:
#: a cut link keeps a prefix of it, used when at least a short id's 12 digits are left.
_KUBE_LOG_RE = re.compile(
    r"/var/log/containers/(([^_/]+)_([^_/]+)_([^_/]+)-([0-9a-f]{12,64})\.log)"
)
_NAME_MAX = 255


def parse_names(text: str) -> dict[str, str]:
    """Container id -> name from Docker's config.v2.json, Podman's containers.json and the
    kubelet's log links (`<namespace>/<pod>/<container>`, as unique as a host's rows must
    be: pod names repeat across namespaces, a StatefulSet's `db-0`); a link cut at 255
    bytes gives its id's prefix (name_lookup finds it)."""
    kind = _kinds(text)
    if kind:  # one runtime's lines: one C call
        found = _ONE_KIND_ANY_ID[kind].findall(text)
        if "".join([cid for cid, _name in found]).encode().translate(None, _HEX_DIGITS):
            found = _ONE_KIND[kind].findall(text)  # an id not hex: matched as line by line
        return dict(found)
    names: dict[str, str] = {}
    for line in text.splitlines():
        m = _DOCKER_NAME_RE.search(line)
        if m is not None:
            names[m.group(1)] = m.group(2)
            continue
        k = _KUBE_LOG_RE.fullmatch(line)
        if k is not None and (len(k.group(5)) == 64 or len(k.group(1)) == _NAME_MAX):
            names[k.group(5)] = f"{k.group(3)}/{k.group(2)}/{k.group(4)}"
            continue
        for pm in _PODMAN_NAME_RE.finditer(line):
            names[pm.group(1)] = pm.group(2)
    return names


#: The docker and podman patterns over a whole section (its lines split at `\n` only).
_ONE_KIND = {
    kind: re.compile(pattern.pattern.replace('[^"]*', '[^"\n]*'), re.MULTILINE)
    for kind, pattern in (("docker", _DOCKER_NAME_RE), ("podman", _PODMAN_NAME_RE))
}
#: The same with any 64 characters for the id: it is then checked by one C call, not by the
#: pattern a character at a time (200 Docker names: 0.13 ms, not 0.19, here). Where every
#: id it finds is hex, it finds what _ONE_KIND does: each match where _ONE_KIND's leftmost
#: one is, and the same (the id's length is fixed).
_ONE_KIND_ANY_ID = {
    kind: re.compile(pattern.pattern.replace("[0-9a-f]{64}", ".{64}"), re.MULTILINE)
    for kind, pattern in _ONE_KIND.items()
}
_HEX_DIGITS = b"0123456789abcdef"
#: The ctr_names section's line where the kubelet keeps no log link (the glob as written).
_NO_LINKS = "/var/log/containers/*.log"
#: What else than `\n` str.splitlines ends a line at, in ASCII.
_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e")


def _kinds(section: str) -> str:
    """`docker` or `podman` when the section has only that runtime's lines (no kubelet
    link, nothing that ends a line but `\n`): read by one pattern over the whole section,
    as parse_names reads it line by line; else ``."""
    # A host without a kubelet prints the shell's glob as written: no link.
    text = f"\n{section}"
    links = text.count("/var/log/containers/") - text.count(f"\n{_NO_LINKS}\n")
    if links or not text.isascii() or any(b in text for b in _BREAKS):
        return ""
    if '"names":[' not in text:
        return "docker"
    return "" if "config.v2.json" in text else "podman"


def name_lookup(names: Mapping[str, str]) -> Callable[[str], str | None]:
    """names.get, and for an id without a name of its own, the name of the one cut kubelet
    link whose id prefix starts it (none when two do). The cut links are indexed by their
    first 12 digits: a host that sends many cannot make each container's lookup a scan."""
    if min(map(len, names), default=64) >= 64:  # no cut link (the usual host)
        return names.get
    cut: dict[str, list[tuple[str, str]]] = {}
    for k, v in names.items():
        if len(k) < 64:
            cut.setdefault(k[:12], []).append((k, v))
    if not cut:
        return names.get

    def get(cid: str) -> str | None:
        name = names.get(cid)
        if name is None:
            found = [v for k, v in cut.get(cid[:12], ()) if cid.startswith(k)]
            name = found[0] if len(found) == 1 else None
        return name

    return get
