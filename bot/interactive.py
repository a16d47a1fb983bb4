"""`dhbot login`: sign in once (a person solves any captcha in a visible window) and save
the session for headless runs."""

from __future__ import annotations

import asyncio
import os

from loguru import logger
from rich.console import Console

from bot.browser import BrowserHost
from bot.config import AccountConfig, ConfigError, LoadedSettings, Settings
from bot.errors import LoginNeedsPerson, UsageError
from bot.ledger import open_ledger
from bot.lock import account_lock
from bot.pacing import Pacer
from bot.session import AccountSession, SessionStore, session_file, session_store
from flows.profile import Profile

# How long a person gets to finish logging in in the visible window.
PERSON_TIMEOUT_S = 300


def has_display() -> bool:
    """True when a visible browser window can be shown."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def interactive_login(loaded: LoadedSettings, profile: Profile, account: AccountConfig, *,
                      headed: bool, console: Console) -> None:
    """Log in and save the session; headed mode waits for a person."""
    if headed and not has_display():
        raise UsageError(
            "no display to show a browser window on this machine (DISPLAY is not set). "
            "Run `dhbot login --account " + account.name + " --headed` on a desktop, or over "
            "`ssh -X`, or under `xvfb-run` with a VNC viewer; then copy "
            f"{session_file(loaded.settings, account.name)} (mode 0600) "
            "into this machine's state folder.")
    asyncio.run(_login(loaded, profile, account, headed, console))


async def _login(loaded: LoadedSettings, profile: Profile, account: AccountConfig,
                 headed: bool, console: Console) -> None:
    settings = loaded.settings
    ledger = open_ledger(loaded.settings) if settings.distributed_ledger else None
    try:
        with account_lock(settings, account.name):  # no login under a running worker
            await _login_with(settings, profile, account, headed, console,
                              session_store(settings, account.name, ledger))
    finally:
        if ledger is not None:
            ledger.close()


async def _login_with(settings: Settings, profile: Profile, account: AccountConfig,
                      headed: bool, console: Console, store: SessionStore) -> None:
    async with BrowserHost(settings, headless=not headed) as host:
        session = AccountSession(host, settings, account, profile, Pacer(0), store=store)
        await session.open()
        page = await session.new_page()
        login = session.login_page(page)
        if not headed:
            await session.sign_in(page)
            console.print(f"account {account.name}: signed in; session saved to "
                          f"{session.store}")
            await session.close()
            return
        if await login.open():
            console.print(f"account {account.name}: the saved session is still signed in.")
            await session.save()
            await session.close()
            return
        user = login.target("login.username_label")
        password_box = login.target("login.password_label")
        assert user is not None and password_box is not None  # required by the schema
        await user.shown.first.fill(account.username)
        try:
            password = account.password()
            await password_box.shown.first.fill(password)
        except ConfigError:
            logger.info("no password in the environment; type it in the window")
        console.print("A browser window is open at the portal's login page. Finish logging in "
                      "there (solve the captcha if asked); this command waits up to "
                      f"{PERSON_TIMEOUT_S // 60} minutes.")
        signed_in = login.target("login.signed_in_marker")
        assert signed_in is not None
        marker = signed_in.shown.first
        try:
            await marker.wait_for(state="visible", timeout=PERSON_TIMEOUT_S * 1000)
        except Exception as exc:
            raise LoginNeedsPerson("the login was not finished in the browser window in time; "
                                   "run the command again") from exc
        await session.save()
        console.print(f"account {account.name}: signed in; session saved to "
                      f"{session.store}")
        await session.close()
