"""The console's background work: each job's dry run, then its run, as the CLI does them
(`dhbot run`, or `dhbot submit` to the workers), in a child process per piece of work, one
at a time per account. A request never waits for a browser: it records what it wants and
returns; the page follows the run by its id (its log.jsonl, or the parts of a distributed
run in the ledger)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loguru import logger

from bot.config import LoadedSettings
from bot.console.store import BUSY_STATES, ConsoleJob, ConsoleStore, JobState
from bot.errors import AccountBusy, Interrupted, LoginNeedsPerson, UsageError, first_line
from bot.ledger import Ledger
from bot.report import load_report

# A child still running this long after SIGTERM (it finishes the orders in flight and writes
# its report first) is killed.
STOP_WAIT_S = 60.0


@dataclass(frozen=True)
class Landed:
    """One order's outcome as it landed during a run."""

    order_no: str
    outcome: str
    at: str


def job_folder(loaded: LoadedSettings, job_id: str) -> Path:
    """Where the console keeps a job's upload, job file and the logs of its work."""
    return loaded.settings.paths.state_dir / "console" / "jobs" / job_id


def report_of(loaded: LoadedSettings, run_id: str | None) -> dict[str, object] | None:
    """A run's report.json, or None while it has none."""
    if not run_id:
        return None
    path = loaded.settings.paths.runs_dir / run_id / "report.json"
    try:
        return load_report(path)
    except (OSError, ValueError):
        return None


def landed(loaded: LoadedSettings, ledger: Ledger, run_id: str) -> list[Landed]:
    """The orders of a run that have an outcome so far, in the order they landed: from the
    run's log (every outcome is logged with its order, dry runs included), or for a
    distributed run from its finished parts."""
    path = loaded.settings.paths.runs_dir / run_id / "log.jsonl"
    found: list[Landed] = []
    row = ledger.run(run_id)
    # A distributed run's orders are logged by workers, on any machine: its parts say.
    if path.exists() and (row is None or row.mode != "distributed"):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    record = json.loads(line)["record"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line still being written
                extra = record.get("extra") or {}
                if "outcome" in extra and "order_no" in extra:
                    found.append(Landed(str(extra["order_no"]), str(extra["outcome"]),
                                        str(record.get("time", {}).get("repr", ""))))
        return found
    for part in ledger.parts(run_id):
        for result in part.results or []:
            found.append(Landed(str(result["order_no"]), str(result["outcome"]),
                                str(result.get("finished_at") or "")))
    return found


class Conductor:
    """Starts and watches the console's background work; stops it with the console."""

    def __init__(self, loaded: LoadedSettings, store: ConsoleStore, *,
                 python: str = sys.executable) -> None:
        self.loaded = loaded
        self.settings = loaded.settings
        self.store = store
        self.python = python
        self.config_file = loaded.config_file.resolve() if loaded.config_file else None
        self._guard = threading.Lock()
        self._accounts: dict[str, threading.Lock] = {}
        self._children: set[subprocess.Popen[bytes]] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()

    # -- what the pages ask for -------------------------------------------------------------

    def preview(self, job: ConsoleJob, run_id: str) -> None:
        """Start the job's dry run (the job is previewing, with `run_id` as preview_run)."""
        self._thread(f"preview {job.job_id}", self._preview, job, run_id,
                     on_crash=(job.job_id, JobState.PREVIEW_FAILED))

    def run(self, job: ConsoleJob, run_id: str) -> None:
        """Start the job's run (the job is queued, with `run_id` as run_id)."""
        self._thread(f"run {job.job_id}", self._run, job, run_id,
                     on_crash=(job.job_id, JobState.INTERRUPTED))

    def close(self) -> None:
        """Start nothing more; SIGTERM the children (each finishes its orders in flight and
        writes its report) and wait for them."""
        self._stopping.set()
        with self._guard:
            children = list(self._children)
            threads = list(self._threads)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for thread in threads:
            thread.join(STOP_WAIT_S + 10)

    @property
    def busy(self) -> int:
        """Pieces of work under way."""
        with self._guard:
            return len(self._threads)

    # -- the work ---------------------------------------------------------------------------

    def _thread(self, name: str, target: object, *args: object,
                on_crash: tuple[str, JobState]) -> None:
        """Run `target` in a thread; if it crashes, its job is not left looking busy."""
        if self._stopping.is_set():
            raise UsageError("the console is stopping; nothing new starts")

        def body() -> None:
            try:
                target(*args)  # type: ignore[operator]
            except Exception as exc:
                logger.exception("console: {} crashed", name)
                job_id, to = on_crash
                self.store.move(job_id, BUSY_STATES, to,
                                error=f"内部错误 / internal error: {first_line(exc)}; see the "
                                      "console's log, then start again")
            finally:
                with self._guard:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=body, name=name, daemon=True)
        with self._guard:
            self._threads.add(thread)
        thread.start()

    @contextlib.contextmanager
    def _account(self, account: str) -> Iterator[None]:
        """One piece of console work per account at a time (a run from elsewhere still
        finds the account's own lock taken and exits 4)."""
        with self._guard:
            lock = self._accounts.setdefault(account, threading.Lock())
        with lock:
            yield

    def _command(self, job: ConsoleJob, run_id: str, dry_run: bool) -> list[str]:
        assert job.job_file and job.account
        workers = self.settings.console.run_with == "workers" and not dry_run
        cmd = [self.python, "-m", "bot.cli", "submit" if workers else "run", job.job_file,
               "--account", job.account, "--yes", "--run-id", run_id]
        if dry_run:
            cmd.append("--dry-run")
        if job.orders > self.settings.max_orders_per_run and (
                dry_run or job.decision == "approved"):
            # A dry run submits nothing; a second person's approval stands in for the flag.
            # A large job started without one is refused by the run, as on the command line.
            cmd.append("--allow-large")
        if self.config_file is not None:
            cmd += ["--config", str(self.config_file)]
        return cmd

    def _spawn(self, cmd: list[str], output: IO[bytes]) -> int:
        with self._guard:
            if self._stopping.is_set():
                return Interrupted.exit_code
            # A session of its own: the console's Ctrl-C reaches the child once, from close().
            child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "NO_COLOR": "1"})
            self._children.add(child)
        try:
            while True:
                try:
                    return child.wait(timeout=STOP_WAIT_S if self._stopping.is_set() else 1.0)
                except subprocess.TimeoutExpired:
                    if self._stopping.is_set() and child.poll() is None:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(child.pid, signal.SIGKILL)
        finally:
            with self._guard:
                self._children.discard(child)

    def _log(self, job: ConsoleJob, name: str) -> IO[bytes]:
        folder = job_folder(self.loaded, job.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")

    def _preview(self, job: ConsoleJob, run_id: str) -> None:
        assert job.account
        with self._account(job.account), self._log(job, "preview.log") as out:
            code = self._spawn(self._command(job, run_id, dry_run=True), out)
        report = report_of(self.loaded, run_id)
        threshold = self.settings.console.approval_threshold
        if report is not None and code in (0, 1):
            to = (JobState.AWAITING_APPROVAL if job.needs_approval(threshold)
                  else JobState.READY)
            self.store.move(job.job_id, [JobState.PREVIEWING], to, exit_code=code)
            self.store.audit(job.job_id, None, "previewed", {"run_id": run_id,
                                                               "exit_code": code})
            return
        why = _why(code, job.account, report)
        self.store.move(job.job_id, [JobState.PREVIEWING], JobState.PREVIEW_FAILED,
                        exit_code=code, error=why)
        self.store.audit(job.job_id, None, "preview_failed", {"run_id": run_id,
                                                              "exit_code": code, "why": why})

    def _run(self, job: ConsoleJob, run_id: str) -> None:
        assert job.account
        with self._account(job.account):
            if not self.store.move(job.job_id, [JobState.QUEUED], JobState.RUNNING):
                return
            self.store.audit(job.job_id, None, "run_started", {"run_id": run_id})
            with self._log(job, "run.log") as out:
                code = self._spawn(self._command(job, run_id, dry_run=False), out)
        report = report_of(self.loaded, run_id)
        if code in (Interrupted.exit_code, AccountBusy.exit_code) or code < 0:
            self.store.move(job.job_id, [JobState.RUNNING], JobState.INTERRUPTED,
                            exit_code=code, error=_why(code, job.account, report))
        else:
            self.store.move(job.job_id, [JobState.RUNNING], JobState.DONE, exit_code=code,
                            error=_why(code, job.account, report) if code >= 2 else None)
        summary = report.get("summary") if report else None
        self.store.audit(job.job_id, None, "run_finished",
                         {"run_id": run_id, "exit_code": code, "summary": summary})


def _why(code: int, account: str, report: dict[str, object] | None) -> str:
    """What a child's exit code means to the people reading the page."""
    if code == LoginNeedsPerson.exit_code:
        return (f"登录需要人工处理（验证码）/ login needs a person (captcha): run `dhbot login "
                f"--account {account} --headed` on the dhbot machine, then start again")
    if code == AccountBusy.exit_code:
        return "账号正被另一次运行占用 / another run holds the account: start again later"
    if code == Interrupted.exit_code or code < 0:
        return "已停止 / stopped before the end: start again (orders done are never redone)"
    if code == UsageError.exit_code:
        stopped = report.get("stopped") if report else None
        return str(stopped or "配置、任务或门户账号密码有误 / the configuration, the job or "
                             "the portal password was refused: see the log")
    return f"exit {code}: see the log"
