"""A site's name (pure): the inventory's `fleetmon_site`, and the JSON report's host `site`
that `fleetmon merge` reads back."""

from __future__ import annotations

import re
from typing import Any

#: A site name: it becomes a Dask resource name, `site-NAME` (run --cluster).
_SITE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_site(value: Any) -> str:
    """`fleetmon_site`: letters, digits, `_`, `.`, `-` (a Dask worker's `--resources`
    option splits on `=`, `,` and spaces, so a site name has none of them)."""
    if not isinstance(value, str) or not _SITE_RE.fullmatch(value):
        raise ValueError(f"expected a site name of letters, digits, '_', '.', '-', got {value!r}")
    return value
