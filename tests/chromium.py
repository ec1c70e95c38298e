"""Debian's Chromium for the browser tests: where it is, how it starts here, where screenshots go.

Playwright drives it (never `playwright install`: it downloads a browser, which fails here). Without it the
browser tests skip with the reason, except in CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/lib/chromium/chromium"
# Without the background-networking flags Chromium tries to reach the internet at start and is refused.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_chromium() -> None:
    """Skip (or, in CI, fail) the calling test when Chromium or Playwright is missing."""
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = f"Chromium not installed at {CHROMIUM} (run `make test` as root, or `apt-get install chromium`)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
