"""`dhbot health`: is the schedule running, can the ledger be reached, and does any order
wait for a person? For a monitoring probe (exit 0 or 1) and for people (one line each).

The scheduler records each slot it runs (even one that found an empty inbox or nothing to
sync) in `<state_dir>/schedule/slots.json`; that, not the ledger's runs, says when the
last scheduled run was, since a slot with nothing to do leaves no run in the ledger.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from bot.config import ScheduleConfig, Settings, cron_trigger
from bot.context import config_options, load_context
from bot.display import outcome_label, shown_time
from bot.errors import first_line
from bot.log import mask_url, redactor, write_private
from bot.outcomes import PERSON_OUTCOMES

# Without schedules, the ledger's last run may be this old (minutes).
DEFAULT_MAX_AGE_MIN = 60.0
# A schedule's slot may be this late (plus the schedule's max_minutes) before it is missed:
# tasks run one at a time, so a slot may wait for another schedule's run to end.
SLACK_MIN = 60.0
EXIT_UNHEALTHY = 1

HEALTH_EXIT_CODES = """Exit codes: 0 healthy ("ok"); 1 some problem, one line each: a
schedule's last slot is older than the allowed age (or it never ran), the ledger cannot be
reached, or orders wait for a person (failed, needs_review, rejected); 2 bad
configuration."""


def slots_file(settings: Settings) -> Path:
    """Where the scheduler records its slots."""
    return settings.paths.state_dir / "schedule" / "slots.json"


def record_slot(settings: Settings, name: str, started: datetime, ok: bool,
                finished: datetime | None = None) -> None:
    """Record that schedule `name` ran a slot (the scheduler calls this after each one)."""
    path = slots_file(settings)
    slots = read_slots(settings)
    slots[name] = {"started_at": started.astimezone(UTC).isoformat(timespec="seconds"),
                   "finished_at": (finished or datetime.now(UTC)).astimezone(UTC)
                   .isoformat(timespec="seconds"), "ok": ok}
    write_private(path, json.dumps(slots, indent=2).encode())


def read_slots(settings: Settings) -> dict[str, dict[str, Any]]:
    """Schedule name -> its last slot ({started_at, finished_at, ok}); {} when none ran."""
    try:
        data = json.loads(slots_file(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def allowed_age(schedule: ScheduleConfig, started: datetime, last: datetime) -> float:
    """Minutes the last sign of a schedule (`last`: its slot's end) may be old before the
    slot counts as missed: until the slot that follows the one `started` on its cron is
    more than 60 minutes plus the schedule's max_minutes overdue. A weekday-only schedule
    may thus rest over a weekend, not on a Tuesday."""
    # Slot starts are stored to the second, so the slot's own fire time is 1 s before.
    following = cron_trigger(schedule.cron).get_next_fire_time(
        None, started + timedelta(seconds=1))
    if following is None:  # a cron that never fires again (30 February): nothing is missed
        return float(sys.maxsize)
    late = following + timedelta(minutes=SLACK_MIN + schedule.max_minutes)
    return (late - last).total_seconds() / 60


@dataclass
class Check:
    """The age of a schedule's last slot (without schedules: of the ledger's last run)."""

    name: str  # the schedule's name; "(last run)" without schedules
    last_run_at: str | None
    age_minutes: float | None
    max_age_minutes: float
    ok: bool


@dataclass
class Health:
    """Everything `dhbot health` found; healthy when `problems` is empty."""

    problems: list[str] = field(default_factory=list)
    ledger_reachable: bool = True
    # account name -> outcome -> orders waiting for a person
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)
    schedules: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "exit_code": 0 if self.ok else EXIT_UNHEALTHY,
                "problems": self.problems, "ledger_reachable": self.ledger_reachable,
                "waiting_for_person": self.waiting,
                "schedules": [asdict(c) for c in self.schedules]}


def check_health(settings: Settings, max_age_minutes: float | None = None,
                 now: datetime | None = None) -> Health:
    """Look at the ledger and the scheduler's record; never raises for what it finds."""
    now = now or datetime.now(UTC)
    health = Health()
    last_run = _check_ledger(settings, health)
    if settings.schedules:
        slots = read_slots(settings)
        for schedule in settings.schedules:
            slot = slots.get(schedule.name) or {}
            last = max(filter(None, (slot.get("started_at"), slot.get("finished_at"))),
                       default=None)
            allowed = max_age_minutes or (
                allowed_age(schedule, datetime.fromisoformat(slot["started_at"]),
                            datetime.fromisoformat(last))
                if slot.get("started_at") and last else SLACK_MIN)
            _age(health, schedule.name, f"schedule {schedule.name}", last, allowed, now,
                 settings)
    else:
        _age(health, "(last run)", "last run", last_run, max_age_minutes or DEFAULT_MAX_AGE_MIN,
             now, settings)
    return health


def _check_ledger(settings: Settings, health: Health) -> str | None:
    """Orders waiting for a person, by account; returns when the last run began or ended."""
    from bot.ledger import existing_ledger  # SQLAlchemy: only when the command runs

    redactor.add_url(settings.ledger_url)
    portal = settings.portal
    names = {portal.key(a.name): a.name for a in portal.accounts}
    try:
        ledger = existing_ledger(settings)
        if ledger is None:  # a SQLite ledger no run has created yet
            return None
        try:
            rows = ledger.rows(outcomes=PERSON_OUTCOMES)
            runs = ledger.runs(1)
        finally:
            ledger.close()
    except Exception as exc:  # unreachable, refused, not a database: the problem itself
        health.ledger_reachable = False
        health.problems.append(f"the ledger cannot be reached ({mask_url(settings.ledger_url)})"
                               f": {redactor.redact(first_line(exc))}")
        return None
    for row in rows:
        if row.outcome is None:
            continue
        per = health.waiting.setdefault(names.get(row.account, row.account), {})
        per[row.outcome.value] = per.get(row.outcome.value, 0) + 1
    for account, counts in sorted(health.waiting.items()):
        said = ", ".join(f"{outcome_label(k)} {v}" for k, v in sorted(counts.items()))
        health.problems.append(f"account {account}: {sum(counts.values())} order(s) wait for "
                               f"a person (需要处理): {said}; see `dhbot status`")
    if not runs:
        return None
    return max(filter(None, (runs[0].started_at, runs[0].finished_at)))


def _age(health: Health, name: str, what: str, last: str | None, allowed: float,
         now: datetime, settings: Settings) -> None:
    """Check that `last` (a stored UTC time) is at most `allowed` minutes old."""
    allowed = round(allowed, 1)
    if last is None:
        health.schedules.append(Check(name, None, None, allowed, False))
        health.problems.append(f"{what}: has not run yet" + (
            f" (no slot recorded in {slots_file(settings)})" if what != "last run"
            else " (the ledger has no run)"))
        return
    age = (now - datetime.fromisoformat(last)).total_seconds() / 60
    ok = age <= allowed
    health.schedules.append(Check(name, last, round(age, 1), allowed, ok))
    if not ok:
        zone = settings.display.timezone
        health.problems.append(f"{what}: last ran {shown_time(last, zone)} ({zone}), "
                               f"{age:.0f} min ago, more than the allowed {allowed:g} min")


@click.command(name="health", epilog=HEALTH_EXIT_CODES,
               context_settings={"help_option_names": ["-h", "--help"],
                                 "max_content_width": 100})
@config_options
@click.option("--max-age-minutes", type=click.FloatRange(min=0, min_open=True),
              help="The last scheduled slot may be this old. Default, per schedule: until "
                   "the slot after it on its cron is 60 min plus the schedule's max_minutes "
                   "late. Without schedules the ledger's last run is checked (default 60).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def health_command(config_file: Path | None, verbose: bool, max_age_minutes: float | None,
                   as_json: bool) -> None:
    """Check the schedule, the ledger and the orders waiting for a person (exit 0 or 1)."""
    loaded = load_context(config_file, None, verbose).loaded
    health = check_health(loaded.settings, max_age_minutes)
    if as_json:
        click.echo(json.dumps(health.to_json(), ensure_ascii=False, indent=2))
    else:
        for line in health.problems or ["ok"]:
            click.echo(line)
    sys.exit(0 if health.ok else EXIT_UNHEALTHY)
