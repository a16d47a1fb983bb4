"""`dhbot check`: visit every page the flows use and verify that each label and selector of
the portal profile resolves, without changing anything in the portal.

The walk uses the flows' own locator kinds (exact role names, exact labels, CSS for `*_css`
keys), so a key the check finds is a key the flows find. Nothing is ever sent: every request
other than GET/HEAD is aborted in the browser once signed in (and the cancel submit by the
dry run's guard on top), 确定 and 发送 are never pressed, and the cancel dialog is closed with
Escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import click
from loguru import logger
from playwright.async_api import BrowserContext, Locator, Page, Route
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.config import AccountConfig, ConfigError, LoadedSettings, load_settings
from bot.errors import FlowError
from bot.execute import account_lock
from bot.log import setup_logging
from bot.runner import Pacer
from bot.session import AccountSession, BrowserHost
from flows.base_page import PortalPage, StepRetry
from flows.cancel_dialog import CancelDialog
from flows.home_page import HomePage
from flows.order_detail_page import OrderDetailPage
from flows.order_list_page import OrderListPage
from flows.profile import Profile, ProfileError, load_profile

CheckStatus = Literal["found", "missing", "ambiguous", "skipped"]

# A search that matches no order, to see list.empty_text.
NO_SUCH_ORDER = "0000000000"
# Orders opened at most while looking for one that shows the cancel button.
MAX_ORDERS = 10
# Menu links tried at most when 订单管理 is not found, to reach the list another way.
MAX_MENU_GUESSES = 6
# Rows of one order-list page; fewer rows means there is no next page to look for.
LIST_PAGE_SIZE = 20
NOTE_TEXT = "dhbot check: not submitted"
# Width of the key column in the text output; longer keys (notices) overflow it.
KEY_COLUMNS = 30

# Keys that only appear after an action the check never takes.
AFTER_ACTION: dict[str, str] = {
    "login.error_text": "shown only after a refused login",
    "detail.notice_css": "shown only after a cancel submit",
    "detail.alert_css": "shown only after a failed action",
    "message.sent_text": "shown only after 发送",
    "message.rate_limited_text": "shown only after 发送",
    "errors.server_error_text": "shown only when the portal fails",
    "errors.rate_limited_text": "shown only when the portal throttles",
    "paths.cancel_submit_glob": "used to block the cancel submit, never visited",
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

    def line(self, key_width: int) -> str:
        """One line of the text output, keys padded to `key_width` terminal columns."""
        pad = " " * max(0, key_width - _columns(self.key))
        text = f"{self.status:<9}{self.key}{pad}  {self.looked_for}"
        if self.status == "ambiguous":
            text += f"  ({self.count} matches on {self.page})"
        elif self.status == "missing":
            text += f"  (on {self.page})"
        if self.note:
            text += f"  — {self.note}"
        return text


def _columns(text: str) -> int:
    """Terminal columns of a text: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def profile_keys(profile: Profile) -> Iterator[tuple[str, str]]:
    """Every (key, label or selector) of the profile the portal shows, in profile order."""

    def flatten(prefix: str, data: dict[str, Any]) -> Iterator[tuple[str, str]]:
        for name, value in data.items():
            if isinstance(value, dict):
                yield from flatten(f"{prefix}.{name}", value)
            else:
                yield f"{prefix}.{name}", str(value)

    for section in ("paths", "login", "nav", "home", "list", "detail", "dialog", "message",
                    "errors"):
        yield from flatten(section, getattr(profile, section).model_dump())
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

    def add(self, result: KeyCheck) -> KeyCheck:
        """Record a result; a later `found` on another page beats an earlier `skipped`."""
        old = self.results.get(result.key)
        if old is None or (old.status == "skipped" and result.status != "skipped"):
            self.results[result.key] = result
        return self.results[result.key]

    def skip(self, key: str, why: str, page: str = "") -> None:
        """Mark a key as not checkable here, unless it already has a result."""
        self.add(KeyCheck(key, "skipped", self.looked_for[key], page, note=why))

    def skip_prefix(self, prefix: str, why: str) -> None:
        """Skip every key under a prefix (e.g. `dialog.`) that has no result yet."""
        for key in self.looked_for:
            if key.startswith(prefix):
                self.skip(key, why)

    def done(self, stopped: str | None = None) -> list[KeyCheck]:
        """Every profile key in profile order, unchecked ones as `skipped` with a reason."""
        for key in self.looked_for:
            if key.startswith("notices."):
                self.skip(key, "shown only after a cancel submit")
            self.skip(key, AFTER_ACTION.get(key) or (f"not reached: {stopped}" if stopped
                                                     else "not reached"))
        return [self.results[key] for key in self.looked_for]


class _Probe(PortalPage):
    """A portal tab the check looks at: count matches, follow links, never submit."""

    def __init__(self, base: PortalPage, page_name: str) -> None:
        super().__init__(base.page, base.profile, base.base_url, base.pacer,
                         base.element_timeout_ms, base.retry)
        self.page_name = page_name

    @property
    def where(self) -> str:
        """The page's name and path, for the report."""
        parts = urlsplit(self.page.url)
        return f"{self.page_name} {parts.path}{'?' + parts.query if parts.query else ''}"

    async def probe(self, key: str, looked_for: str, locator: Locator, *, wait: bool = True,
                    many_ok: bool = False, hidden: bool = False) -> KeyCheck:
        """Count a key's matches: 0 missing, 1 found, more ambiguous (unless `many_ok`).

        `wait` gives the page the flows' element timeout to show the first match; `hidden`
        accepts matches that are in the page but not shown (a dialog not opened).
        """
        if wait:
            with contextlib.suppress(PlaywrightTimeoutError):
                await locator.first.wait_for(state="attached" if hidden else "visible",
                                             timeout=self.element_timeout_ms)
        count = await locator.count()
        status: CheckStatus = "found"
        note = ""
        if count == 0:
            status = "missing"
        elif count > 1 and not many_ok:
            status = "ambiguous"
        elif not hidden and not await locator.first.is_visible():
            status, note = "missing", f"{count} hidden match(es)"
        return KeyCheck(key, status, looked_for, self.where, count, note)

    async def follow(self, step: str, action: Callable[[], Awaitable[Any]]) -> None:
        """Run an action that loads a new page (a click, Enter), checking the answer."""
        await self._navigate(step, action)


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


class ProfileChecker:
    """Walks the portal as the flows do and records how every profile key resolved."""

    def __init__(self, host: BrowserHost, loaded: LoadedSettings, account: AccountConfig,
                 profile: Profile) -> None:
        self.host = host
        self.settings = loaded.settings
        self.account = account
        self.profile = profile
        self.report = CheckReport(profile)
        self.pacer = Pacer(self.settings.concurrency.requests_per_minute)
        retry = self.settings.retry
        self.retry = StepRetry(attempts=retry.attempts,
                               backoff=lambda attempt: min(retry.backoff_s * 2 ** (attempt - 1),
                                                           retry.backoff_max_s),
                               on_rate_limited=self.pacer.slow_down)
        self.base_url = self.settings.portal.base_url
        self.timeout_ms = self.settings.browser.timeout_s * 1000
        self.blocked: list[str] = []
        self.statuses_seen: dict[str, int] = {}
        self.stopped: str | None = None

    def _tab(self, page: Page, name: str) -> _Probe:
        base = PortalPage(page, self.profile, self.base_url, self.pacer, self.timeout_ms,
                          self.retry)
        return _Probe(base, name)

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
        labels = self.profile.login
        context = await self.host.browser.new_context(locale="zh-CN",
                                                      timezone_id="Asia/Shanghai")
        context.set_default_timeout(self.timeout_ms)
        await _guard(context, self.blocked)
        try:
            # Named "login" so that an entry page redirecting to the login form is no error.
            tab = self._tab(await context.new_page(), "login")
            await tab.goto("open portal", tab.url_for(self.profile.paths.entry))
            rep = self.report
            tab.page_name = "entry"
            rep.add(KeyCheck("paths.entry", "found", self.profile.paths.entry, tab.where, 1))
            if tab.on_login_page():
                rep.skip("login.open_link", "the entry page showed the login form itself")
                open_link = KeyCheck("login.open_link", "skipped", labels.open_link)
            else:
                open_link = rep.add(await tab.probe("login.open_link", labels.open_link,
                                                    tab.link(labels.open_link)))
            tab.page_name = "login"
            if open_link.status == "found":
                await tab.follow("open login", tab.link(labels.open_link).click)
                on_login = tab.on_login_page()
                rep.add(KeyCheck("paths.login", "found" if on_login else "missing",
                                 self.profile.paths.login, tab.where, int(on_login),
                                 "" if on_login else "the login link led elsewhere"))
            if not tab.on_login_page():
                await tab.goto("open login", tab.url_for(self.profile.paths.login))
            rep.add(await tab.probe("login.username_label", labels.username_label,
                                    tab.labelled(labels.username_label)))
            rep.add(await tab.probe("login.password_label", labels.password_label,
                                    tab.labelled(labels.password_label)))
            rep.add(await tab.probe("login.submit_button", labels.submit_button,
                                    tab.button(labels.submit_button)))
            captcha = await tab.probe("login.captcha_text", labels.captcha_text,
                                      tab.page.get_by_text(labels.captcha_text), wait=False,
                                      many_ok=True)
            if captcha.status == "found":
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
            list_page = await self._check_home(page)
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

    async def _check_home(self, page: Page) -> OrderListPage | None:
        """Entry → 我的敦煌 → 订单管理, continuing by the menu's links if a label is gone."""
        nav, rep = self.profile.nav, self.report
        tab = self._tab(page, "entry")
        await tab.goto("open portal", tab.url_for(self.profile.paths.entry))
        marker = self.profile.login.signed_in_marker
        rep.add(await tab.probe("login.signed_in_marker", marker, tab.link(marker)))
        home = HomePage(page, self.profile, self.base_url, self.pacer, self.timeout_ms,
                        self.retry)
        my_dhgate = rep.add(await tab.probe("nav.my_dhgate", nav.my_dhgate,
                                            tab.link(nav.my_dhgate)))
        if my_dhgate.status == "found":
            await home.open()
        tab.page_name = "我的敦煌"
        heading = self.profile.home.heading
        rep.add(await tab.probe("home.heading", heading, tab.page.get_by_role(
            "heading", name=heading, exact=True)))
        # The flow takes the first 订单管理 link, so several are not ambiguous to it.
        menu = rep.add(await tab.probe("nav.order_management", nav.order_management,
                                       tab.link(nav.order_management), many_ok=True))
        if menu.status == "found":
            return await home.open_order_management()
        list_page = await self._guess_order_list(tab)
        if list_page is not None:
            menu.note = f"continued to the order list at {urlsplit(list_page.list_url).path}"
        return list_page

    async def _guess_order_list(self, tab: _Probe) -> OrderListPage | None:
        """Follow the page's navigation links until one shows the order list's search form."""
        hrefs: list[str] = await tab.page.get_by_role("navigation").get_by_role(
            "link").evaluate_all("links => links.map(a => a.href)")
        base = urlsplit(tab.url_for("/"))
        here = tab.page.url.split("#")[0]
        candidates: list[str] = []
        for href in hrefs:
            parts = urlsplit(href)
            url = href.split("#")[0]
            if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or url == here \
                    or url in candidates:
                continue
            candidates.append(url)
        candidates.sort(key=lambda u: bool(urlsplit(u).query))  # plain lists before filters
        labels = self.profile.list
        for url in candidates[:MAX_MENU_GUESSES]:
            await tab.goto("look for 订单管理", url)
            if await tab.labelled(labels.search_label).count() and \
                    await tab.page.locator(labels.table_css).count():
                orders = OrderListPage(tab.page, self.profile, self.base_url, self.pacer,
                                       self.timeout_ms, self.retry)
                orders.list_url, orders.ready = tab.page.url, True
                return orders
        return None

    async def _check_list(self, orders: OrderListPage) -> list[_Row]:
        """订单管理: heading, table, paging, and a search that finds nothing."""
        labels, rep = self.profile.list, self.report
        tab = _Probe(orders, "order list")
        rep.add(await tab.probe("list.heading", labels.heading, tab.page.get_by_role(
            "heading", name=labels.heading, exact=True)))
        table = rep.add(await tab.probe("list.table_css", labels.table_css,
                                        tab.page.locator(labels.table_css)))
        rows = await self._rows(tab) if table.status == "found" else []
        next_page = await tab.probe("list.next_page", labels.next_page,
                                    tab.link(labels.next_page), wait=False, many_ok=True)
        if next_page.status == "found" or len(rows) >= LIST_PAGE_SIZE:
            rep.add(next_page)
        else:
            rep.skip("list.next_page", f"the list has one page ({len(rows)} orders)",
                     tab.where)
        for row in rows:
            for status in self.profile.statuses:
                if status in row.text:
                    self.statuses_seen[status] = self.statuses_seen.get(status, 0) + 1
        box = rep.add(await tab.probe("list.search_label", labels.search_label,
                                      tab.labelled(labels.search_label)))
        button = rep.add(await tab.probe("list.search_button", labels.search_button,
                                         tab.button(labels.search_button)))
        if box.status != "found":
            rep.skip("list.empty_text", "needs list.search_label to search", tab.where)
            return rows
        if button.status == "found":
            await orders.search(NO_SUCH_ORDER)
        else:  # a search form also submits on Enter: continue the walk that way
            field = tab.labelled(labels.search_label)
            await field.fill(NO_SUCH_ORDER)
            await tab.follow("search", lambda: field.press("Enter"))
        rep.add(await tab.probe("list.empty_text", labels.empty_text,
                                tab.page.get_by_text(labels.empty_text), many_ok=True))
        return rows

    async def _rows(self, tab: _Probe) -> list[_Row]:
        """Order links of the table with their row's text; cancellable-looking rows first."""
        pattern = self.profile.order_no_pattern
        found: list[list[str]] = await tab.page.locator(self.profile.list.table_css).get_by_role(
            "link").evaluate_all("""links => links.map(a => [a.textContent.trim(), a.href,
                (a.closest('tr') || a).innerText])""")
        rows = [_Row(no, url, text) for no, url, text in found if re.match(pattern, no)]
        cancellable = [s for s, m in self.profile.statuses.items() if m == "cancellable"]
        rows.sort(key=lambda r: not any(s in r.text for s in cancellable))
        return rows

    # --- orders, the cancel dialog and 联系买家 -----------------------------------------

    async def _check_orders(self, page: Page, rows: list[_Row]) -> None:
        """Open orders until one shows the cancel button; check its dialog and 联系买家."""
        rep, detail_labels = self.report, self.profile.detail
        if not rows:
            why = "no order link in list.table_css to open"
            for prefix in ("detail.", "dialog.", "reasons.", "message."):
                rep.skip_prefix(prefix, why)
            return
        detail = OrderDetailPage(page, self.profile, self.base_url, self.pacer,
                                 self.timeout_ms, self.retry)
        tab = _Probe(detail, "order detail")
        cancellable_at: _Probe | None = None
        for index, row in enumerate(rows[:MAX_ORDERS]):
            await tab.goto("open order", row.url)
            if index == 0:
                await self._check_detail_fields(tab)
            await self._check_conditional(tab)
            status = (await detail.fields()).get(detail_labels.fields.status)
            if status in self.profile.statuses:
                self.statuses_seen[status] = self.statuses_seen.get(status, 0) + 1
            button = await tab.probe("detail.cancel_button", detail_labels.cancel_button,
                                     tab.button(detail_labels.cancel_button),
                                     wait=status is None
                                     or self.profile.status_meaning(status) == "cancellable")
            in_markup = await self._dialog(tab, hidden=True).count() > 0
            if button.status != "missing" or in_markup or \
                    (status and self.profile.status_meaning(status) == "cancellable"):
                button.note = f"order {row.order_no} ({status or 'status unknown'})"
                rep.add(button)
                cancellable_at = tab
                break
        if cancellable_at is None:
            why = f"none of the {min(len(rows), MAX_ORDERS)} orders opened was cancellable"
            rep.skip("detail.cancel_button", why)
            rep.skip_prefix("dialog.", why)
            rep.skip_prefix("reasons.", why)
        else:
            await self._check_dialog(tab, opened=rep.results["detail.cancel_button"].status
                                     == "found")
        await self._check_contact(detail)
        for status in self.profile.statuses:
            if status in self.statuses_seen:
                rep.add(KeyCheck(f"statuses.{status}", "found", status, "order list/detail",
                                 self.statuses_seen[status]))
            else:
                rep.skip(f"statuses.{status}", "no order in this status was seen")

    async def _check_detail_fields(self, tab: _Probe) -> None:
        labels, rep = self.profile.detail, self.report
        tab.page_name = "order detail"
        rep.add(await tab.probe("detail.heading", labels.heading, tab.page.get_by_role(
            "heading", name=labels.heading, exact=True)))
        rep.add(await tab.probe("detail.field_term_css", labels.field_term_css,
                                tab.page.locator(labels.field_term_css), many_ok=True))
        for name in ("order_no", "status"):
            label = getattr(labels.fields, name)
            rep.add(await tab.probe(f"detail.fields.{name}", label, tab.field_term(label)))
        shown = await tab.fields()
        read = [label for label in (labels.fields.order_no, labels.fields.status)
                if shown.get(label)]
        rep.add(KeyCheck("detail.field_value_xpath", "found" if read else "missing",
                         labels.field_value_xpath, tab.where, len(read),
                         "" if read else "no field value could be read"))
        # The flow takes the first 联系买家 link or button.
        contact = tab.link(labels.contact_button).or_(tab.button(labels.contact_button))
        rep.add(await tab.probe("detail.contact_button", labels.contact_button, contact,
                                many_ok=True))

    async def _check_conditional(self, tab: _Probe) -> None:
        """Fields and boxes shown only for some orders: found when present, else skipped."""
        labels, rep = self.profile.detail, self.report
        for name in ("review_result", "review_comment", "cancel_date"):
            label = getattr(labels.fields, name)
            result = await tab.probe(f"detail.fields.{name}", label, tab.field_term(label),
                                     wait=False)
            if result.status == "missing":
                rep.skip(result.key, "shown only for some orders; none of those opened",
                         tab.where)
            else:
                rep.add(result)
        for key, css in (("detail.notice_css", labels.notice_css),
                         ("detail.alert_css", labels.alert_css)):
            result = await tab.probe(key, css, tab.page.locator(css), wait=False, many_ok=True)
            if result.status == "found":
                rep.add(result)

    def _dialog(self, tab: _Probe, hidden: bool = False) -> Locator:
        return tab.page.get_by_role("dialog", name=self.profile.dialog.name, exact=True,
                                    include_hidden=hidden)

    async def _check_dialog(self, tab: _Probe, opened: bool) -> None:
        """The cancel dialog and its confirmation; 提交 only behind the guards, never 确定.

        Without a cancel button to press, the dialog is read from the page's markup.
        """
        labels, rep = self.profile.dialog, self.report
        hidden = not opened
        tab.page_name = "cancel dialog"
        if opened:
            await tab.button(self.profile.detail.cancel_button).click()
        elif await self._dialog(tab, hidden=True).count() == 0:
            # A dialog built only on click cannot be read without its button.
            why = "the dialog could not be opened without detail.cancel_button"
            rep.skip_prefix("dialog.", why)
            rep.skip_prefix("reasons.", why)
            return
        dialog = await tab.probe("dialog.name", labels.name, self._dialog(tab, hidden),
                                 hidden=hidden)
        note = "" if opened else "read from the page; the dialog could not be opened"
        dialog.note = dialog.note or note
        rep.add(dialog)
        if dialog.status != "found":
            why = "needs dialog.name"
            rep.skip_prefix("dialog.", why)
            rep.skip_prefix("reasons.", why)
            await self._close_dialogs(tab)
            return
        scope = self._dialog(tab, hidden)
        found: dict[str, bool] = {}
        for key, locator, looked_for in (
            ("dialog.reason_label", scope.get_by_label(labels.reason_label, exact=True),
             labels.reason_label),
            ("dialog.note_label", scope.get_by_label(labels.note_label, exact=True),
             labels.note_label),
            ("dialog.submit_button", scope.get_by_role("button", name=labels.submit_button,
                                                       exact=True, include_hidden=hidden),
             labels.submit_button),
        ):
            result = await tab.probe(key, looked_for, locator, hidden=hidden)
            result.note = result.note or note
            found[key] = rep.add(result).status == "found"
        if found["dialog.reason_label"]:
            select = scope.get_by_label(labels.reason_label, exact=True)
            for code, label in self.profile.reasons.items():
                option = select.locator("option").filter(
                    has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
                rep.add(await tab.probe(f"reasons.{code}", label, option, wait=False,
                                        hidden=True))
        else:
            rep.skip_prefix("reasons.", "needs dialog.reason_label")
        if opened and all(found.values()):
            await self._press_submit(tab)
        else:
            await self._read_confirm(tab, "提交 could not be pressed")
        await self._close_dialogs(tab)

    async def _press_submit(self, tab: _Probe) -> None:
        """Fill the dialog and press 提交 to see the confirmation; the guards stop any POST."""
        labels, rep = self.profile.dialog, self.report
        dialog = CancelDialog(tab.page, self.profile, self.base_url, self.pacer,
                              self.timeout_ms, self.retry)
        await dialog.fill(next(iter(self.profile.reasons.values())), NOTE_TEXT)
        await dialog.dialog.get_by_role("button", name=labels.submit_button,
                                        exact=True).click()
        tab.page_name = "confirm dialog"
        confirm = tab.page.get_by_role("dialog", name=labels.confirm_name, exact=True)
        shown = rep.add(await tab.probe("dialog.confirm_name", labels.confirm_name, confirm))
        if shown.status == "found":
            rep.add(await tab.probe("dialog.confirm_button", labels.confirm_button,
                                    confirm.get_by_role("button", name=labels.confirm_button,
                                                        exact=True)))
        else:
            problem = await dialog.validation_error()
            if problem:
                shown.note = f"the dialog said {problem}"
            rep.skip("dialog.confirm_button", "needs dialog.confirm_name")

    async def _read_confirm(self, tab: _Probe, why: str) -> None:
        """The confirmation read from the page's markup, when 提交 cannot be pressed."""
        labels, rep = self.profile.dialog, self.report
        confirm = tab.page.get_by_role("dialog", name=labels.confirm_name, exact=True,
                                       include_hidden=True)
        if await confirm.count() == 0:
            rep.skip("dialog.confirm_name", f"shown only after 提交; {why}")
            rep.skip("dialog.confirm_button", f"shown only after 提交; {why}")
            return
        note = f"read from the page; {why}"
        for key, looked_for, locator in (
            ("dialog.confirm_name", labels.confirm_name, confirm),
            ("dialog.confirm_button", labels.confirm_button,
             confirm.get_by_role("button", name=labels.confirm_button, exact=True,
                                 include_hidden=True)),
        ):
            result = await tab.probe(key, looked_for, locator, wait=False, hidden=True)
            result.note = result.note or note
            rep.add(result)

    async def _close_dialogs(self, tab: _Probe) -> None:
        """Close whatever dialog is open with Escape, as a person would; never 确定."""
        shown = tab.page.locator(self.profile.dialog.open_css).filter(visible=True)
        for _ in range(3):
            if await shown.count() == 0:
                return
            await tab.page.keyboard.press("Escape")
            try:
                await shown.first.wait_for(state="hidden", timeout=1_000)
            except PlaywrightTimeoutError:
                continue
        if await shown.count():
            logger.warning("check: a dialog stayed open after Escape")

    async def _check_contact(self, detail: OrderDetailPage) -> None:
        """联系买家: the message form, never sent."""
        labels, rep = self.profile.message, self.report
        if rep.results.get("detail.contact_button", KeyCheck("", "missing", "")).status \
                != "found":
            rep.skip_prefix("message.", "needs detail.contact_button")
            return
        message = await detail.open_contact()
        tab = _Probe(message, "contact buyer")
        rep.add(await tab.probe("message.heading", labels.heading, tab.page.get_by_role(
            "heading", name=labels.heading, exact=True)))
        rep.add(await tab.probe("message.body_label", labels.body_label,
                                tab.labelled(labels.body_label)))
        rep.add(await tab.probe("message.send_button", labels.send_button,
                                tab.button(labels.send_button)))


async def _check(loaded: LoadedSettings, account: AccountConfig,
                 profile: Profile) -> tuple[list[KeyCheck], str | None]:
    async with BrowserHost(loaded.settings) as host:
        checker = ProfileChecker(host, loaded, account, profile)
        results = await checker.run()
        return results, checker.stopped


def print_results(results: list[KeyCheck], stopped: str | None, as_json: bool) -> None:
    """The text lines (or JSON list) of the check."""
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2))
        return
    width = min(max(_columns(r.key) for r in results), KEY_COLUMNS)
    for result in results:
        click.echo(result.line(width))
    counts = {s: sum(r.status == s for r in results)
              for s in ("found", "missing", "ambiguous", "skipped")}
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    if stopped:
        click.echo(f"the check stopped early: {stopped}")


@click.command(name="check")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Configuration file (default: $DHBOT_CONFIG or ./config.yaml).")
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
@click.option("--account", help="Account name from the configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def check_command(config_file: Path | None, verbose: bool, account: str | None,
                  as_json: bool) -> None:
    """Check that every label and selector of the portal profile still matches the portal.

    Signs in (reusing the saved session), visits every page the flows use and opens the
    cancel dialog of one cancellable order, without changing anything: nothing is
    submitted or sent. Exit 0 when every checkable key was found, 1 otherwise.
    """
    setup_logging(verbose)
    loaded = load_settings(config_file, {})
    try:
        profile = load_profile(loaded.settings.portal.profile)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc
    acc = loaded.settings.portal.account(account)
    with account_lock(loaded.settings, acc.name):
        results, stopped = asyncio.run(_check(loaded, acc, profile))
    print_results(results, stopped, as_json)
    bad = stopped is not None or any(r.status in ("missing", "ambiguous") for r in results)
    sys.exit(1 if bad else 0)
