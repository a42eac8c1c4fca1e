"""Debian's chromium as the dashboard's browser tests and benchmark launch it (through Playwright,
never `playwright install`'s own browser, which a closed network cannot download)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = Path("/usr/bin/chromium")  # scripts/setup.sh installs it
# As the machine's notes say: without the background-networking flags chromium keeps dialling
# Google's hosts, which a closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(playwright: Playwright, profile: Path, **options: Any) -> BrowserContext:
    """Headless chromium with a user-data dir of its own (`profile`, fresh for each run)."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, **options
    )
