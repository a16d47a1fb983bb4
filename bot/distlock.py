"""One account, one session, across machines: a Redis lock with expiry, renewal and fencing.

The lock is redis-py's (SET NX PX with a random token, released and extended only by its
owner). It expires after `ttl_s` unless renewed, so a worker that dies — even by SIGKILL,
with its machine — frees the account after at most `ttl_s`. A thread renews it every
`ttl_s / 3`.

Expiry alone cannot stop a worker that was frozen (a long GC pause, a suspended VM) from
waking up and submitting while a new holder works on the account. So every acquisition
also takes a fencing token from the ledger (`Ledger.take_fence`: strictly increasing, and
still so after Redis restarts empty), and the worker checks before each submit that (1) the
ledger has seen no newer token for the account (`Ledger.record_intent(fence=...)`, in the
same transaction as the intent) and (2) the lock is still its own (`check`, again right
before the click). A stale worker fails both and stops before the click.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from loguru import logger
from redis.exceptions import ConnectionError as ConnectionError_

from bot.errors import AccountBusy, ConfigError, LockLost

KEY_PREFIX = "dhbot:account"


class RedisAccountLock:
    """An exclusive, expiring, renewed lock on one account, with a fencing token."""

    def __init__(self, client: Any, account: str, *, tokens: Callable[[], int], ttl_s: float,
                 wait_s: float = 0.0, namespace: str = "dhbot",
                 name: str | None = None) -> None:
        # `account` keys the lock (the portal identity); `name` is what messages call it;
        # `tokens` hands out the fencing tokens (the ledger's `take_fence` for the account).
        self.client = client
        self._tokens = tokens
        self.account = name or account
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self._key = f"{KEY_PREFIX}:{namespace}:{account}"
        # thread_local=False: the renewal thread must see the token the owner took.
        self._lock = client.lock(self._key + ":lock", timeout=ttl_s, sleep=0.2,
                                 blocking=wait_s > 0, blocking_timeout=wait_s or None,
                                 thread_local=False)
        self.token: int | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> int:
        """Take the lock (or raise AccountBusy); returns the fencing token."""
        try:
            taken = self._lock.acquire()
        except ConnectionError_ as exc:
            raise ConfigError(f"cannot reach Redis for the account lock of {self.account!r}:"
                              f" {exc}") from exc
        if not taken:
            raise AccountBusy(f"account {self.account!r} is in use by another dhbot "
                              "(a worker or a run)")
        try:
            self.token = self._tokens()
        except BaseException:
            self._lock.release()
            raise
        self._lost = None
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lock-{self.account}",
                                         daemon=True)
        self._renewer.start()
        return self.token

    def _renew(self) -> None:
        interval = self.ttl_s / 3
        while not self._stop.wait(interval):
            try:
                if not self._lock.extend(self.ttl_s, replace_ttl=True):
                    self._lost = "the lock could not be extended"
            except Exception as exc:  # LockNotOwnedError, Redis unreachable
                self._lost = f"renewing the lock failed: {exc}"
            if self._lost:
                logger.error("account {}: {}; no further submits", self.account, self._lost)
                return

    def check(self) -> int:
        """Before a submit: raise LockLost unless the lock is still ours; the fencing token."""
        if self.token is None:
            raise LockLost(f"account {self.account!r}: the lock is not held")
        if self._lost is None:
            try:
                owned = bool(self._lock.owned())
            except Exception as exc:
                owned, self._lost = False, f"Redis unreachable: {exc}"
            if not owned and self._lost is None:
                self._lost = "the lock expired or was taken over"
        if self._lost is not None:
            raise LockLost(f"account {self.account!r}: {self._lost}; not submitting")
        return self.token

    def release(self) -> None:
        """Stop renewing and give the lock back (if it is still ours)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        try:
            self._lock.release()
        except Exception as exc:  # expired meanwhile: nothing to give back
            logger.debug("account {}: releasing the lock: {}", self.account, exc)
        self.token = None

    def __enter__(self) -> RedisAccountLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

