"""The browser and one signed-in context per account, with its saved session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from loguru import logger
from playwright.async_api import BrowserContext, Page, Route

from bot.browser import BrowserHost
from bot.config import AccountConfig, Settings
from bot.errors import ConfigError, CredentialsRejected, LoginNeedsPerson
from bot.log import redactor, scrub_trace, write_private
from flows.base_page import Pacer, StepRetry, map_errors
from flows.home_page import HomePage
from flows.login_page import LoginAnswer, LoginPage
from flows.order_list_page import OrderListPage
from flows.profile import Profile

if TYPE_CHECKING:
    from bot.ledger import Ledger


class SessionStore(Protocol):
    """Where an account's saved browser session (cookies and storage) lives."""

    def load(self) -> dict[str, Any] | None:
        """The saved session, or None."""

    def save(self, state: dict[str, Any]) -> None:
        """Keep the session for the next run."""


class FileSessionStore:
    """The session in a 0600 JSON file in the state folder (one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved session, or None."""
        if not self.path.exists():
            return None
        loaded: dict[str, Any] = json.loads(self.path.read_text())
        return loaded

    def save(self, state: dict[str, Any]) -> None:
        """Write the session, 0600, atomically."""
        write_private(self.path, json.dumps(state).encode())

    def __str__(self) -> str:
        return str(self.path)


class SealedSessionStore:
    """The session in the shared database, encrypted (Fernet), for workers on any machine.

    The key comes from the environment; without it the stored bytes are useless, so a
    database dump or backup never carries a usable session cookie.
    """

    def __init__(self, ledger: Ledger, account: str, key: str,
                 identity: str | None = None) -> None:
        # Stored under the account's portal identity; `account` is what messages call it.
        from cryptography.fernet import Fernet

        self.ledger = ledger
        self.account = account
        self.identity = identity or account
        self._fernet = Fernet(key.encode())

    def load(self) -> dict[str, Any] | None:
        """The stored session, or None (also when it was sealed with another key)."""
        from cryptography.fernet import InvalidToken

        sealed = self.ledger.load_session(self.identity)
        if sealed is None:
            return None
        try:
            loaded: dict[str, Any] = json.loads(self._fernet.decrypt(sealed))
        except InvalidToken:
            logger.warning("account {}: the stored session was sealed with another key; "
                           "logging in again", self.account)
            return None
        return loaded

    def save(self, state: dict[str, Any]) -> None:
        """Encrypt and store the session."""
        self.ledger.save_session(self.identity,
                                 self._fernet.encrypt(json.dumps(state).encode()))

    def __str__(self) -> str:
        return f"the ledger database {self.ledger.url} (encrypted)"


def session_file(settings: Settings, account: str) -> Path:
    """The saved session of the account called `account`, keyed by its portal identity.

    A session saved under the account's configured name by an earlier version moves there.
    """
    path = settings.paths.state_dir / "sessions" / f"{settings.portal.key(account)}.json"
    old = settings.paths.state_dir / "sessions" / f"{account}.json"
    if old.exists() and not path.exists():
        old.replace(path)
    return path


def session_store(settings: Settings, account: str, ledger: Ledger | None) -> SessionStore:
    """Where `account`'s session lives: a file on one machine; the shared ledger, encrypted
    with the key in the environment, when the ledger is a database server."""
    if not settings.distributed_ledger or ledger is None:
        return FileSessionStore(session_file(settings, account))
    var = settings.distributed.session_key_env
    key = os.environ.get(var, "").strip()
    if not key:
        raise ConfigError(
            f"the ledger is a shared database, so saved sessions are stored there encrypted: "
            f"export {var} with a key (make one with: python -c \"from cryptography.fernet "
            f"import Fernet; print(Fernet.generate_key().decode())\")")
    redactor.add(key)
    try:
        return SealedSessionStore(ledger, account, key, settings.portal.key(account))
    except ValueError as exc:
        raise ConfigError(f"{var}: not a valid key ({exc}); it must be 32 url-safe "
                          "base64-encoded bytes, as Fernet.generate_key() makes") from exc


class AccountSession:
    """A browser context signed in as one account; pages share its cookies."""

    def __init__(self, host: BrowserHost, settings: Settings, account: AccountConfig,
                 profile: Profile, pacer: Pacer, retry: StepRetry | None = None,
                 store: SessionStore | None = None) -> None:
        self.host = host
        self.settings = settings
        self.account = account
        self.profile = profile
        self.pacer = pacer
        self.retry = retry or StepRetry()
        self.base_url = settings.portal.base_url
        self.store = store or FileSessionStore(session_file(settings, account.name))
        self.context: BrowserContext | None = None
        self._login_lock = asyncio.Lock()
        self._generation = 0  # bumped by every fresh login
        self._signed_in = False
        self.logins = 0
        self.blocked_urls: list[str] = []
        self._trace_dir: Path | None = None
        self._tracing = False
        self._chunks = 0
        self.traces: list[Path] = []

    @property
    def generation(self) -> int:
        """Counts fresh logins; a page compares it to know if someone else logged in."""
        return self._generation

    async def open(self, block_submit: bool = False,
                   storage: dict[str, Any] | None = None) -> None:
        """Create the context with `storage` (cookies and local storage), or else the saved
        session when there is one."""
        assert self.host.browser is not None
        if storage is None:
            storage = self.store.load()
        self.context = await self.host.browser.new_context(
            storage_state=cast(Any, storage), locale="zh-CN", timezone_id="Asia/Shanghai",
            viewport={"width": 1280, "height": 900},
        )
        cfg = self.settings.browser
        self.context.set_default_timeout(cfg.timeout_s * 1000)
        self.context.set_default_navigation_timeout(cfg.navigation_timeout_s * 1000)
        if storage:
            self._remember_cookies(storage)
        await self._install_routes(block_submit)

    async def _install_routes(self, block_submit: bool) -> None:
        # Any interception turns off the browser's HTTP cache, so routes are installed only
        # where they are asked for: fonts/media blocking, and a dry run's submit guard.
        assert self.context is not None
        blocked = set(self.settings.browser.block_resources) - {"image"}
        submit_glob = self.profile.paths.cancel_submit_glob

        async def gate(route: Route) -> None:
            if route.request.resource_type in blocked:
                await route.abort("blockedbyclient")
            else:
                await route.fallback()

        async def block_post(route: Route) -> None:
            if route.request.method == "POST":
                self.blocked_urls.append(route.request.url)
                logger.warning("dry run: blocked a cancel submit to {}", route.request.url)
                await route.abort("blockedbyclient")
            else:
                await route.fallback()

        if blocked:
            await self.context.route("**/*", gate)
        if block_submit:
            await self.context.route(submit_glob, block_post)

    async def reopen(self, block_submit: bool = False) -> None:
        """A new context in the (restarted) browser, from the saved session; the old
        context died with its browser."""
        if self.context is not None:
            with contextlib.suppress(Exception):
                await self.context.close()
        self.context = None
        self._signed_in = False
        self._tracing = False
        self._trace_dir = None
        await self.open(block_submit)

    async def renew(self, block_submit: bool = False) -> None:
        """Replace the context with a fresh one signed in the same way (its cookies and
        storage carried over, and saved): the tabs' renderer and what the driver kept for
        them start afresh. Call only when no tab is in use; every tab must be opened again.
        A trace goes on in the new context, in a new chunk."""
        assert self.context is not None
        await self._pause_trace()  # the chunk so far is saved; cookies never reach a trace
        try:
            state: dict[str, Any] = dict(await self.context.storage_state())
        except Exception:  # the old context goes on, traced again if it was
            with contextlib.suppress(Exception):
                await self._resume_trace()
            raise
        self._remember_cookies(state)
        self.store.save(state)
        old, self.context = self.context, None
        try:
            await old.close()
        except Exception as exc:  # the new context does not need the old one closed well
            logger.debug("closing the old context: {}", exc)
        await self.open(block_submit, storage=state)
        try:
            await self._resume_trace()
        except Exception as exc:  # a trace is evidence, never a reason to stop the run
            logger.warning("the trace stops here: it could not go on in the fresh browser "
                           "context ({})", exc)

    def _remember_cookies(self, state: Any) -> None:
        for cookie in state.get("cookies") or []:
            if isinstance(cookie, dict):
                redactor.add(str(cookie.get("value", "")))

    async def new_page(self) -> Page:
        """A new tab in this account's context."""
        assert self.context is not None
        return await self.context.new_page()

    async def collect_garbage(self, page: Page) -> None:
        """Have the renderer of `page` collect its JavaScript garbage now. It keeps the heaps
        of the pages it showed before until V8 gets round to it, which on a machine with
        memory to spare is seldom: hundreds of MB after a few hundred page loads."""
        assert self.context is not None
        cdp = await self.context.new_cdp_session(page)
        try:
            await cdp.send("HeapProfiler.collectGarbage")
        finally:
            await cdp.detach()

    def login_page(self, page: Page, retry: StepRetry | None = None) -> LoginPage:
        """The login page object bound to a tab."""
        return LoginPage(page, self.profile, self.base_url, self.pacer,
                         self.settings.browser.timeout_s * 1000, retry or self.retry)

    async def sign_in(self, page: Page, seen_generation: int | None = None,
                      retry: StepRetry | None = None) -> None:
        """Make sure the context is signed in; only one tab logs in, the others wait.

        `seen_generation` is the generation a tab had when it met the login page; if a
        fresh login happened since, nothing more is needed.
        """
        async with self._login_lock:
            if seen_generation is not None and seen_generation != self._generation:
                return
            if seen_generation is None and self._signed_in:
                return
            login = self.login_page(page, retry)
            if not login.on_login_page() and await login.open():
                if self.logins == 0:
                    logger.info("account {}: reusing the saved session", self.account.name)
                self._signed_in = True
                return
            password = self.account.password()
            redactor.add(password)
            logger.info("account {}: logging in as {}", self.account.name,
                        self.account.username)
            await self._pause_trace()  # typed passwords must never reach a trace
            try:
                result = await login.login(self.account.username, password)
            finally:
                await self._resume_trace()
            if result.answer == LoginAnswer.CAPTCHA:
                raise LoginNeedsPerson("the login page asks for a captcha")
            if result.answer == LoginAnswer.REFUSED:
                raise CredentialsRejected(f"the portal said {result.said}")
            self.logins += 1
            self._generation += 1
            self._signed_in = True
            await self.save()

    # --- traces -------------------------------------------------------------------------

    async def start_trace(self, trace_dir: Path) -> None:
        """Record a Playwright trace from now on (call after signing in)."""
        assert self.context is not None
        self._trace_dir = trace_dir
        await self.context.tracing.start(screenshots=True, snapshots=True)
        await self.context.tracing.start_chunk()
        self._tracing = True

    async def _pause_trace(self) -> None:
        # Stopped, not paused between chunks: a paused trace still records the network, and
        # the login POST carries the password.
        if self._tracing:
            assert self.context is not None
            await self._save_chunk()
            await self.context.tracing.stop()
            self._tracing = False

    async def _resume_trace(self) -> None:
        if self._trace_dir is not None and not self._tracing:
            assert self.context is not None
            await self.context.tracing.start(screenshots=True, snapshots=True)
            await self.context.tracing.start_chunk()
            self._tracing = True

    async def _save_chunk(self) -> None:
        assert self.context is not None and self._trace_dir is not None
        self._trace_dir.mkdir(parents=True, exist_ok=True)
        self._chunks += 1
        path = self._trace_dir / f"trace-{self.account.name}-{self._chunks}.zip"
        # Raw in the private temporary folder; only the scrubbed copy reaches the run folder.
        raw = self.host.tmp / f"{path.stem}.raw.zip"
        await self.context.tracing.stop_chunk(path=raw)
        scrub_trace(raw, path)
        self.traces.append(path)

    async def stop_trace(self, keep: bool) -> list[Path]:
        """Stop tracing; keep the trace files or delete them. Returns what was kept."""
        if self.context is None or self._trace_dir is None:
            return []
        if self._tracing:
            await self._save_chunk()
            self._tracing = False
            await self.context.tracing.stop()
        self._trace_dir = None
        if not keep:
            for path in self.traces:
                path.unlink(missing_ok=True)
            self.traces = []
        return list(self.traces)

    async def save(self) -> None:
        """Save cookies and storage for the next run (0600 file, or sealed in the database)."""
        assert self.context is not None
        state: dict[str, Any] = dict(await self.context.storage_state())
        self._remember_cookies(state)
        self.store.save(state)

    async def close_page(self, page: Page) -> None:
        """Close one tab."""
        await page.close()

    async def open_order_list(self, page: Page, retry: StepRetry | None = None) -> OrderListPage:
        """Walk a tab from the portal's entry to the order list (the profile's nav steps)."""
        home = HomePage(page, self.profile, self.base_url, self.pacer,
                        self.settings.browser.timeout_s * 1000, retry)
        if not page.url.startswith(self.base_url) or home.on_login_page():
            await home.goto("open portal", home.url_for(self.profile.paths.entry))
        return await home.open_order_list()

    async def close(self) -> None:
        """Close the context (its tabs too)."""
        if self.context is not None:
            try:
                await self.context.close()
            except Exception as exc:
                logger.debug("closing context: {}", exc)


# Every public coroutine of the session raises only dhbot's errors (see flows.base_page).
map_errors(AccountSession)
