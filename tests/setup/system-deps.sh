#!/bin/sh
# Install the system packages the tests need, when missing (Debian, as root).
# openssh-server: the real sshd the SSH tests start; libvirt + QEMU: the lab hypervisor;
# chromium: the HTML report's browser test; podman + runc + conmon: the live containers test
# (tests/podman_util.py; runc, as crun refuses a hybrid cgroup host); Prometheus (and
# promtool), the Pushgateway, Alertmanager, node_exporter and InfluxDB 1.x: the servers the
# export tests start (their packages' own services are not used).
# Without root, report what is missing.
set -eu
need=""
command -v /usr/sbin/sshd >/dev/null 2>&1 || need="$need openssh-server"
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v virsh >/dev/null 2>&1 || need="$need libvirt-clients"
command -v libvirtd >/dev/null 2>&1 || need="$need libvirt-daemon libvirt-daemon-driver-qemu"
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86 qemu-utils"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v sudo >/dev/null 2>&1 || need="$need sudo"
command -v df >/dev/null 2>&1 || need="$need coreutils"
# curl: a real HTTPS client of `fleetmon serve`; systemd-analyze checks its unit file.
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
command -v podman >/dev/null 2>&1 || need="$need podman"
command -v runc >/dev/null 2>&1 || need="$need runc"
command -v conmon >/dev/null 2>&1 || [ -x /usr/libexec/podman/conmon ] || need="$need conmon"
command -v promtool >/dev/null 2>&1 || need="$need prometheus"
command -v prometheus-pushgateway >/dev/null 2>&1 || need="$need prometheus-pushgateway"
command -v prometheus-alertmanager >/dev/null 2>&1 || need="$need prometheus-alertmanager"
command -v prometheus-node-exporter >/dev/null 2>&1 || need="$need prometheus-node-exporter"
command -v influxd >/dev/null 2>&1 || need="$need influxdb"
# busybox: its awk runs the probe's cgroup reader as on an Alpine host (mawk is Debian's),
# and gawk as on a RHEL, Fedora, Arch or SUSE host.
command -v busybox >/dev/null 2>&1 || need="$need busybox"
command -v mawk >/dev/null 2>&1 || need="$need mawk"
command -v gawk >/dev/null 2>&1 || need="$need gawk"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing$need (run as root to install them)" >&2
  exit 0
fi
echo "system-deps: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
# gawk, once installed, is `awk` (its alternative outranks mawk's): awk is set back to mawk,
# Debian's, which the other tests run the probe with.
case " $need " in
*" gawk "*) update-alternatives --set awk /usr/bin/mawk >/dev/null 2>&1 || true ;;
esac
