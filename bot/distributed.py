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
  result is unknown is read back from the portal first;
- the ledger, not the broker, is the source of truth for the parts: a running part's worker
  writes a heartbeat, and `dhbot wait` and every worker sweep the unfinished parts, putting
  a part back on the queue when its worker stopped beating or its message is gone (a broker
  restarted without persistence loses its queue).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger
from rich.console import Console

from bot.browser import BrowserHost
from bot.config import LoadedSettings, Settings
from bot.errors import (
    AccountBusy,
    BotError,
    ConfigError,
    Interrupted,
    LedgerUnavailable,
    LockLost,
    UsageError,
    first_line,
)
from bot.job import Job, JobOrder
from bot.ledger import Ledger, PartRow, RunRow, new_run_id, now_iso, open_ledger
from bot.log import mask_url, redactor
from bot.outcomes import OrderResult, Outcome, State, run_exit_code
from bot.progress import RunProgress
from bot.render import render_readable
from bot.report import RunReport, job_name, order_from_json, order_to_json
from bot.run_shell import PartContext, execute_part
from flows.profile import Profile

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "dhbot.run_part"
FINISHED = ("done", "failed")
# A part that keeps failing on workers (not on the portal) is given up after this many tries.
MAX_PART_ATTEMPTS = 3
# Each pool process keeps its Chromium between parts; a fresh one after this many parts.
BROWSER_PARTS = 20
# A worker counts as up while it was seen this recently (it beats every sweep interval).
WORKER_SEEN_S = 120.0
# Kombu's Redis transport: a queue's priority lists and the hash of delivered, unacked tasks.
_PRIORITY_SEP, _PRIORITY_STEPS, _UNACKED = "\x06\x16", (3, 6, 9), "unacked"

T = TypeVar("T")


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


def part_queue(settings: Settings, account: str) -> str:
    """The broker queue of an account's parts: only workers whose configuration has the
    account consume it, so a part never reaches a worker that cannot run it."""
    return f"{settings.distributed.queue}.{account}"


def _order_json(order: JobOrder, account: str) -> dict[str, Any]:
    return {"order_no": order.order_no, "reason": order.reason, "note": order.note,
            "message": order.message, "line": order.line, "account": account}


def submit_job(loaded: LoadedSettings, job: Job, default_account: str | None,
               run_id: str | None = None) -> str:
    """Record the run and its parts in the ledger and enqueue them; returns the run id
    (`run_id`, a new one by default)."""
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
        with_ledger(loaded, "checking the workers",
                    lambda ledger: _check_workers(ledger, settings, {a for a, _ in parts}))
        run_id = run_id or new_run_id()
        rows = [(account, json.dumps([_order_json(o, account) for o in orders],
                                     ensure_ascii=False)) for account, orders in parts]

        def record(ledger: Ledger) -> None:
            ledger.start_run(run_id, job.source, settings.paths.runs_dir / run_id,
                             mode="distributed")
            ledger.add_parts(run_id, rows, queue=settings.distributed.queue)

        with_ledger(loaded, f"recording run {run_id}", record)
        try:
            for part_no, (account, _) in enumerate(parts, start=1):
                app.send_task(TASK_NAME, args=[run_id, part_no],
                              queue=part_queue(settings, account))
        except Exception as exc:
            raise ConfigError(f"the broker {broker} failed while queueing run {run_id}: "
                              f"{exc}; its parts are recorded: once the broker is back, the "
                              f"workers (or `dhbot wait {run_id}`) queue the missing ones "
                              "again") from exc
    finally:
        app.close()
    logger.info("run {}: {} orders in {} parts over {} accounts queued on {}", run_id,
                len(job.orders), len(parts), len({a for a, _ in parts}),
                mask_url(settings.distributed.broker_url))
    return run_id


def _check_workers(ledger: Ledger, settings: Settings, accounts: set[str]) -> None:
    """Refuse a job that no running worker could run; warn when no worker is up at all."""
    dist = settings.distributed
    now = datetime.now(UTC)
    up = [w for w in ledger.workers(dist.queue)
          if (now - datetime.fromisoformat(w.seen_at)).total_seconds() < WORKER_SEEN_S]
    if not up:
        logger.warning("no worker is running on queue {}: the parts wait until one starts "
                       "(`dhbot worker`)", dist.queue)
        return
    known = {a for w in up for a in w.accounts}
    unknown = sorted(accounts - known)
    if unknown:
        names = ", ".join(w.name for w in up)
        raise UsageError(f"no running worker has account(s) {', '.join(unknown)} in its "
                         f"configuration (workers up on queue {dist.queue}: {names}); "
                         "nothing was queued")


def _database_down(exc: BaseException) -> bool:
    """True for a database that cannot be reached (a restart, a network cut)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    while exc is not None:
        if isinstance(exc, OperationalError) or (
                isinstance(exc, DBAPIError) and exc.connection_invalidated):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def with_ledger(loaded: LoadedSettings, what: str, work: Callable[[Ledger], T]) -> T:
    """`work(ledger)` on a ledger opened for it, riding out a short database outage."""

    def once() -> T:
        ledger = open_ledger(loaded.settings)
        try:
            return work(ledger)
        finally:
            ledger.close()

    return ride_out(loaded.settings, what, once)


def ride_out(settings: Settings, what: str, work: Callable[[], T]) -> T:
    """`work()`, riding out a short database outage (backoff for up to
    distributed.ledger_patience_s); then LedgerUnavailable (exit 5), nothing half done."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    patience = settings.distributed.ledger_patience_s

    def say(state: Any) -> None:
        logger.warning("{}: the ledger cannot be reached ({}); trying again", what,
                       first_line(state.outcome.exception())[:200])

    try:
        for attempt in Retrying(retry=retry_if_exception(_database_down),
                                wait=wait_exponential(multiplier=0.5, max=5),
                                stop=stop_after_delay(patience), before_sleep=say,
                                reraise=True):
            with attempt:
                return work()
    except Exception as exc:
        if not _database_down(exc):
            raise
        raise LedgerUnavailable(
            f"{what}: the ledger {mask_url(settings.ledger_url)} could not be reached "
            f"for {patience:g}s ({first_line(exc)[:200]}); nothing is lost: the "
            "workers go on, and `dhbot wait RUN_ID` follows the run again") from exc
    raise AssertionError("unreachable")  # pragma: no cover - Retrying returns or raises


# --- the parts' watch: heartbeats, and putting lost parts back on the queue ------------------


def _sweep_every_s(settings: Settings) -> float:
    return max(2.0, settings.distributed.lock_ttl_s / 2)


def _stale_after_s(settings: Settings) -> float:
    # A running part's worker beats every lock_ttl_s / 3.
    return max(10.0, 2 * settings.distributed.lock_ttl_s)


def messages_in_broker(client: Any, queues: Iterable[str]) -> set[tuple[str, int]]:
    """(run id, part number) of every task message the Redis broker holds for the queues:
    waiting in their lists, or delivered to a worker and not yet acknowledged."""
    pipe = client.pipeline(transaction=True)
    for queue in sorted(set(queues)):
        for key in (queue, *(f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS)):
            pipe.lrange(key, 0, -1)
    pipe.hvals(_UNACKED)
    *lists, unacked = pipe.execute()
    payloads = [json.loads(raw) for raw in (m for lst in lists for m in lst)]
    payloads += [json.loads(raw)[0] for raw in unacked]
    found: set[tuple[str, int]] = set()
    for payload in payloads:
        try:
            if payload.get("headers", {}).get("task") != TASK_NAME:
                continue
            body = payload["body"]
            if payload.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
            found.add((str(args[0]), int(args[1])))
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # not one of ours
            logger.debug("a message on the queue could not be read: {}", exc)
    return found


class PartSweeper:
    """Finds the unfinished parts whose task is lost and puts them back on the queue.

    The ledger is the source of truth. A running part whose worker stopped writing its
    heartbeat (killed, frozen, cut off) is queued again; so is a queued part whose message
    the broker no longer holds (seen missing twice in a row, since a message is briefly in
    neither place while a worker takes it). A claim in the ledger makes sure that of many
    sweepers (every worker, `dhbot wait`) only one re-sends a part. A second message for a
    part is harmless: the task drops a finished part, and the account lock serialises."""

    def __init__(self, loaded: LoadedSettings, app: Celery, client: Any) -> None:
        self.settings = loaded.settings
        self.app = app
        self.client = client
        self._missing: dict[tuple[str, int], int] = {}

    def sweep(self, ledger: Ledger, run_id: str | None = None) -> list[str]:
        """One look at the parts; returns what was put back, for the caller to say."""
        dist = self.settings.distributed
        parts = ledger.unfinished_parts(dist.queue, run_id)
        if not parts:
            return []
        try:
            held = messages_in_broker(self.client, [
                dist.queue, *(part_queue(self.settings, p.account) for p in parts)])
        except Exception as exc:  # the broker is down: nothing can be re-sent anyway
            logger.debug("sweep: the broker cannot be read: {}", exc)
            return []
        now = datetime.now(UTC)
        stale = _stale_after_s(self.settings)
        young = 2 * _sweep_every_s(self.settings)
        resent = []
        for part in parts:
            key = (part.run_id, part.part_no)
            why = None
            if part.state == "running":
                beat = part.heartbeat_at or part.started_at
                if beat and (now - datetime.fromisoformat(beat)).total_seconds() > stale:
                    why = f"its worker ({part.worker}) stopped beating"
            elif key in held:
                self._missing.pop(key, None)
            elif part.sent_at and \
                    (now - datetime.fromisoformat(part.sent_at)).total_seconds() > young:
                self._missing[key] = self._missing.get(key, 0) + 1
                if self._missing[key] >= 2:
                    why = "its task message is gone from the broker"
            if why is None or not ledger.claim_resend(*key, part.sent_at, why):
                continue
            self._missing.pop(key, None)
            self.app.send_task(TASK_NAME, args=list(key),
                               queue=part_queue(self.settings, part.account))
            resent.append(f"run {key[0]} part {key[1]}: {why}; queued again")
            logger.warning("run {} part {}: {}; queued again", key[0], key[1], why)
        return resent


def wait_for_run(loaded: LoadedSettings, run_id: str, *, console: Console,
                 timeout_s: float | None = None, poll_s: float = 1.0,
                 report_copy: Path | None = None) -> tuple[RunReport, Path]:
    """Follow a distributed run until every part has finished; write its report. Parts
    whose task was lost are put back on the queue (see PartSweeper)."""
    settings = loaded.settings
    # One ledger for the whole wait: its connection pool reconnects after an outage.
    ledger = ride_out(settings, f"opening the ledger for run {run_id}",
                      lambda: open_ledger(settings))
    app = celery_app(settings)
    try:
        report = _follow(loaded, ledger, app, run_id, console, timeout_s, poll_s)
        ride_out(settings, f"finishing run {run_id}",
                 lambda: ledger.finish_run(run_id, report.summary))
    finally:
        app.close()
        ledger.close()
    run_dir = settings.paths.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    path = report.write(run_dir, report_copy)
    render_readable(run_dir, zone=settings.display.timezone)
    return report, path


def _follow(loaded: LoadedSettings, ledger: Ledger, app: Celery, run_id: str,
            console: Console, timeout_s: float | None, poll_s: float) -> RunReport:
    """Show the run's progress until every part has finished; its merged report."""
    settings = loaded.settings
    run, parts = ride_out(settings, f"reading run {run_id}",
                          lambda: (ledger.run(run_id), ledger.parts(run_id)))
    if run is None or run.mode != "distributed":
        raise UsageError(f"no distributed run {run_id!r} in the ledger {ledger.url}")
    accounts = list(dict.fromkeys(p.account for p in parts))
    total = sum(len(p.orders) for p in parts)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    seen: set[int] = set()
    sweeper = PartSweeper(loaded, app, _broker_client(settings))
    next_sweep = time.monotonic() + _sweep_every_s(settings)
    with RunProgress(console, total, f"{len(accounts)} accounts") as progress:
        while True:
            parts = ride_out(settings, f"following run {run_id}",
                             lambda: ledger.parts(run_id))
            for part in parts:
                if part.state in FINISHED and part.part_no not in seen:
                    seen.add(part.part_no)
                    for data in part.results:
                        progress.update(order_from_json(data))
            if len(seen) == len(parts):
                return _report(run, parts, accounts)
            if time.monotonic() >= next_sweep:
                for line in ride_out(settings, f"watching run {run_id}",
                                     lambda: sweeper.sweep(ledger, run_id)):
                    console.print(line)
                next_sweep = time.monotonic() + _sweep_every_s(settings)
            if deadline is not None and time.monotonic() > deadline:
                waiting = [p for p in parts if p.state not in FINISHED]
                notes = "; ".join(f"part {p.part_no}: {p.error}" for p in waiting if p.error)
                raise BotError(
                    f"gave up waiting after {timeout_s:.0f}s: {len(waiting)} of "
                    f"{len(parts)} parts not finished (are workers running?"
                    f"{' ' + notes if notes else ''}); "
                    f"`dhbot wait {run_id}` follows the run again")
            time.sleep(poll_s)


def _broker_client(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(settings.distributed.broker_url, socket_timeout=10,
                                socket_connect_timeout=5)


def _report(run: RunRow, parts: list[PartRow], accounts: list[str]) -> RunReport:
    report = RunReport(run_id=run.run_id, job=run.job, account=", ".join(accounts),
                       started_at=run.started_at, finished_at=now_iso(), name=job_name(run.job))
    stops = []
    for part in parts:
        report.orders += [order_from_json(d) for d in part.results]
        if part.state == "failed":
            stops.append((part.exit_code or 1,
                          f"part {part.part_no} ({part.account}): {part.error}"))
    if stops:
        report.stopped = "; ".join(text for _, text in stops)
    report.exit_code = run_exit_code((r.outcome for r in report.orders),
                                     [code for code, _ in stops])
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
        if _database_down(exc):  # not the part's fault: it runs again once the ledger is back
            logger.error("run {} part {}: the ledger cannot be reached ({}); the part goes "
                         "back to the queue", run_id, part_no, first_line(exc)[:200])
            raise task.retry(countdown=_later(_STATE.loaded.settings), exc=exc) from None
        logger.exception("run {} part {}: worker error", run_id, part_no)
        try:
            _give_up(run_id, part_no, f"worker error: {type(exc).__name__}: {exc}")
        except Exception as give_up_exc:
            # Acknowledging now would lose the part; a new message keeps it (and should
            # that fail too, the part's stale heartbeat brings it back: see PartSweeper).
            logger.error("run {} part {}: could not record the failure ({}); the part goes "
                         "back to the queue", run_id, part_no, give_up_exc)
            raise task.retry(countdown=_later(_STATE.loaded.settings),
                             exc=give_up_exc) from None
        return "failed"


def _later(settings: Settings) -> float:
    """Seconds before a part that this worker cannot run now (its ledger is away) is
    offered again."""
    return settings.distributed.busy_retry_s * 4


def _give_up(run_id: str, part_no: int, why: str) -> None:
    """Record a part that cannot be run as failed, every unfinished order `skipped` (a
    ledger that cannot be reached raises: the caller puts the part back on the queue)."""
    ledger = open_ledger(_STATE.loaded.settings)
    try:
        part = ledger.part(run_id, part_no)
        if part is None or part.state in FINISHED:
            return
        orders = [JobOrder(**o) for o in part.orders]
        try:
            key = _STATE.loaded.settings.portal.key(part.account)
        except ConfigError:  # this worker does not know the account: as it was recorded
            key = part.account
        done = _skipped(ledger, run_id, part.account, key, orders, why)
        results = [order_to_json(r) for r in done]
        ledger.finish_part(run_id, part_no, state="failed",
                           summary=dict(Counter(r.outcome.value for r in done)),
                           results=results, exit_code=1, error=why)
    finally:
        ledger.close()


def _skipped(ledger: Ledger, run_id: str, account: str, key: str, orders: list[JobOrder],
             why: str) -> list[OrderResult]:
    """The results of orders a part could not finish. The ledger has the last word: an
    order it records as done keeps that outcome (a part that broke off after finishing
    some orders never reports them as skipped), an open submit is `needs_review`, the rest
    are `skipped` with the reason."""
    results = []
    for o in orders:
        row = ledger.get(key, o.order_no)
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

    loaded, settings = _STATE.loaded, _STATE.loaded.settings
    dist = settings.distributed
    ledger = open_ledger(loaded.settings)
    try:
        part = ledger.part(run_id, part_no)
        if part is None:
            logger.error("run {} part {}: not in the ledger {}; dropped", run_id, part_no,
                         ledger.url)
            return "unknown"
        if part.state in FINISHED:  # handed out again after it finished: nothing to do
            return str(part.state)
        worker = f"{task.request.hostname or socket.gethostname()} pid {os.getpid()}"
        try:
            account = settings.portal.account(part.account)
        except ConfigError:  # queued by an older dhbot on the shared queue
            queue = part_queue(settings, part.account)
            why = (f"worker {worker} has no account {part.account!r} in its configuration; "
                   f"moved to queue {queue}, for a worker that has")
            logger.warning("run {} part {}: {}", run_id, part_no, why)
            ledger.note_part(run_id, part_no, why)
            raise task.retry(countdown=0, queue=queue) from None
        key = account.key(settings.portal.base_url)
        lock = RedisAccountLock(_redis(), key, tokens=lambda: ledger.take_fence(key),
                                name=account.name, ttl_s=dist.lock_ttl_s,
                                namespace=dist.queue)
        try:
            lock.acquire()
        except AccountBusy:
            delay = dist.busy_retry_s * (1 + random.random())
            logger.info("run {} part {}: account {} busy on another worker; again in {:.1f}s",
                        run_id, part_no, account.name, delay)
            raise task.retry(countdown=delay) from None
        ledger.start_part(run_id, part_no, worker)
        # A thread of its own: a long page wait never stops it, only a dead or frozen worker.
        beat = _Every(f"run {run_id} part {part_no}: heartbeat", dist.lock_ttl_s / 3,
                      lambda: ledger.beat_part(run_id, part_no, worker))
        orders = [JobOrder(**o) for o in part.orders]
        ctx = PartContext(run_id=run_id, ledger=ledger, guard=lock.check,
                          run_dir=settings.paths.runs_dir / run_id / f"part-{part_no:03d}")
        report: RunReport | None = None
        try:
            if not settings.distributed_ledger or ledger.load_session(key) is None:
                account.password()  # missing on this worker: ConfigError, said per order
            ctx.loop, ctx.host = _browser(settings)
            report, _ = execute_part(loaded, account, _STATE.profile, orders, ctx,
                                     source=f"{part.account} part {part_no}",
                                     console=Console(stderr=True))
        except BotError as exc:
            ctx.stopped_by = exc
        except Exception as exc:  # the browser or the database failed under the worker
            logger.exception("run {} part {}: worker error", run_id, part_no)
            ctx.stopped_by = BotError(f"worker {worker}: {type(exc).__name__}: {exc}")
            _close_browser()
        finally:
            beat.stop()
            lock.release()
        stopped = ctx.stopped_by
        attempts = part.attempts + 1
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
            report.orders = _skipped(ledger, run_id, account.name, key, orders, str(stopped))
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


class _Every:
    """`tick()` every `every_s` seconds on a daemon thread of its own until `stop()` (first
    at once with `now`). A tick that fails is logged and the next one comes anyway: the
    database or the broker may be away for a while."""

    def __init__(self, name: str, every_s: float, tick: Callable[[], object], *,
                 now: bool = False) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(name, every_s, tick, now),
                                        daemon=True, name=name)
        self._thread.start()

    def _run(self, name: str, every_s: float, tick: Callable[[], object], now: bool) -> None:
        if now:
            self._safe(name, tick)
        while not self._stop.wait(every_s):
            self._safe(name, tick)

    @staticmethod
    def _safe(name: str, tick: Callable[[], object]) -> None:
        try:
            tick()
        except Exception as exc:
            logger.debug("{}: {}", name, exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Watch:
    """The worker's own thread: every sweep interval it says in the ledger that the worker
    is up (with the accounts it can run) and sweeps the queue's unfinished parts."""

    def __init__(self, loaded: LoadedSettings, app: Celery, name: str) -> None:
        self.settings, self.app, self.name = loaded.settings, app, name
        self.sweeper = PartSweeper(loaded, app, _broker_client(self.settings))
        self._ledger: Ledger | None = None  # opened once, kept: its pool reconnects
        self._every: _Every | None = None

    def _open(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_ledger(self.settings)
        return self._ledger

    def _tick(self) -> None:
        ledger = self._open()
        ledger.worker_seen(self.name, self.settings.distributed.queue,
                           [a.name for a in self.settings.portal.accounts])
        self.sweeper.sweep(ledger)

    def start(self, *_args: Any, **_kwargs: Any) -> None:
        if self._every is None:
            self._every = _Every(f"worker {self.name}: watch", _sweep_every_s(self.settings),
                                 self._tick, now=True)

    def stop(self, *_args: Any, **_kwargs: Any) -> None:
        if self._every is not None:
            self._every.stop()
        try:
            self._open().worker_gone(self.name)
        except Exception as exc:
            logger.debug("worker {}: not signed off in the ledger: {}", self.name, exc)
        if self._ledger is not None:
            self._ledger.close()


def start_worker(loaded: LoadedSettings, profile: Profile, *, concurrency: int,
                 name: str | None, loglevel: str) -> None:
    """Run a Celery worker for dhbot's queue until it is stopped (SIGTERM: warm shutdown)."""
    settings = loaded.settings
    _STATE.loaded, _STATE.profile = loaded, profile
    from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown

    app = celery_app(settings)
    # max_retries=None: a part whose account is busy is retried until the account is free.
    app.task(name=TASK_NAME, bind=True, acks_late=True, max_retries=None)(run_part)
    worker_process_shutdown.connect(_close_browser, weak=False)
    hostname = name or f"dhbot-{os.getpid()}@{socket.gethostname()}"
    ledger = open_ledger(loaded.settings)  # fails now, not in every task, when unreachable
    ledger.close()
    watch = _Watch(loaded, app, hostname)
    worker_ready.connect(watch.start, weak=False)
    worker_shutdown.connect(watch.stop, weak=False)
    logger.info("worker {}: {} process(es), queue {}, broker {}, ledger {}", hostname,
                concurrency, settings.distributed.queue,
                mask_url(settings.distributed.broker_url), ledger.url)
    # Its accounts' queues; and the shared one, where an older dhbot queued every part.
    queues = [settings.distributed.queue,
              *(part_queue(settings, a.name) for a in settings.portal.accounts)]
    app.worker_main(argv=[
        "worker", f"--concurrency={concurrency}", "--pool=prefork", "-Q",
        ",".join(queues), "-n", hostname, f"--loglevel={loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "-O", "fair",
    ])
