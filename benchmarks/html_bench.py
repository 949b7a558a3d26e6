"""Benchmark of the HTML renderer: 500 hosts x 20 VMs must render in under 2 s and 3 MB.

Prints the render time (best and median of --repeat runs) and the page size; exits 1 when
either budget is exceeded. The report comes from tests/reportfactory.py.
Usage: .venv/bin/python benchmarks/html_bench.py [--hosts 500] [--vms 20] [--out report.html]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import reportfactory  # type: ignore[import-not-found,unused-ignore]  # tests/ on sys.path

from fleetmon.render.html import render_html

BUDGET_S = 2.0
BUDGET_BYTES = 3_000_000


def main(argv: list[str] | None = None) -> int:
    """Render the big report, print time and size against the budgets."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--vms", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, help="also write the page here")
    args = ap.parse_args(argv)
    report = reportfactory.fleet_report(args.hosts, args.vms)
    times = []
    page = ""
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        page = render_html(report)
        times.append(time.perf_counter() - t0)
    size = len(page.encode("utf-8"))
    if args.out:
        args.out.write_text(page, encoding="utf-8")
    ok = min(times) < BUDGET_S and size < BUDGET_BYTES
    print(
        f"html_bench: {args.hosts} hosts x {args.vms} VMs: "
        f"render best {min(times):.3f} s, median {statistics.median(times):.3f} s "
        f"(budget {BUDGET_S} s); size {size / 1e6:.2f} MB (budget {BUDGET_BYTES / 1e6:.0f} MB)"
        f"{'' if ok else ' OVER BUDGET'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
