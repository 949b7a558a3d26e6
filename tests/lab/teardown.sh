#!/usr/bin/env bash
# Undo the running part of tests/lab/setup.sh: destroy and undefine the fmlab* guests,
# delete the lab bridge, and stop virtlogd/libvirtd only if setup.sh started them (a
# libvirtd that was already running is left alone). Packages, the libvirt-qemu user and
# the guest kernel stay (a second setup takes ~7 s). PURGE=1 also removes the disk images
# and the build folder.
set -uo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
BRIDGE=${FMLAB_BRIDGE:-fmlabbr0}
PREFIX=fmlab
STATE=${FMLAB_STATE:-/run/fleetmon-lab}
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() { # pidfile
  local pid
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "lab teardown: pid $pid did not stop" >&2
}
if alive /run/libvirtd.pid; then
  for d in $(virsh list --all --name | grep "^$PREFIX[0-9]\$"); do
    virsh destroy "$d" >/dev/null 2>&1
    virsh undefine "$d" >/dev/null 2>&1
  done
  if [ -e "$STATE/started-libvirtd" ]; then stop /run/libvirtd.pid; fi
fi
rm -f "$STATE/started-libvirtd"
if [ -e "$STATE/started-virtlogd" ] && alive /run/virtlogd.pid; then stop /run/virtlogd.pid; fi
rm -f "$STATE/started-virtlogd"
# Put the machine's own qemu.conf back (setup.sh saved it).
if [ -e "$STATE/qemu.conf.orig" ]; then
  cp -p "$STATE/qemu.conf.orig" /etc/libvirt/qemu.conf && rm -f "$STATE/qemu.conf.orig" "$STATE/qemu.conf.ours"
fi
if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
if [ "${PURGE:-0}" = 1 ]; then
  rm -f /var/lib/libvirt/images/"$PREFIX"[0-9].qcow2
  rm -rf "${FMLAB_BUILD:-/var/tmp/fleetmon-lab-build}"
fi
echo "lab teardown done"
