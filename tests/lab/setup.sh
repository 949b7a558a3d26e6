#!/usr/bin/env bash
# Bring up fleetmon's lab hypervisor: a real libvirt + QEMU (software emulation, TCG) with
# small busy Linux guests fmlab1..fmlabN, so `virsh domstats` counters (cpu, vcpu, balloon,
# block, net) move between two samples. Needs root, Debian 12 and the Debian package
# registry; no systemd and no internet otherwise. Idempotent: a second run only checks.
#
# Adapted from ../shared/lab/setup-hypervisor.sh (whose README lists the traps): TCG because
# the machine's /dev/kvm is a nested, emulating one; no libvirt-daemon-system (it pulls in
# systemd-sysv); libvirtd started by hand, needing the libvirt-qemu user; guest kernel from
# Debian's cloud kernel package and an initramfs from busybox-static, extracted, not
# installed; tap names not starting with "vnet" (libvirt ignores those for net.* stats);
# an isolated bridge with no host address on 192.0.2.0/24 (TEST-NET-1), so nothing leaves
# the machine; balloon <stats period='2'/> for balloon.usable/available.
#
# What this script started is recorded under $STATE so teardown.sh stops only that.
# Usage: tests/lab/setup.sh        (GUESTS=2, GUEST_MODE=busy|idle)
set -euo pipefail

GUESTS=${GUESTS:-2}
GUEST_MODE=${GUEST_MODE:-busy}
GUEST_MEM_MIB=${GUEST_MEM_MIB:-128}
BRIDGE=${FMLAB_BRIDGE:-fmlabbr0}
PREFIX=fmlab
LV=/var/lib/libvirt
BUILD=${FMLAB_BUILD:-/var/tmp/fleetmon-lab-build}
STATE=${FMLAB_STATE:-/run/fleetmon-lab}
export LIBVIRT_DEFAULT_URI=qemu:///system
export DEBIAN_FRONTEND=noninteractive

t0=${EPOCHREALTIME/./}
step() {
  local d=$(((${EPOCHREALTIME/./} - t0) / 100000))
  printf '[%4d.%ds] %s\n' $((d / 10)) $((d % 10)) "$*"
}
die() { echo "lab setup: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get, libvirtd, bridges)"
command -v apt-get >/dev/null || die "needs a Debian system (apt-get not found)"
[ "$GUESTS" -ge 1 ] && [ "$GUESTS" -le 9 ] || die "GUESTS must be 1..9"
mkdir -p "$STATE" "$BUILD" "$LV/boot" "$LV/images" /var/log/libvirt/qemu /run/libvirt

# ------------------------------------------------------------------ 1. packages
pkgs=""
command -v qemu-system-x86_64 >/dev/null || pkgs="$pkgs qemu-system-x86"
command -v qemu-img >/dev/null || pkgs="$pkgs qemu-utils"
command -v libvirtd >/dev/null || pkgs="$pkgs libvirt-daemon"
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] \
  || pkgs="$pkgs libvirt-daemon-driver-qemu"
command -v virsh >/dev/null || pkgs="$pkgs libvirt-clients"
command -v ip >/dev/null || pkgs="$pkgs iproute2"
if [ -n "$pkgs" ] || [ ! -s "$LV/boot/$PREFIX-vmlinuz" ]; then
  step "apt-get update"
  apt-get update -qq
fi
if [ -n "$pkgs" ]; then
  step "apt-get install$pkgs (no recommends)"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi

# ------------------------------------------- 2. guest kernel + busybox initramfs
if [ ! -s "$LV/boot/$PREFIX-vmlinuz" ] || [ ! -s "$LV/boot/$PREFIX-initrd.gz" ]; then
  cd "$BUILD"
  KPKG=$(apt-cache depends linux-image-cloud-amd64 \
    | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$KPKG" ] || die "no linux-image-cloud-amd64 dependency found (apt-get update?)"
  step "apt-get download $KPKG busybox-static (extracted, not installed)"
  rm -rf ./*.deb kpkg bbpkg initrd-root
  chmod 777 "$BUILD" # apt's _apt user writes the downloads here
  apt-get download -qq "$KPKG" busybox-static
  dpkg-deb -x "$KPKG"_*.deb kpkg
  dpkg-deb -x busybox-static_*.deb bbpkg
  KVER=$(ls kpkg/lib/modules)
  K=kpkg/lib/modules/$KVER/kernel
  mkdir -p initrd-root/bin initrd-root/proc initrd-root/sys initrd-root/dev initrd-root/tmp \
    initrd-root/lib/modules
  cp bbpkg/bin/busybox initrd-root/bin/busybox
  # Dependency order; the cloud kernel's modules are uncompressed .ko files on Debian 12.
  mods="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
    drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover
    drivers/net/net_failover drivers/net/virtio_net drivers/block/virtio_blk
    drivers/virtio/virtio_balloon"
  for m in $mods; do cp "$K/$m.ko" initrd-root/lib/modules/; done
  cat >initrd-root/init <<'GUEST'
#!/bin/busybox sh
# Guest PID 1: load the virtio modules, configure eth0 from the kernel command line, then
# loop doing a little CPU, disk (O_DIRECT), memory and network work every second.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         failover net_failover virtio_net virtio_blk virtio_balloon; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
sleep 1
mode=busy
for a in $(cat /proc/cmdline); do case "$a" in myip=*|peer=*|mode=*) eval "$a";; esac; done
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  [ -n "$myip" ] && ip addr add "$myip/24" dev eth0
fi
echo "guest-init: up mode=$mode myip=$myip peer=$peer disks: $(ls /sys/block | tr '\n' ' ')"
if [ "$mode" = idle ]; then while true; do sleep 3600; done; fi
i=0
while true; do
  i=$((i+1))
  if [ -b /dev/vda ]; then
    dd if=/dev/vda of=/dev/null bs=64k count=4 skip=$((i % 64)) iflag=direct 2>/dev/null
    dd if=/dev/urandom of=/dev/vda bs=4k count=2 seek=$((i % 1024)) oflag=direct 2>/dev/null
  fi
  [ -n "$peer" ] && ping -c 1 -W 1 "$peer" >/dev/null 2>&1
  dd if=/dev/zero of=/tmp/churn bs=1M count=$((i % 8)) 2>/dev/null
  j=0; while [ $j -lt 200 ]; do j=$((j+1)); done
  sleep 1
done
GUEST
  chmod +x initrd-root/init
  # busybox's own cpio applet writes newc: no cpio package needed.
  (cd initrd-root && find . | ../bbpkg/bin/busybox cpio -o -H newc 2>/dev/null) \
    | gzip -9 >initrd.gz
  cp "kpkg/boot/vmlinuz-$KVER" "$LV/boot/$PREFIX-vmlinuz"
  cp initrd.gz "$LV/boot/$PREFIX-initrd.gz"
fi

# ------------------------------------------------------------ 3. libvirtd by hand
# libvirtd resolves its compiled-in default user libvirt-qemu before reading qemu.conf.
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent group kvm >/dev/null || groupadd --system kvm
id libvirt-qemu >/dev/null 2>&1 || useradd --system --no-create-home --home-dir "$LV" \
  --shell /usr/sbin/nologin -g libvirt-qemu -G kvm libvirt-qemu
# Our own qemu.conf while the lab runs (teardown.sh puts the machine's back): QEMU as root
# without per-domain mount namespaces, which fail where / is not a mount point (a chroot,
# some containers: "Failed disable mount propagation out of the root filesystem").
if ! grep -q '^# fleetmon lab v2' /etc/libvirt/qemu.conf 2>/dev/null; then
  mkdir -p /etc/libvirt
  if [ -e /etc/libvirt/qemu.conf ] && [ ! -e "$STATE/qemu.conf.orig" ]; then
    cp -p /etc/libvirt/qemu.conf "$STATE/qemu.conf.orig"
  fi
  cat >/etc/libvirt/qemu.conf <<'CONF'
# fleetmon lab v2: minimal qemu.conf for a hand-started libvirtd (no libvirt-daemon-system)
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
namespaces = [ ]
CONF
  : >"$STATE/qemu.conf.ours"
  # A libvirtd already running read the old file: it must start again.
  if [ -s /run/libvirtd.pid ] && kill -0 "$(cat /run/libvirtd.pid)" 2>/dev/null \
     && [ -e "$STATE/started-libvirtd" ]; then
    kill "$(cat /run/libvirtd.pid)"; sleep 1
  fi
fi
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! alive /run/virtlogd.pid; then
  step "start virtlogd -d"
  virtlogd -d
  : >"$STATE/started-virtlogd"
fi
if ! alive /run/libvirtd.pid; then
  step "start libvirtd -d"
  libvirtd -d
  : >"$STATE/started-libvirtd"
fi
for _ in $(seq 100); do virsh version >/dev/null 2>&1 && break; sleep 0.1; done
virsh version >/dev/null || die "libvirtd did not answer; see /var/log/libvirt"

# ------------------------------------------------- 4. isolated bridge (no address)
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"
  ip link set "$BRIDGE" up
fi

# ------------------------------------------------------------------- 5. guests
for n in $(seq 1 "$GUESTS"); do
  name=$PREFIX$n
  peer=""
  if [ "$GUESTS" -gt 1 ]; then peer="peer=192.0.2.1$((n % GUESTS + 1))"; fi
  [ -e "$LV/images/$name.qcow2" ] || qemu-img create -q -f qcow2 "$LV/images/$name.qcow2" 32M
  if ! virsh dominfo "$name" >/dev/null 2>&1; then
    cat >"$BUILD/$name.xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>$GUEST_MEM_MIB</memory>
  <currentMemory unit='MiB'>$GUEST_MEM_MIB</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$LV/boot/$PREFIX-vmlinuz</kernel>
    <initrd>$LV/boot/$PREFIX-initrd.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet mode=$GUEST_MODE myip=192.0.2.1$n $peer</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$LV/images/$name.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:f1:ab:0$n'/>
      <source bridge='$BRIDGE'/>
      <target dev='tap-$name'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/$name-console.log'/>
      <target port='0'/>
    </serial>
    <memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>
  </devices>
</domain>
XML
    virsh define "$BUILD/$name.xml" >/dev/null
  fi
  if [ "$(virsh domstate "$name")" != running ]; then
    : >"/var/log/libvirt/qemu/$name-console.log"
    step "virsh start $name"
    virsh start "$name" >/dev/null
  fi
done

# ------------------------------------------------------ 6. wait for the guests' init
for n in $(seq 1 "$GUESTS"); do
  log=/var/log/libvirt/qemu/$PREFIX$n-console.log
  for _ in $(seq 240); do grep -q 'guest-init: up' "$log" 2>/dev/null && break; sleep 0.5; done
  grep -q 'guest-init: up' "$log" || die "$PREFIX$n did not boot; see $log"
done
step "guests up: $(virsh list --name | grep "^$PREFIX" | xargs)"
