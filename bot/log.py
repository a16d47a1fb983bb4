"""Logging through loguru: readable on the console, JSON lines in the run's folder, and
every known secret (passwords, cookie values) replaced before any sink sees it."""

from __future__ import annotations

import io
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loguru import logger
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from loguru import Message, Record

MASK = "***"


def mask_url(url: str) -> str:
    """A URL with its password (user:PASSWORD@host) replaced by ***."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", rf"\1{MASK}@", url)


def mask_notify_url(url: str) -> str:
    """A notification (apprise) URL as it may be shown: its scheme only, since tokens sit
    anywhere in it (dingtalk://TOKEN, wecombot://KEY, mailto://user:PASSWORD@host)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


class Redactor:
    """Knows the secrets of this process and scrubs them from any text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        """Remember a secret; short values are ignored to avoid masking ordinary words."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def add_url(self, url: str | None) -> None:
        """Remember the password of a URL such as postgresql://user:PASSWORD@host/db."""
        try:
            self.add(urlsplit(url or "").password)
        except ValueError:  # not a URL: nothing to remember
            return

    def redact(self, text: str) -> str:
        """The text with every known secret masked."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """Like redact, for bytes written to disk."""
        for secret in self._secrets:
            data = data.replace(secret.encode(), MASK.encode())
        return data


redactor = Redactor()


def _patch(record: Record) -> None:
    record["message"] = redactor.redact(record["message"])
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = redactor.redact(value)


class ConsoleSink:
    """Where log lines meet people: printed through a rich Console (on stderr), which shows
    colours only on a terminal, or, while a progress display is live on the terminal,
    through the Console that draws it. That Console prints them above the display; a line
    written to the terminal past it would land in the middle of the bar."""

    def __init__(self) -> None:
        self.console: Console | None = None
        self.live: Console | None = None  # the Console of a live display, while it runs
        self.clock: Callable[[datetime], str] | None = None  # None: the machine's local time

    def __call__(self, message: Message) -> None:
        console = self.live or self.console
        if console is None:  # not set up: loguru's own default, plain stderr
            sys.stderr.write(str(message))
            return
        # Loguru colours the line with ANSI codes; rich turns them into styles (and drops
        # them off a terminal). The message is never read as rich markup.
        console.print(Text.from_ansi(str(message).rstrip("\n")), soft_wrap=True,
                      highlight=False)

    def format(self, record: Record) -> str:
        """The console line: time of day (display time zone), level, message."""
        clock = self.clock(record["time"]) if self.clock else "{time:HH:mm:ss}"
        return f"<green>{clock}</green> <level>{{level: <7}}</level> {{message}}\n{{exception}}"


console_sink = ConsoleSink()


def setup_logging(verbose: bool = False, console: Console | None = None) -> None:
    """Console logging through `console` (default: a rich Console on stderr)."""
    logger.remove()
    logger.configure(patcher=_patch)
    # The stream is fixed now, so a live display's redirection of sys.stderr never
    # captures log lines meant for a file (dhbot run … 2>run.log).
    console_sink.console = console or Console(file=sys.stderr, highlight=False,
                                              soft_wrap=True)
    console_sink.live = None
    logger.add(console_sink, level="DEBUG" if verbose else "INFO",
               format=console_sink.format, colorize=True)


def use_display_zone(zone: str) -> None:
    """Console log lines show their time of day in `zone` (display.timezone)."""
    from bot.display import shown_clock  # bot.display reads the configuration module

    console_sink.clock = partial(shown_clock, zone=zone)


@contextmanager
def logs_above(console: Console) -> Iterator[None]:
    """While a live display runs on `console`, log lines print through it, above the
    display, if they would reach a terminal anyway (logs sent to a file stay there)."""
    ours = console_sink.console
    if ours is None or not ours.is_terminal or not console.is_terminal:
        yield
        return
    before, console_sink.live = console_sink.live, console
    try:
        yield
    finally:
        console_sink.live = before


def add_run_log(path: Path) -> int:
    """Write JSON lines for this run into `path`; returns the sink id to remove later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # private from birth
    return logger.add(path, level="DEBUG", serialize=True, enqueue=False)


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def scrub_trace(raw: Path, path: Path) -> None:
    """Write the trace zip `raw` to `path` with every known secret (passwords, cookies)
    masked, 0600; the raw file (in the run's private temporary folder) is removed."""
    scrubbed = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(scrubbed, "w",
                                                      zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, redactor.redact_bytes(src.read(item)))
    write_private(path, scrubbed.getvalue())
    raw.unlink(missing_ok=True)
