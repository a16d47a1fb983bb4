"""Finding and launching a Chromium the machine actually has."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Chromium floods a closed network with background requests without these.
QUIET_ARGS: tuple[str, ...] = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
)

SYSTEM_CANDIDATES: tuple[str, ...] = ("/usr/bin/chromium", "chromium", "google-chrome")


def playwright_chromium() -> str | None:
    """Path of Playwright's own downloaded Chromium, when it is installed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a core dependency
        return None
    try:
        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:
        return None
    return path if path and Path(path).exists() else None


def find_chromium(configured: str | None = None) -> str | None:
    """Return the browser to launch: the configured path, Playwright's own, then the system's.

    None means "let Playwright use its own", which only happens when it is installed.
    """
    if configured:
        return configured
    if playwright_chromium():
        return None
    for candidate in SYSTEM_CANDIDATES:
        found = shutil.which(candidate) if not candidate.startswith("/") else candidate
        if found and Path(found).exists():
            return found
    return None


def launch_args(extra: tuple[str, ...] = ()) -> list[str]:
    """Command-line flags for Chromium on this machine (root needs --no-sandbox)."""
    args = list(QUIET_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    args.extend(extra)
    return args
