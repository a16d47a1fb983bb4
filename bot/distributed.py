"""Scale-out over many machines on Celery (Redis broker) with a shared ledger (PostgreSQL).

`dhbot submit JOB` records the run and its parts (slices of one account's orders) in the
ledger and enqueues one task per part; the message carries only the run id and the part
number — orders are read from the ledger, passwords from each worker's own environment,
and sessions from the ledger, encrypted. `dhbot worker` is a Celery worker whose pool
processes each start their own Chromium and run a part with the same runner as `dhbot run`.

Exactly once, with workers that may die at any moment:
- tasks are acknowledged late (after they finish), so a worker killed mid-task leaves its
  message unacknowledged and the broker hands it out again after the visibility timeout;
- a worker takes the account's Redis lock (expiring, renewed, fenced; see bot.distlock)
  before it touches the portal, and a task whose account is busy is retried later;
- the ledger's rules do the rest, as for `dhbot run`: the intent is committed before the
  submit (and fenced), a final order is never touched again, and an order whose submit
  result is unknown is read back from the portal first.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from rich.console import Console

from bot.config import LoadedSettings, Settings
from bot.errors import AccountBusy, BotError, ConfigError, Interrupted, LockLost, UsageError
from bot.job import Job, JobOrder
from bot.ledger import Ledger, Outcome, State, now_iso
from bot.log import mask_url, redactor
from bot.progress import RunProgress
from bot.report import BAD_OUTCOMES, RunReport, order_from_json, order_to_json
from bot.runner import OrderResult
from bot.session import BrowserHost
from flows.profile import Profile

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "dhbot.run_part"
FINISHED = ("done", "failed")
# A part that keeps failing on workers (not on the portal) is given up after this many tries.
MAX_PART_ATTEMPTS = 3
# Each pool process keeps its Chromium between parts; a fresh one after this many parts.
BROWSER_PARTS = 20


def celery_app(settings: Settings) -> Celery:
    """The Celery application: Redis broker, late acknowledgement, one task at a time."""
    try:
        from celery import Celery
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError("dhbot submit/worker need the distributed extra: "
                          "pip install 'dhbot[distributed]'") from exc
    redactor.add_url(settings.distributed.broker_url)  # the ledger's: see bot.ledger
    dist = settings.distributed
    app = Celery("dhbot", broker=dist.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged after the part is done, not when received
        task_reject_on_worker_lost=True,  # a pool process killed mid-task: hand it out again
        task_acks_on_failure_or_timeout=False,  # a task that crashed is handed out again
        worker_prefetch_multiplier=1,  # a busy worker does not hoard parts
        # A part whose worker died is handed out again once it has been unacknowledged for
        # visibility_timeout; sweep for such parts every few seconds, not every 100.
        broker_transport_options={
            "visibility_timeout": dist.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, dist.visibility_timeout_s // 4)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_default_queue=dist.queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live in the ledger
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    return app


# --- submitting ---------------------------------------------------------------------------


def split_parts(job: Job, default_account: str | None,
                part_size: int) -> list[tuple[str, list[JobOrder]]]:
    """Per account, slices of at most `part_size` orders (file order kept)."""
    parts: list[tuple[str, list[JobOrder]]] = []
    for account, orders in job.split(default_account).items():
        if account is None:
            raise UsageError("orders without an account: name one with `account:` in the job "
                             "(top level or per order) or give --account")
        for i in range(0, len(orders), part_size):
            parts.append((account, orders[i:i + part_size]))
    return parts


def _order_json(order: JobOrder, account: str) -> dict[str, Any]:
    return {"order_no": order.order_no, "reason": order.reason, "note": order.note,
            "message": order.message, "line": order.line, "account": account}


def submit_job(loaded: LoadedSettings, job: Job, default_account: str | None) -> str:
    """Record the run and its parts in the ledger and enqueue them; returns the run id."""
    from bot.execute import ledger_for, new_run_id

    settings = loaded.settings
    parts = split_parts(job, default_account, settings.distributed.part_size)
    for account in {a for a, _ in parts}:
        settings.portal.account(account)  # unknown account: ConfigError before anything
    app = celery_app(settings)
    broker = mask_url(settings.distributed.broker_url)
    try:
        try:  # reach the broker first: an unreachable one leaves nothing behind
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=2)
        except Exception as exc:
            raise ConfigError(f"cannot reach the broker {broker}: {exc}; nothing was "
                              "queued") from exc
        run_id = new_run_id()
        ledger = ledger_for(loaded)
        try:
            ledger.start_run(run_id, job.source, settings.paths.runs_dir / run_id,
                             mode="distributed")
            ledger.add_parts(run_id, [
                (account, json.dumps([_order_json(o, account) for o in orders],
                                     ensure_ascii=False))
                for account, orders in parts])
        finally:
            ledger.close()
        try:
            for part_no in range(1, len(parts) + 1):
                app.send_task(TASK_NAME, args=[run_id, part_no],
                              queue=settings.distributed.queue)
        except Exception as exc:
            raise ConfigError(f"the broker {broker} failed while queueing run {run_id}: "
                              f"{exc}; submit the job again (orders already done are "
                              "never done twice)") from exc
    finally:
        app.close()
    logger.info("run {}: {} orders in {} parts over {} accounts queued on {}", run_id,
                len(job.orders), len(parts), len({a for a, _ in parts}),
                mask_url(settings.distributed.broker_url))
    return run_id


def wait_for_run(loaded: LoadedSettings, run_id: str, *, console: Console,
                 timeout_s: float | None = None, poll_s: float = 1.0,
                 report_copy: Path | None = None) -> tuple[RunReport, Path]:
    """Follow a distributed run until every part has finished; write its report."""
    from bot.execute import ledger_for, render_readable

    settings = loaded.settings
    ledger = ledger_for(loaded)
    try:
        run = ledger.run(run_id)
        if run is None or run.get("mode") != "distributed":
            raise UsageError(f"no distributed run {run_id!r} in the ledger {ledger.url}")
        parts = ledger.parts(run_id)
        accounts = list(dict.fromkeys(p["account"] for p in parts))
        total = sum(len(json.loads(p["orders"])) for p in parts)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seen: set[int] = set()
        with RunProgress(console, total, f"{len(accounts)} accounts") as progress:
            while True:
                parts = ledger.parts(run_id)
                for part in parts:
                    if part["state"] in FINISHED and part["part_no"] not in seen:
                        seen.add(part["part_no"])
                        for data in json.loads(part["results"] or "[]"):
                            progress.update(order_from_json(data))
                if len(seen) == len(parts):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    waiting = [p for p in parts if p["state"] not in FINISHED]
                    raise BotError(
                        f"gave up waiting after {timeout_s:.0f}s: {len(waiting)} of "
                        f"{len(parts)} parts not finished (are workers running?); "
                        f"`dhbot wait {run_id}` follows the run again")
                time.sleep(poll_s)
        report = _report(run, parts, accounts)
        ledger.finish_run(run_id, report.summary)
    finally:
        ledger.close()
    run_dir = settings.paths.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    path = report.write(run_dir, report_copy)
    render_readable(run_dir)
    return report, path


def _report(run: dict[str, Any], parts: list[dict[str, Any]], accounts: list[str]) -> RunReport:
    report = RunReport(run_id=run["run_id"], job=run["job"] or "", account=", ".join(accounts),
                       started_at=run["started_at"], finished_at=now_iso())
    stops = []
    for part in parts:
        report.orders += [order_from_json(d) for d in json.loads(part["results"] or "[]")]
        if part["state"] == "failed":
            stops.append((part["exit_code"] or 1,
                          f"part {part['part_no']} ({part['account']}): {part['error']}"))
    if stops:
        report.exit_code = max(code for code, _ in stops)
        report.stopped = "; ".join(text for _, text in stops)
    elif any(r.outcome in BAD_OUTCOMES for r in report.orders):
        report.exit_code = 1
    return report


# --- the worker ---------------------------------------------------------------------------


class _WorkerState:
    """What a worker's pool processes inherit from the `dhbot worker` process, and what
    each keeps for itself (Redis client, event loop and Chromium, never across a fork)."""

    loaded: LoadedSettings
    profile: Profile
    redis: Any = None
    pid: int = 0
    loop: asyncio.AbstractEventLoop | None = None
    host: BrowserHost | None = None
    host_pid: int = 0
    host_parts: int = 0


_STATE = _WorkerState()


def _redis() -> Any:
    # One client per pool process (a client must not cross a fork).
    if _STATE.redis is None or _STATE.pid != os.getpid():
        import redis

        _STATE.redis = redis.Redis.from_url(_STATE.loaded.settings.distributed.broker_url)
        _STATE.pid = os.getpid()
    return _STATE.redis


def _browser(settings: Settings) -> tuple[asyncio.AbstractEventLoop, BrowserHost]:
    """This pool process's event loop and Chromium, started on its first part and kept
    (a browser start and a first page load cost seconds; a part takes 10–40 s)."""
    st = _STATE
    if st.host_pid != os.getpid():  # a fresh pool process: nothing of the parent's is usable
        st.loop, st.host, st.host_pid, st.host_parts = asyncio.new_event_loop(), None, \
            os.getpid(), 0
    assert st.loop is not None
    host = st.host
    if host is not None and (st.host_parts >= BROWSER_PARTS or host.browser is None
                             or not host.browser.is_connected()):
        _close_browser()
        host = None
    if host is None:
        host = BrowserHost(settings)
        st.loop.run_until_complete(host.__aenter__())
        st.host, st.host_parts = host, 0
    st.host_parts += 1
    return st.loop, host


def _close_browser(*_args: Any, **_kwargs: Any) -> None:
    """Close this pool process's Chromium (on recycling, on errors, at shutdown)."""
    st = _STATE
    host, st.host = st.host, None
    if host is None or st.loop is None or st.host_pid != os.getpid():
        return
    try:
        st.loop.run_until_complete(host.__aexit__(None, None, None))
    except Exception as exc:  # already gone
        logger.debug("closing the worker's browser: {}", exc)


def run_part(task: Any, run_id: str, part_no: int) -> str:
    """The task: run one part of a distributed job under the account's Redis lock.

    Whatever happens, the part ends in the ledger as done or failed (its orders `skipped`
    with the reason), or goes back to the queue: a run never waits for a lost part.
    """
    from celery.exceptions import Retry

    try:
        return _run_part(task, run_id, part_no)
    except Retry:
        raise
    except Exception as exc:
        logger.exception("run {} part {}: worker error", run_id, part_no)
        _give_up(run_id, part_no, f"worker error: {type(exc).__name__}: {exc}")
        return "failed"


def _give_up(run_id: str, part_no: int, why: str) -> None:
    """Record a part that cannot be run as failed, every unfinished order `skipped`."""
    from bot.execute import ledger_for

    ledger = ledger_for(_STATE.loaded)  # unreachable: the task fails, unacknowledged, and
    try:                                # is handed out again after the visibility timeout
        part = ledger.part(run_id, part_no)
        if part is None or part["state"] in FINISHED:
            return
        orders = [JobOrder(**o) for o in json.loads(part["orders"])]
        done = _skipped(ledger, run_id, part["account"], orders, why)
        results = [order_to_json(r) for r in done]
        ledger.finish_part(run_id, part_no, state="failed",
                           summary=dict(Counter(r.outcome.value for r in done)),
                           results=results, exit_code=1, error=why)
    finally:
        ledger.close()


def _skipped(ledger: Ledger, run_id: str, account: str, orders: list[JobOrder],
             why: str) -> list[OrderResult]:
    """The results of orders a part could not finish. The ledger has the last word: an
    order it records as done keeps that outcome (a part that broke off after finishing
    some orders never reports them as skipped), an open submit is `needs_review`, the rest
    are `skipped` with the reason."""
    results = []
    for o in orders:
        row = ledger.get(account, o.order_no)
        if row is not None and row.state == State.DONE and row.outcome is not None:
            results.append(OrderResult(
                order_no=o.order_no, account=account, outcome=row.outcome,
                reason=row.reason or o.reason, note=row.note or o.note,
                status_before=row.status_before, status_after=row.status_after,
                error=row.error, previous_run=None if row.run_id == run_id else row.run_id))
        elif row is not None and row.intent_unknown:
            results.append(OrderResult(
                order_no=o.order_no, account=account, outcome=Outcome.NEEDS_REVIEW,
                reason=o.reason, note=o.note, status_before=row.status_before,
                error=f"a submit was under way when the part stopped ({why}); the next run "
                      "reads the order back first"))
        else:
            results.append(OrderResult(order_no=o.order_no, account=account,
                                       outcome=Outcome.SKIPPED, reason=o.reason, note=o.note,
                                       error=f"not reached: {why}"))
    return results


def _run_part(task: Any, run_id: str, part_no: int) -> str:
    from bot.distlock import RedisAccountLock
    from bot.execute import PartContext, execute_part, ledger_for

    loaded, settings = _STATE.loaded, _STATE.loaded.settings
    dist = settings.distributed
    ledger = ledger_for(loaded)
    try:
        part = ledger.part(run_id, part_no)
        if part is None:
            logger.error("run {} part {}: not in the ledger {}; dropped", run_id, part_no,
                         ledger.url)
            return "unknown"
        if part["state"] in FINISHED:  # handed out again after it finished: nothing to do
            return str(part["state"])
        account = settings.portal.account(part["account"])
        lock = RedisAccountLock(_redis(), account.key(settings.portal.base_url),
                                name=account.name, ttl_s=dist.lock_ttl_s,
                                namespace=dist.queue)
        try:
            lock.acquire()
        except AccountBusy:
            delay = dist.busy_retry_s * (1 + random.random())
            logger.info("run {} part {}: account {} busy on another worker; again in {:.1f}s",
                        run_id, part_no, account.name, delay)
            raise task.retry(countdown=delay) from None
        worker = f"{task.request.hostname or socket.gethostname()} pid {os.getpid()}"
        ledger.start_part(run_id, part_no, worker)
        orders = [JobOrder(**o) for o in json.loads(part["orders"])]
        ctx = PartContext(run_id=run_id, ledger=ledger, guard=lock.check,
                          run_dir=settings.paths.runs_dir / run_id / f"part-{part_no:03d}")
        report: RunReport | None = None
        try:
            if not settings.distributed_ledger or ledger.load_session(account.name) is None:
                account.password()  # missing on this worker: ConfigError, said per order
            ctx.loop, ctx.host = _browser(settings)
            report, _ = execute_part(loaded, account, _STATE.profile, orders, ctx,
                                     source=f"{part['account']} part {part_no}",
                                     console=Console(stderr=True))
        except BotError as exc:
            ctx.stopped_by = exc
        except Exception as exc:  # the browser or the database failed under the worker
            logger.exception("run {} part {}: worker error", run_id, part_no)
            ctx.stopped_by = BotError(f"worker {worker}: {type(exc).__name__}: {exc}")
            _close_browser()
        finally:
            lock.release()
        stopped = ctx.stopped_by
        attempts = int(part["attempts"] or 0) + 1
        if isinstance(stopped, LockLost | Interrupted) or (
                report is None and not isinstance(stopped, UsageError)
                and attempts < MAX_PART_ATTEMPTS):
            # Not the orders' fault: hand the part out again; the ledger keeps it exactly once.
            why = str(stopped)
            ledger.requeue_part(run_id, part_no, why)
            logger.warning("run {} part {}: {}; queued again", run_id, part_no, why)
            raise task.retry(countdown=dist.busy_retry_s)
        if report is None:  # this worker cannot run it (configuration, browser): say why
            assert stopped is not None
            report = RunReport(run_id=run_id, job="", account=account.name,
                               started_at=now_iso(), exit_code=stopped.exit_code)
            report.orders = _skipped(ledger, run_id, account.name, orders, str(stopped))
        results = [order_to_json(r) for r in report.orders]
        for data in results:  # relative to the run's folder, where the merged report goes
            data["artifacts"] = [f"{ctx.run_dir.name}/{a}" for a in data["artifacts"]]
        state = "failed" if stopped is not None else "done"
        ledger.finish_part(run_id, part_no, state=state, summary=report.summary,
                           results=results, exit_code=report.exit_code,
                           error=str(stopped) if stopped else None)
        counts = Counter(r.outcome.value for r in report.orders)
        logger.info("run {} part {} ({}): {}", run_id, part_no, account.name, dict(counts))
        return state
    finally:
        ledger.close()


def start_worker(loaded: LoadedSettings, profile: Profile, *, concurrency: int,
                 name: str | None, loglevel: str) -> None:
    """Run a Celery worker for dhbot's queue until it is stopped (SIGTERM: warm shutdown)."""
    settings = loaded.settings
    _STATE.loaded, _STATE.profile = loaded, profile
    from celery.signals import worker_process_shutdown

    app = celery_app(settings)
    # max_retries=None: a part whose account is busy is retried until the account is free.
    app.task(name=TASK_NAME, bind=True, acks_late=True, max_retries=None)(run_part)
    worker_process_shutdown.connect(_close_browser, weak=False)
    hostname = name or f"dhbot-{os.getpid()}@{socket.gethostname()}"
    from bot.execute import ledger_for

    ledger = ledger_for(loaded)  # fails now, not in every task, when it cannot be reached
    ledger.close()
    logger.info("worker {}: {} process(es), queue {}, broker {}, ledger {}", hostname,
                concurrency, settings.distributed.queue,
                mask_url(settings.distributed.broker_url), ledger.url)
    app.worker_main(argv=[
        "worker", f"--concurrency={concurrency}", "--pool=prefork", "-Q",
        settings.distributed.queue, "-n", hostname, f"--loglevel={loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-O", "fair",
    ])
