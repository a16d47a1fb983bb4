"""`dhbot schedule`: a long-lived process that runs the configured schedules on their crons.

Each task runs the real CLI in a subprocess (`dhbot run` for an inbox of job files, `dhbot
sync`), so a crash, a hung browser or a leak in one run can never take the scheduler down,
and every run behaves exactly as it does when an operator types it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click
from loguru import logger

from bot.alerts import after_slot, after_unreported_job
from bot.config import LoadedSettings, ScheduleConfig, cron_trigger
from bot.context import config_options, load_context
from bot.errors import ConfigError
from bot.lock import SchedulerLock

# A job file is taken only once its size and mtime have stood still this long.
STABLE_S = 2.0
JOB_SUFFIXES = (".yaml", ".yml")
# Names a writer uses while the file is incomplete; never picked up.
PARTIAL_SUFFIXES = (".part", ".tmp")
# `dhbot run` exit codes that mean "nothing was decided, try again later": the job stays put.
EXIT_ACCOUNT_BUSY = 4
EXIT_INTERRUPTED = 130
# A child killed past its deadline (a shell reports -9 as 137).
EXIT_KILLED = 137
# After SIGTERM (and then SIGKILL), how long to wait for a killed child to end.
KILL_WAIT_S = 15.0
# `dhbot run` asks for confirmation on a terminal; nobody is there to answer.
RUN_CONFIRM_FLAGS: tuple[str, ...] = ("--yes",)


class Disposition(Enum):
    """Where a job file went after its run."""

    DONE = "done"
    FAILED = "failed"
    LEFT = "left in the inbox"


@dataclass(frozen=True)
class JobRun:
    """The result of running one job file from an inbox."""

    schedule: str
    job_file: Path
    exit_code: int
    disposition: Disposition
    moved_to: Path | None


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def inbox_candidates(inbox: Path) -> list[Path]:
    """Job files in `inbox` by name, without hidden files or half-written `.part`/`.tmp` ones."""
    if not inbox.is_dir():
        return []
    return sorted(
        p for p in inbox.iterdir()
        if not p.name.startswith(".")
        and not p.name.endswith(PARTIAL_SUFFIXES)
        and p.name.endswith(JOB_SUFFIXES)
        and p.is_file()
    )


def _free_stem(folder: Path, stem: str, suffixes: Sequence[str]) -> str:
    """`stem`, or `stem-<timestamp>[-n]` when any of `stem + suffix` already exists."""
    def taken(candidate: str) -> bool:
        return any((folder / f"{candidate}{s}").exists() for s in suffixes)

    if not taken(stem):
        return stem
    base = f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _gist(output: Path) -> str:
    """The line of a run's output that says what went wrong: its last `error:`, or last line."""
    try:
        lines = [ln.strip() for ln in output.read_text(encoding="utf-8", errors="replace")
                 .splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines or [""])[-1]


class _ToLoguru(logging.Handler):
    """APScheduler logs through `logging`; send it to loguru with everything else."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        if "maximum number of running instances" in record.getMessage():
            level = "DEBUG"  # said better by Scheduler._on_skipped
        logger.opt(exception=record.exc_info).log(level, "apscheduler: {}", record.getMessage())


class Scheduler:
    """Runs the configured schedules: inbox folders of job files and `dhbot sync`.

    Tasks run one at a time (a single worker), so two schedules never fight over an account;
    a slot that comes while its own task is still running is skipped (max_instances=1), and
    slots missed while busy collapse into one run (coalesce).
    """

    def __init__(self, loaded: LoadedSettings, *, python: str = sys.executable,
                 stable_s: float = STABLE_S) -> None:
        self.loaded = loaded
        self.settings = loaded.settings
        self.python = python
        self.stable_s = stable_s
        self.config_file = loaded.config_file.resolve() if loaded.config_file else None
        self._stop = threading.Event()
        self._children_lock = threading.RLock()  # re-entrant: a second signal may interrupt
        self._children: set[subprocess.Popen[bytes]] = set()
        self.failures = 0
        self.killed: str | None = None  # why the last child was killed, if it was
        self.left: list[str] = []  # job files left in an inbox (account busy), with why
        self.signals: list[int] = []

    # -- stopping ---------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for: no new work starts."""
        return self._stop.is_set()

    def request_stop(self, signum: int | None = None) -> None:
        """Take no new work; pass `signum` on to running children so they write their report.

        Safe in a signal handler: it logs nothing (loguru's lock may be held by the very
        code the signal interrupted) and takes only a re-entrant lock.
        """
        if signum is not None:
            self.signals.append(signum)
        self._stop.set()
        if signum is None:
            return
        with self._children_lock:
            children = list(self._children)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop(signum)

    def _stop_reason(self) -> str:
        if self.signals:
            return f"{signal.Signals(self.signals[0]).name} received"
        return "stop requested"

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the scheduler cleanly (main thread only)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    # -- running ----------------------------------------------------------------------------

    def _cli(self, *args: str) -> list[str]:
        cmd = [self.python, "-m", "bot.cli", *args]
        if self.config_file is not None:
            cmd += ["--config", str(self.config_file)]
        return cmd

    def _spawn(self, cmd: list[str], output: IO[bytes] | None,
               limit_s: float = 0.0) -> int | None:
        """Run `cmd` to its end and return its exit code; None when stopping before it began.

        With `limit_s`, a child still running that long after it started is stopped (SIGTERM
        to its session, then SIGKILL) and EXIT_KILLED returned; the reason is in `killed`.
        """
        with self._children_lock:
            # Checked under the lock, so a signal either finds the child or prevents it.
            if self.stopping:
                return None
            # A session of its own: a terminal's Ctrl-C reaches only the scheduler, which
            # forwards it once, instead of hitting the child before its handlers are in place.
            child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT if output else None,
                                     start_new_session=True)
            self._children.add(child)
        self.killed = None
        try:
            try:
                code = child.wait(timeout=limit_s or None)
            except subprocess.TimeoutExpired:
                self.killed = (f"still running {limit_s / 60:g} min after it started (past its "
                               "deadline): killed")
                logger.error("pid {}: {}", child.pid, self.killed)
                code = self._kill(child)
        finally:
            with self._children_lock:
                self._children.discard(child)
        if self.signals:
            logger.info("{}: passed it on to pid {}, which exited {}", self._stop_reason(),
                        child.pid, code)
        return code

    @staticmethod
    def _kill(child: subprocess.Popen[bytes]) -> int:
        """Stop a child past its deadline: SIGTERM to its session, SIGKILL if it lingers."""
        for sig, wait_s in ((signal.SIGTERM, KILL_WAIT_S), (signal.SIGKILL, KILL_WAIT_S)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
            try:
                child.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        return EXIT_KILLED

    def run_task(self, schedule: ScheduleConfig) -> bool:
        """Run one slot of `schedule`; True when everything it ran succeeded. Never raises."""
        if self.stopping:
            return True
        started = time.time()
        try:
            if schedule.inbox is not None:
                runs = self.run_inbox(schedule)
                ok = all(r.disposition is not Disposition.FAILED for r in runs)
            else:
                ok = self.run_sync(schedule)
        except Exception:
            logger.exception("[{}] the task crashed; the next slot runs as usual", schedule.name)
            ok = False
        if not ok:
            self.failures += 1
        after_slot(self.loaded, schedule.name, started, ok)  # for `dhbot health`
        return ok

    def run_sync(self, schedule: ScheduleConfig) -> bool:
        """Run `dhbot sync` once; a non-zero exit is logged as a failed run."""
        cmd = self._cli("sync")
        if schedule.account:
            cmd += ["--account", schedule.account]
        logger.info("[{}] sync: start", schedule.name)
        code = self._spawn(cmd, None)
        if code is None:
            return True
        log = logger.info if code == 0 else logger.error
        log("[{}] sync: finished, exit {}", schedule.name, code)
        return code == 0

    def stable_files(self, inbox: Path) -> list[Path]:
        """Candidates whose size and mtime stood still for `stable_s` (checked twice)."""
        first = {p: _signature(p) for p in inbox_candidates(inbox)}
        if not first:
            return []
        # The stop event doubles as an interruptible sleep.
        if self._stop.wait(self.stable_s):
            return []
        now_ns = time.time_ns()
        stable = []
        for path, sig in first.items():
            again = _signature(path)
            if sig is None or again != sig:
                logger.debug("{} is still being written; next slot", path.name)
                continue
            # Coarse file system clocks: also demand the last write be old enough.
            if now_ns - again[1] < self.stable_s * 1e9:
                logger.debug("{} changed too recently; next slot", path.name)
                continue
            stable.append(path)
        return stable

    def run_inbox(self, schedule: ScheduleConfig) -> list[JobRun]:
        """Run every finished job file in the schedule's inbox, oldest name first."""
        assert schedule.inbox is not None
        inbox = schedule.inbox
        inbox.mkdir(parents=True, exist_ok=True)
        runs = []
        for job_file in self.stable_files(inbox):
            if self.stopping:
                break
            result = self.run_job_file(schedule, job_file)
            if result is not None:
                runs.append(result)
        return runs

    def run_job_file(self, schedule: ScheduleConfig, job_file: Path) -> JobRun | None:
        """Run one job file with `dhbot run` (or hand it to workers with `dhbot submit`) and
        file it under done/ or failed/."""
        assert schedule.inbox is not None
        name = schedule.name
        work_root = self.settings.paths.state_dir / "schedule"
        work_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="run-", dir=work_root) as tmp:
            report = Path(tmp) / "report.json"
            output = Path(tmp) / "output.log"
            cmd = self._cli("submit" if schedule.submit else "run", str(job_file))
            cmd += ["--report", str(report), *RUN_CONFIRM_FLAGS]
            if schedule.account:
                cmd += ["--account", schedule.account]
            limit_s = 0.0
            if schedule.max_minutes:
                if not schedule.submit:
                    cmd += ["--deadline", f"{schedule.max_minutes:g}"]
                limit_s = schedule.max_minutes * 60 + schedule.grace_s
            logger.info("[{}] start {}", name, job_file.name)
            with output.open("wb") as out:
                code = self._spawn(cmd, out, limit_s)
                if self.killed:
                    out.write(f"\ndhbot schedule: {self.killed}\n".encode())
            if code is None:
                return None
            if self.stopping and (code == EXIT_INTERRUPTED or code < 0):
                # Stopped by us (code < 0: killed by the signal before its handlers were in
                # place). The ledger makes a rerun exactly-once, so the next start finishes
                # the job instead of leaving it for a person to requeue.
                logger.warning("[{}] {}: exit {} (interrupted), {}; it resumes at the next "
                               "start", name, job_file.name, code, Disposition.LEFT.value)
                return JobRun(name, job_file, code, Disposition.LEFT, None)
            gist = _gist(output) or "no output"
            if code == EXIT_ACCOUNT_BUSY:
                logger.warning("[{}] {}: exit {} ({}), {}; retried at the next slot", name,
                               job_file.name, code, gist, Disposition.LEFT.value)
                self.left.append(f"{job_file.name} ({gist})")
                return JobRun(name, job_file, code, Disposition.LEFT, None)
            disposition = Disposition.DONE if code == 0 else Disposition.FAILED
            after_unreported_job(self.loaded, name, job_file, code, output, report)
            dest = self._file_away(job_file, disposition, report, output)
            where = f"{dest.parent.name}/{dest.name}"
            if code == 0:
                logger.info("[{}] finished {}: exit 0 → {}", name, job_file.name, where)
            else:
                logger.error("[{}] finished {}: exit {} → {} ({})", name, job_file.name, code,
                             where, gist)
            return JobRun(name, job_file, code, disposition, dest)

    def _file_away(self, job_file: Path, disposition: Disposition, report: Path,
                   output: Path) -> Path:
        """Move the job, its report and its log to `<inbox>/../done|failed/`; never overwrite."""
        folder = job_file.parent.parent / disposition.value
        folder.mkdir(parents=True, exist_ok=True)
        stem = _free_stem(folder, job_file.stem, (job_file.suffix, ".report.json", ".log"))
        if report.exists():
            shutil.move(report, folder / f"{stem}.report.json")
        shutil.move(output, folder / f"{stem}.log")
        # Last: once the job file leaves the inbox its companions are already in place.
        dest = folder / f"{stem}{job_file.suffix}"
        shutil.move(job_file, dest)  # os.rename on one file system: atomic
        return dest

    def run_once(self) -> bool:
        """Run every schedule's task once, in configuration order; True when all succeeded."""
        ok = True
        for schedule in self.settings.schedules:
            if self.stopping:
                break
            ok = self.run_task(schedule) and ok
        return ok

    def _on_skipped(self, event: Any) -> None:
        logger.info("[{}] still running at its next slot: slot skipped", event.job_id)

    def run_forever(self, max_runtime: float | None = None) -> None:
        """Run the schedules on their crons until a signal or `max_runtime` seconds pass."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        for schedule in self.settings.schedules:
            scheduler.add_job(self.run_task, cron_trigger(schedule.cron), args=[schedule],
                              id=schedule.name, name=schedule.name)
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        for job in scheduler.get_jobs():
            logger.info("[{}] next run at {}", job.name,
                        job.next_run_time.isoformat(timespec="seconds"))
        deadline = None if max_runtime is None else time.monotonic() + max_runtime
        try:
            while not self._stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    logger.info("--max-runtime reached: taking no new work")
                    self._stop.set()
                    break
                self._stop.wait(1.0 if left is None else min(1.0, left))
            if self.signals:
                logger.warning("{}: taking no new work, waiting for the running task",
                               self._stop_reason())
        finally:
            # Waits for the running task; queued ones see the stop flag and return at once.
            scheduler.shutdown(wait=True)


def _route_apscheduler_logs(verbose: bool) -> None:
    log = logging.getLogger("apscheduler")
    log.handlers[:] = [_ToLoguru()]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False


SCHEDULE_EXIT_CODES = """Exit codes: 0 stopped cleanly (SIGINT/SIGTERM, --max-runtime, or
--once with every run successful); 1 --once and some run failed; 2 bad configuration or no
schedules; 4 another scheduler holds the state folder."""


@click.command(name="schedule", epilog=SCHEDULE_EXIT_CODES,
               context_settings={"help_option_names": ["-h", "--help"],
                                 "max_content_width": 100})
@config_options
@click.option("--once", is_flag=True,
              help="Run every schedule's task once now and exit (for plain cron and tests).")
@click.option("--max-runtime", type=click.FloatRange(min=0, min_open=True), hidden=True,
              help="Stop cleanly after this many seconds (tests).")
def schedule_command(config_file: Path | None, verbose: bool, once: bool,
                     max_runtime: float | None) -> None:
    """Run the configured schedules in the foreground until stopped.

    Each entry of `schedules:` runs on its own cron (five fields, or six with seconds first):

    \b
      schedules:
        - name: inbox
          cron: "*/15 * * * *"
          inbox: jobs/inbox      # relative to the config file's folder
          account: main          # optional
        - name: follow-up
          cron: "0 * * * *"
          sync: true

    Inbox: every *.yaml / *.yml file in the folder (by name; hidden, *.part and *.tmp files
    are skipped) whose size and mtime stood still for 2 seconds is run with `dhbot run FILE
    --yes`. Exit 0 moves it to ../done/, any other exit to ../failed/, next to its report
    (NAME.report.json) and the run's output (NAME.log); a name already there gets a
    timestamp suffix, nothing is overwritten. Write a job as NAME.yaml.part and rename it to
    NAME.yaml once complete, so it is never seen half-written. Exit 4 (account busy) leaves
    the file in the inbox for the next slot.

    Sync: runs `dhbot sync`; a non-zero exit is logged as a failed run.

    Tasks run one at a time. A slot that comes while its task still runs is skipped, and a
    failing run never stops the scheduler. One scheduler per state folder: a second one
    exits with 4.

    SIGINT/SIGTERM: no new work starts; the running `dhbot run` gets the signal, finishes
    its orders in flight and writes its report; then the scheduler exits 0. The interrupted
    job stays in the inbox and resumes at the next start (the ledger never cancels an order
    twice).

    Under systemd (or a container: `docker run --init`, `docker stop -t 120`), run it as a
    service in the foreground; it logs to stderr, i.e. the journal:

    \b
      [Service]
      ExecStart=/srv/dhbot/.venv/bin/dhbot schedule --config /srv/dhbot/config.yaml
      EnvironmentFile=/etc/dhbot/secrets   # DHBOT_PASSWORD_MAIN=..., chmod 600
      Restart=on-failure
      RestartPreventExitStatus=2 4
      KillMode=mixed                       # SIGTERM to the scheduler, which forwards it
      TimeoutStopSec=120

    With plain cron instead, let crontab decide when and run every task once (the cron:
    fields are then ignored; an overlapping --once exits 4 at once, doing nothing):

    \b
      */15 * * * * cd /srv/dhbot && .venv/bin/dhbot schedule --once >>schedule.log 2>&1
    """
    loaded = load_context(config_file, None, verbose).loaded  # the profile is checked too
    _route_apscheduler_logs(verbose)
    settings = loaded.settings
    if not settings.schedules:
        where = loaded.config_file or "the configuration"
        raise ConfigError(f"{where}: no schedules; add a `schedules:` list, e.g. "
                          "- {name: inbox, cron: '*/15 * * * *', inbox: jobs/inbox}")
    scheduler = Scheduler(loaded)
    with SchedulerLock(settings.paths.state_dir):
        scheduler.install_signal_handlers()
        names = ", ".join(f"{s.name} ({s.cron})" for s in settings.schedules)
        logger.info("scheduler started (pid {}): {}", os.getpid(), names)
        if once:
            ok = scheduler.run_once()
            if scheduler.left:
                logger.warning("scheduler finished: {} job(s) stayed in the inbox, to run at "
                               "the next start: {}", len(scheduler.left),
                               "; ".join(scheduler.left))
            logger.info("scheduler finished: {}", (
                f"{scheduler.failures} task(s) had failures" if not ok
                else "every job it ran succeeded" if scheduler.left
                else "all runs succeeded"))
            if not ok:
                sys.exit(1)
            return
        scheduler.run_forever(max_runtime)
        logger.info("scheduler stopped")

