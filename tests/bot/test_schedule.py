"""dhbot schedule, run as a subprocess the way systemd or a terminal runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bot.conftest import Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

EVERY_2_S = "*/2 * * * * *"
# A safety net: a scheduler left behind by a failing test stops by itself.
MAX_RUNTIME_S = 90


def _use_inbox(workspace: Workspace) -> Path:
    workspace.write_config(schedules=[{"name": "inbox", "cron": EVERY_2_S,
                                       "inbox": "jobs/inbox"}])
    inbox = workspace.root / "jobs" / "inbox"
    inbox.mkdir(parents=True)
    return inbox


def _drop(workspace: Workspace, inbox: Path, name: str, orders: list[dict[str, str]],
          **top: Any) -> Path:
    """Write a job beside the inbox, then rename it in: the convention operators follow."""
    written = workspace.write_job(orders, f"{name}.part", **top)
    target = inbox / name
    os.replace(written, target)
    return target


def _wait_for(what: str, predicate: Callable[[], bool], timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class RunningScheduler:
    """`dhbot schedule` in the background; its output goes to a file to avoid pipe stalls."""

    def __init__(self, workspace: Workspace, *args: str) -> None:
        self.output = workspace.root / f"schedule-{time.monotonic_ns()}.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "schedule", "--config",
                 str(workspace.config), *args],
                cwd=workspace.root, env=workspace.env, stdout=out, stderr=subprocess.STDOUT)

    @property
    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as systemd stops a service; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@contextmanager
def scheduler(workspace: Workspace, max_runtime: float = MAX_RUNTIME_S,
              ) -> Iterator[RunningScheduler]:
    """A running scheduler, stopped (and checked to exit 0) at the end of the block."""
    running = RunningScheduler(workspace, "--max-runtime", str(max_runtime))
    try:
        _wait_for("the scheduler to start", lambda: "scheduler started" in running.text
                  or running.process.poll() is not None, timeout=20)
        yield running
    except BaseException:
        running.process.kill()
        running.process.wait()
        raise
    code = running.stop()
    assert code == 0, f"exit {code}\n{running.text}"



def test_jobs_land_in_done_or_failed_and_a_failure_does_not_stop_it(
        workspace: Workspace) -> None:
    inbox = _use_inbox(workspace)
    shipped = by_status(workspace.portal, "已发货")[0]
    done, failed = inbox.parent / "done", inbox.parent / "failed"

    with scheduler(workspace) as running:
        _drop(workspace, inbox, "bad.yaml", [{"order_no": shipped, "reason": "nonsense"}])
        _wait_for("bad.yaml in failed/", (failed / "bad.yaml").exists)
        # Dropped after the failure, into the same scheduler process.
        _drop(workspace, inbox, "good.yaml", [{"order_no": shipped}])
        _wait_for("good.yaml in done/", (done / "good.yaml").exists)

    assert list(inbox.iterdir()) == []
    report = json.loads((done / "good.report.json").read_text(encoding="utf-8"))
    assert [(o["order_no"], o["outcome"]) for o in report["orders"]] == [
        (shipped, "not_cancellable")]
    assert report["job"].endswith("good.yaml")
    assert "not_cancellable: 1" in (done / "good.log").read_text(encoding="utf-8")
    assert "unknown reason 'nonsense'" in (failed / "bad.log").read_text(encoding="utf-8")
    # Refused before any browser started: there is no report to keep.
    assert not (failed / "bad.report.json").exists()
    assert workspace.portal.cancel_requests() == []
    log = running.text
    assert "[inbox] start bad.yaml" in log
    assert "[inbox] finished bad.yaml: exit 2 → failed/bad.yaml (error: job rejected" in log
    assert "[inbox] finished good.yaml: exit 0 → done/good.yaml" in log
    assert "SIGTERM received" in log


def test_partial_and_growing_files_are_not_picked_up(workspace: Workspace) -> None:
    inbox = _use_inbox(workspace)
    shipped = by_status(workspace.portal, "已发货", 3)
    done = inbox.parent / "done"
    part = inbox / "x.yaml.part"
    part.write_text(yaml.safe_dump({"orders": [{"order_no": shipped[0]}],
                                    "defaults": {"reason": "out_of_stock",
                                                 "note": "仓库断货，无法按时发货"}},
                                   allow_unicode=True), encoding="utf-8")
    growing = inbox / "grow.yaml"
    lines = ["defaults: {reason: out_of_stock, note: 仓库断货，无法按时发货}", "orders:"]
    lines += [f'  - order_no: "{no}"' for no in shipped]

    with scheduler(workspace):
        # A line every 0.6 s: no 2-second window without a write, over two slots.
        with growing.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line + "\n")
                out.flush()
                time.sleep(0.6)
                assert growing.exists(), "grow.yaml was taken while still being written"
        _wait_for("grow.yaml in done/", (done / "grow.yaml").exists)

    report = json.loads((done / "grow.report.json").read_text(encoding="utf-8"))
    assert sorted(o["order_no"] for o in report["orders"]) == sorted(shipped)
    assert part.exists()
    assert sorted(p.name for p in done.iterdir()) == ["grow.log", "grow.report.json",
                                                      "grow.yaml"]


def test_a_second_scheduler_on_the_same_state_folder_refuses(workspace: Workspace) -> None:
    _use_inbox(workspace)
    first = RunningScheduler(workspace, "--max-runtime", "6")
    try:
        _wait_for("the scheduler to start", lambda: "scheduler started" in first.text)
        proc = workspace.dhbot("schedule", "--config", str(workspace.config), "--once",
                               check_code=4)
        assert f"pid {first.process.pid}" in proc.stderr
        assert "another dhbot schedule is running" in proc.stderr
        # --max-runtime ends the first one cleanly, by itself.
        assert first.process.wait(timeout=20) == 0, first.text
    finally:
        first.process.kill()
        first.process.wait()
    assert "--max-runtime reached" in first.text
    # The lock went with it: a new scheduler starts.
    workspace.dhbot("schedule", "--config", str(workspace.config), "--once", check_code=0)


def test_once_runs_the_inbox_and_exits(workspace: Workspace) -> None:
    inbox = _use_inbox(workspace)
    shipped = by_status(workspace.portal, "已发货")[0]
    _drop(workspace, inbox, "a.yaml", [{"order_no": shipped}])
    # Already older than the stability window, as a file dropped before a cron tick is.
    old = time.time() - 10
    os.utime(inbox / "a.yaml", (old, old))

    proc = workspace.dhbot("schedule", "--config", str(workspace.config), "--once",
                           check_code=0)

    done = inbox.parent / "done"
    assert (done / "a.yaml").exists() and list(inbox.iterdir()) == []
    report = json.loads((done / "a.report.json").read_text(encoding="utf-8"))
    assert report["orders"][0]["outcome"] == "not_cancellable"
    assert "finished a.yaml: exit 0 → done/a.yaml" in proc.stderr


def test_a_schedules_account_is_never_bypassed_by_an_inbox_job(workspace: Workspace) -> None:
    workspace.write_config(
        portal={"accounts": [
            {"name": "main", "username": "demo_seller", "password_env": "DHBOT_PASSWORD_MAIN"},
            {"name": "other", "username": "other_seller", "password_env": "DHBOT_PASSWORD_MAIN"},
        ]},
        schedules=[{"name": "inbox", "cron": EVERY_2_S, "inbox": "jobs/inbox",
                    "account": "main"}])
    inbox = workspace.root / "jobs" / "inbox"
    inbox.mkdir(parents=True)
    shipped = by_status(workspace.portal, "已发货")[0]
    _drop(workspace, inbox, "a.yaml", [{"order_no": shipped}], account="other")
    old = time.time() - 10
    os.utime(inbox / "a.yaml", (old, old))

    proc = workspace.dhbot("schedule", "--config", str(workspace.config), "--once")

    assert (inbox.parent / "failed" / "a.yaml").exists(), proc.stderr
    assert "--account main was chosen" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0


def test_once_says_which_jobs_stayed_in_the_inbox_and_why(workspace: Workspace) -> None:
    inbox = _use_inbox(workspace)
    _drop(workspace, inbox, "a.yaml", [{"order_no": by_status(workspace.portal, "已发货")[0]}])
    old = time.time() - 10
    os.utime(inbox / "a.yaml", (old, old))
    lock = workspace.account_lock()
    lock.acquire()
    try:
        proc = workspace.dhbot("schedule", "--config", str(workspace.config), "--once",
                               check_code=0)
    finally:
        lock.release()
    assert (inbox / "a.yaml").exists()
    assert "1 job(s) stayed in the inbox, to run at the next start: a.yaml" in proc.stderr
    assert "all runs succeeded" not in proc.stderr


def test_everything_dhbot_writes_is_private(workspace: Workspace) -> None:
    workspace.write_config(browser={"headless": True, "timeout_s": 5, "trace": "always"},
                           schedules=[{"name": "inbox", "cron": EVERY_2_S,
                                       "inbox": "jobs/inbox"}])
    inbox = workspace.root / "jobs" / "inbox"
    inbox.mkdir(parents=True)
    shipped = by_status(workspace.portal, "已发货", 2)
    workspace.dhbot("run", str(workspace.write_job([{"order_no": shipped[0]}])), check_code=0)
    _drop(workspace, inbox, "a.yaml", [{"order_no": shipped[1]}])
    old = time.time() - 10
    os.utime(inbox / "a.yaml", (old, old))
    workspace.dhbot("schedule", "--config", str(workspace.config), "--once", check_code=0)

    written = [p for top in ("state", "runs", "jobs/done")
               for p in (workspace.root / top).rglob("*") if p.suffix != ".yaml"]
    assert any(p.name == "ledger.sqlite" for p in written)
    assert any(p.suffix == ".log" for p in written) and any(p.suffix == ".zip" for p in written)
    loose = {str(p.relative_to(workspace.root)): oct(p.stat().st_mode & 0o777)
             for p in written if p.stat().st_mode & 0o077}
    assert loose == {}


def test_a_run_past_its_deadline_is_killed_and_its_job_filed_as_failed(
        workspace: Workspace) -> None:
    stuck = workspace.root / "stuck-chromium"
    stuck.write_text("#!/bin/sh\nexec sleep 600\n", encoding="utf-8")
    stuck.chmod(0o700)
    workspace.write_config(browser={"headless": True, "executable_path": str(stuck)},
                           run={"launch_timeout_s": 120},
                           schedules=[{"name": "inbox", "cron": EVERY_2_S,
                                       "inbox": "jobs/inbox", "max_minutes": 0.05,
                                       "grace_s": 2}])
    inbox = workspace.root / "jobs" / "inbox"
    inbox.mkdir(parents=True)
    _drop(workspace, inbox, "a.yaml", [{"order_no": by_status(workspace.portal, "已发货")[0]}])
    old = time.time() - 10
    os.utime(inbox / "a.yaml", (old, old))
    started = time.monotonic()
    proc = workspace.dhbot("schedule", "--config", str(workspace.config), "--once",
                           check_code=1, timeout=90)
    assert time.monotonic() - started < 60
    failed = inbox.parent / "failed"
    assert (failed / "a.yaml").exists()
    assert "past its deadline): killed" in (failed / "a.log").read_text(encoding="utf-8")
    assert "past its deadline): killed" in proc.stderr
