"""`dhbot health`: the schedule's last slot, the ledger, and orders waiting for a person."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Settings, cron_trigger, load_settings
from bot.health import check_health, record_slot
from bot.outcomes import Outcome
from tests.bot.conftest import Workspace

REPO = Path(__file__).resolve().parents[2]
EVERY_15_MIN = "*/15 * * * *"


def settings(workspace: Workspace) -> Settings:
    return load_settings(workspace.config, {}, workspace.env).settings


def with_schedule(workspace: Workspace, cron: str = EVERY_15_MIN) -> Settings:
    workspace.write_config(schedules=[{"name": "inbox", "cron": cron,
                                       "inbox": "jobs/inbox"}])
    return settings(workspace)


def record_orders(workspace: Workspace, outcomes: dict[str, Outcome]) -> None:
    """Orders in the ledger with these outcomes, as a run would record them."""
    from bot.ledger import open_ledger

    s = settings(workspace)
    key = s.portal.key("main")
    ledger = open_ledger(s)
    try:
        ledger.start_run("r1", "job.yaml", workspace.root / "runs" / "r1")
        ledger.plan("r1", key, [(no, "out_of_stock", "") for no in outcomes])
        for no, outcome in outcomes.items():
            ledger.record_result("r1", key, no, outcome, status_before="待发货",
                                 status_after=None, attempts=1, error="why")
        ledger.finish_run("r1", {})
    finally:
        ledger.close()


def last_fire(cron: str, before: datetime) -> datetime:
    """The schedule's last slot at or before `before` (found by its own trigger)."""
    trigger = cron_trigger(cron)
    fire = trigger.get_next_fire_time(None, before - timedelta(days=2))
    while True:
        following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if following > before:
            return fire.astimezone(UTC)
        fire = following


def test_a_fresh_slot_and_nothing_waiting_is_ok(workspace: Workspace) -> None:
    s = with_schedule(workspace)
    record_orders(workspace, {"1000000001": Outcome.CANCELLED,
                              "1000000002": Outcome.NOT_FOUND})
    fired = last_fire(EVERY_15_MIN, datetime.now(UTC) - timedelta(minutes=5))
    record_slot(s, "inbox", fired, ok=True, finished=fired + timedelta(minutes=1))

    proc = workspace.cli("health", check_code=0)
    assert proc.stdout == "ok\n"

    data = json.loads(workspace.cli("health", "--json", check_code=0).stdout)
    assert data["ok"] is True and data["problems"] == [] and data["ledger_reachable"] is True
    assert data["waiting_for_person"] == {}
    [inbox] = data["schedules"]
    assert inbox["name"] == "inbox" and inbox["ok"] is True
    assert 4 <= inbox["age_minutes"] <= 20
    # Until the next slot (15 min after it began) is 60 min late; counted from its end.
    assert inbox["max_age_minutes"] == 15 + 60 - 1


def test_a_missed_slot_is_a_problem_unless_the_age_allows_it(workspace: Workspace) -> None:
    s = with_schedule(workspace)
    fired = last_fire(EVERY_15_MIN, datetime.now(UTC) - timedelta(hours=3))
    record_slot(s, "inbox", fired, ok=True, finished=fired + timedelta(minutes=1))

    proc = workspace.cli("health", check_code=1)
    [line] = proc.stdout.splitlines()
    assert line.startswith("schedule inbox: last ran ")
    assert "+08:00 (Asia/Shanghai), " in line and "more than the allowed 74 min" in line

    assert workspace.cli("health", "--max-age-minutes", "240", check_code=0).stdout == "ok\n"
    assert "more than the allowed 120 min" in workspace.cli(
        "health", "--max-age-minutes", "120", check_code=1).stdout


def test_a_schedule_that_never_ran_is_a_problem(workspace: Workspace) -> None:
    with_schedule(workspace)
    proc = workspace.cli("health", check_code=1)
    assert proc.stdout.startswith("schedule inbox: has not run yet (no slot recorded in ")


def test_a_weekday_schedule_may_rest_over_the_weekend_but_not_on_a_tuesday(
        workspace: Workspace) -> None:
    # Day names: APScheduler 3 reads crontab's day numbers from Monday = 0 (its issue #455).
    s = with_schedule(workspace, "0 9 * * mon-fri")
    trigger = cron_trigger("0 9 * * mon-fri")
    # A Friday's slot (found by the trigger itself, in the machine's time zone).
    friday = datetime(2026, 11, 27, tzinfo=UTC)
    assert friday.weekday() == 4
    fired = trigger.get_next_fire_time(None, friday)
    record_slot(s, "inbox", fired, ok=True, finished=fired + timedelta(minutes=2))

    sunday = check_health(s, now=fired + timedelta(days=2))
    assert sunday.ok, sunday.problems
    tuesday = check_health(s, now=fired + timedelta(days=4))
    assert not tuesday.ok
    assert tuesday.problems[0].startswith("schedule inbox: last ran ")


def test_orders_waiting_for_a_person_are_a_problem_per_account(workspace: Workspace) -> None:
    with_schedule(workspace)
    record_slot(settings(workspace), "inbox", datetime.now(UTC), ok=True)
    record_orders(workspace, {"1000000001": Outcome.FAILED, "1000000002": Outcome.REJECTED,
                              "1000000003": Outcome.NEEDS_REVIEW,
                              "1000000004": Outcome.FAILED,
                              "1000000005": Outcome.CANCELLED})

    proc = workspace.cli("health", check_code=1)
    assert proc.stdout.splitlines() == [
        "account main: 4 order(s) wait for a person (需要处理): 失败 failed 2, 待人工处理 "
        "needs_review 1, 平台驳回 rejected 1; see `dhbot status`"]
    data = json.loads(workspace.cli("health", "--json", check_code=1).stdout)
    assert data["waiting_for_person"] == {"main": {"failed": 2, "needs_review": 1,
                                                   "rejected": 1}}
    assert data["exit_code"] == 1 and data["ok"] is False


def test_a_ledger_that_cannot_be_read_is_a_problem(workspace: Workspace) -> None:
    with_schedule(workspace)
    record_slot(settings(workspace), "inbox", datetime.now(UTC), ok=True)
    (workspace.root / "state" / "ledger.sqlite").write_bytes(b"not a database at all" * 100)

    proc = workspace.cli("health", check_code=1)
    [line] = proc.stdout.splitlines()
    assert line.startswith("the ledger cannot be reached (sqlite:///")
    data = json.loads(workspace.cli("health", "--json", check_code=1).stdout)
    assert data["ledger_reachable"] is False


def test_without_schedules_the_ledgers_last_run_counts(workspace: Workspace) -> None:
    proc = workspace.cli("health", check_code=1)
    assert proc.stdout == "last run: has not run yet (the ledger has no run)\n"
    record_orders(workspace, {"1000000001": Outcome.CANCELLED})
    assert workspace.cli("health", check_code=0).stdout == "ok\n"


def test_the_scheduler_records_every_slot_even_an_empty_one(workspace: Workspace) -> None:
    from bot.schedule import Scheduler

    with_schedule(workspace)
    assert workspace.cli("health", check_code=1).stdout.startswith("schedule inbox: has not")
    loaded = load_settings(workspace.config, {}, workspace.env)
    assert Scheduler(loaded, stable_s=0.0).run_once() is True  # an empty inbox
    assert workspace.cli("health", check_code=0).stdout == "ok\n"


def test_health_is_listed_and_starts_without_the_database_layer(tmp_path: Path) -> None:
    probe = ("import json, sys\nfrom click.testing import CliRunner\nfrom bot.cli import cli\n"
             "out = [CliRunner().invoke(cli, a).output for a in (['--help'], "
             "['health', '--help'])]\n"
             "print(json.dumps({'out': out, 'heavy': sorted({m.split('.')[0] for m in "
             "sys.modules} & {'sqlalchemy', 'playwright', 'celery', 'apprise', "
             "'prometheus_client'})}))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(REPO),
                                                      "PATH": "/usr/bin:/bin"})
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["heavy"] == []
    top, health = seen["out"]
    assert "health    Check the schedule, the ledger and orders waiting for a person." in top
    assert "--max-age-minutes" in health and "Exit codes: 0 healthy" in health
