"""Tests that need root (files of other users, device nodes): CI runs as root, so there a
missing root is a failure, never a silent skip; elsewhere they are skipped."""

from __future__ import annotations

import os

import pytest


def require_root(why: str) -> None:
    """Skip (or, under CI=true, fail) unless the tests run as root."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"must run as root in CI: {why}")
    pytest.skip(f"needs root: {why}")
