"""`dhbot check`: visit every page the flows use and verify that each key of the portal
profile resolves, without changing anything in the portal.

The walk asks the page objects for their targets (`PortalPage.target(key)`), the same
locators the flows act on, so a key the check finds is a key the flows find. Nothing is
ever sent: every request other than GET/HEAD is aborted in the browser once signed in (and
the cancel submit by the dry run's guard on top), the confirmation (确定, or the browser's
confirm(), which is dismissed) and 发送 are never pressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import click
from loguru import logger
from playwright.async_api import BrowserContext, Dialog, Locator, Page, Route
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.browser import BrowserHost
from bot.config import AccountConfig, LoadedSettings
from bot.context import config_options, load_context
from bot.errors import ConfigError, FlowError
from bot.inputs import check_writable
from bot.lock import account_lock
from bot.pacing import Pacer, backoff
from bot.session import AccountSession
from bot.suggest import Candidate, candidates, prefer_href, suggested_profile
from flows.base_page import PortalPage, StepRetry
from flows.cancel_dialog import CancelDialog
from flows.home_page import HomePage
from flows.locators import Root, Target, squeeze, text_pattern
from flows.order_detail_page import OrderDetailPage
from flows.order_list_page import OrderListPage
from flows.profile import Profile

CheckStatus = Literal["found", "missing", "ambiguous", "skipped"]

# A search that matches no order, to see list.empty_text.
NO_SUCH_ORDER = "0000000000"
# Orders opened at most while looking for one that shows the cancel button.
MAX_ORDERS = 10
# Menu links tried at most when a navigation step is not found, to reach the list another way.
MAX_MENU_GUESSES = 8
NOTE_TEXT = "dhbot check: not submitted"
# Width of the key column in the text output; longer keys (notices) overflow it.
KEY_COLUMNS = 30
ABSENT = "declared absent in the profile (null)"

# Keys that only appear after an action the check never takes.
AFTER_ACTION: dict[str, str] = {
    "login.error_text": "shown only after a refused login",
    "detail.notice": "shown only after a cancel submit",
    "detail.alert": "shown only after a refused action",
    "dialog.error": "shown only when 提交 finds a mistake in the form",
    "message.sent_text": "shown only after 发送",
    "message.rate_limited_text": "shown only after 发送",
    "errors.server_error_text": "shown only when the portal fails",
    "errors.rate_limited_text": "shown only when the portal throttles",
    "paths.cancel_submit_glob": "used to block the cancel submit, never visited",
}
# Optional keys whose null means "use the default", not "the portal has none".
DEFAULTED: dict[str, str] = {
    "list.ready": "default: an order link in list.table or list.empty_text",
    "list.status_column": "default: every order's status is read on its detail page",
    "detail.fields.within": "default: the whole page",
    "dialog.reason_options": "default: inside dialog.container",
    "dialog.any_open": "default: dialog.container alone",
}


@dataclass
class KeyCheck:
    """How one profile key resolved, and where."""

    key: str
    status: CheckStatus
    looked_for: str
    page: str = ""
    count: int = 0
    note: str = ""
    # Text the portal shows for the element when it differs from the profile's (spaces).
    shown_as: str = ""
    suggestions: list[Candidate] = field(default_factory=list)

    def line(self, key_width: int) -> str:
        """One line of the text output, keys padded to `key_width` terminal columns."""
        pad = " " * max(0, key_width - _columns(self.key))
        text = f"{self.status:<10}{self.key}{pad}  {self.looked_for}"
        if self.status == "ambiguous":
            text += f"  ({self.count} matches on {self.page})"
        elif self.status == "missing":
            text += f"  (on {self.page})"
        if self.shown_as:
            text += f"  (shown as {self.shown_as})"
        if self.note:
            text += f"  — {self.note}"
        return text


def _columns(text: str) -> int:
    """Terminal columns of a text: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def profile_keys(profile: Profile) -> Iterator[tuple[str, str]]:
    """Every (key, label or selector) of the profile the check reports, in profile order."""
    yield "paths.entry", profile.paths.entry
    yield "paths.login", profile.paths.login
    yield "paths.cancel_submit_glob", profile.paths.cancel_submit_glob
    fields = profile.detail.fields
    for key, spec, _kind in profile.elements():
        yield key, "null" if spec is None else spec.describe()
        if key == "detail.fields.within":
            for name in ("order_no", "status", "review_result", "review_comment",
                         "cancel_date"):
                value = getattr(fields, name)
                yield f"detail.fields.{name}", "null" if value is None else value
        if key == "dialog.submit_button":
            confirm = profile.dialog.confirm
            if confirm is None:
                yield "dialog.confirm", "null"
            elif confirm.native:
                yield "dialog.confirm.native", "the browser's confirm()"
    if profile.message is not None:
        yield "message.sent_text", profile.message.sent_text
        yield "message.rate_limited_text", profile.message.rate_limited_text
    yield "errors.server_error_text", profile.errors.server_error_text
    yield "errors.rate_limited_text", profile.errors.rate_limited_text
    for code, label in profile.reasons.items():
        yield f"reasons.{code}", label
    for status in profile.statuses:
        yield f"statuses.{status}", status
    for notice in profile.notices:
        yield f"notices.{notice}", notice


class CheckReport:
    """The checks so far, keyed by profile key; keys never reached end up `skipped`."""

    def __init__(self, profile: Profile) -> None:
        self.looked_for = dict(profile_keys(profile))
        self.results: dict[str, KeyCheck] = {}
        native = profile.dialog.confirm is not None and profile.dialog.confirm.native
        for key, value in self.looked_for.items():
            if value == "null":
                why = DEFAULTED.get(key, ABSENT)
                if native and key.startswith("dialog.confirm."):
                    why = "the confirmation is the browser's confirm()"
                self.results[key] = KeyCheck(key, "skipped", value, note=why)

    def add(self, result: KeyCheck) -> KeyCheck:
        """Record a result; a later result beats an earlier `skipped`."""
        old = self.results.get(result.key)
        if old is None or (old.status == "skipped" and result.status != "skipped"
                           and old.looked_for != "null"):
            self.results[result.key] = result
        return self.results[result.key]

    def skip(self, key: str, why: str, page: str = "") -> None:
        """Mark a key as not checkable here, unless it already has a result."""
        if key in self.looked_for:
            self.add(KeyCheck(key, "skipped", self.looked_for[key], page, note=why))

    def skip_prefix(self, prefix: str, why: str) -> None:
        """Skip every key under a prefix (e.g. `dialog.`) that has no result yet."""
        for key in self.looked_for:
            if key.startswith(prefix):
                self.skip(key, why)

    def status(self, key: str) -> CheckStatus | None:
        """The key's status so far (None when unchecked)."""
        found = self.results.get(key)
        return found.status if found else None

    def done(self, stopped: str | None = None) -> list[KeyCheck]:
        """Every profile key in profile order, unchecked ones as `skipped` with a reason."""
        for key in self.looked_for:
            if key.startswith("notices."):
                self.skip(key, "shown only after a cancel submit")
            self.skip(key, AFTER_ACTION.get(key) or (f"not reached: {stopped}" if stopped
                                                     else "not reached"))
        return [self.results[key] for key in self.looked_for]


class _Probe(PortalPage):
    """A portal tab the check looks at: probe keys, follow links, never submit."""

    def __init__(self, base: PortalPage, page_name: str, suggest: bool) -> None:
        super().__init__(base.page, base.profile, base.base_url, base.pacer,
                         base.element_timeout_ms, base.retry)
        self.page_name = page_name
        self.suggest = suggest

    @property
    def where(self) -> str:
        """The page's name and path, for the report."""
        parts = urlsplit(self.page.url)
        return f"{self.page_name} {parts.path}{'?' + parts.query if parts.query else ''}"

    async def probe(self, key: str, *, root: Root | None = None, wait: bool = True,
                    many_ok: bool = False) -> KeyCheck:
        """Look for a key's element as the flows do: 0 shown missing, 1 found, more
        ambiguous (unless `many_ok`). `wait` gives the page the flows' element timeout."""
        target = self.target(key, root)
        if target is None:
            return KeyCheck(key, "skipped", "null", self.where, note=ABSENT)
        if wait:
            with contextlib.suppress(PlaywrightTimeoutError):
                await target.wait_shown(self.element_timeout_ms)
        picked, count = await target.pick()
        result = KeyCheck(key, "found", target.looked_for, self.where, count)
        if picked is None:
            hidden = await target.anything.count()
            result.status = "missing"
            result.note = f"{hidden} hidden match(es)" if hidden else ""
            if self.suggest:
                result.suggestions = await candidates(self.page, key, target.kind,
                                                      target.spec)
        elif count > 1 and not many_ok:
            result.status = "ambiguous"
        else:
            result.shown_as = await _shown_text(target, picked)
        return result

    async def follow(self, step: str, action: Callable[[], Awaitable[Any]]) -> None:
        """Run an action that loads a new page (a click, Enter), checking the answer."""
        await self._navigate(step, action)


async def _shown_text(target: Target, picked: Any) -> str:
    """The element's text when it differs from the profile's plain text only in spacing."""
    wanted = target.looked_for
    try:
        shown = (await picked.first.inner_text(timeout=1_000)).strip()
    except PlaywrightTimeoutError:
        return ""
    if shown and shown != wanted and squeeze(shown) == squeeze(wanted):
        return shown
    return ""


async def _guard(context: BrowserContext, blocked: list[str]) -> None:
    """Abort every request that could change something: only GET and HEAD go out."""

    async def gate(route: Route) -> None:
        if route.request.method in ("GET", "HEAD"):
            await route.fallback()
        else:
            blocked.append(f"{route.request.method} {route.request.url}")
            logger.warning("check: blocked {} {}", route.request.method, route.request.url)
            await route.abort("blockedbyclient")

    await context.route("**/*", gate)


@dataclass
class _Row:
    """An order link of the list, with the text of its row."""

    order_no: str
    url: str
    text: str
    status: str | None = None  # under list.status_column, read as the flows read it


class ProfileChecker:
    """Walks the portal as the flows do and records how every profile key resolved."""

    def __init__(self, host: BrowserHost, loaded: LoadedSettings, account: AccountConfig,
                 profile: Profile, suggest: bool = False) -> None:
        self.host = host
        self.settings = loaded.settings
        self.account = account
        self.profile = profile
        self.suggest = suggest
        self.report = CheckReport(profile)
        self.pacer = Pacer(self.settings.concurrency.requests_per_minute)
        retry = self.settings.retry
        self.retry = StepRetry(attempts=retry.attempts,
                               backoff=lambda attempt: backoff(retry, attempt),
                               on_rate_limited=self.pacer.slow_down)
        self.base_url = self.settings.portal.base_url
        self.timeout_ms = self.settings.browser.timeout_s * 1000
        self.blocked: list[str] = []
        self.statuses_seen: dict[str, int] = {}
        self.stopped: str | None = None

    def _tab(self, page: Page, name: str) -> _Probe:
        base = PortalPage(page, self.profile, self.base_url, self.pacer, self.timeout_ms,
                          self.retry)
        return _Probe(base, name, self.suggest)

    async def run(self) -> list[KeyCheck]:
        """The whole walk; a page that fails to load ends it, the rest is `skipped`."""
        stopped: str | None = None
        try:
            await self._check_login()
            await self._check_signed_in()
        except FlowError as exc:
            stopped = str(exc)
            logger.error("check stopped: {}", exc)
        if self.blocked:
            logger.warning("check: {} request(s) were blocked and never reached the portal",
                           len(self.blocked))
        self.stopped = stopped
        return self.report.done(stopped)

    # --- signed out -------------------------------------------------------------------

    async def _check_login(self) -> None:
        """Entry page and login form in a fresh context without cookies; never submits."""
        assert self.host.browser is not None
        context = await self.host.browser.new_context(locale="zh-CN",
                                                      timezone_id="Asia/Shanghai")
        context.set_default_timeout(self.timeout_ms)
        await _guard(context, self.blocked)
        try:
            # Named "login" so that an entry page redirecting to the login form is no error.
            tab = self._tab(await context.new_page(), "login")
            rep = self.report
            await tab.goto("open portal", tab.url_for(self.profile.paths.entry))
            tab.page_name = "entry"
            rep.add(KeyCheck("paths.entry", "found", self.profile.paths.entry, tab.where, 1))
            if tab.on_login_page():
                rep.skip("login.open_link", "the entry page showed the login form itself")
            else:
                open_link = rep.add(await tab.probe("login.open_link"))
                tab.page_name = "login"
                if open_link.status == "found":
                    link = await tab.require("login.open_link", "open login")
                    await tab.follow("open login", tab.press(link))
                    on_login = tab.on_login_page()
                    rep.add(KeyCheck("paths.login", "found" if on_login else "missing",
                                     self.profile.paths.login, tab.where, int(on_login),
                                     "" if on_login else "the login link led elsewhere"))
            tab.page_name = "login"
            if not tab.on_login_page():
                await tab.goto("open login", tab.url_for(self.profile.paths.login))
            if tab.on_login_page():
                rep.add(KeyCheck("paths.login", "found", self.profile.paths.login, tab.where, 1))
            for key in ("login.username_label", "login.password_label", "login.submit_button"):
                rep.add(await tab.probe(key))
            captcha = await tab.probe("login.captcha_text", wait=False, many_ok=True)
            if captcha.status == "found" or captcha.looked_for == "null":
                rep.add(captcha)
            else:
                rep.skip("login.captcha_text", "not shown now (the portal asks only sometimes)",
                         tab.where)
        finally:
            await context.close()

    # --- signed in --------------------------------------------------------------------

    async def _check_signed_in(self) -> None:
        session = AccountSession(self.host, self.settings, self.account, self.profile,
                                 self.pacer, self.retry)
        # The dry run's cancel-submit guard, and under it nothing but GET once signed in.
        await session.open(block_submit=True)
        try:
            page = await session.new_page()
            await session.sign_in(page)
            assert session.context is not None
            await _guard(session.context, self.blocked)
            list_page = await self._check_nav(page)
            if list_page is None:
                why = "could not reach the order list"
                for prefix in ("list.", "detail.", "dialog.", "reasons.", "message."):
                    self.report.skip_prefix(prefix, why)
                return
            rows = await self._check_list(list_page)
            await self._check_orders(page, rows)
        finally:
            self.blocked += session.blocked_urls
            await session.close()

    async def _check_nav(self, page: Page) -> OrderListPage | None:
        """Entry → the navigation steps → the order list, going on by the menu's links
        when a step is not found."""
        rep = self.report
        tab = self._tab(page, "entry")
        await tab.goto("open portal", tab.url_for(self.profile.paths.entry))
        rep.add(await tab.probe("login.signed_in_marker"))
        tab.page_name = "home"
        rep.add(await tab.probe("home.heading"))
        home = HomePage(page, self.profile, self.base_url, self.pacer, self.timeout_ms,
                        self.retry)
        for index in range(len(self.profile.nav.to_orders)):
            key = f"nav.to_orders.{index}"
            result = rep.add(await tab.probe(key))
            if result.status != "found":
                for later in range(index + 1, len(self.profile.nav.to_orders)):
                    rep.skip(f"nav.to_orders.{later}", f"needs {key}")
                orders = await self._guess_order_list(tab)
                if orders is not None:
                    result.note = (f"continued to the order list at "
                                   f"{urlsplit(orders.list_url).path}")
                    result.suggestions = prefer_href(result.suggestions, orders.list_url,
                                                     "leads to the order list")
                return orders
            await home.take_step(index)
        orders = OrderListPage(page, self.profile, self.base_url, self.pacer, self.timeout_ms,
                               self.retry)
        orders.list_url, orders.ready = page.url, True
        return orders

    async def _guess_order_list(self, tab: _Probe) -> OrderListPage | None:
        """Follow the page's links until one shows the order list's search field."""
        hrefs: list[str] = await tab.page.locator("a[href]").evaluate_all(
            "links => links.map(a => a.href)")
        base = urlsplit(tab.url_for("/"))
        here = tab.page.url.split("#")[0]
        candidates_: list[str] = []
        for href in hrefs:
            parts = urlsplit(href)
            url = href.split("#")[0]
            if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or url == here \
                    or url in candidates_ or "logout" in parts.path:
                continue
            candidates_.append(url)
        candidates_.sort(key=lambda u: bool(urlsplit(u).query))  # plain lists before filters
        for url in candidates_[:MAX_MENU_GUESSES]:
            await tab.goto("look for the order list", url)
            search = tab.target("list.search_label")
            if search is not None and await search.shown.count():
                orders = OrderListPage(tab.page, self.profile, self.base_url, self.pacer,
                                       self.timeout_ms, self.retry)
                orders.list_url, orders.ready = tab.page.url, True
                return orders
        return None

    async def _check_list(self, orders: OrderListPage) -> list[_Row]:
        """The order list: heading, table, paging, and a search that finds nothing."""
        rep = self.report
        tab = _Probe(orders, "order list", self.suggest)
        rep.add(await tab.probe("list.heading"))
        rep.add(await tab.probe("list.ready", many_ok=True))
        with contextlib.suppress(FlowError):
            await orders.wait_ready("read the list")
        table = rep.add(await tab.probe("list.table", many_ok=True))
        rows = await self._rows(orders) if table.status == "found" else []
        if table.status == "found":
            await self._check_status_column(orders, tab, rows)
        else:
            rep.skip("list.status_column", "needs list.table", tab.where)
        next_page = await tab.probe("list.next_page", wait=False, many_ok=True)
        if next_page.status == "found" or next_page.looked_for == "null":
            rep.add(next_page)
        else:
            rep.skip("list.next_page", f"the list has one page ({len(rows)} orders)",
                     tab.where)
        for row in rows:
            self._saw_statuses(row.text)
        box = rep.add(await tab.probe("list.search_label"))
        button = rep.add(await tab.probe("list.search_button"))
        if box.status != "found":
            rep.skip("list.empty_text", "needs list.search_label to search", tab.where)
            return rows
        if button.status == "found" or self.profile.list.search_button is None:
            await orders.search(NO_SUCH_ORDER)
        else:  # a search form also submits on Enter: continue the walk that way
            field_ = await orders.require("list.search_label", "search")
            await field_.fill(NO_SUCH_ORDER)
            await tab.follow("search", lambda: field_.press("Enter"))
        rep.add(await tab.probe("list.empty_text", many_ok=True))
        return rows

    async def _check_status_column(self, orders: OrderListPage, tab: _Probe,
                                   rows: list[_Row]) -> None:
        """list.status_column: its header in the table, and the status of the first rows,
        read as the flows read it (compared with their detail pages in `_check_orders`)."""
        rep = self.report
        if self.profile.list.status_column is None:
            return
        if not rows:
            rep.skip("list.status_column", "no order row to read a status from", tab.where)
            return
        result = rep.add(await tab.probe("list.status_column", root=orders.table().shown.first))
        if result.status != "found":
            return
        for row in rows[:MAX_ORDERS]:
            try:
                row.status = await orders.row_status(row.order_no)
            except FlowError as exc:
                result.status, result.note = "missing", str(exc)
                return
        listed = self.profile.lists_status
        unknown = sorted({r.status for r in rows if r.status and not listed(r.status)})
        result.note = f"order {rows[0].order_no} shows {rows[0].status}"
        if unknown:
            result.note += (f"; not in statuses, so these open their detail page: "
                            f"{', '.join(unknown)}")

    def _saw_statuses(self, text: str) -> None:
        shown = squeeze(text)
        for status in self.profile.statuses:
            if squeeze(status) and squeeze(status) in shown:
                self.statuses_seen[status] = self.statuses_seen.get(status, 0) + 1

    async def _rows(self, orders: OrderListPage) -> list[_Row]:
        """Order links of the table with their row's text; cancellable-looking rows first."""
        pattern = self.profile.order_no_pattern
        found: list[list[str]] = await orders.table().anything.get_by_role(
            "link").evaluate_all("""links => links.map(a => [a.textContent.trim(), a.href,
                (a.closest('tr') || a).innerText])""")
        rows = [_Row(no, url, text) for no, url, text in found if re.match(pattern, no)]
        cancellable = [squeeze(s) for s, m in self.profile.statuses.items()
                       if m == "cancellable"]
        rows.sort(key=lambda r: not any(s in squeeze(r.text) for s in cancellable))
        return rows

    # --- orders, the cancel dialog and 联系买家 -----------------------------------------

    async def _check_orders(self, page: Page, rows: list[_Row]) -> None:
        """Open orders until one shows the cancel button; check its dialog and 联系买家."""
        rep = self.report
        if not rows:
            why = "no order link in list.table to open"
            for prefix in ("detail.", "dialog.", "reasons.", "message."):
                rep.skip_prefix(prefix, why)
            return
        detail = OrderDetailPage(page, self.profile, self.base_url, self.pacer,
                                 self.timeout_ms, self.retry)
        tab = _Probe(detail, "order detail", self.suggest)
        found_at: str | None = None
        for index, row in enumerate(rows[:MAX_ORDERS]):
            await tab.goto("open order", row.url)
            with contextlib.suppress(FlowError):
                await detail.fields(wait_for="status")
            shown = await detail.fields()
            if index == 0:
                await self._check_detail(tab, shown)
            self._check_conditional_fields(tab, shown)
            status = shown.get("status")
            if status:
                self._saw_statuses(status)
                self._compare_row_status(row, status)
            cancellable = status is not None and \
                self.profile.status_meaning(status) == "cancellable"
            button = await tab.probe("detail.cancel_button", wait=cancellable or status is None)
            if button.status != "missing" or cancellable:
                button.note = f"order {row.order_no} ({status or 'status unknown'})"
                rep.add(button)
                found_at = row.order_no
                break
        if found_at is None:
            why = f"none of the {min(len(rows), MAX_ORDERS)} orders opened was cancellable"
            rep.skip("detail.cancel_button", why)
            rep.skip_prefix("dialog.", why)
            rep.skip_prefix("reasons.", why)
        elif rep.status("detail.cancel_button") == "found":
            await self._check_dialog(
                tab, await detail.require("detail.cancel_button", "open cancel dialog"))
        elif (opener := await self._suggested_opener(tab)) is not None:
            await self._check_dialog(tab, opener)
        else:
            why = "needs detail.cancel_button"
            rep.skip_prefix("dialog.", why)
            rep.skip_prefix("reasons.", why)
        await self._check_contact(detail)
        for status in self.profile.statuses:
            if status in self.statuses_seen:
                rep.add(KeyCheck(f"statuses.{status}", "found", status, "order list/detail",
                                 self.statuses_seen[status]))
            else:
                rep.skip(f"statuses.{status}", "no order in this status was seen")

    def _compare_row_status(self, row: _Row, status: str) -> None:
        """A row status the profile lists must mean what the detail page's status means: the
        flows answer such orders from the row alone."""
        if row.status is None or not self.profile.lists_status(row.status):
            return
        meaning = self.profile.status_meaning
        result = self.report.results.get("list.status_column")
        if meaning(row.status) != meaning(status) and result is not None:
            result.status = "missing"
            result.note = (f"order {row.order_no}: the list shows {row.status} "
                           f"({meaning(row.status)}), its detail page {status} "
                           f"({meaning(status)})")

    async def _check_detail(self, tab: _Probe, shown: dict[str, str]) -> None:
        rep = self.report
        rep.add(await tab.probe("detail.heading"))
        within = rep.add(await tab.probe("detail.fields.within"))
        labels = self.profile.detail.fields
        for name in ("order_no", "status"):
            label = getattr(labels, name)
            if label is None:
                continue
            ok = bool(shown.get(name))
            rep.add(KeyCheck(f"detail.fields.{name}", "found" if ok else "missing", label,
                             tab.where, int(ok),
                             f"value {shown[name]}" if ok else
                             f"no element shows {label} with a value"
                             + (" inside detail.fields.within" if within.status == "found"
                                else "")))
        rep.add(await tab.probe("detail.contact_button", many_ok=True))

    def _check_conditional_fields(self, tab: _Probe, shown: dict[str, str]) -> None:
        """Fields shown only for some orders: found when present, else skipped."""
        labels = self.profile.detail.fields
        for name in ("review_result", "review_comment", "cancel_date"):
            label = getattr(labels, name)
            if label is None:
                continue
            key = f"detail.fields.{name}"
            if shown.get(name):
                self.report.add(KeyCheck(key, "found", label, tab.where, 1,
                                         f"value {shown[name]}"))
            else:
                self.report.skip(key, "shown only for some orders; none of those opened",
                                 tab.where)

    async def _suggested_opener(self, tab: _Probe) -> Locator | None:
        """With --suggest, the best candidate for a missing cancel button, to go on into
        the dialog (safe: only GET requests leave the browser)."""
        result = self.report.results.get("detail.cancel_button")
        if not self.suggest or result is None or not result.suggestions:
            return None
        for cand in result.suggestions:
            if cand.href and not cand.href.lower().startswith("javascript:"):
                continue  # a link to another page cannot open the dialog
            name = text_pattern(cand.text)
            opener = tab.page.get_by_role("button", name=name).or_(
                tab.page.get_by_role("link", name=name)).filter(visible=True).first
            if await opener.count():
                result.note += f"; the dialog was opened with the suggested {cand.text}"
                return opener
        return None

    async def _check_dialog(self, tab: _Probe, opener: Locator) -> None:
        """The cancel dialog and its confirmation; 提交 only behind the guards, never the
        confirmation."""
        rep = self.report
        tab.page_name = "cancel dialog"
        await tab.press(opener)()
        rep.add(await tab.probe("dialog.any_open"))
        container = rep.add(await tab.probe("dialog.container"))
        if container.status != "found":
            why = "needs dialog.container"
            rep.skip_prefix("dialog.", why)
            rep.skip_prefix("reasons.", why)
            return
        dialog = CancelDialog(tab.page, self.profile, self.base_url, self.pacer,
                              self.timeout_ms, self.retry)
        scope = dialog.container()
        found: dict[str, bool] = {}
        for key in ("dialog.reason_label", "dialog.note_label", "dialog.submit_button"):
            found[key] = rep.add(await tab.probe(key, root=scope)).status == "found"
        if found["dialog.reason_label"]:
            await self._check_reasons(tab, dialog)
        else:
            rep.skip_prefix("reasons.", "needs dialog.reason_label")
        if all(found.values()):
            await self._press_submit(tab, dialog)
        else:
            rep.skip_prefix("dialog.confirm", "shown only after 提交, which could not be pressed")
        await self._close_dialogs(tab)

    async def _check_reasons(self, tab: _Probe, dialog: CancelDialog) -> None:
        """Every reason label is an option of the <select> or of the custom dropdown."""
        rep = self.report
        control = await dialog.require("dialog.reason_label", "choose reason",
                                       dialog.container())
        if await control.evaluate("el => el.tagName") == "SELECT":
            options = [squeeze(t) for t in await control.locator("option").all_inner_texts()]
            rep.skip("dialog.reason_options", "the reason is a <select>")
            for code, label in self.profile.reasons.items():
                ok = squeeze(label) in options
                rep.add(KeyCheck(f"reasons.{code}", "found" if ok else "missing", label,
                                 tab.where, int(ok), "" if ok else
                                 f"options: {', '.join(o for o in options if o)}"))
            return
        await control.click()
        rep.add(await tab.probe("dialog.reason_options"))
        target = dialog.target("dialog.reason_options")
        scope = target.shown.first if target is not None else dialog.container()
        for code, label in self.profile.reasons.items():
            count = await scope.get_by_text(text_pattern(label)).filter(visible=True).count()
            rep.add(KeyCheck(f"reasons.{code}", "found" if count == 1 else
                             ("missing" if count == 0 else "ambiguous"), label, tab.where,
                             count))
        await control.click()  # close the list again

    async def _press_submit(self, tab: _Probe, dialog: CancelDialog) -> None:
        """Fill the dialog and press 提交 to see the confirmation; never confirm.

        A native confirm() is dismissed; the guards would stop any POST anyway.
        """
        rep = self.report
        confirm = self.profile.dialog.confirm
        await dialog.fill(next(iter(self.profile.reasons.values())), NOTE_TEXT)
        tab.page_name = "confirm dialog"
        if confirm is None:
            rep.skip("dialog.confirm", "the profile has no confirmation step; 提交 was not "
                     "pressed (it would send the form)")
            return
        try:
            shown = await dialog.press_submit_only()
        except FlowError as exc:
            for key in ("dialog.confirm.native", "dialog.confirm.container",
                        "dialog.confirm.button"):
                if key in rep.looked_for:
                    rep.add(KeyCheck(key, "missing", rep.looked_for[key], tab.where,
                                     note=str(exc)))
            return
        if isinstance(shown, Dialog):
            rep.add(KeyCheck("dialog.confirm.native", "found", "the browser's confirm()",
                             tab.where, 1, f"said {shown.message!r}; dismissed"))
            await shown.dismiss()
            await dialog.settle()
            return
        rep.add(await tab.probe("dialog.confirm.container"))
        rep.add(await tab.probe("dialog.confirm.button", root=shown))

    async def _close_dialogs(self, tab: _Probe) -> None:
        """Close whatever dialog is open with Escape, as a person would; never 确定."""
        target = tab.target("dialog.any_open") or tab.target("dialog.container")
        if target is None:
            return
        shown = target.shown
        for _ in range(3):
            if await shown.count() == 0:
                return
            await tab.page.keyboard.press("Escape")
            try:
                await shown.first.wait_for(state="hidden", timeout=1_000)
            except PlaywrightTimeoutError:
                continue

    async def _check_contact(self, detail: OrderDetailPage) -> None:
        """联系买家: the message form, never sent."""
        rep = self.report
        if self.profile.message is None or self.profile.detail.contact_button is None:
            return
        if rep.status("detail.contact_button") != "found":
            rep.skip_prefix("message.", "needs detail.contact_button")
            return
        message = await detail.open_contact()
        tab = _Probe(message, "contact buyer", self.suggest)
        for key in ("message.heading", "message.body_label", "message.send_button"):
            rep.add(await tab.probe(key))


async def _check(loaded: LoadedSettings, account: AccountConfig, profile: Profile,
                 suggest: bool) -> tuple[list[KeyCheck], str | None]:
    async with BrowserHost(loaded.settings) as host:
        checker = ProfileChecker(host, loaded, account, profile, suggest=suggest)
        results = await checker.run()
        return results, checker.stopped


def print_results(results: list[KeyCheck], stopped: str | None, as_json: bool,
                  suggest: bool = False) -> None:
    """The text lines (or JSON list) of the check; with `suggest`, candidates for every
    missing key."""
    if as_json:
        items = []
        for r in results:
            item = asdict(r)
            if not suggest:
                item.pop("suggestions")
            items.append(item)
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    width = min(max(_columns(r.key) for r in results), KEY_COLUMNS)
    for result in results:
        click.echo(result.line(width))
        if suggest and result.status == "missing":
            if not result.suggestions:
                click.echo(f"{'':10}  no candidate on this page")
            for cand in result.suggestions:
                click.echo(f"{'':10}  maybe {cand.text!r}  ({cand.why})")
    counts = {s: sum(r.status == s for r in results)
              for s in ("found", "missing", "ambiguous", "skipped")}
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    if stopped:
        click.echo(f"the check stopped early: {stopped}")


@click.command(name="check")
@config_options
@click.option("--account", help="Account name from the configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--suggest", is_flag=True,
              help="For every missing key, list the closest elements the page shows.")
@click.option("--write-profile", "write_profile", type=click.Path(dir_okay=False,
                                                                  path_type=Path),
              help="With --suggest: write a suggested profile to FILE for a person to review "
                   "(never used without review). Implies --suggest.")
def check_command(config_file: Path | None, verbose: bool, account: str | None,
                  as_json: bool, suggest: bool, write_profile: Path | None) -> None:
    """Check that every label and selector of the portal profile still matches the portal.

    Signs in (reusing the saved session), visits every page the flows use and opens the
    cancel dialog of one cancellable order, without changing anything: nothing is
    submitted or sent. Keys the profile declares absent (null) are skipped. Exit 0 when
    every checkable key was found, 1 otherwise.
    """
    context = load_context(config_file, {}, verbose)
    loaded, profile = context.loaded, context.profile
    profile_source = loaded.settings.portal.profile
    suggest = suggest or write_profile is not None
    if write_profile is not None:
        check_writable(write_profile, "--write-profile", ConfigError)
    acc = loaded.settings.portal.account(account)
    with account_lock(loaded.settings, acc.name):
        results, stopped = asyncio.run(_check(loaded, acc, profile, suggest))
    print_results(results, stopped, as_json, suggest)
    if write_profile is not None:
        text = suggested_profile(profile_source, results)
        write_profile.write_text(text, encoding="utf-8")
        click.echo(f"suggested profile written to {write_profile}: review the suggestions "
                   "listed at its top before using it", err=True)
    bad = stopped is not None or any(r.status in ("missing", "ambiguous") for r in results)
    sys.exit(1 if bad else 0)

