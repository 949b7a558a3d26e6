"""The probe script: its contract, and the real script run by a local `sh` (hypervisor paths).

Runs `env LC_ALL=C ... sh -s` here with the script on stdin, as the local transport does, so
the detection, `sudo -n`, virsh error and xentop-in-place-of-sleep paths run for real. Xen
comes from the stand-ins in tests/bin/xen-standins (no Xen host here; xentop's output is
synthesized from xentop.c's formats).
"""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fleetmon.analyse.vms import compute_vms, probe_meta
from fleetmon.collect.probe import (
    _AWK_SECTION,
    REMOTE_COMMAND,
    ProbeOptions,
    _prelude,
    build_script,
    xentop_delay_s,
)
from fleetmon.sources.sections import SAMPLE_SECTIONS, ProbeOutput, split_output
from tests.probetext import env_without_awk, section
from tests.test_cgroup_awks import awk_dir

STANDINS = Path(__file__).parent / "bin" / "xen-standins"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok: bool, why: str) -> None:
    """Skip when a system tool is missing, but never in CI, where it is a failure."""
    if not ok:
        if IN_CI:
            pytest.fail(f"{why} (tests/setup/system-deps.sh installs it)")
        pytest.skip(why)


def run_probe(
    opts: ProbeOptions, path_prefix: Path | None = None, user: int | None = None, **env: str
) -> tuple[ProbeOutput, float]:
    environ = {**os.environ, **env}
    if path_prefix is not None:
        environ["PATH"] = f"{path_prefix}:{environ['PATH']}"
    started = time.monotonic()
    proc = subprocess.run(
        ["sh", "-c", REMOTE_COMMAND],
        input=build_script(opts),
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=True,
        user=user,
        cwd="/",
    )
    return split_output(proc.stdout, opts.nonce), time.monotonic() - started


def test_the_host_sections_are_unchanged() -> None:
    # Another stage parses these: the hypervisor work must not rename or drop any.
    assert [name for name, _ in SAMPLE_SECTIONS] == [
        "uptime", "boot_id", "stat", "meminfo", "vmstat", "loadavg", "pressure_cpu",
        "pressure_io", "pressure_memory", "diskstats", "net_dev", "cgroup",
    ]  # fmt: skip


@pytest.mark.parametrize(("interval", "delay"), [(0.2, 1), (1.0, 1), (1.2, 2), (3.0, 3)])
def test_xentop_delay_is_whole_seconds_rounded_up(interval: float, delay: int) -> None:
    assert xentop_delay_s(interval) == delay
    script = build_script(ProbeOptions(interval_s=interval))
    assert f"xentop -b -f -i 2 -d {delay})" in script  # with -f, then without (older xentop)
    assert f"xentop -b -i 2 -d {delay};" in script


#: The probe's Xen guard and xentop functions, each one line of the script.
_XENTOP_FUNCS = ("FM_BECOME=", "FM_T=", "FM_OUT=", "fm_to()", "fm_tm()", "fm_hv()", "fm_xt()")


def _xentop_shell(tail: str, path: str) -> subprocess.CompletedProcess[str]:
    """The probe's own fm_xt/fm_xentop lines, then `tail`, run by sh with PATH `path`."""
    script = build_script(ProbeOptions(hypervisor="xen"))
    lines = [ln for ln in script.splitlines() if ln.startswith((*_XENTOP_FUNCS, "fm_xentop()"))]
    assert len(lines) == len(_XENTOP_FUNCS) + 1
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        ["sh", "-c", "\n".join([*lines, tail])], capture_output=True, text=True, env=env,
        timeout=30, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("standin_set", ["docs", "ganeti"])
def test_xentop_iterations_are_stamped_with_the_uptime_they_arrived_at(
    standin_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in xentop sleeps its -d 1 between its iterations; the ganeti set rejects -f
    # and is asked again without it: stamped the same.
    standins = Path(__file__).parent / "bin" / "xen-standins"
    monkeypatch.setenv("XEN_STANDIN_SET", standin_set)
    proc = _xentop_shell('fm_xentop; echo "rc=$?"', f"{standins}:{os.environ['PATH']}")
    lines = proc.stdout.splitlines()
    assert lines[-1] == "rc=0"
    stamps = [i for i, ln in enumerate(lines) if ln.startswith("fm_uptime ")]
    assert len(stamps) == 2
    assert all(lines[i + 1].split()[:2] == ["NAME", "STATE"] for i in stamps)
    up = [float(lines[i].split()[1]) for i in stamps]
    assert 1.0 <= up[1] - up[0] < 3.0  # /proc/uptime's 0.01 s steps; xentop slept 1 s
    # Nothing else added: the lines without the stamps are the stand-in's.
    expected = (
        standins / "data" / f"{standin_set}-xentop{'-f' if standin_set == 'docs' else ''}-1.txt"
    )
    assert "\n".join(lines[stamps[0] + 1 : stamps[1]]) + "\n" == expected.read_text()


def test_xentop_exit_status_passes_through_the_stamping() -> None:
    proc = _xentop_shell(
        'fm_xt sh -c "echo out; echo err >&2; exit 3"; echo "rc=$?"', "/usr/bin:/bin"
    )
    assert proc.stdout.splitlines() == ["out", "err", "rc=3"]


def test_bad_options() -> None:
    with pytest.raises(
        ValueError, match=r"^hypervisor must be one of \('auto', 'kvm', 'xen', 'none'\)$"
    ):
        build_script(ProbeOptions(hypervisor="vmware"))
    with pytest.raises(ValueError, match=r"^nonce must be lowercase hex$"):
        build_script(ProbeOptions(nonce="NOT-HEX"))


def test_inventory_values_reach_the_script_quoted() -> None:
    uri = "qemu+ssh://root@kvm1/system?x=1;touch /tmp/pwned"
    user = "it's $(id)"
    script = build_script(ProbeOptions(virsh_uri=uri, become=True, become_user=user))
    lines = [ln for ln in script.splitlines() if ln.startswith(("FM_URI=", "FM_BUSER="))]
    shown = subprocess.run(
        ["sh", "-c", "\n".join([*lines, 'printf "%s|%s" "$FM_URI" "$FM_BUSER"'])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == f"{uri}|{user}"
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_no_hypervisor_runs_only_the_host_sections() -> None:
    out, _ = run_probe(ProbeOptions(hypervisor="none", interval_s=0.2))
    meta = probe_meta(out)
    assert meta["hypervisor"] == "none"
    assert {name for (_, name) in out.sections} >= {n for n, _ in SAMPLE_SECTIONS}
    assert not {"virsh_domstats", "xl_list", "xentop"} & {n for (_, n) in out.sections}
    assert compute_vms(out, 2, None, 0.2).hypervisor == "none"


def test_without_awk_the_script_gives_the_same_sections(tmp_path: Path) -> None:
    """The output goes through awk where the host has one (probe._compound), as the shell
    writes it where not: the same sections, samples and exit codes either way."""
    opts = ProbeOptions(hypervisor="none", interval_s=0.2)
    env = env_without_awk(tmp_path)
    with_awk, _ = run_probe(opts)
    without, _ = run_probe(opts, **env)
    sections = [{(key, sec.rc) for key, sec in out.sections.items()} for out in (with_awk, without)]
    assert sections[0] == sections[1]
    assert ((2, "stat"), 0) in sections[0]
    assert all(out.text(0, "times") for out in (with_awk, without))


NONCE = "0123456789abcdef"


def _fm_rd(tmp_path: Path, *calls: str) -> list[bytes]:
    """The prelude then `calls` under sh, with awk and without: the outputs after `meta`
    (whose virsh= line has PATH's)."""
    script = "\n".join([*_prelude(ProbeOptions(hypervisor="none", nonce=NONCE)), *calls])
    outs = [
        subprocess.run(["sh", "-c", script], capture_output=True, env=e, check=True).stdout
        for e in (None, env_without_awk(tmp_path))
    ]
    end = b" end 0 meta 0\n"
    return [o[o.index(end) + len(end) :] for o in outs]


def test_one_awk_reads_the_files_as_a_cat_each_would(tmp_path: Path) -> None:
    """fm_rd (the files of ONE_READER's sections, one awk a sample) prints what `fm N name
    'rd file'` prints for each: the same bytes, a file that cannot be opened as exit 1."""
    (tmp_path / "two").write_text("x 1\ny  2\t\n")
    (tmp_path / "empty").write_text("")
    with_awk, without = _fm_rd(
        tmp_path, f"fm_rd 1 gone {tmp_path}/gone two {tmp_path}/two none {tmp_path}/empty"
    )
    assert with_awk == without
    out = split_output(with_awk.decode(), NONCE)
    assert out.sections[(1, "gone")].rc == 1
    assert out.sections[(1, "gone")].text == ""
    assert out.text(1, "two") == "x 1\ny  2\t\n"
    assert out.sections[(1, "none")] == (1, "none", "", 0)
    assert [name for _, name in out.sections] == ["gone", "two", "none"]


def test_a_read_error_that_ends_awk_leaves_the_files_to_a_cat_each(tmp_path: Path) -> None:
    """mawk ends on a read error (a directory here; EOPNOTSUPP from /proc/pressure where a
    4.18-5.x kernel booted with psi=0): what it printed is whole sections, which the cats'
    then print again, and the next sample has a cat each from the start."""
    (tmp_path / "one").write_text("1\n")
    call = f"fm_rd {{}} one {tmp_path}/one dir {tmp_path} gone {tmp_path}/gone"
    with_awk, without = _fm_rd(tmp_path, call.format(1), call.format(2))
    assert with_awk.count(b" begin 1 one\n") == 2  # awk's, then the cat's
    assert with_awk.count(b" begin 2 one\n") == 1
    outs = [split_output(o.decode(), NONCE) for o in (with_awk, without)]
    assert outs[0].sections == outs[1].sections
    assert outs[0].sections[(2, "dir")].rc == 1
    assert outs[0].text(2, "one") == "1\n"


@pytest.mark.parametrize("awk", ["mawk", "busybox"])
def test_the_probe_under_each_awk_a_host_may_have(awk: str, tmp_path: Path) -> None:
    """fm_rd's reader and the output's writer under mawk (Debian, Ubuntu) and busybox
    (Alpine): every section as a cat each gives it (boot_id's text the same)."""
    opts = ProbeOptions(hypervisor="none", interval_s=0.2)
    out, _ = run_probe(opts, path_prefix=awk_dir(tmp_path, awk))
    cats, _ = run_probe(opts, **env_without_awk(tmp_path))
    assert {(k, sec.rc) for k, sec in out.sections.items()} == {
        (k, sec.rc) for k, sec in cats.sections.items()
    }
    assert out.text(1, "boot_id") == cats.text(2, "boot_id")
    for sample, name in ((1, "stat"), (2, "meminfo"), (2, "pressure_cpu"), (0, "times")):
        assert out.text(sample, name), name


def test_xen_is_detected_and_xentop_replaces_the_sleep(tmp_path: Path) -> None:
    # A `sleep` that writes down its argument: which waits happened, whatever the load does
    # to the elapsed time (the probe runs at nice 19).
    shim, log = tmp_path / "bin", tmp_path / "sleeps"
    shim.mkdir()
    (shim / "sleep").write_text(
        f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which("sleep")} "$@"\n'
    )
    (shim / "sleep").chmod(0o755)
    out, elapsed = run_probe(ProbeOptions(interval_s=1.2), path_prefix=Path(f"{shim}:{STANDINS}"))
    assert probe_meta(out)["hypervisor"] == "xen"
    assert probe_meta(out)["xentop"] == f"{STANDINS}/xentop"
    sec = out.get(0, "xentop")
    assert sec is not None
    assert sec.rc == 0
    assert sec.text.count("NAME  STATE") == 2
    assert (
        out.text(2, "xl_list")
        == (Path(__file__).parent / "data" / "xen-docs" / "xl-list-example.txt").read_text()
    )
    # One wait of -d 2 (1.2 s rounded up) between xentop's iterations, no `sleep 1.2` after.
    assert log.read_text() == "2\n"
    assert elapsed >= 2.0


def test_old_xentop_without_f_is_asked_again_without_it() -> None:
    out, _ = run_probe(ProbeOptions(interval_s=1.0), path_prefix=STANDINS, XEN_STANDIN_SET="ganeti")
    text = out.text(0, "xentop")
    assert text is not None
    assert "Usage" not in text
    assert "web3106215 --b---" in text


def test_kvm_forced_virsh_error_is_kept_as_the_reason() -> None:
    need(shutil.which("virsh") is not None, "virsh (libvirt-clients) is not installed")
    uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
    out, _ = run_probe(ProbeOptions(hypervisor="kvm", virsh_uri=uri, interval_s=0.2))
    sec = out.get(1, "virsh_domstats")
    assert sec is not None
    assert sec.rc == 1
    res = compute_vms(out, 2, None, 0.2)
    assert res.notes == (
        "VMs not reported: virsh domstats failed: failed to connect to the hypervisor; "
        "Failed to connect socket to '/nonexistent/libvirt-sock': No such file or directory",
    )


def test_become_without_a_sudo_password_fails_at_once_with_a_note() -> None:
    need(os.geteuid() == 0, "running the probe as another user needs root")
    need(shutil.which("sudo") is not None, "sudo is not installed")
    opts = ProbeOptions(hypervisor="kvm", become=True, interval_s=0.2)
    out, _ = run_probe(opts, user=65534)  # nobody: no sudoers entry, no tty
    # sudo -n never waits for a password: it exits 1 by itself in both samples, where a
    # waiting sudo would be killed by the probe's `timeout 10` (124). Timing-free: a busy
    # machine stretches the run (10.6 s seen beside two busy loops).
    for sample in (1, 2):
        sec = out.get(sample, "virsh_domstats")
        assert sec is not None
        assert sec.rc == 1, (sample, sec.text)
    assert out.text(2, "stat") is not None  # the host sections are unaffected
    res = compute_vms(out, 2, None, 0.2)
    assert res.notes == ("VMs not reported: virsh domstats failed: sudo: a password is required",)


VIRSH_STANDIN = Path(__file__).parent / "bin" / "virsh-standin"


@pytest.mark.parametrize("reask", ["ok", "fail"])
def test_a_domain_nowait_passed_over_is_asked_again(tmp_path: Path, reask: str) -> None:
    # `virsh domstats --nowait` answers for a busy domain without its monitor's figures
    # (memory stats, block counters): the lab's e2e test saw vm.mem_used_pct null under load.
    log = tmp_path / "virsh.log"
    out, _ = run_probe(
        ProbeOptions(hypervisor="kvm", interval_s=0.2),
        path_prefix=VIRSH_STANDIN,
        VIRSH_STANDIN_STATE=str(tmp_path),
        VIRSH_STANDIN_LOG=str(log),
        VIRSH_STANDIN_REASK=reask,
    )
    calls = [line for line in log.read_text().splitlines() if " domstats " in f" {line} "]
    stats = "--state --cpu-total --balloon --vcpu --interface --block"
    first = f"-q -c qemu:///system domstats --raw --nowait {stats}"
    again = f"-q -c qemu:///system domstats --raw {stats} -- vm2"
    # Each sample: one --nowait answer, then vm2 (running, without balloon.rss) asked again
    # without --nowait; vm1, answered in full, is not.
    assert calls == [first, again, first, again]
    res = compute_vms(out, host_cpus=2, host_mem_bytes=None, interval_s=0.2)
    vms = {r.name: r.metrics for r in res.vms}
    assert list(vms) == ["vm2", "vm1"]  # the order virsh printed them, once each
    assert vms["vm1"]["vm.mem_used_pct"] is not None
    if reask == "ok":
        for key in ("vm.mem_used_pct", "vm.disk_reads_per_s", "vm.disk_read_bytes_per_s"):
            assert vms["vm2"][key] is not None, key
    else:  # a re-ask that fails (or times out) leaves the first answer: no made-up figure
        assert vms["vm2"]["vm.mem_used_pct"] is None
        assert vms["vm2"]["vm.disk_reads_per_s"] is None
        assert vms["vm2"]["vm.cpu_pct"] is not None


def test_the_script_sets_the_c_locale_itself(tmp_path: Path) -> None:
    """A ForceCommand that runs `/bin/sh` under its own locale ignores REMOTE_COMMAND's `env
    LC_ALL=C`: the script sets it. The stand-in df prints a translated header (tr_TR's, as
    GNU df does there) unless it runs under LC_ALL=C and LANG=C."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "df").write_text(
        '#!/bin/sh\nif [ "$LC_ALL" = C ] && [ "$LANG" = C ]; then\n'
        "  printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\\n'\n"
        "  printf '/dev/vda1 100 50 50 50%% /\\n'\nelse\n"
        "  printf 'Dosya sistemi 1K-blok Kullan\\304\\261lan Bo\\305\\237 Kapasite'\n"
        "  printf ' Ba\\304\\237l\\304\\261\\n'\nfi\n"
    )
    (shim / "df").chmod(0o755)
    opts = ProbeOptions(hypervisor="none", interval_s=0.2)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    env |= {"LC_ALL": "tr_TR.UTF-8", "LANG": "tr_TR.UTF-8"}
    proc = subprocess.run(
        ["sh", "-s"], input=build_script(opts).encode(), capture_output=True, env=env, check=True
    )
    out = split_output(proc.stdout.decode(), opts.nonce)
    for name in ("df_k", "df_i"):
        assert out.text(0, name) == (
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 100 50 50 50% /\n"
        ), name


@pytest.mark.parametrize("awk", ["mawk", "busybox"])
def test_the_writer_sends_whole_sections_while_the_probe_waits(awk: str, tmp_path: Path) -> None:
    """The one-shot probe's awk flushes at each section's end, so what a host stuck in a
    command has sent ends with a whole section, and a deadline's "N bytes of output so far"
    says how far it got. With `{ print }` alone mawk wrote 4 KB blocks, cut anywhere (the
    hunt saw 4096 and 12288 bytes); busybox flushes before each read either way. mawk still
    reads a pipe in blocks (fillbuff), so it may not have seen the last few sections yet."""
    assert shlex.quote(_AWK_SECTION) in build_script(ProbeOptions(nonce=NONCE))
    sections = "".join(
        section(1, f"s{i}", f"line {i} " + "x" * (i % 50) + "\n") for i in range(120)
    )
    ends = {m.end() for m in re.finditer(r"\n", sections)}
    assert not {4096, 8192} & ends  # a block boundary is never a line's end here
    env = {**os.environ, "PATH": f"{awk_dir(tmp_path, awk)}:{os.environ['PATH']}"}
    end = f"@@fleetmon-{NONCE}@@ end "
    proc = subprocess.Popen(
        ["sh", "-c", 'exec awk -v e="$1" "$2"', "sh", end, _AWK_SECTION],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    got = b""
    try:
        proc.stdin.write(sections.encode())
        proc.stdin.flush()  # and kept open: the probe is still running
        last = re.compile(rb"\n@@fleetmon-[0-9a-f]+@@ end 1 s[0-9]+ 0\n\Z")
        deadline = time.monotonic() + 30  # generous: the machine may be busy
        while last.search(got) is None and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                got += os.read(proc.stdout.fileno(), 65536)
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    assert last.search(got), got[-200:]
    assert sections.startswith(got.decode())
    split_output(got.decode(), NONCE)  # whole sections only
