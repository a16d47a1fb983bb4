"""What every portal page object shares: navigation that checks what came back, and
locators that fail with the profile key they were built from."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from loguru import logger
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, Request, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import FlowError, ProfileMismatch, RateLimited, SessionExpired, TransientError
from flows.profile import Profile

Pacer = Callable[[], Awaitable[None]]


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


class PortalPage:
    """Base of the page objects: one portal, one profile, one browser tab."""

    page_name = "portal"

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
                                     page=self.page_name)
            await dom
            return response
        except PlaywrightTimeoutError as exc:
            raise TransientError(f"timed out waiting for the page: {_first_line(exc)}",
                                 step=step, page=self.page_name) from exc
        except PlaywrightError as exc:
            raise self._translate(exc, step) from exc
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
            delay = self.retry.backoff(attempt)
            logger.warning("{}: portal answered HTTP {} at {}; reloading in {:.1f}s "
                           "(retry {})", self.page_name, status, step, delay, attempt)
            await asyncio.sleep(delay)
            response = await self._load(step, lambda: self.page.reload(wait_until="commit"))
        return response

    def _translate(self, exc: PlaywrightError, step: str) -> FlowError:
        message = _first_line(exc)
        if "net::" in message or "Navigation" in message or "closed" in message.lower():
            return TransientError(f"connection problem: {message}", step=step,
                                  page=self.page_name)
        return FlowError(message, step=step, page=self.page_name)

    async def _check(self, response: Response | None, step: str) -> None:
        status = response.status if response is not None else 200
        if status == 429:
            raise RateLimited(f"portal said {self.profile.errors.rate_limited_text} (HTTP 429)",
                              step=step, page=self.page_name)
        if status >= 500:
            raise TransientError(f"portal answered HTTP {status}", step=step,
                                 page=self.page_name)
        if self.on_login_page() and self.page_name != "login":
            raise SessionExpired("the portal showed its login page: session expired",
                                 step=step, page=self.page_name)

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

    def button(self, name: str) -> Locator:
        """A button by its exact accessible name."""
        return self.page.get_by_role("button", name=name, exact=True)

    def link(self, name: str) -> Locator:
        """A link by its exact accessible name."""
        return self.page.get_by_role("link", name=name, exact=True)

    def labelled(self, label: str) -> Locator:
        """A form field by its exact label."""
        return self.page.get_by_label(label, exact=True)

    async def require(self, locator: Locator, key: str, looked_for: str, step: str) -> Locator:
        """Wait for exactly one match, or fail fast naming the profile key."""
        try:
            await locator.wait_for(state="visible", timeout=self.element_timeout_ms)
        except PlaywrightTimeoutError as exc:
            count = await locator.count()
            kind = "nothing visible" if count == 0 else f"{count} hidden matches"
            raise ProfileMismatch(
                f"profile key {key} ({looked_for}) matched {kind}",
                step=step, page=self.page_name, key=key, looked_for=looked_for,
            ) from exc
        except PlaywrightError as exc:
            if "strict mode violation" in str(exc):
                raise ProfileMismatch(
                    f"profile key {key} ({looked_for}) is ambiguous: {await locator.count()} "
                    "matches", step=step, page=self.page_name, key=key, looked_for=looked_for,
                ) from exc
            raise self._translate(exc, step) from exc
        return locator

    def field_term(self, label: str) -> Locator:
        """The term element (e.g. <dt>) whose whole text is `label`."""
        exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
        return self.page.locator(self.profile.detail.field_term_css, has_text=exact)

    async def fields(self) -> dict[str, str]:
        """Every label -> value pair the page shows, read in one round trip."""
        detail = self.profile.detail
        pairs = await self.page.locator(detail.field_term_css).evaluate_all(
            """(terms, xpath) => terms.map(term => {
                const value = document.evaluate(xpath, term, null,
                    XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
                return [term.innerText.trim(), value ? value.innerText.trim() : null];
            })""",
            detail.field_value_xpath,
        )
        return {label: value for label, value in pairs if value is not None}

    async def text_visible(self, text: str) -> bool:
        """True when the page shows `text` somewhere."""
        return await self.page.get_by_text(text).count() > 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
