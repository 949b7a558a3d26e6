# ruff: noqa: UP031 -- printf-style on purpose: each cell mirrors a format of xentop.c
"""Writes the xentop stand-in's output files (run by hand; the output is committed).

SYNTHESIZED, not captured: no Xen host was available and no licensed real `xentop -b`
capture was found. The lines follow the printf formats of xen-project/xen
tools/xentop/xentop.c (batch mode: no summary, one header per iteration, rows sorted by
name, `%10.10s` names without -f, `no limit`/`n/a` for an unlimited MAXMEM). The domains
and their sizes are those of the xl fixtures the `xl` stand-in prints; the counters are
invented so that every rate comes out exact.
"""

from __future__ import annotations

import math
from pathlib import Path

FIELDS = [  # header, default width (xentop.c fields[])
    ("NAME", 10), ("STATE", 6), ("CPU(sec)", 10), ("CPU(%)", 6), ("MEM(k)", 10),
    ("MEM(%)", 6), ("MAXMEM(k)", 10), ("MAXMEM(%)", 9), ("VCPUS", 5), ("NETS", 4),
    ("NETTX(k)", 8), ("NETRX(k)", 8), ("VBDS", 4), ("VBD_OO", 8), ("VBD_RD", 8),
    ("VBD_WR", 8), ("VBD_RSECT", 10), ("VBD_WSECT", 10), ("SSID", 4),
]  # fmt: skip

# name, state, cpu_s, cpu%, mem_k, maxmem_k (None = no limit), vcpus, nets, nettx, netrx,
# vbds, oo, rd, wr, rsect, wsect: one tuple per iteration.
SETS = {
    "docs": (  # xen-docs xl-list-example.txt / xl-info-example.txt (4 CPUs, 6141 MiB)
        6141,
        [
            [("Domain-0", "-----r", 11794, 0.0, 768000, None, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("win", "--b---", 0, 0.0, 1043456, 1044480, 1, 1, 10, 20, 1, 0, 100, 50, 2000, 800),
             ("linux", "-----r", 5624, 0.0, 2097152, 2098176, 2, 1, 5000, 300, 2, 2, 4000,
              900, 64000, 7200)],
            [("Domain-0", "-----r", 11794, 12.5, 768000, None, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("win", "--b---", 0, 0.8, 1043456, 1044480, 1, 1, 12, 25, 1, 0, 110, 54, 2160, 864),
             ("linux", "-----r", 5626, 150.4, 2097152, 2098176, 2, 1, 6024, 302, 2, 14, 4030,
              940, 68096, 7712)],
        ],
    ),
    "ganeti": (  # ganeti xen-xl-list-4.0.1-four-instances.txt / xl-info (4 CPUs, 16378 MiB)
        16378,
        [
            [("Domain-0", "-----r", 154706, 0.0, 1047552, None, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("server01.example.com", "--b---", 167643, 0.0, 1048576, 1049600, 1, 1, 700, 900,
              1, 0, 10, 10, 80, 80),
             ("testinstance.example.com", "-----r", 244443, 0.0, 2097152, 2098176, 2, 1, 1, 1,
              1, 0, 0, 0, 0, 0),
             ("web3106215069.example.com", "--b---", 466690, 0.0, 4194304, 4195328, 1, 2, 50,
              60, 1, 0, 20, 20, 160, 160)],
            [("Domain-0", "-----r", 154706, 3.1, 1047552, None, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("server01.example.com", "--b---", 167643, 1.2, 1048576, 1049600, 1, 1, 702, 904,
              1, 0, 12, 11, 96, 88),
             ("testinstance.example.com", "-----r", 244445, 199.9, 2097152, 2098176, 2, 1, 1, 1,
              1, 0, 0, 0, 0, 0),
             ("web3106215069.example.com", "--b---", 466690, 0.4, 4194304, 4195328, 1, 2, 51,
              61, 1, 0, 20, 20, 160, 160)],
        ],
    ),
    # A dom0 with stub domains (no capture has any: sizes and counters invented, names as
    # Xen gives them): Xenstore, the xenstore stub domain (tools/helpers/
    # init-xenstore-domain.c names it so), and hvm1-dm, the device-model stub domain of the
    # HVM guest hvm1 (libxl__stub_dm_name: "<guest>-dm"). Host: the xl man page's xl info
    # (4 CPUs, 6141 MiB); domains: data/stubdom-xl-list.txt.
    "stubdom": (
        6141,
        [
            [("Domain-0", "-----r", 11794, 0.0, 768000, None, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("Xenstore", "--b---", 12, 0.0, 32768, 33792, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("hvm1", "--b---", 830, 0.0, 2097152, 2098176, 2, 1, 500, 200, 1, 0, 1000, 400,
              8000, 3000),
             ("hvm1-dm", "--b---", 95, 0.0, 131072, 132096, 1, 1, 40, 30, 1, 0, 10, 4, 80, 32),
             ("pv1", "--b---", 301, 0.0, 1048576, 1049600, 1, 1, 50, 60, 1, 0, 20, 20, 160,
              160)],
            [("Domain-0", "-----r", 11794, 20.0, 768000, None, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("Xenstore", "--b---", 12, 0.5, 32768, 33792, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
             ("hvm1", "--b---", 831, 60.0, 2097152, 2098176, 2, 1, 625, 225, 1, 5, 1050, 425,
              8800, 3200),
             ("hvm1-dm", "--b---", 95, 25.0, 131072, 132096, 1, 1, 45, 35, 1, 0, 10, 4, 80, 32),
             ("pv1", "--b---", 301, 10.0, 1048576, 1049600, 1, 1, 60, 70, 1, 0, 20, 20, 160,
              160)],
        ],
    ),
}  # fmt: skip


def width(n: int) -> int:
    return int(math.log10(n) + 1)  # INT_FIELD_WIDTH


def block(total_mib: int, rows: list[tuple], full_name: bool) -> str:
    widths = dict(FIELDS)
    for r in rows:
        if full_name:
            widths["NAME"] = max(widths["NAME"], len(r[0]))
        for col, v in (("NETTX(k)", r[8]), ("NETRX(k)", r[9]), ("VBD_RD", r[12]),
                       ("VBD_WR", r[13]), ("VBD_RSECT", r[14]), ("VBD_WSECT", r[15])):  # fmt: skip
            widths[col] = max(widths[col], width(v + 1))
    tot_k = total_mib * 1024
    lines = [" ".join("%*s" % (widths[h], h) for h, _ in FIELDS)]
    for name, st, cpu_s, pct, mem, maxm, vc, nets, tx, rx, vbds, oo, rd, wr, rs, ws in sorted(
        rows, key=lambda r: r[0].lower()
    ):
        cells = [
            "%*s" % (widths["NAME"], name) if full_name else "%10.10s" % name,
            st, "%10d" % cpu_s, "%6.1f" % pct, "%10d" % mem, "%6.1f" % (mem / tot_k * 100),
            "%10s" % "no limit" if maxm is None else "%10d" % maxm,
            "%9s" % "n/a" if maxm is None else "%9.1f" % (maxm / tot_k * 100),
            "%5d" % vc, "%4d" % nets, "%*d" % (widths["NETTX(k)"], tx),
            "%*d" % (widths["NETRX(k)"], rx), "%4d" % vbds, "%8d" % oo,
            "%*d" % (widths["VBD_RD"], rd), "%*d" % (widths["VBD_WR"], wr),
            "%*d" % (widths["VBD_RSECT"], rs), "%*d" % (widths["VBD_WSECT"], ws), "%4d" % 0,
        ]  # fmt: skip
        lines.append(" ".join(cells))
    return "\n".join(lines) + "\n"


def main() -> None:
    here = Path(__file__).parent / "data"
    for name, (total, iterations) in SETS.items():
        for full in (True, False):
            for i, rows in enumerate(iterations, 1):
                suffix = "-f" if full else ""
                (here / f"{name}-xentop{suffix}-{i}.txt").write_text(block(total, rows, full))


if __name__ == "__main__":
    main()
