"""The portal's in-memory store: orders, accounts, sessions, logs, counters and faults."""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

from mock_portal.data import CST, Order, generate_orders
from mock_portal.faults import Faults

DEMO_ACCOUNT = ("demo_seller", "demo-pass")
# Failed logins for one user name after which the slider captcha is required.
CAPTCHA_AFTER_FAILURES = 5
CAPTCHA_TOKEN_TTL_S = 600.0
WINDOW_S = 60.0


def now() -> datetime:
    """Wall-clock time in the portal's time zone, for events that happen while it runs."""
    return datetime.now(CST).replace(microsecond=0)


@dataclass
class Session:
    """A signed-in browser: who, since when, and the notices waiting for its next page."""

    token: str
    account: str
    created: float
    pages: int = 0  # requests served under it
    # path -> (role, text): a notice shown once on the next render of that path
    flashes: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class CancelLogEntry:
    """One cancel POST that reached the handler, accepted or refused."""

    order_no: str
    account: str
    reason: str
    note: str
    accepted: bool
    at: datetime


@dataclass
class MessageEntry:
    """One message sent to a buyer."""

    order_no: str
    account: str
    content: str
    at: datetime


@dataclass
class Stats:
    """Request counters served by ``GET /__admin/stats``."""

    requests: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    logins: Counter[str] = field(default_factory=Counter)
    status_codes: Counter[str] = field(default_factory=Counter)
    max_concurrent_sessions: dict[str, int] = field(default_factory=dict)
    # account -> session token -> requests of that session in flight now
    in_flight: dict[str, Counter[str]] = field(default_factory=dict)

    def enter(self, account: str, token: str) -> None:
        """A request of ``token`` started; update the account's concurrency high-water mark."""
        sessions = self.in_flight.setdefault(account, Counter())
        sessions[token] += 1
        busy = sum(1 for n in sessions.values() if n > 0)
        if busy > self.max_concurrent_sessions.get(account, 0):
            self.max_concurrent_sessions[account] = busy

    def leave(self, account: str, token: str) -> None:
        """A request of ``token`` finished."""
        sessions = self.in_flight.get(account)
        if sessions is None:
            return
        sessions[token] -= 1
        if sessions[token] <= 0:
            del sessions[token]

    def to_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "requests": self.requests,
            "by_route": dict(self.by_route),
            "logins": dict(self.logins),
            "status_codes": dict(self.status_codes),
            "max_concurrent_sessions": dict(self.max_concurrent_sessions),
        }


class PortalState:
    """Everything the portal remembers; ``reset`` puts it back to the start."""

    def __init__(
        self,
        *,
        seed: int,
        order_count: int,
        faults: Faults,
        accounts: list[tuple[str, str]] | None = None,
    ) -> None:
        self.start_seed = seed
        self.start_order_count = order_count
        self.start_faults = faults
        self.passwords: dict[str, str] = dict([DEMO_ACCOUNT, *(accounts or [])])
        self.reset()

    def reset(self, seed: int | None = None, order_count: int | None = None) -> None:
        """Regenerate the orders and forget sessions, logs, counters and fault changes."""
        self.seed = self.start_seed if seed is None else seed
        self.order_count = self.start_order_count if order_count is None else order_count
        self.faults = self.start_faults
        # One RNG for every fault decision, so a seeded run fails the same way each time.
        self.rng = random.Random(self.seed)
        self.orders = generate_orders(self.seed, self.order_count, list(self.passwords))
        self.by_no = {o.order_no: o for o in self.orders}
        self.by_id = {o.internal_id: o for o in self.orders}
        self.by_account: dict[str, list[Order]] = {name: [] for name in self.passwords}
        for order in reversed(self.orders):  # newest first
            self.by_account[order.account].append(order)
        self.sessions: dict[str, Session] = {}
        self.login_failures: Counter[str] = Counter()
        self.captcha_tokens: dict[str, float] = {}
        self.cancel_log: list[CancelLogEntry] = []
        self.messages: list[MessageEntry] = []
        self.message_times: dict[str, deque[float]] = {}
        self.request_times: dict[str, deque[float]] = {}
        self.stats = Stats()

    # -- accounts and sessions -------------------------------------------------------------

    def check_password(self, username: str, password: str) -> bool:
        """True when ``username`` exists and ``password`` is its password."""
        expected = self.passwords.get(username)
        return expected is not None and secrets.compare_digest(expected, password)

    def needs_captcha(self, username: str) -> bool:
        """The slider captcha is required: the fault is on or the user failed too often."""
        return self.faults.captcha or self.login_failures[username] >= CAPTCHA_AFTER_FAILURES

    def login(self, account: str) -> Session:
        """Open a new session for ``account``."""
        session = Session(token=secrets.token_urlsafe(24), account=account, created=time.time())
        self.sessions[session.token] = session
        self.login_failures.pop(account, None)
        self.stats.logins[account] += 1
        return session

    def session_for(self, token: str | None) -> Session | None:
        """The live session behind a DHSESSID cookie, or None (expired sessions are dropped)."""
        if not token:
            return None
        session = self.sessions.get(token)
        if session is None:
            return None
        max_pages = self.faults.session_max_pages
        if time.time() - session.created >= self.faults.session_lifetime_s or (
                max_pages and session.pages >= max_pages):
            del self.sessions[token]
            return None
        return session

    def logout(self, token: str | None) -> None:
        """Forget a session."""
        if token:
            self.sessions.pop(token, None)

    # -- captcha ---------------------------------------------------------------------------

    def issue_captcha(self) -> str:
        """A one-time token the slider writes into the login form when dragged to the end."""
        cutoff = time.monotonic() - CAPTCHA_TOKEN_TTL_S
        for token in [t for t, issued in self.captcha_tokens.items() if issued < cutoff]:
            del self.captcha_tokens[token]
        token = secrets.token_urlsafe(16)
        self.captcha_tokens[token] = time.monotonic()
        return token

    def redeem_captcha(self, token: str) -> bool:
        """True once for a token this portal issued recently."""
        issued = self.captcha_tokens.pop(token, None) if token else None
        return issued is not None and time.monotonic() - issued < CAPTCHA_TOKEN_TTL_S

    # -- rate limits -----------------------------------------------------------------------

    def allow_page_request(self, account: str) -> bool:
        """Count a signed-in page request; False when the account is over its per-minute limit."""
        limit = self.faults.rate_limit_per_minute
        if limit <= 0:
            return True
        return _take(
            self.request_times.setdefault(account, deque()), limit, self.faults.rate_limit_window_s
        )

    def allow_message(self, account: str) -> bool:
        """Count a message; False when the account sent too many in the last minute."""
        times = self.message_times.setdefault(account, deque())
        return _take(times, self.faults.message_rate_per_minute, self.faults.rate_limit_window_s)

    # -- fault decisions -------------------------------------------------------------------

    def roll(self, probability: float) -> bool:
        """One seeded coin flip; never consumes randomness when the probability is 0."""
        return probability > 0 and self.rng.random() < probability


def _take(times: deque[float], limit: int, window_s: float = WINDOW_S) -> bool:
    """Sliding-window limiter: record this moment unless ``limit`` moments lie in the window."""
    moment = time.monotonic()
    while times and moment - times[0] >= window_s:
        times.popleft()
    if len(times) >= limit:
        return False
    times.append(moment)
    return True
