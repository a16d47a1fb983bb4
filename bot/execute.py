"""Running a whole job: lock the account, open the browser, drive the runner, report.

Used by `dhbot run` and by the scheduler; signals stop it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from datetime import datetime
from pathlib import Path

from loguru import logger
from rich.console import Console

from bot.config import AccountConfig, LoadedSettings
from bot.errors import BotError, Interrupted
from bot.job import Job
from bot.ledger import Ledger, now_iso
from bot.lock import AccountLock
from bot.log import add_run_log
from bot.progress import RunProgress
from bot.report import BAD_OUTCOMES, RunReport
from bot.runner import AccountRunner, OrderResult
from bot.session import BrowserHost
from flows.profile import Profile

# Seconds the orders in flight get to finish after SIGINT/SIGTERM before they are abandoned.
GRACE_S = 15.0


def new_run_id() -> str:
    """A sortable, unique run id such as 20261126-132500-3fa2."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def ledger_for(loaded: LoadedSettings) -> Ledger:
    """The ledger in the configured state folder."""
    return Ledger(loaded.settings.paths.state_dir / "ledger.sqlite")


def execute_job(loaded: LoadedSettings, job: Job, account: AccountConfig, profile: Profile,
                *, console: Console, dry_run: bool = False, headless: bool | None = None,
                report_copy: Path | None = None) -> tuple[RunReport, Path]:
    """Run a validated job for one account; returns the report and its folder."""
    settings = loaded.settings
    run_id = new_run_id()
    run_dir = settings.paths.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    sink = add_run_log(run_dir / "log.jsonl")
    conc = settings.concurrency
    lock = AccountLock(settings.paths.state_dir, account.name,
                       wait_s=conc.busy_wait_s if conc.on_busy_account == "wait" else 0.0)
    ledger = ledger_for(loaded)
    report = RunReport(run_id=run_id, job=job.source, account=account.name,
                       started_at=now_iso(), dry_run=dry_run)
    try:
        lock.acquire()
        try:
            logger.info("run {}: {} orders for account {} on {}{}", run_id, len(job.orders),
                        account.name, settings.portal.base_url, " (dry run)" if dry_run else "")
            ledger.start_run(run_id, job.source, run_dir)
            with RunProgress(console, len(job.orders), f"{account.name}") as progress:
                results, stopped = asyncio.run(_drive(
                    loaded, job, account, profile, ledger, run_id, run_dir, dry_run,
                    headless, progress))
            report.orders = results
            report.finished_at = now_iso()
            if stopped is not None:
                report.stopped = str(stopped)
                report.exit_code = stopped.exit_code
            elif any(r.outcome in BAD_OUTCOMES for r in results):
                report.exit_code = 1
            ledger.finish_run(run_id, report.summary)
        finally:
            lock.release()
        path = report.write(run_dir, report_copy)
        return report, path
    finally:
        ledger.close()
        logger.remove(sink)


async def _drive(loaded: LoadedSettings, job: Job, account: AccountConfig, profile: Profile,
                 ledger: Ledger, run_id: str, run_dir: Path, dry_run: bool,
                 headless: bool | None, progress: RunProgress,
                 ) -> tuple[list[OrderResult], BotError | None]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signalled: list[int] = []

    def on_signal(signum: int) -> None:
        signalled.append(signum)
        logger.warning("{} received: finishing the orders in flight, then stopping",
                       signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    runner = AccountRunner(settings=loaded.settings, account=account, profile=profile,
                           ledger=ledger, run_id=run_id, run_dir=run_dir, dry_run=dry_run,
                           on_result=progress.update, stop=stop)
    try:
        async with BrowserHost(loaded.settings, headless=headless) as host:
            task = asyncio.create_task(runner.run(host, job.orders))
            await asyncio.wait({task, asyncio.create_task(stop.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
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
    results = runner.collect(job.orders)
    stopped: BotError | None = runner.stopped_by
    if stopped is None and signalled:
        stopped = Interrupted(f"stopped by {signal.Signals(signalled[0]).name}; "
                              "run the same job again to finish it")
    return results, stopped
