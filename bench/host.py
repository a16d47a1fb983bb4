"""What a benchmark's numbers were measured on: the machine, its load, and the code."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


def load() -> list[float]:
    """The 1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPU, memory, kernel and the load when the benchmark starts."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "load_avg_at_start": load(),
    }


def _output(argv: list[str]) -> str | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20,
                              cwd=ROOT).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions(*packages: str, chromium: str | None = None) -> dict[str, str | None]:
    """Python, dhbot and its commit, the given packages, and Chromium when given its path."""
    def dist(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    commit = _output(["git", "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no"])
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "dhbot": dist("dhbot"),
        "dhbot_commit": f"{commit}{'+dirty' if dirty else ''}" if commit else None,
    }
    found.update({name: dist(name) for name in packages})
    if chromium is not None:
        found["chromium"] = _output([chromium, "--version"])
    return found


def chromium_versions(executables: Iterable[str]) -> dict[str, str | None]:
    """`--version` of each Chromium executable (the headless shell answers like the full one)."""
    return {exe: _output([exe, "--version"]) for exe in dict.fromkeys(executables)}
