"""What every portal page object shares: navigation that checks what came back, and
locators that fail with the profile key they were built from."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, Response
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import FlowError, ProfileMismatch, RateLimited, SessionExpired, TransientError
from flows.profile import Profile

Pacer = Callable[[], Awaitable[None]]


async def _no_pacing() -> None:
    return None


class PortalPage:
    """Base of the page objects: one portal, one profile, one browser tab."""

    page_name = "portal"

    def __init__(self, page: Page, profile: Profile, base_url: str,
                 pacer: Pacer | None = None, element_timeout_ms: float = 5_000) -> None:
        self.page = page
        self.profile = profile
        self.base_url = base_url
        self.pacer = pacer or _no_pacing
        self.element_timeout_ms = element_timeout_ms

    def _sibling(self, cls: type[PortalPage]) -> Any:
        return cls(self.page, self.profile, self.base_url, self.pacer, self.element_timeout_ms)

    def url_for(self, path: str) -> str:
        """Absolute URL of a portal path."""
        return urljoin(self.base_url, path.lstrip("/"))

    # --- navigation -------------------------------------------------------------------

    async def _navigate(self, step: str, action: Callable[[], Awaitable[Any]]) -> None:
        """Run an action that loads a new document, then check the answer."""
        await self.pacer()
        try:
            async with self.page.expect_navigation(wait_until="domcontentloaded") as nav:
                await action()
            response = await nav.value
        except PlaywrightTimeoutError as exc:
            raise TransientError(f"timed out waiting for the page: {_first_line(exc)}",
                                 step=step, page=self.page_name) from exc
        except PlaywrightError as exc:
            raise self._translate(exc, step) from exc
        await self._check(response, step)

    async def goto(self, step: str, url: str) -> None:
        """Load a URL the way a person opens a bookmark, and check the answer."""
        await self.pacer()
        try:
            response = await self.page.goto(url, wait_until="domcontentloaded")
        except PlaywrightTimeoutError as exc:
            raise TransientError(f"timed out loading {url}", step=step,
                                 page=self.page_name) from exc
        except PlaywrightError as exc:
            raise self._translate(exc, step) from exc
        await self._check(response, step)

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

    async def field(self, label: str) -> str | None:
        """The value shown beside a field label, or None when the page has no such field."""
        term = self.field_term(label)
        if await term.count() == 0:
            return None
        value = term.first.locator(self.profile.detail.field_value_css)
        return (await value.inner_text(timeout=self.element_timeout_ms)).strip()

    async def text_visible(self, text: str) -> bool:
        """True when the page shows `text` somewhere."""
        return await self.page.get_by_text(text).count() > 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
