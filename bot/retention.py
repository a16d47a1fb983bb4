"""Retention: run folders older than `retention.runs_days` are removed. The ledger (every
order's history) is never pruned; only the folders of evidence, logs and reports go."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from loguru import logger

from bot.config import Settings

# A run folder's name is its run id: local start time, then a random suffix (new_run_id).
_RUN_ID = re.compile(r"^(\d{8}-\d{6})-[0-9a-f]{4}$")


def old_runs(runs_dir: Path, days: int, now: datetime | None = None) -> list[Path]:
    """Run folders under `runs_dir` that started more than `days` days before `now`;
    anything not named like a run folder is left alone."""
    if days <= 0 or not runs_dir.is_dir():
        return []
    cutoff = (now or datetime.now()) - timedelta(days=days)
    found = []
    for folder in sorted(runs_dir.iterdir()):
        match = _RUN_ID.match(folder.name)
        if match is None or not folder.is_dir() or folder.is_symlink():
            continue
        if datetime.strptime(match.group(1), "%Y%m%d-%H%M%S") < cutoff:
            found.append(folder)
    return found


def prune_runs(settings: Settings, now: datetime | None = None) -> list[Path]:
    """Remove the run folders older than retention.runs_days (0: keep all); returns them.
    A folder that cannot be removed is logged and left; pruning never fails a run."""
    days = settings.retention.runs_days
    removed = []
    for folder in old_runs(settings.paths.runs_dir, days, now):
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            logger.warning("retention: could not remove {}: {}", folder, exc)
            continue
        removed.append(folder)
    if removed:
        logger.info("retention: removed {} run folder(s) older than {} days ({} … {})",
                    len(removed), days, removed[0].name, removed[-1].name)
    return removed
