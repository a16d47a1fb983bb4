"""Upkeep of a long-lived installation: run folders pruned after `retention.runs_days`
(never the ledger), and `dhbot backup` of the SQLite ledger."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from bot.alerts import after_run
from bot.config import load_settings
from bot.ledger import Ledger, sqlite_path
from bot.migrations import HEAD
from bot.outcomes import Outcome
from bot.report import RunReport
from bot.retention import prune_runs
from tests.bot.conftest import Workspace


def _run_folder(runs: Path, started: datetime, suffix: str = "ab12") -> Path:
    folder = runs / f"{started:%Y%m%d-%H%M%S}-{suffix}"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text("{}", encoding="utf-8")
    return folder


def test_retention_removes_only_old_run_folders(workspace: Workspace) -> None:
    workspace.write_config(retention={"runs_days": 7})
    settings = load_settings(workspace.config, {}).settings
    runs = settings.paths.runs_dir
    now = datetime(2026, 11, 30, 12, 0, 0)
    old = _run_folder(runs, now - timedelta(days=8))
    older = _run_folder(runs, now - timedelta(days=40), "cd34")
    recent = _run_folder(runs, now - timedelta(days=6, hours=23))
    other = runs / "exports"  # not a run folder: never touched, however old
    other.mkdir()
    stray = runs / "20200101-000000-ffff.txt"
    stray.write_text("a file, not a run folder", encoding="utf-8")
    ledger = Ledger(settings.ledger_url)
    ledger.close()

    assert prune_runs(settings, now) == [older, old]
    assert not old.exists() and not older.exists()
    assert recent.exists() and other.exists() and stray.exists()
    assert sqlite_path(settings.ledger_url) is not None
    assert Path(str(sqlite_path(settings.ledger_url))).exists()  # the ledger stays
    # 0 keeps everything.
    workspace.write_config(retention={"runs_days": 0})
    keep_all = load_settings(workspace.config, {}).settings
    assert prune_runs(keep_all, now + timedelta(days=365)) == []
    assert recent.exists()


def _ledger_with_orders(workspace: Workspace) -> Path:
    settings = load_settings(workspace.config, {}).settings
    ledger = Ledger(settings.ledger_url)
    try:
        ledger.plan("r1", "acct", [("1455953156", "out_of_stock", "缺货"),
                                   ("1455953157", "out_of_stock", "缺货")])
        ledger.record_result("r1", "acct", "1455953156", Outcome.SUBMITTED,
                             status_before="待发货", status_after="取消审核中", attempts=1)
    finally:
        ledger.close()
    path = sqlite_path(settings.ledger_url)
    assert path is not None
    return path


def test_backup_copies_the_ledger_consistently_while_a_run_writes(workspace: Workspace) -> None:
    source = _ledger_with_orders(workspace)
    # Another run is in the middle of writing (an open, uncommitted transaction).
    writer = sqlite3.connect(source, timeout=5)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO events (at, account, order_no, kind) VALUES "
                   "('2026-11-30T00:00:00+00:00', 'acct', '1455953157', 'uncommitted')")
    try:
        proc = workspace.cli("backup", "copy.sqlite", check_code=0)
    finally:
        writer.rollback()
        writer.close()
    copy = workspace.root / "copy.sqlite"
    assert f"2 orders, schema {HEAD}" in proc.stdout
    assert copy.stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(copy)
    try:
        rows = dict(conn.execute("SELECT order_no, outcome FROM orders").fetchall())
        kinds = [r[0] for r in conn.execute("SELECT kind FROM events")]
    finally:
        conn.close()
    assert rows == {"1455953156": "submitted", "1455953157": None}
    assert "uncommitted" not in kinds
    # The copy is a ledger dhbot opens as it is.
    reopened = Ledger(copy)
    try:
        row = reopened.get("acct", "1455953156")
        assert row is not None and row.outcome == Outcome.SUBMITTED
    finally:
        reopened.close()
    assert not list(workspace.root.glob(".copy.sqlite.*"))  # no partial file left


def test_backup_refuses_what_it_cannot_do(workspace: Workspace) -> None:
    nothing = workspace.cli("backup", "copy.sqlite", check_code=2)
    assert "no ledger at" in nothing.stderr and "nothing to back up" in nothing.stderr
    _ledger_with_orders(workspace)
    (workspace.root / "copy.sqlite").write_bytes(b"keep me")
    exists = workspace.cli("backup", "copy.sqlite", check_code=2)
    assert "exists" in exists.stderr and "--force" in exists.stderr
    assert (workspace.root / "copy.sqlite").read_bytes() == b"keep me"
    workspace.cli("backup", "copy.sqlite", "--force", check_code=0)
    assert (workspace.root / "copy.sqlite").read_bytes().startswith(b"SQLite format 3")
    workspace.write_config(ledger="postgresql://dhbot@127.0.0.1:1/ledger")
    postgres = workspace.cli("backup", "copy2.sqlite", check_code=2)
    assert "pg_dump" in postgres.stderr
    assert not (workspace.root / "copy2.sqlite").exists()


def test_every_run_prunes_old_run_folders_after_it(workspace: Workspace) -> None:
    """`after_run` (called by run, sync, wait and every scheduled job) applies retention."""
    workspace.write_config(retention={"runs_days": 30})
    loaded = load_settings(workspace.config, {})
    runs = loaded.settings.paths.runs_dir
    old = _run_folder(runs, datetime.now() - timedelta(days=31))
    this = _run_folder(runs, datetime.now(), "ee99")
    report = RunReport(run_id=this.name, job="job.yaml", account="main",
                       started_at="2026-11-30T00:00:00+00:00")
    after_run(loaded, report, this / "report.json")
    assert not old.exists() and this.exists()
