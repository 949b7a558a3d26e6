"""Probe output a compromised target could print (issue 16): absurd counters, counts that
would size allocations, and the most lines that fit under the output cap.

Built from the real captures of probetext by substitution: every hostile byte is named here.
"""

from __future__ import annotations

import re

from probetext import NONCE, probe_stdout, section

#: A counter of a few hundred digits: float(int) raises OverflowError at this size.
HUGE = "9" * 400

#: collect.base's default output cap.
CAP_BYTES = 16 * 1024 * 1024


def huge_counter(sect: str, nonce: str = NONCE) -> str:
    """The composite host's output with the first counter of `sect`'s second sample huge."""
    text = probe_stdout(kvm=True)
    if nonce != NONCE:
        text = text.replace(NONCE, nonce)
    begin = text.index("\n", text.index(f"@@ begin 2 {sect}\n")) + 1
    end = text.index(f"@@ end 2 {sect} ", begin)
    body = text[begin:end]
    # The first whole number after a separator: a counter in every /proc file and in domstats.
    hostile = re.sub(r"(?:(?<=[ =\t])|^)[0-9]+(?=[\s.])", HUGE, body, count=1, flags=re.M)
    assert hostile != body
    return text[:begin] + hostile + text[end:]


def huge_counts(nonce: str = NONCE) -> str:
    """virsh domstats whose net/block/vcpu counts would allocate terabytes if trusted."""
    doms = (
        "Domain: 'evil'\n  state.state=1\n  cpu.time=100\n  vcpu.current=999999999999\n"
        "  net.count=999999999999\n  block.count=999999999999\n  net.0.name=vnet0\n"
        "  net.0.rx.bytes=1\n\n"
    )
    return with_sections(nonce, "virsh_domstats", doms, doms)


def with_sections(nonce: str, name: str, first: str, second: str) -> str:
    """The composite KVM host with section `name` of both samples replaced."""
    text = probe_stdout(kvm=True)
    for sample, body in ((1, first), (2, second)):
        begin = text.index(f"@@fleetmon-{NONCE}@@ begin {sample} {name}\n")
        end = text.index("\n", text.index(f"@@fleetmon-{NONCE}@@ end {sample} {name} ", begin))
        text = text[:begin] + section(sample, name, body).rstrip("\n") + text[end:]
    return text.replace(NONCE, nonce) if nonce != NONCE else text


def many_lines(name: str, nonce: str = NONCE, cap: int = CAP_BYTES, count: int = 0) -> str:
    """The composite host with `name` (diskstats, net_dev or virsh_domstats) as many short,
    distinct lines as fit in both samples under the output cap (or `count` device lines a
    sample, for diskstats and net_dev)."""
    budget = (cap - len(probe_stdout(kvm=True)) - 4096) // 2
    if name == "diskstats":
        width = len("   8 000 vd000000x 1 2 3 4 5 6 7 8 9 10 11\n")
        body = "".join(
            f"   8 {i % 256:3d} vd{i:06d}x 1 2 3 4 5 6 7 8 9 10 11\n"
            for i in range(count or budget // width)
        )
    elif name == "net_dev":
        head = "Inter-|\n face |\n"
        width = len("e000000: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
        body = head + "".join(
            f"e{i:06d}: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
            for i in range(count or (budget - len(head)) // width)
        )
    else:
        # At most MAX_DOMAINS domains, each with as many net devices as fit.
        per = (budget // 4096) // len("  net.000.name=vnet000\n  net.000.rx.bytes=000\n") - 3
        devices = "".join(
            f"  net.{j:03d}.name=vnet{j:03d}\n  net.{j:03d}.rx.bytes={j:03d}\n" for j in range(per)
        )
        body = "".join(
            f"Domain: 'vm{i:04d}'\n  state.state=1\n  cpu.time={i}\n  net.count={per}\n{devices}"
            for i in range(4096)
        )
    assert len(body) <= budget
    return with_sections(nonce, name, body, body)
