"""The probe's time limits: a hung tool times out once, its later calls in the run are skipped.

Stand-ins first on PATH play the hung tools (`virsh`, `df`, `xl`: they write down each call,
then sleep 600 s, as a stuck libvirtd or a stale NFS mount would); the real script runs
under each shell a host may have. A stand-in `timeout` gives every guarded command 1 s (the
probe's own limits are 5-10 s: sources/sections.py GUARD_LIMITS_S), through GNU's timeout
(exit 124) or busybox's (exit 143): only the stand-ins are guarded here, and they sleep
600 s, so the 1 s always runs out, whatever the load. The last test runs `fleetmon run`
with its default options and the real limits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clirun import fleetmon

from fleetmon.analyse.vms import compute_vms
from fleetmon.collect import probe
from fleetmon.collect.probe import ProbeOptions, build_script, build_stream_script
from fleetmon.sources.sections import Section, split_output, split_tick, tick_end_re
from tests.test_probe import STANDINS, VIRSH_STANDIN, need

HUNG = '#!/bin/sh\necho "$*" >> {log}\nexec sleep 600\n'
TIMED_OUT = "no answer within the probe's time limit (timed out)"


def _tool(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    (folder / name).chmod(0o755)


def _hung(folder: Path, *names: str) -> Path:
    """Hung stand-ins for `names`, each writing its calls to folder/NAME.log."""
    for name in names:
        _tool(folder, name, HUNG.format(log=folder / f"{name}.log"))
    return folder


def _short_timeout(folder: Path, flavour: str) -> None:
    """A `timeout` that gives every command 1 s: GNU's (exit 124) or busybox's (143)."""
    if flavour == "busybox":
        need(shutil.which("busybox") is not None, "busybox is not installed")
        real = "busybox timeout"
    else:
        real = str(shutil.which("timeout"))
    _tool(folder, "timeout", f'#!/bin/sh\nshift\nexec {real} 1 "$@"\n')


def _calls(folder: Path, name: str) -> list[str]:
    log = folder / f"{name}.log"
    return log.read_text().splitlines() if log.exists() else []


def _run(script: str, folder: Path, shell: str = "sh", **env: str) -> bytes:
    argv = {"sh": ["sh"], "bash": ["bash"], "busybox": ["busybox", "sh"]}[shell]
    need(shutil.which(argv[0]) is not None, f"{argv[0]} is not installed")
    proc = subprocess.run(
        ["env", "LC_ALL=C", "nice", "-n", "19", *argv, "-s"],
        input=script.encode(),
        capture_output=True,
        env={**os.environ, "PATH": f"{folder}:{os.environ['PATH']}", **env},
        timeout=120,
        check=True,
        cwd="/",
    )
    return proc.stdout


def _skipped(kind: str) -> str:
    return f"skipped: {kind} timed out earlier in this run\n"


@pytest.mark.parametrize("flavour", ["gnu", "busybox"])
@pytest.mark.parametrize("shell", ["sh", "bash", "busybox"])
def test_a_hung_virsh_and_df_each_time_out_once(shell: str, flavour: str, tmp_path: Path) -> None:
    """A stuck libvirtd and a stale NFS mount: the first virsh and the first df time out,
    the others are not run (their sections say why), the host sections are all there."""
    bin_ = _hung(tmp_path / "bin", "virsh", "df")
    _short_timeout(bin_, flavour)
    opts = ProbeOptions(hypervisor="kvm", interval_s=0.2)
    out = split_output(_run(build_script(opts), bin_, shell).decode(), opts.nonce)
    assert _calls(bin_, "virsh") == [
        "-q -c qemu:///system domstats --raw --nowait"
        " --state --cpu-total --balloon --vcpu --interface --block"
    ]
    assert _calls(bin_, "df") == ["-P -k"]
    # Timed out: exit 124 (busybox's 143 made it), virsh's stderr kept (busybox's timeout
    # leaves the shell to say "Terminated"), df's not.
    for sample, name in ((1, "virsh_domstats"), (0, "df_k")):
        assert out.sections[(sample, name)].rc == 124
        assert out.timed_out(sample, name) == TIMED_OUT
    assert out.sections[(1, "virsh_domstats")].text in ("", "Terminated\n")
    for sample, name in ((2, "virsh_domstats"), (0, "virsh_nodeinfo"), (0, "vm_uuids")):
        assert out.sections[(sample, name)] == Section(sample, name, _skipped("virsh"), 124)
    assert out.sections[(0, "df_i")] == Section(0, "df_i", _skipped("df"), 124)
    assert out.text(2, "stat")
    assert out.text(0, "times")
    assert compute_vms(out, 2, None, 0.2).notes == (
        f"VMs not reported: virsh domstats failed: {TIMED_OUT}",
    )
    assert out.timed_out(0, "df_i") == _skipped("df").strip()


def test_a_hung_xl_skips_xentop_and_the_probe_sleeps_instead(tmp_path: Path) -> None:
    """On Xen, xl and xentop are one kind (the toolstack): xentop is not run after xl timed
    out, and the probe sleeps the interval in its place."""
    bin_ = _hung(tmp_path / "bin", "xl")
    _short_timeout(bin_, "gnu")
    _tool(
        bin_, "xentop", f'#!/bin/sh\necho "$*" >> {bin_}/xentop.log\nexec {STANDINS}/xentop "$@"\n'
    )
    _tool(
        bin_,
        "sleep",
        f'#!/bin/sh\necho "$*" >> {bin_}/sleep.log\nexec {shutil.which("sleep")} "$@"\n',
    )
    opts = ProbeOptions(hypervisor="xen", interval_s=0.2)
    out = split_output(_run(build_script(opts), bin_).decode(), opts.nonce)
    assert _calls(bin_, "xl") == ["list"]
    assert _calls(bin_, "xentop") == []
    assert out.sections[(0, "xentop")] == Section(0, "xentop", _skipped("xl"), 124)
    assert "0.2" in _calls(bin_, "sleep")  # the interval, in xentop's place
    for sample, name in ((2, "xl_list"), (0, "xl_info"), (0, "vm_uuids")):
        assert out.sections[(sample, name)] == Section(sample, name, _skipped("xl"), 124)
    notes = compute_vms(out, 2, None, 0.2).notes
    assert notes == ("VMs not reported: xl list skipped: xl timed out earlier in this run",)


def test_a_re_ask_that_times_out_is_not_made_again(tmp_path: Path) -> None:
    """A domain whose monitor hangs: domstats --nowait answers, the re-ask of that domain
    times out in sample 1 and is not made in sample 2 (fm_reask runs in the probe's shell,
    which remembers); the first answers are kept."""
    bin_ = tmp_path / "bin"
    log = bin_ / "virsh.log"
    _tool(
        bin_,
        "virsh",
        f'#!/bin/sh\ncase " $* " in *" -- "*) echo "$*" >> {log}; exec sleep 600;; esac\n'
        f'exec {VIRSH_STANDIN}/virsh "$@"\n',
    )
    _short_timeout(bin_, "gnu")
    opts = ProbeOptions(hypervisor="kvm", interval_s=0.2)
    raw = _run(build_script(opts), bin_, VIRSH_STANDIN_STATE=str(tmp_path))
    out = split_output(raw.decode(), opts.nonce)
    assert len(_calls(bin_, "virsh")) == 1  # the re-ask of sample 1 only
    res = compute_vms(out, host_cpus=2, host_mem_bytes=None, interval_s=0.2)
    vms = {r.name: r.metrics for r in res.vms}
    assert list(vms) == ["vm2", "vm1"]
    assert vms["vm2"]["vm.cpu_pct"] is not None
    assert vms["vm2"]["vm.mem_used_pct"] is None  # what only the re-ask would have given


def test_the_streaming_loop_tries_a_hung_tool_again_with_the_once_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In `top` and `serve` the skipped kinds are tried again at the next once-per-run
    sections (every ONCE_EVERY_TICKS ticks; 2 here), not for ever, not at each tick."""
    monkeypatch.setattr(probe, "ONCE_EVERY_TICKS", 2)
    bin_ = _hung(tmp_path / "bin", "virsh", "df")
    _short_timeout(bin_, "gnu")
    opts = ProbeOptions(hypervisor="kvm", interval_s=0.2)
    data = _run(build_stream_script(opts, ticks=4), bin_)
    ticks, pos = [], 0
    for m in tick_end_re(opts.nonce).finditer(data):
        ticks.append(split_tick(data[pos : m.end()].decode(), opts.nonce))
        pos = m.end()
    assert [t.number for t in ticks] == [1, 2, 3, 4]
    # Ticks 1 and 3 carry the once-per-run sections: nodeinfo times out, the rest waits.
    assert _calls(bin_, "virsh") == ["-q -c qemu:///system nodeinfo"] * 2
    assert _calls(bin_, "df") == ["-P -k"] * 2
    for t in ticks:
        assert t.sections["virsh_domstats"] == Section(
            t.number, "virsh_domstats", _skipped("virsh"), 124
        )
        assert t.sections["stat"].rc == 0
    for t in (ticks[0], ticks[2]):
        assert t.once["virsh_nodeinfo"].rc == 124
        assert t.once["vm_uuids"].text == _skipped("virsh")
        assert t.once["df_i"].text == _skipped("df")


def test_under_the_default_deadline_a_host_with_a_hung_tool_is_collected(tmp_path: Path) -> None:
    """`fleetmon run` with its default options and the probe's real limits: a stuck
    libvirtd (10 s) and a stale NFS mount (5 s) cost the host its VMs and filesystems, with
    notes, not the whole host (at interval + 10 s and a limit per call it timed out)."""
    need(shutil.which("timeout") is not None, "timeout (coreutils) is not installed")
    bin_ = _hung(tmp_path / "bin", "virsh", "df")
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    stuck:\n      ansible_connection: local\n"
        "      fleetmon_hypervisor: kvm\n"
    )
    env = {"PATH": f"{bin_}:{os.environ['PATH']}"}
    r = fleetmon("run", inv, "--interval", "0.2", "--format", "json", "-q", "--no-rules", env=env)
    (host,) = json.loads(r.stdout)["hosts"]
    assert (host["status"], host["error"]) == ("ok", None), r.stderr
    assert f"VMs not reported: virsh domstats failed: {TIMED_OUT}" in host["notes"]
    assert f"df -P -k failed: {TIMED_OUT}" in host["notes"]
    assert host["metrics"]["cpu.busy_pct"] is not None
    assert len(_calls(bin_, "virsh")) == 1
