"""Text every output can encode (pure): names that came as bytes that are not UTF-8."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> str:
    """`text` with each lone surrogate written as its escape (`\\udcff`), as the text report
    shows it. Python holds bytes that are not UTF-8 so (a host name on the command line,
    `printf 'web\\xff1,'`; a JSON `"\\udcff"`), and UTF-8 files, SQLite text and Prometheus
    labels cannot hold them."""
    if text.isascii():
        return text  # the common case: one C-speed test
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
