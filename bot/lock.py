"""Exclusive locks across processes: an flock on a file in the state folder.

One run per account, one scheduler per state folder. The kernel drops a lock when its
holder dies, even by SIGKILL, so a crash never leaves anything locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.errors import AccountBusy, BotError, SchedulerBusy

if TYPE_CHECKING:
    from bot.config import Settings


class FileLock:
    """An exclusive lock on one file; `wait_s` > 0 waits that long before giving up."""

    def __init__(self, path: Path, wait_s: float = 0.0) -> None:
        self.path = path
        self.wait_s = wait_s
        self._fd: int | None = None

    def busy(self, holder: str) -> BotError:
        """The error raised when another process holds the lock (`holder`: its pid)."""
        return BotError(f"{self.path} is locked" + (f" by pid {holder}" if holder else ""))

    def acquire(self) -> None:
        """Take the lock or raise `busy(...)`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise self.busy(holder) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class AccountLock(FileLock):
    """One dhbot run per account at a time."""

    def __init__(self, state_dir: Path, key: str, wait_s: float = 0.0,
                 account: str | None = None) -> None:
        # Keyed by the portal identity (host + user name), shown by the configured name.
        super().__init__(state_dir / "locks" / f"{key}.lock", wait_s)
        self.account = account or key

    def busy(self, holder: str) -> BotError:
        return AccountBusy(
            f"account {self.account!r} is in use by another dhbot run"
            + (f" (pid {holder})" if holder else "")
            + "; wait for it to finish, or set concurrency.on_busy_account: wait")


class SchedulerLock(FileLock):
    """One `dhbot schedule` per state folder."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir / "scheduler.lock")

    def busy(self, holder: str) -> BotError:
        return SchedulerBusy(
            f"another dhbot schedule is running on {self.path.parent}"
            + (f" (pid {holder})" if holder else "")
            + "; only one scheduler may use a state folder")


def account_lock(settings: Settings, account: str, wait_s: float = 0.0,
                 ttl_s: float | None = None) -> Any:
    """One dhbot per account: an flock in the state folder on one machine; with a shared
    ledger, the Redis lock the distributed workers take (see bot.distlock)."""
    key = settings.portal.key(account)  # the seller, whatever the configuration calls it
    if not settings.distributed_ledger:
        return AccountLock(settings.paths.state_dir, key, wait_s=wait_s, account=account)
    import redis

    from bot.distlock import RedisAccountLock
    from bot.ledger import open_ledger
    from bot.log import redactor

    dist = settings.distributed
    redactor.add_url(dist.broker_url)

    def token() -> int:  # fencing tokens come from the ledger (see bot.distlock)
        ledger = open_ledger(settings)  # its rows by identity, as the run sees them
        try:
            return ledger.take_fence(key)
        finally:
            ledger.close()

    return RedisAccountLock(redis.Redis.from_url(dist.broker_url), key, name=account,
                            tokens=token, ttl_s=ttl_s or dist.lock_ttl_s, wait_s=wait_s,
                            namespace=dist.queue)
