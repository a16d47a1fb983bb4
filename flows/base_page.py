"""What every portal page object shares: navigation that checks what came back, locators
that fail with the profile key they were built from, and the one place where Playwright's
errors become dhbot's (`translate`): every public coroutine of a page object raises only
errors of the `bot.errors` tree, so the engine never needs to know Playwright's."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urljoin, urlsplit

from loguru import logger
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, Request, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import (
    FlowError,
    ProfileMismatch,
    RateLimited,
    SessionExpired,
    TransientError,
    first_line,
)
from flows.locators import Root, Target, text_pattern
from flows.profile import Profile, element

# Page is re-exported: the engine names a tab without importing Playwright.
__all__ = ["Page", "PortalPage", "StepRetry", "map_errors", "translate"]

Pacer = Callable[[], Awaitable[None]]
P = ParamSpec("P")
R = TypeVar("R")


def translate(exc: PlaywrightError, step: str, page: str) -> FlowError:
    """Playwright's error as dhbot's, in one mapping (as httpx maps its transports'):
    a timeout or a lost connection (worth a retry; the engine then checks whether the
    browser itself died) is a TransientError, anything else a FlowError."""
    message = first_line(exc)
    if isinstance(exc, PlaywrightTimeoutError):
        return TransientError(f"timed out waiting for the page: {message}", step=step,
                              page=page, unsettled=True, reason="timeout")
    if "net::" in message or "Navigation" in message or "closed" in message.lower():
        return TransientError(f"connection problem: {message}", step=step, page=page,
                              unsettled=True, reason="connection")
    return FlowError(message, step=step, page=page)


def _mapped(method: Callable[P, Coroutine[Any, Any, R]]
            ) -> Callable[P, Coroutine[Any, Any, R]]:
    """A page object's coroutine whose Playwright errors come out translated."""

    @functools.wraps(method)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except PlaywrightError as exc:
            page = getattr(args[0], "page_name", "") if args else ""
            raise translate(exc, method.__name__.replace("_", " "), page) from exc

    return run


def map_errors(cls: type) -> None:
    """Translate the Playwright errors of every public coroutine of `cls`."""
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(value):
            setattr(cls, name, _mapped(value))


async def _no_pacing() -> None:
    return None


@dataclass
class StepRetry:
    """How a page load that the portal answered with 5xx or 429 is retried (a person's F5).

    Only safe loads (GET) are retried here; a form submit never is. The runner owns the
    policy and reads `count` to report retries.
    """

    attempts: int = 1
    backoff: Callable[[int], float] = lambda attempt: 0.0
    on_rate_limited: Callable[[], None] = lambda: None
    count: int = 0
    # Retries by reason, for the report (a page reloaded after HTTP 5xx: "server error").
    reasons: Counter[str] = field(default_factory=Counter)


class PortalPage:
    """Base of the page objects: one portal, one profile, one browser tab."""

    page_name = "portal"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        map_errors(cls)

    def __init__(self, page: Page, profile: Profile, base_url: str,
                 pacer: Pacer | None = None, element_timeout_ms: float = 5_000,
                 retry: StepRetry | None = None) -> None:
        self.page = page
        self.profile = profile
        self.base_url = base_url
        self.pacer = pacer or _no_pacing
        self.element_timeout_ms = element_timeout_ms
        self.retry = retry or StepRetry()

    def _sibling(self, cls: type[PortalPage]) -> Any:
        return cls(self.page, self.profile, self.base_url, self.pacer, self.element_timeout_ms,
                   self.retry)

    def url_for(self, path: str) -> str:
        """Absolute URL of a portal path."""
        return urljoin(self.base_url, path.lstrip("/"))

    # --- navigation -------------------------------------------------------------------

    async def _navigate(self, step: str, action: Callable[[], Awaitable[Any]], *,
                        safe: bool = True) -> None:
        """Run an action that loads a new document, then check the answer.

        `safe` loads (GET) answered with 5xx/429 are reloaded under the retry policy;
        a form submit (safe=False) never is: its result must be read back instead.
        """

        async def load() -> Response | None:
            async with self.page.expect_navigation(wait_until="commit") as nav:
                await action()
            return await nav.value

        response = await self._load(step, load)
        if safe:
            response = await self._retry_errors(step, response)
        await self._check(response, step)

    async def goto(self, step: str, url: str) -> None:
        """Load a URL the way a person opens a bookmark, and check the answer."""

        async def load() -> Response | None:
            return await self.page.goto(url, wait_until="commit")

        response = await self._retry_errors(step, await self._load(step, load))
        await self._check(response, step)

    async def _load(self, step: str, load: Callable[[], Awaitable[Response | None]]
                    ) -> Response | None:
        """Start a load, then wait for the document or for its connection to fail.

        Waiting for "commit" and then for the DOM lets a dropped connection (the answer
        breaks off after its headers) fail at once instead of after the full timeout.
        """
        await self.pacer()
        page = self.page
        failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_failed(request: Request) -> None:
            if request.is_navigation_request() and request.frame == page.main_frame \
                    and not failed.done():
                failed.set_result(request.failure or "failed")

        page.on("requestfailed", on_failed)
        try:
            response = await load()
            dom = asyncio.ensure_future(page.wait_for_load_state("domcontentloaded"))
            waiters: set[asyncio.Future[Any]] = {dom, failed}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                dom.cancel()
                with contextlib.suppress(BaseException):
                    await dom
                raise TransientError(f"connection problem: {failed.result()}", step=step,
                                     page=self.page_name, reason="connection")
            await dom
            return response
        except PlaywrightError as exc:
            raise translate(exc, step, self.page_name) from exc
        finally:
            page.remove_listener("requestfailed", on_failed)
            if not failed.done():
                failed.cancel()

    async def _retry_errors(self, step: str, response: Response | None) -> Response | None:
        """Reload a page the portal answered with 5xx or 429, under the retry policy."""
        for attempt in range(1, self.retry.attempts):
            status = response.status if response is not None else 200
            if status < 500 and status != 429:
                break
            if status == 429:
                self.retry.on_rate_limited()
            self.retry.count += 1
            self.retry.reasons["rate limited" if status == 429 else "server error"] += 1
            delay = self.retry.backoff(attempt)
            logger.warning("{}: portal answered HTTP {} at {}; reloading in {:.1f}s "
                           "(retry {})", self.page_name, status, step, delay, attempt)
            await asyncio.sleep(delay)
            response = await self._load(step, lambda: self.page.reload(wait_until="commit"))
        return response

    async def _check(self, response: Response | None, step: str) -> None:
        status = response.status if response is not None else 200
        if status == 429:
            raise RateLimited(f"portal said {self.profile.errors.rate_limited_text} (HTTP 429)",
                              step=step, page=self.page_name)
        if status >= 500:
            raise TransientError(f"portal answered HTTP {status}", step=step,
                                 page=self.page_name, reason="server error")
        if self.on_login_page() and self.page_name != "login":
            raise SessionExpired("the portal showed its login page: session expired",
                                 step=step, page=self.page_name)

    async def check_loaded(self, step: str) -> None:
        """Check a page that something else loaded (a new tab): not the login page."""
        await self._check(None, step)

    def on_login_page(self) -> bool:
        """True when the tab shows the portal's login page."""
        login_path = urlsplit(self.url_for(self.profile.paths.login)).path
        return urlsplit(self.page.url).path == login_path

    # --- locators -----------------------------------------------------------------------

    @staticmethod
    def press(locator: Locator) -> Callable[[], Awaitable[None]]:
        """A click on an element already checked visible by `require`.

        Playwright's click first waits for two animation frames to see the element is
        still; Chromium runs animation frames about once a second in every tab but the
        focused one, so with several tabs each click would stall that long. The portal's
        pages are server-rendered and still, and `require` has checked the element.
        """

        async def click() -> None:
            await locator.click(force=True)

        return click

    # Every locator of the flows is built here, from its profile key (and `dhbot check`
    # walks the same targets): the profile decides how an element is found.

    def target(self, key: str, root: Root | None = None) -> Target | None:
        """The profile key's target in this tab (or inside `root`); None when the profile
        declares the element absent."""
        spec, kind = element(self.profile, key)
        if spec is None:
            return None
        return Target(key, spec, kind, root if root is not None else self.page)

    async def require(self, key: str, step: str, root: Root | None = None) -> Locator:
        """Wait for the key's element to be shown, exactly once, or fail fast naming the key."""
        target = self.target(key, root)
        if target is None:
            raise ProfileMismatch(f"profile key {key} is null, but this step needs it",
                                  step=step, page=self.page_name, key=key,
                                  looked_for="null")
        try:
            await target.wait_shown(self.element_timeout_ms)
            found, count = await target.pick()
        except PlaywrightTimeoutError as exc:
            count = await target.anything.count()
            kind = "nothing visible" if count == 0 else f"{count} hidden matches"
            raise ProfileMismatch(
                f"profile key {key} ({target.looked_for}) matched {kind}",
                step=step, page=self.page_name, key=key, looked_for=target.looked_for,
            ) from exc
        except PlaywrightError as exc:
            raise translate(exc, step, self.page_name) from exc
        if found is None:
            raise TransientError(f"profile key {key} ({target.looked_for}) was shown, then "
                                 "went away", step=step, page=self.page_name)
        if count > 1:
            raise ProfileMismatch(
                f"profile key {key} ({target.looked_for}) is ambiguous: {count} visible "
                "matches (add nth, within or a more precise locator)",
                step=step, page=self.page_name, key=key, looked_for=target.looked_for)
        return found

    async def shown(self, key: str, root: Root | None = None) -> bool:
        """True when the key's element is shown now (False when absent from the profile)."""
        target = self.target(key, root)
        return target is not None and await target.shown.count() > 0

    async def texts_of(self, key: str) -> str | None:
        """The visible text of the key's elements, joined; None when nothing is shown."""
        target = self.target(key)
        if target is None:
            return None
        texts = [t.strip() for t in await target.shown.all_inner_texts()]
        return " ".join(t for t in texts if t) or None

    async def fields(self, wait_for: str | None = None) -> dict[str, str]:
        """Every detail field the page shows (field name -> value), in one round trip.

        With `wait_for` (a field name), waits until that field has a value: content drawn
        by the page's script after load is read only once it is there.
        """
        labels = self.profile.detail.fields.labels()
        within = self.target("detail.fields.within")
        root = within.shown.first if within is not None else self.page.locator("body")
        try:
            handle = await root.element_handle(timeout=self.element_timeout_ms)
            frame = await handle.owner_frame() or self.page.main_frame
            if wait_for is None:
                values: dict[str, str] = await handle.evaluate(_READ_FIELDS, labels)
                return values
            found = await frame.wait_for_function(
                f"([root, labels, wanted]) => {{ const read = {_READ_FIELDS}; "
                "const out = read(root, labels); return out[wanted] ? out : null; }",
                arg=[handle, labels, wait_for], polling=100, timeout=self.element_timeout_ms)
            shown: dict[str, str] = await found.json_value()
            return shown
        except PlaywrightTimeoutError as exc:
            key = f"detail.fields.{wait_for}" if wait_for else "detail.fields.within"
            label = labels.get(wait_for or "", "")
            raise ProfileMismatch(f"profile key {key} ({label}) shows no value on this page",
                                  step="read order", page=self.page_name, key=key,
                                  looked_for=label) from exc
        except PlaywrightError as exc:
            raise translate(exc, "read order", self.page_name) from exc

    async def text_visible(self, text: str) -> bool:
        """True when the page shows `text` somewhere (whitespace ignored)."""
        return await self.page.get_by_text(text_pattern(text, exact=False)).filter(
            visible=True).count() > 0

    # --- evidence -----------------------------------------------------------------------

    async def screenshot(self, full_page: bool = True) -> bytes:
        """The tab as a PNG, the password field masked."""
        password = self.target("login.password_label")
        mask = [password.anything] if password is not None else []
        return await self.page.screenshot(mask=mask, full_page=full_page, timeout=10_000)

    async def html(self) -> str:
        """The tab's document as it is now."""
        return await self.page.content()

    async def close(self) -> None:
        """Close the tab."""
        await self.page.close()


map_errors(PortalPage)


# Reads "label：value" pairs: a label is an element whose own text is the label; its value is
# the rest of that element (<li>订单状态：<span>等待您发货</span></li>, <td>订单号：123</td>)
# or else the next element (<dt>…</dt><dd>…</dd>, <th>…</th><td>…</td>). Hidden elements
# (a closed dialog's copy of a field) are skipped; the first shown label wins.
_READ_FIELDS = r"""(root, labels) => {
    const squeeze = s => (s || '').replace(/[\s\u3000]+/g, '');
    const wanted = Object.entries(labels).map(([n, l]) => [n, squeeze(l).replace(/[:：]$/, '')]);
    const escape = c => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const out = {};
    for (const el of root.querySelectorAll('*')) {
        let own = '';
        for (const n of el.childNodes) if (n.nodeType === 3) own += n.textContent;
        own = squeeze(own);
        if (!own) continue;
        for (const [name, label] of wanted) {
            if (name in out) continue;
            if (own !== label && !own.startsWith(label + '：') && !own.startsWith(label + ':'))
                continue;
            if (!el.checkVisibility()) continue;
            const head = new RegExp('^\\s*' + [...label].map(escape).join('\\s*')
                                    + '\\s*[:：]?\\s*');
            let value = el.innerText.replace(head, '').trim();
            if (!value && el.nextElementSibling) value = el.nextElementSibling.innerText.trim();
            if (value) out[name] = value;
        }
    }
    return out;
}"""
