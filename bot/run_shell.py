"""Running a whole job (or a sync) for one account: lock the account, open the browser,
drive the runner, write the report. Used by `dhbot run`, `dhbot sync` and the scheduler;
SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loguru import logger
from rich.console import Console

from bot.browser import BrowserHost
from bot.config import AccountConfig, LoadedSettings
from bot.errors import BotError, DeadlineReached, Interrupted
from bot.job import Job, JobOrder
from bot.ledger import Ledger, new_run_id, now_iso, open_ledger
from bot.lock import account_lock
from bot.log import add_run_log
from bot.outcomes import PENDING_OUTCOMES, OrderResult, run_exit_code
from bot.progress import RunProgress
from bot.render import render_readable
from bot.report import RunReport
from bot.runner import AccountRunner
from flows.profile import Profile

# Seconds the orders in flight get to finish after SIGINT/SIGTERM before they are abandoned.
GRACE_S = 15.0

Work = Callable[[AccountRunner, BrowserHost], Coroutine[Any, Any, list[OrderResult]]]


def execute_job(loaded: LoadedSettings, job: Job, account: AccountConfig, profile: Profile,
                *, console: Console, dry_run: bool = False, headless: bool | None = None,
                report_copy: Path | None = None,
                run_id: str | None = None) -> tuple[RunReport, Path]:
    """Run a validated job for one account; returns the report and its path. `run_id`: the
    id to run under (the web console picks it to follow the run); default a new one."""

    async def work(runner: AccountRunner, host: BrowserHost) -> list[OrderResult]:
        return await runner.run(host, job.orders)

    return _execute(loaded, account, profile, job.source, job.orders, work, console=console,
                    dry_run=dry_run, headless=headless, report_copy=report_copy,
                    name=job.name, run_id=run_id)


def sync_accounts(loaded: LoadedSettings, account: AccountConfig, profile: Profile, *,
                  console: Console) -> tuple[RunReport | None, Path | None]:
    """Re-read every order of the account waiting for review; None when there is none."""
    ledger = open_ledger(loaded.settings)
    try:
        rows = ledger.rows(account=loaded.settings.portal.key(account.name),
                           outcomes=PENDING_OUTCOMES)
    finally:
        ledger.close()
    if not rows:
        return None, None
    orders = [JobOrder(order_no=r.order_no, reason=r.reason or "", note=r.note or "")
              for r in rows]

    async def work(runner: AccountRunner, host: BrowserHost) -> list[OrderResult]:
        return await runner.sync(host, rows)

    return _execute(loaded, account, profile, "sync", orders, work, console=console)


class _Lock(Protocol):
    def acquire(self) -> object: ...
    def release(self) -> None: ...


def _execute(loaded: LoadedSettings, account: AccountConfig, profile: Profile, source: str,
             orders: list[JobOrder], work: Work, *, console: Console, dry_run: bool = False,
             headless: bool | None = None, report_copy: Path | None = None,
             part: PartContext | None = None, name: str | None = None,
             run_id: str | None = None) -> tuple[RunReport, Path]:
    settings = loaded.settings
    lock: _Lock | None = None  # a part's lock is taken and released by its task
    guard: Callable[[], int] | None = None
    if part is None:
        run_id = run_id or new_run_id()
        run_dir = settings.paths.runs_dir / run_id
        conc = settings.concurrency
        wait_s = conc.busy_wait_s if conc.on_busy_account == "wait" else 0.0
        lock = account_lock(settings, account.name, wait_s)
        guard = getattr(lock, "check", None)  # the shared lock fences every submit
    else:
        run_id, run_dir, guard = part.run_id, part.run_dir, part.guard
    if lock is not None:
        lock.acquire()  # a busy account (exit 4) leaves nothing behind, not even a folder
    try:
        return _run_locked(loaded, account, profile, source, orders, work, console=console,
                           dry_run=dry_run, headless=headless, report_copy=report_copy,
                           part=part, run_id=run_id, run_dir=run_dir, guard=guard, name=name)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(loaded: LoadedSettings, account: AccountConfig, profile: Profile, source: str,
                orders: list[JobOrder], work: Work, *, console: Console, dry_run: bool,
                headless: bool | None, report_copy: Path | None, part: PartContext | None,
                run_id: str, run_dir: Path, guard: Callable[[], int] | None,
                name: str | None = None) -> tuple[RunReport, Path]:
    settings = loaded.settings
    run_dir.mkdir(parents=True, exist_ok=True)
    sink = add_run_log(run_dir / "log.jsonl")
    report = RunReport(run_id=run_id, job=source, account=account.name,
                       started_at=now_iso(), dry_run=dry_run, name=name)
    ledger: Ledger | None = None
    try:
        ledger = part.ledger if part is not None else open_ledger(loaded.settings)
        logger.info("run {}{}: {} orders for account {} on {}{}", run_id,
                    f" ({name})" if name else "", len(orders), account.name,
                    settings.portal.base_url, " (dry run)" if dry_run else "")
        if part is None:
            ledger.start_run(run_id, source, run_dir)
        runner = AccountRunner(settings=settings, account=account, profile=profile,
                               ledger=ledger, run_id=run_id, run_dir=run_dir,
                               dry_run=dry_run, guard=guard)
        # The runner logs a line per order: off a terminal, the progress adds none.
        with RunProgress(console, len(orders), account.name, lines=False) as progress:
            runner.on_result = progress.update
            drive = _drive(loaded, runner, work, headless, part.host if part else None)
            stopped = (part.loop.run_until_complete(drive) if part and part.loop
                       else asyncio.run(drive))
        report.orders = runner.collect(orders)
        report.finished_at = now_iso()
        if stopped is not None:
            report.stopped = str(stopped)
            if part is not None:
                part.stopped_by = stopped
        report.exit_code = run_exit_code((r.outcome for r in report.orders),
                                         [stopped.exit_code] if stopped else [])
        if part is None:
            ledger.finish_run(run_id, report.summary)
        path = report.write(run_dir, report_copy)
        render_readable(run_dir, zone=settings.display.timezone)
        return report, path
    finally:
        if ledger is not None and part is None:
            ledger.close()
        logger.remove(sink)


@dataclass
class PartContext:
    """A distributed run's part, run by a worker: the task holds the account's Redis lock,
    the run is recorded by `dhbot submit`, and `guard` fences every submit."""

    run_id: str
    run_dir: Path
    ledger: Ledger
    guard: Callable[[], int]
    stopped_by: BotError | None = None
    # The worker process's own event loop and Chromium, kept from part to part.
    loop: asyncio.AbstractEventLoop | None = None
    host: BrowserHost | None = None


def execute_part(loaded: LoadedSettings, account: AccountConfig, profile: Profile,
                 orders: list[JobOrder], part: PartContext, *, source: str,
                 console: Console) -> tuple[RunReport, Path]:
    """Run one part of a distributed job (called by a worker's task)."""

    async def work(runner: AccountRunner, host: BrowserHost) -> list[OrderResult]:
        return await runner.run(host, orders)

    return _execute(loaded, account, profile, source, orders, work, console=console,
                    part=part)


async def _drive(loaded: LoadedSettings, runner: AccountRunner, work: Work,
                 headless: bool | None, shared: BrowserHost | None = None) -> BotError | None:
    loop = asyncio.get_running_loop()
    signalled: list[int] = []

    def on_signal(signum: int) -> None:
        if signalled:
            return
        signalled.append(signum)
        logger.warning("{} received: finishing the orders in flight, then stopping",
                       signal.Signals(signum).name)
        runner.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    limit_min = loaded.settings.run.max_minutes
    late: list[bool] = []

    def on_deadline() -> None:
        late.append(True)
        logger.warning("the run's time limit ({:g} min) is reached: finishing the orders in "
                       "flight, then stopping", limit_min)
        runner.stop.set()

    deadline = loop.call_later(limit_min * 60, on_deadline) if limit_min else None
    try:
        browser = (contextlib.nullcontext(shared) if shared is not None
                   else BrowserHost(loaded.settings, headless=headless))
        async with browser as host:
            task = asyncio.create_task(work(runner, host))
            stop_wait = asyncio.create_task(runner.stop.wait())
            await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            if not task.done():
                done, _ = await asyncio.wait({task}, timeout=GRACE_S)
                if not done:
                    logger.warning("abandoning the orders still in flight")
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if deadline is not None:
            deadline.cancel()
    stopped: BotError | None = runner.stopped_by
    if stopped is None and late:
        stopped = DeadlineReached(f"the run's time limit ({limit_min:g} min) was reached; "
                                  "run the same job again to finish it")
    if stopped is None and signalled:
        stopped = Interrupted(f"stopped by {signal.Signals(signalled[0]).name}; "
                              "run the same job again to finish it")
    return stopped
