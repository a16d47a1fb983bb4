"""How fast dhbot asks the portal: one account's page loads spaced out (`Pacer`), and the
pause before a retry (`backoff`)."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from bot.config import RetryConfig


def backoff(retry: RetryConfig, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry `attempt` (1, 2, …): exponential from retry.backoff_s, capped at
    retry.backoff_max_s, with ± retry.jitter spread so that tabs do not retry in step."""
    base = min(retry.backoff_s * (2 ** (attempt - 1)), retry.backoff_max_s)
    spread = retry.jitter * (2 * (rng or random).random() - 1)
    return max(0.0, base * (1 + spread))


class Pacer:
    """Spaces one account's page loads (all its tabs together): the configured cap, plus a
    penalty after HTTP 429 that doubles on a new burst of refusals and shrinks after a
    quiet spell, so the account settles just under what the portal allows."""

    MAX_PENALTY_S = 10.0

    def __init__(self, requests_per_minute: int) -> None:
        self.base_interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.penalty = 0.0
        self._next = 0.0
        self._last_slowdown = -1e9
        self.slowdowns = 0

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.penalty and now - self._last_slowdown > max(8 * self.penalty, 4.0):
            self.penalty = self.penalty * 0.75 if self.penalty > 0.1 else 0.0
            self._last_slowdown = now  # one step per quiet spell
        interval = max(self.base_interval, self.penalty)
        if interval <= 0:
            return
        start = max(now, self._next)
        self._next = start + interval
        if start > now:
            await asyncio.sleep(start - now)

    def slow_down(self) -> None:
        """The portal said 操作太频繁: space page loads further apart.

        Refusals of loads already under way when the first one came count once.
        """
        now = asyncio.get_running_loop().time()
        if now - self._last_slowdown < max(self.penalty, 0.5):
            return
        self._last_slowdown = now
        self.penalty = min(max(self.penalty * 2, 0.5), self.MAX_PENALTY_S)
        self.slowdowns += 1
        logger.warning("portal asks to slow down; spacing page loads {:.1f}s apart",
                       self.penalty)
