"""Logging through loguru: readable on the console, JSON lines in the run's folder, and
every known secret (passwords, cookie values) replaced before any sink sees it."""

from __future__ import annotations

import io
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

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


def setup_logging(verbose: bool = False, console: Any = None) -> None:
    """Console logging; `console` is a callable sink (e.g. rich's) or None for stderr."""
    logger.remove()
    logger.configure(patcher=_patch)
    fmt = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"
    logger.add(console or sys.stderr, level="DEBUG" if verbose else "INFO", format=fmt,
               colorize=console is None and sys.stderr.isatty())


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
