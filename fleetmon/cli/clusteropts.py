"""The command line's options for cluster runs and `fleetmon merge` (edge): argparse only,
imported when the parser is built (as options.py is, so `--help` stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Positive = Callable[[type[float] | type[int], str], Callable[[str], float | int]]

#: Hosts per shard when --shard-size is not given.
SHARD_SIZE = 500


def unused_cluster_options(args: argparse.Namespace) -> list[str]:
    """The cluster options given to a run without --cluster (warned of: they do nothing)."""
    if getattr(args, "cluster", None) is not None:
        return []
    given = (("--shard-size", "shard_size"), ("--shard-timeout", "shard_timeout"))
    return [flag for flag, key in given if getattr(args, key, None) is not None]


def add_cluster_options(p: argparse.ArgumentParser, positive: Positive) -> None:
    """`run`'s --cluster, --shard-size and --shard-timeout (`positive`: options.py's checker
    of numbers above 0)."""
    p.add_argument(
        "--cluster",
        metavar="ADDRESS|local:N",
        help="collect and analyse in shards on a Dask cluster: its scheduler's address "
        "(tcp://HOST:8786, or tls://HOST:8786 with Dask's TLS settings), or local:N for N "
        "local worker processes (pip install "
        "'fleetmon[cluster]')",
    )
    p.add_argument(
        "--shard-size",
        type=positive(int, "--shard-size"),
        default=None,  # 500 (SHARD_SIZE); None tells a value given without --cluster
        metavar="N",
        help="hosts per shard, the most (default 500; a site's hosts are sharded apart)",
    )
    p.add_argument(
        "--shard-timeout",
        type=positive(float, "--shard-timeout"),
        default=None,
        metavar="S",
        help="how long one attempt of a shard may run (default: its waves of --forks hosts, "
        "or of fewer if its worker's open-file limit allows fewer, at the per-host deadline, "
        "plus 30 s)",
    )


def add_merge_parser(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_render_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`fleetmon merge REPORT.json...` and its output options (those of `run`)."""
    merge = sub.add_parser(
        "merge",
        help="one report from the JSON reports of several runs (one per site): hosts "
        "deduplicated, fleet statistics and fleet rules over the merged fleet",
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT.json")
    add_render_options(merge)
