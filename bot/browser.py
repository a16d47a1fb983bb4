"""Finding and launching a Chromium the machine actually has: one Playwright driver and one
Chromium per run (`BrowserHost`), started within a bound, restarted when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from loguru import logger
from playwright.async_api import Browser, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from bot.errors import BrowserUnavailable, first_line

if TYPE_CHECKING:
    from bot.config import Settings

# Chromium floods a closed network with background requests without these.
QUIET_ARGS: tuple[str, ...] = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
)

SYSTEM_CANDIDATES: tuple[str, ...] = ("/usr/bin/chromium", "chromium", "google-chrome")
# The old headless mode as a browser of its own (Debian: chromium-headless-shell): a smaller
# process that starts faster and costs less CPU per page; for headless runs only. Debian's
# binary comes first: its /usr/bin wrapper is a shell that stays between Playwright and the
# browser instead of handing over to it.
HEADLESS_SHELL_CANDIDATES: tuple[str, ...] = ("/usr/lib/chromium/chromium-headless-shell",
                                              "/usr/bin/chromium-headless-shell",
                                              "chromium-headless-shell")


def playwright_chromium() -> str | None:
    """Path of Playwright's own downloaded Chromium, when it is installed (outside an
    asyncio loop: this starts a driver of its own)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a core dependency
        return None
    try:
        with sync_playwright() as p:
            return _existing(p.chromium.executable_path)
    except Exception:
        return None


def _existing(path: str | None) -> str | None:
    return path if path and Path(path).exists() else None


def find_chromium(configured: str | None = None, *, headless: bool = True,
                  own: Callable[[], str | None] = playwright_chromium) -> str | None:
    """Return the browser to launch: the configured path, Playwright's own (`own()` says
    where it is, if installed), then the system's: for headless runs the headless shell
    first, then the full Chromium.

    None means "let Playwright use its own", which only happens when it is installed.
    """
    if configured:
        return configured
    if own():
        return None
    candidates = (*HEADLESS_SHELL_CANDIDATES, *SYSTEM_CANDIDATES) if headless \
        else SYSTEM_CANDIDATES
    for candidate in candidates:
        found = shutil.which(candidate) if not candidate.startswith("/") else candidate
        if found and Path(found).exists():
            return found
    return None


def launch_args(extra: tuple[str, ...] = ()) -> list[str]:
    """Command-line flags for Chromium on this machine (root needs --no-sandbox)."""
    args = list(QUIET_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    args.extend(extra)
    return args


TMP_FOLDER = "tmp"


def private_tmp(state_dir: Path) -> Path:
    """A fresh temporary folder for this process inside the state folder (0700): the
    Playwright driver's artifacts (trace recordings) and Chromium's profile go there, never
    to the shared /tmp. Folders of processes that no longer run (killed) are removed."""
    root = state_dir / TMP_FOLDER
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in root.iterdir():
        pid = old.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BrowserHost:
    """One Playwright driver and one Chromium for the whole run."""

    def __init__(self, settings: Settings, headless: bool | None = None) -> None:
        self.settings = settings
        self.headless = settings.browser.headless if headless is None else headless
        self._pw: Playwright | None = None
        self.browser: Browser | None = None
        self.tmp = settings.paths.state_dir / TMP_FOLDER  # this run's own, once started
        self.restarts = 0

    async def __aenter__(self) -> BrowserHost:
        self.tmp = private_tmp(self.settings.paths.state_dir)
        # The driver takes its temporary folder (trace recordings, Chromium's profile with
        # its cookies) from TMPDIR when it starts: point it at ours, for it alone.
        saved = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(self.tmp)
        try:
            self._pw = await async_playwright().start()
        finally:
            if saved is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved
        try:
            await self.launch()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def launch(self) -> None:
        """Start Chromium, within the launch timeout; a start that fails is tried once more.

        A missing or broken browser is a BrowserUnavailable (exit 2) that says how to fix
        it; never a hang, never a traceback.
        """
        cfg = self.settings.browser
        assert self._pw is not None
        pw = self._pw
        executable = find_chromium(cfg.executable_path, headless=self.headless,
                                   own=lambda: _existing(pw.chromium.executable_path))
        if cfg.executable_path and not Path(cfg.executable_path).exists():
            raise BrowserUnavailable(f"browser.executable_path {cfg.executable_path} does not "
                                     "exist; point it at a Chromium, or remove it to use "
                                     "Playwright's own or /usr/bin/chromium")
        timeout = self.settings.run.launch_timeout_s
        problem = ""
        for attempt in (1, 2):
            logger.debug("launching Chromium {} (headless={})",
                         executable or "(Playwright's own)", self.headless)
            try:
                self.browser = await asyncio.wait_for(self._pw.chromium.launch(
                    executable_path=executable, headless=self.headless,
                    args=launch_args(self._flags()),
                    slow_mo=cfg.slow_mo_ms or None,
                    timeout=timeout * 1000,
                    traces_dir=self.tmp / "traces",
                    # Chromium itself keeps the usual TMPDIR: it puts a Unix socket there,
                    # whose path must stay short. Its profile (cookies) is made by the
                    # driver, in ours.
                    env=dict(os.environ),
                ), timeout + 5)
                return
            except (PlaywrightError, TimeoutError) as exc:
                problem = first_line(exc) or f"no answer within {timeout:g} s"
                if "Executable doesn't exist" in problem or (
                        executable is None and "playwright install" in str(exc)):
                    break
                if attempt == 1:
                    logger.warning("Chromium did not start ({}); trying once more", problem)
        raise BrowserUnavailable(
            f"Chromium could not start: {problem}. Check browser.executable_path (now "
            f"{executable or 'Playwright own'}); on Debian: apt-get install chromium; or "
            "`playwright install chromium` where downloads are allowed")

    async def restart(self) -> None:
        """Start a new Chromium after the old one died (its pages are gone)."""
        if self.browser is not None:
            with contextlib.suppress(Exception):
                await self.browser.close()
        self.browser = None
        self.restarts += 1
        await self.launch()

    def _flags(self) -> tuple[str, ...]:
        cfg = self.settings.browser
        flags: list[str] = []
        if "image" in cfg.block_resources:
            flags.append("--blink-settings=imagesEnabled=false")
        if cfg.renderer_processes:
            flags.append(f"--renderer-process-limit={cfg.renderer_processes}")
        return (*flags, *cfg.extra_args)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.browser is not None:
            try:
                await self.browser.close()
            except Exception as close_exc:  # the browser may already be gone
                logger.debug("closing browser: {}", close_exc)
        if self._pw is not None:
            await self._pw.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
