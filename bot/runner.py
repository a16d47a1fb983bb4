"""The runner: takes a validated job for one account and drives the portal, exactly once.

Flows return facts (the status a page showed); this module decides what they mean,
writes the ledger, retries what is worth retrying and records every order's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from loguru import logger

from bot.browser import BrowserHost
from bot.config import AccountConfig, Settings
from bot.errors import (
    BotError,
    BrowserGone,
    CredentialsRejected,
    FlowError,
    LockLost,
    LoginNeedsPerson,
    ProfileMismatch,
    RateLimited,
    SessionExpired,
    TransientError,
    first_line,
)
from bot.job import JobOrder
from bot.ledger import Ledger, LedgerRow
from bot.log import redactor, write_private
from bot.outcomes import (
    Act,
    OrderResult,
    Outcome,
    after_failure,
    after_submit,
    before_submit,
    from_ledger,
    not_found,
    review,
    takeover_delay_s,
)
from bot.pacing import Pacer, backoff
from bot.session import AccountSession, session_store
from flows.base_page import Page, PortalPage, StepRetry
from flows.message_page import MessageResult
from flows.order_detail_page import OrderDetailPage, OrderFacts
from flows.order_list_page import OrderListPage
from flows.profile import Profile

MAX_RELOGINS_PER_ORDER = 3
MISMATCH_LIMIT = 3
# After this many orders of an account, the tab that finished the last one has its renderer
# (shared by the tabs; see browser.renderer_processes) collect garbage (see
# AccountSession.collect_garbage): a few orders' worth is quick to collect, and the renderer
# stays near its starting size between context recycles.
COLLECT_GARBAGE_EVERY = 10


class AccountStopped(Exception):
    """The account cannot go on (captcha, refused credentials); carries the cause."""

    def __init__(self, cause: BotError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Tab:
    """One browser tab working through orders, positioned on the order list."""

    def __init__(self, page: Page, retry: StepRetry) -> None:
        self.page = page  # stays on the order list
        self.detail: Page | None = None  # orders open here, so the list never reloads
        self.last = page  # the tab that was used last, for evidence
        self.retry = retry
        self.list_page: OrderListPage | None = None
        self.generation = 0
        # Which browser context its pages belong to (see AccountRunner._renew, _recover).
        self.context_gen = 0


class AccountRunner:
    """Cancels one account's orders with a few tabs in parallel."""

    def __init__(self, *, settings: Settings, account: AccountConfig, profile: Profile,
                 ledger: Ledger, run_id: str, run_dir: Path, dry_run: bool = False,
                 on_result: Callable[[OrderResult], None] | None = None,
                 stop: asyncio.Event | None = None,
                 guard: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.account = account
        self.profile = profile
        self.ledger = ledger
        self.run_id = run_id
        self.run_dir = run_dir
        self.dry_run = dry_run
        self.on_result = on_result or (lambda result: None)
        self.stop = stop or asyncio.Event()
        # Distributed workers: raises LockLost unless this worker still holds the account's
        # lock, else returns the lock's fencing token (checked again by the ledger).
        self.guard = guard
        # The ledger knows the account by its portal identity, not by its configured name.
        self.key = account.key(settings.portal.base_url)
        self.pacer = Pacer(settings.concurrency.requests_per_minute)
        self.results: dict[str, OrderResult] = {}
        self.stopped_by: BotError | None = None
        self._rng = random.Random()
        self._trace_started = False
        # Consecutive orders failed by a profile mismatch; past the limit the portal has
        # clearly changed and the remaining orders fail without touching it.
        self._mismatches = 0
        self._broken: ProfileMismatch | None = None
        # Every new browser context (after a Chromium restart, or a fresh one that bounds
        # memory) starts a new generation of tabs: a tab of an older one opens new pages.
        self._context_gen = 0
        self._recovering = asyncio.Lock()
        # The context is replaced every browser.recycle_after_orders orders, only between
        # orders: `_open` is cleared so no tab starts another, and the swap waits for
        # `_idle` (no tab at work).
        self._since_renew = 0
        self._since_gc = 0
        self._busy_tabs = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()
        self._renewing = False

    # --- the run ------------------------------------------------------------------------

    async def run(self, host: BrowserHost, orders: list[JobOrder]) -> list[OrderResult]:
        """Work through `orders`; returns one result per order, in job order."""
        todo: list[_Work] = []
        for order in orders:
            prior = self.ledger.get(self.key, order.order_no)
            kind = from_ledger(bool(prior and prior.is_final), prior.outcome if prior else None,
                               self.dry_run)
            if kind == "cancel" or prior is None:
                todo.append(_Work(order, "cancel"))
            elif kind == "sync":  # asked for earlier: read the platform's answer first
                todo.append(_Work(order, "sync", prior))
            elif self._message_due(order, prior.outcome, prior.message_sent_at) \
                    and not self.dry_run:
                todo.append(_Work(order, "message", prior))
            else:
                # Finished earlier: report it, never touch the portal for it again.
                self._finish(self._from_ledger(order, prior), record=False)
        planned = [w.order for w in todo if w.kind == "cancel"]
        if not self.dry_run and planned:
            self.ledger.plan(self.run_id, self.key,
                             [(o.order_no, o.reason, o.note) for o in planned])
        if todo:
            await self._drive(host, todo)
        return self.collect(orders)

    async def sync(self, host: BrowserHost, rows: list[LedgerRow]) -> list[OrderResult]:
        """Re-read orders waiting for the platform's review and record its answer."""
        orders = [JobOrder(order_no=r.order_no, reason=r.reason or "", note=r.note or "")
                  for r in rows]
        if rows:
            await self._drive(host, [_Work(o, "sync", r) for o, r in zip(orders, rows,
                                                                           strict=True)])
        return self.collect(orders)

    def _from_ledger(self, order: JobOrder, prior: LedgerRow) -> OrderResult:
        assert prior.outcome is not None
        return OrderResult(
            order_no=order.order_no, account=self.account.name, outcome=prior.outcome,
            reason=prior.reason or order.reason, note=prior.note or order.note,
            status_before=prior.status_before, status_after=prior.status_after,
            previous_run=prior.run_id, error=prior.review_comment,
        )

    @staticmethod
    def _message_due(order: JobOrder, outcome: Outcome | None, sent_at: str | None) -> bool:
        return bool(order.message) and sent_at is None and outcome in (Outcome.SUBMITTED,
                                                                       Outcome.CANCELLED)

    async def _drive(self, host: BrowserHost, todo: list[_Work]) -> None:
        conc = self.settings.concurrency
        tabs = max(1, min(conc.pages_per_account, conc.total_pages, len(todo)))
        queue: asyncio.Queue[_Work] = asyncio.Queue()
        for order in todo:
            queue.put_nowait(order)
        session = AccountSession(host, self.settings, self.account, self.profile, self.pacer,
                                 store=session_store(self.settings, self.account.name,
                                                     self.ledger))
        await session.open(block_submit=self.dry_run)
        self._session = session
        self._host = host
        try:
            workers = [asyncio.create_task(self._worker(session, queue, i)) for i in range(tabs)]
            await asyncio.gather(*workers)
        finally:
            await self._finish_trace(session)
            await session.close()

    async def _finish_trace(self, session: AccountSession) -> None:
        mode = self.settings.browser.trace
        if mode == "off":
            return
        failed = any(r.outcome in (Outcome.FAILED, Outcome.NEEDS_REVIEW)
                     for r in self.results.values())
        try:
            kept = await session.stop_trace(keep=mode == "always" or failed)
        except Exception as exc:  # a trace is evidence, never a reason to lose the report
            logger.warning("could not save the trace: {}", exc)
            return
        paths = [str(p.relative_to(self.run_dir)) for p in kept]
        for result in self.results.values():
            if result.outcome in (Outcome.FAILED, Outcome.NEEDS_REVIEW) or mode == "always":
                result.artifacts.extend(p for p in paths if p not in result.artifacts)

    def collect(self, orders: list[JobOrder]) -> list[OrderResult]:
        """One result per order in job order; orders never reached are `skipped`."""
        for order in orders:
            if order.order_no not in self.results:
                why = (f"not reached: {self.stopped_by}" if self.stopped_by
                       else "not reached: the run was stopped")
                self._finish(self._result(order, Outcome.SKIPPED, error=why), record=False)
        return [self.results[o.order_no] for o in orders]

    async def _worker(self, session: AccountSession, queue: asyncio.Queue[_Work],
                      index: int) -> None:
        with self._at_work():
            tab = _Tab(await session.new_page(), self._step_retry())
            tab.context_gen = self._context_gen
        while not self.stop.is_set() and self.stopped_by is None:
            try:
                await self._between_orders(session, queue)
                if self.stop.is_set() or self.stopped_by is not None:
                    break
                work = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            except AccountStopped as exc:
                self.stopped_by = exc.cause
                self.stop.set()
                break
            try:
                with self._at_work():
                    result = await self._process(session, tab, work)
            except AccountStopped as exc:
                self.stopped_by = exc.cause
                self.stop.set()
                break
            self._finish(result)
            self._since_gc += 1
            if self._since_gc >= COLLECT_GARBAGE_EVERY:
                self._since_gc = 0
                await self._collect_garbage(session, tab)
            self._since_renew += 1
            every = self.settings.browser.recycle_after_orders
            if every and self._since_renew >= every and not queue.empty():
                self._open.clear()  # no tab starts another order until the context is new

    async def _collect_garbage(self, session: AccountSession, tab: _Tab) -> None:
        if tab.context_gen != self._context_gen:
            return  # its pages are gone with their context; the new ones are fresh
        with self._at_work():
            started = time.perf_counter()
            try:
                await session.collect_garbage(tab.page)
            except Exception as exc:  # memory upkeep; a dead browser shows in the next order
                logger.debug("account {}: garbage collection in the tab failed: {}",
                             self.account.name, exc)
                return
            logger.debug("account {}: the tab's renderer collected its garbage in {:.2f}s",
                         self.account.name, time.perf_counter() - started)

    @contextlib.contextmanager
    def _at_work(self) -> Iterator[None]:
        """A tab using the context (an order, or opening the tab): never replaced under it."""
        self._busy_tabs += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy_tabs -= 1
            if not self._busy_tabs:
                self._idle.set()

    async def _between_orders(self, session: AccountSession,
                              queue: asyncio.Queue[_Work]) -> None:
        """Wait while the context is being replaced; the first tab to find all the others
        idle replaces it (the rest wait for it)."""
        while not self._open.is_set():
            if self._renewing:
                await self._open.wait()
                continue
            await self._idle.wait()
            if self._open.is_set() or self._renewing:
                continue
            self._renewing = True
            try:
                if not self.stop.is_set() and self.stopped_by is None and not queue.empty():
                    await self._renew(session)
            finally:
                self._renewing = False
                self._since_renew = 0
                self._open.set()

    async def _renew(self, session: AccountSession) -> None:
        """A fresh browser context with the same signed-in session, every tab idle: the
        renderer the tabs share, and what the driver kept for their pages, start afresh, so
        memory stays bounded however many orders the run has. Each tab opens new pages."""
        seen, old = self._context_gen, session.context
        logger.debug("account {}: {} orders done in this browser context; replacing it with "
                     "a fresh one, same session (bounds memory)", self.account.name,
                     self._since_renew)
        try:
            await session.renew(block_submit=self.dry_run)
        except BotError as exc:
            if not self._browser_alive():
                await self._recover(session, seen, exc)  # Chromium died: restart it
                return
            if session.context is old:
                logger.warning("could not start a fresh browser context ({}); going on with "
                               "the old one", first_line(exc))
                return
            try:  # the old context is closed and the new one did not open
                await session.reopen(block_submit=self.dry_run)
            except BotError as again:
                raise AccountStopped(BrowserGone(
                    f"no browser context could be opened: {again}")) from again
            self._trace_started = False  # reopen starts from the saved session, untraced
        self._context_gen += 1

    # --- one order ----------------------------------------------------------------------

    def _result(self, order: JobOrder, outcome: Outcome, **kw: object) -> OrderResult:
        return OrderResult(order_no=order.order_no, account=self.account.name, outcome=outcome,
                           reason=order.reason, note=order.note,
                           reason_label=self.profile.reasons.get(order.reason),
                           **kw)  # type: ignore[arg-type]

    def _finish(self, result: OrderResult, record: bool = True) -> None:
        self.results[result.order_no] = result
        if record and not self.dry_run and result.outcome not in (Outcome.SKIPPED,
                                                                  Outcome.WOULD_SUBMIT):
            self.ledger.record_result(
                self.run_id, self.key, result.order_no, result.outcome,
                status_before=result.status_before, status_after=result.status_after,
                attempts=result.attempts, error=result.error,
                keep_intent=result.outcome == Outcome.NEEDS_REVIEW,
            )
        level = "WARNING" if result.outcome in (Outcome.FAILED, Outcome.NEEDS_REVIEW) else "INFO"
        # order_no and outcome as fields too: the run's log.jsonl is what the web console
        # follows a run by, dry runs included (they record nothing in the ledger).
        logger.bind(order_no=result.order_no, outcome=result.outcome.value).log(
            level, "order {} -> {}{}{}", result.order_no, result.outcome.value,
            f" (status {result.status_before} -> {result.status_after})"
            if result.status_after and result.status_after != result.status_before
            else (f" (status {result.status_before})" if result.status_before else ""),
            f": {result.error}" if result.error else "")
        self.on_result(result)

    async def _ensure_tab(self, session: AccountSession, tab: _Tab) -> OrderListPage:
        if tab.detail is None:
            tab.detail = await session.new_page()
        if tab.list_page is None:
            await session.sign_in(tab.page, retry=tab.retry)
            tab.generation = session.generation
            if self.settings.browser.trace != "off" and not self._trace_started:
                self._trace_started = True
                await session.start_trace(self.run_dir / "traces")
            tab.list_page = await session.open_order_list(tab.page, tab.retry)
        return tab.list_page

    async def _process(self, session: AccountSession, tab: _Tab, work: _Work) -> OrderResult:
        tab.retry.count = 0
        tab.retry.reasons.clear()
        started = time.monotonic()
        result = await self._process_order(session, tab, work)
        result.retry_reasons = dict(tab.retry.reasons)
        # Every outcome's real duration, failures (retries and evidence included) too.
        result.duration_s = time.monotonic() - started
        return result

    async def _process_order(self, session: AccountSession, tab: _Tab,
                             work: _Work) -> OrderResult:
        order = work.order
        if self._broken is not None:
            return self._result(order, Outcome.FAILED, error=(
                f"not attempted: the portal's pages no longer match the profile "
                f"({self._broken}); fix the profile (run `dhbot check`) and run the job again"))
        prior = self.ledger.get(self.key, order.order_no)
        state = _OrderState(intent_unknown=bool(prior and prior.intent_unknown))
        if state.intent_unknown:
            logger.info("order {}: an earlier submit's result is unknown; reading it back first",
                        order.order_no)
            await self._outwait_older_holder(order, prior)
        attempts_allowed = self.settings.retry.attempts
        while True:
            state.attempts += 1
            try:
                if tab.context_gen != self._context_gen:
                    await self._fresh_tab(session, tab)
                list_page = await self._ensure_tab(session, tab)
                if work.kind == "cancel":
                    result = await self._attempt(tab, list_page, order, state)
                elif work.kind == "sync":
                    assert work.prior is not None
                    result = await self._sync_one(tab, list_page, order, state, work.prior)
                else:
                    assert work.prior is not None
                    result = self._from_ledger(order, work.prior)
                if self._message_due(order, result.outcome,
                                     prior.message_sent_at if prior else None):
                    await self._send_message(tab, list_page, order, result)
                result.retries += tab.retry.count
                self._mismatches = 0
                return result
            except (LoginNeedsPerson, CredentialsRejected, LockLost) as exc:
                raise AccountStopped(exc) from exc
            except SessionExpired as exc:
                state.relogins += 1
                state.retries += 1
                tab.retry.reasons["session expired"] += 1
                state.attempts -= 1  # an expired session is not the order's fault
                if state.relogins > MAX_RELOGINS_PER_ORDER:
                    return await self._fail(tab, order, state, exc)
                logger.info("order {}: session expired at {}; logging in again",
                            order.order_no, exc.page or "a page")
                try:
                    await session.sign_in(tab.page, seen_generation=tab.generation,
                                          retry=tab.retry)
                except (LoginNeedsPerson, CredentialsRejected) as login_exc:
                    raise AccountStopped(login_exc) from login_exc
                except FlowError as login_exc:
                    logger.warning("order {}: login again failed: {}", order.order_no,
                                   login_exc)
                tab.list_page = None
            except ProfileMismatch as exc:
                self._mismatches += 1
                if self._mismatches >= MISMATCH_LIMIT and self._broken is None:
                    self._broken = exc
                    logger.error("{} orders in a row met a changed portal page ({}); failing "
                                 "the rest without trying. Run `dhbot check`.",
                                 self._mismatches, exc.key)
                return await self._fail(tab, order, state, exc)
            except TransientError as exc:
                if not self._browser_alive():
                    # Chromium died: not the order's fault. Start a new one (bounded), then
                    # this order starts over; an open submit is read back first.
                    await self._recover(session, tab.context_gen, exc)
                    state.attempts -= 1
                    continue
                if isinstance(exc, RateLimited):
                    self.pacer.slow_down()
                if state.attempts >= attempts_allowed + (2 if state.intent_unknown else 0):
                    return await self._fail(tab, order, state, exc)
                state.retries += 1
                tab.retry.reasons[exc.reason] += 1
                delay = self._backoff(state.attempts)
                logger.warning("order {}: {}; retry {} in {:.1f}s", order.order_no,
                               first_line(exc), state.retries, delay)
                tab.list_page = None if exc.unsettled else tab.list_page
                await asyncio.sleep(delay)
            except FlowError as exc:
                return await self._fail(tab, order, state, exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an unforeseen page: keep evidence, go on
                logger.exception("order {}: unexpected error", order.order_no)
                return await self._fail(tab, order, state, exc)

    async def _outwait_older_holder(self, order: JobOrder, prior: LedgerRow | None) -> None:
        """An older holder of the account's lock left this order's submit unfinished: its
        click may still be on its way (a frozen worker, a slow portal). Reading back now could
        see "not landed" and submit a second time; wait until it must have landed."""
        if self.guard is None:
            return
        dist, browser = self.settings.distributed, self.settings.browser
        window = dist.lock_ttl_s + browser.navigation_timeout_s + dist.takeover_grace_s
        delay = takeover_delay_s(prior, self.guard(), window)
        if delay > 0:
            logger.info("order {}: an older holder of the account left its submit unfinished; "
                        "waiting {:.0f}s for it to land before reading the order back",
                        order.order_no, delay)
            await asyncio.sleep(delay)

    def _browser_alive(self) -> bool:
        browser = self._host.browser
        return browser is not None and browser.is_connected()

    async def _recover(self, session: AccountSession, seen: int, exc: BaseException) -> None:
        """Start a new Chromium after the old one died, once for all tabs, at most
        run.browser_restarts times a run; past that the account stops (BrowserGone).
        `seen` is the context generation the caller's tab knew."""
        async with self._recovering:
            if self._context_gen != seen:
                return  # another tab has started the new one already
            limit = self.settings.run.browser_restarts
            if self._host.restarts >= limit:
                raise AccountStopped(BrowserGone(
                    f"Chromium died {self._host.restarts + 1} times in this run "
                    f"(last: {first_line(exc)}); run.browser_restarts is {limit}"))
            logger.warning("Chromium died ({}); starting it again ({} of {}) and going on",
                           first_line(exc), self._host.restarts + 1, limit)
            try:
                await self._host.restart()
                await session.reopen(block_submit=self.dry_run)
            except BotError as restart_exc:
                raise AccountStopped(BrowserGone(
                    f"Chromium died and could not be started again: {restart_exc}")) \
                    from restart_exc
            self._trace_started = False  # the dead context's trace is gone; a new one starts
            self._context_gen += 1
            self._since_renew = 0

    async def _fresh_tab(self, session: AccountSession, tab: _Tab) -> None:
        """Tabs in the new context (a fresh one, or a new Chromium's) for a worker whose
        tabs were closed or died with the old one."""
        tab.page = tab.last = await session.new_page()
        tab.detail = None
        tab.list_page = None
        tab.context_gen = self._context_gen

    async def _sync_one(self, tab: _Tab, list_page: OrderListPage, order: JobOrder,
                        state: _OrderState,
                        prior: LedgerRow) -> OrderResult:
        """Read back an order waiting for review and record the platform's decision."""
        assert prior.outcome is not None
        tab.last = tab.page
        if not await list_page.find(order.order_no):
            return self._result(order, Outcome.NEEDS_REVIEW, attempts=state.attempts,
                                status_before=prior.status_after, previous_run=prior.run_id,
                                error="the order waiting for review is no longer found")
        shown = await list_page.row_status(order.order_no)
        if shown is not None and shown == prior.status_after and self.profile.lists_status(shown) \
                and review(prior.outcome, self.profile.status_meaning(shown), shown,
                           None).recorded == prior.outcome:
            # Still waiting, as its row shows: nothing to record, so none of the review
            # fields only the detail page shows is needed.
            facts = OrderFacts(order_no=order.order_no, status=shown)
        else:
            tab.last = tab.detail or tab.page  # the detail loads there: a 500 shows there
            detail = await list_page.open_order(order.order_no, tab.detail)
            tab.last = detail.page
            facts = await detail.read()
        decided = review(prior.outcome, self.profile.status_meaning(facts.status),
                         facts.status, facts.review_comment)
        outcome = decided.recorded
        result = self._result(order, outcome, attempts=state.attempts, retries=state.retries,
                              status_before=prior.status_after, status_after=facts.status,
                              previous_run=prior.run_id, error=decided.why)
        result.reason, result.note = prior.reason or order.reason, prior.note or order.note
        if outcome != prior.outcome or facts.status != prior.status_after:
            self.ledger.record_review(
                self.run_id, self.key, order.order_no, outcome,
                status_after=facts.status, review_result=facts.review_result,
                review_comment=facts.review_comment, cancel_date=facts.cancel_date)
        result.synced = True
        return result

    async def _send_message(self, tab: _Tab, list_page: OrderListPage, order: JobOrder,
                            result: OrderResult) -> None:
        """Tell the buyer, once; wait out the portal's message rate limit."""
        text = self._message_text(order)
        result.message = text
        if self.dry_run:
            return
        try:
            tab.last = tab.page
            if not await list_page.find(order.order_no):
                raise FlowError("order not found for the buyer message", step="message")
            tab.last = tab.detail or tab.page
            detail = await list_page.open_order(order.order_no, tab.detail)
            tab.last = detail.page
            form = await detail.open_contact()
            waited = 0.0
            delay = self.settings.retry.message_wait_s
            while True:
                if self.guard is not None:
                    self.guard()  # LockLost: another worker has the account now
                answer = await form.send(text)
                if answer == MessageResult.SENT:
                    self.ledger.record_message(self.run_id, self.key, order.order_no)
                    result.message_sent = True
                    logger.info("order {}: message sent to the buyer", order.order_no)
                    return
                if answer != MessageResult.RATE_LIMITED or \
                        waited >= self.settings.retry.message_wait_max_s:
                    raise FlowError(f"the portal did not confirm the message ({answer})",
                                    step="message", page=form.page_name)
                logger.info("order {}: portal limits buyer messages; waiting {:.0f}s",
                            order.order_no, delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 30.0)
        except FlowError as exc:
            tab.list_page = None
            note = f"buyer message not sent ({first_line(exc)}); the next run tries again"
            result.error = f"{result.error}; {note}" if result.error else note
            logger.warning("order {}: {}", order.order_no, note)

    def _message_text(self, order: JobOrder) -> str:
        """The buyer message of an order, its placeholders filled in."""
        assert order.message is not None
        return order.message.format(order_no=order.order_no, reason=order.reason,
                                    reason_label=self.profile.reasons.get(order.reason, ""),
                                    note=order.note)

    def _step_retry(self) -> StepRetry:
        return StepRetry(attempts=self.settings.retry.attempts, backoff=self._backoff,
                         on_rate_limited=self.pacer.slow_down)

    def _backoff(self, attempt: int) -> float:
        return backoff(self.settings.retry, attempt, self._rng)

    async def _attempt(self, tab: _Tab, list_page: OrderListPage, order: JobOrder,
                       state: _OrderState) -> OrderResult:
        tab.last = tab.page  # evidence shows the tab where a step fails
        if not await list_page.find(order.order_no):
            gone = not_found(state.intent_unknown)
            return self._result(order, gone.recorded, attempts=state.attempts,
                                retries=state.retries, status_before=state.status_before,
                                error=gone.why)
        answered = self._answer_from_row(order, state,
                                         await list_page.row_status(order.order_no))
        if answered is not None:
            return answered
        tab.last = tab.detail or tab.page  # the detail loads there: a 500 shows there
        detail = await list_page.open_order(order.order_no, tab.detail)
        tab.last = detail.page
        facts = await detail.read()
        if state.status_before is None:
            state.status_before = facts.status
        decided = before_submit(self.profile.status_meaning(facts.status), facts.status,
                                intent_unknown=state.intent_unknown, dry_run=self.dry_run)
        if decided.act == Act.RECORD:
            return self._done(order, state, decided.recorded, facts, error=decided.why)
        if state.intent_unknown:
            logger.info("order {}: read back shows {}; the earlier submit did not land",
                        order.order_no, facts.status)
            state.intent_unknown = False
        return await self._cancel(detail, order, state, facts)

    def _answer_from_row(self, order: JobOrder, state: _OrderState,
                         shown: str | None) -> OrderResult | None:
        """The order's result from the status its list row shows, when the row is enough:
        the profile lists that status and `before_submit` records an answer from it that
        needs no person. Otherwise None, and the detail page is read: the order may be
        cancellable (the detail page is where cancelling starts), the profile does not know
        the status, or a person would have to look (the detail page shows more)."""
        if shown is None or not self.profile.lists_status(shown):
            return None
        decided = before_submit(self.profile.status_meaning(shown), shown,
                                intent_unknown=state.intent_unknown, dry_run=self.dry_run)
        if decided.act != Act.RECORD or decided.recorded == Outcome.NEEDS_REVIEW:
            return None
        if state.status_before is None:
            state.status_before = shown
        return self._done(order, state, decided.recorded,
                          OrderFacts(order_no=order.order_no, status=shown), error=decided.why)

    async def _cancel(self, detail: OrderDetailPage, order: JobOrder, state: _OrderState,
                      before: OrderFacts) -> OrderResult:
        dialog = await detail.open_cancel_dialog()
        await dialog.fill(self.profile.reason_label(order.reason), order.note,
                          reason_key=f"reasons.{order.reason}")
        if self.dry_run:
            shot = await self._screenshot(detail.page, order, "dry-run")
            preview = self._result(order, Outcome.WOULD_SUBMIT, attempts=state.attempts,
                                   retries=state.retries, status_before=before.status,
                                   status_after=before.status, artifacts=[shot])
            if self.profile.fine is not None:
                preview.fine = self.profile.fine.estimate(before.status, before.amount)
            if order.message:  # sent after a real submit; shown here
                preview.message = self._message_text(order)
            return preview
        self.ledger.record_intent(self.run_id, self.key, order.order_no, order.reason,
                                  order.note, before.status,
                                  fence=self.guard() if self.guard else None)
        state.intent_unknown = True
        # A worker frozen after its intent (SIGSTOP, a long GC pause) must not click once
        # another holds the account: the lock is checked again right before the click.
        await dialog.submit_and_confirm(before_send=self.guard or (lambda: None))
        after = await detail.read()
        state.notice = " ".join(t for t in (after.notice, after.alert) if t) or None
        if self.settings.browser.evidence == "always":
            state.shots.append(await self._screenshot(detail.page, order, "submitted",
                                                      full_page=False))
        said = self.profile.notice_meaning(after.notice, after.alert)
        notice, words = said if said else (None, None)
        decided = after_submit(self.profile.status_meaning(after.status), notice,
                               status=after.status,
                               words=after.alert or after.notice or words)
        if decided.act == Act.RECORD:
            if decided.clears_intent:  # the portal said no: nothing was done
                state.intent_unknown = False
            return self._done(order, state, decided.recorded, after, error=decided.why)
        # The page after the submit does not say what happened (e.g. a session that expired
        # under the form sent us back to the detail page): read the order back, as after
        # any failed submit. intent_unknown stays set, so nothing is submitted blindly.
        raise TransientError(decided.why or "the portal's answer to the submit is unclear",
                             step="confirm", page=detail.page_name, reason="unclear answer")

    def _done(self, order: JobOrder, state: _OrderState, outcome: Outcome, facts: OrderFacts,
              error: str | None = None) -> OrderResult:
        return self._result(order, outcome, attempts=state.attempts, retries=state.retries,
                            status_before=state.status_before or facts.status,
                            status_after=facts.status, error=error, notice=state.notice,
                            artifacts=list(state.shots))

    async def _fail(self, tab: _Tab, order: JobOrder, state: _OrderState,
                    exc: BaseException) -> OrderResult:
        artifacts = await self._evidence(tab.last, order)
        tab.list_page = None  # start the next order from a known page
        message = first_line(exc)
        if isinstance(exc, ProfileMismatch):
            message = (f"{message}. The portal's page has changed or the profile "
                       f"({self.profile.name}) is out of date: run `dhbot check`")
        decided = after_failure(state.intent_unknown, message)
        return self._result(order, decided.recorded, attempts=state.attempts,
                            retries=state.retries + tab.retry.count,
                            status_before=state.status_before, error=decided.why,
                            artifacts=artifacts)

    async def _screenshot(self, page: Page, order: JobOrder, tag: str,
                          full_page: bool = True) -> str:
        path = self.run_dir / "artifacts" / f"{order.order_no}-{tag}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = await self._page(page).screenshot(full_page=full_page)
        write_private(path, data)
        return str(path.relative_to(self.run_dir))

    def _page(self, page: Page) -> PortalPage:
        return PortalPage(page, self.profile, self.settings.portal.base_url)

    async def _evidence(self, page: Page, order: JobOrder) -> list[str]:
        """Screenshot and HTML of the tab as it is, for a person to look at."""
        out: list[str] = []
        try:
            out.append(await self._screenshot(page, order, "failed"))
            html_path = self.run_dir / "artifacts" / f"{order.order_no}-failed.html"
            html = redactor.redact(await self._page(page).html())
            write_private(html_path, html.encode())
            out.append(str(html_path.relative_to(self.run_dir)))
        except Exception as exc:  # evidence is best effort; the failure itself is recorded
            logger.debug("could not keep evidence for {}: {}", order.order_no, exc)
        return out


@dataclass
class _Work:
    order: JobOrder
    kind: Literal["cancel", "sync", "message"]
    prior: LedgerRow | None = None


@dataclass
class _OrderState:
    intent_unknown: bool = False
    attempts: int = 0
    retries: int = 0
    relogins: int = 0
    status_before: str | None = None
    notice: str | None = None  # what the portal said after our submit
    shots: list[str] = field(default_factory=list)  # evidence of a submit (evidence: always)
