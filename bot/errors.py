"""Every error dhbot raises, as one tree; each branch carries the exit status it maps to.

BotError                      1  root: something went wrong
├── UsageError                2  bad input; nothing was done
│   ├── ConfigError           2  config.yaml / environment / command line
│   │   └── ProfileError      2  the portal profile file is missing or invalid
│   ├── BrowserUnavailable    2  Chromium is missing or cannot start
│   ├── JobError              2  job file
│   └── CredentialsRejected   2  the portal refused the user name or password
├── LoginNeedsPerson          3  captcha or verification at login
├── AccountBusy               4  another run holds the account
│   ├── SchedulerBusy         4  another scheduler holds the state folder
│   └── LockLost              4  a worker lost its account lock (expired, taken over)
├── LedgerUnavailable        5  submit/wait: the shared ledger stayed unreachable
├── Interrupted             130  SIGINT/SIGTERM: stopped cleanly, report written
├── DeadlineReached           1  the run's time limit passed: stopped cleanly, report written
├── BrowserGone               1  Chromium died more often than a run restarts it
└── FlowError                 -  one order's step failed (recorded per order, never exits)
    ├── TransientError        -  worth retrying: HTTP 5xx, dropped connection, timeout
    │   └── RateLimited       -  HTTP 429 / 操作太频繁: slow the account down
    ├── SessionExpired        -  the portal showed its login page: log in again
    └── ProfileMismatch       -  a profile label/selector no longer matches: fail fast
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """An error in one line, for logs and reports (its type when it has no message)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class BotError(Exception):
    """Root of dhbot's errors."""

    exit_code = 1


class UsageError(BotError):
    """Bad input from the operator; nothing was done."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration (file, environment or command line) is invalid."""


class ProfileError(ConfigError):
    """The portal profile file is missing or invalid."""


class BrowserUnavailable(UsageError):
    """Chromium is missing, or did not start (twice) within the launch timeout."""


class JobError(UsageError):
    """The job file is invalid."""


class CredentialsRejected(UsageError):
    """The portal refused the account's user name or password."""


class LoginNeedsPerson(BotError):
    """Login needs a person: a captcha or a verification step."""

    exit_code = 3


class AccountBusy(BotError):
    """Another dhbot run holds the same account."""

    exit_code = 4


class SchedulerBusy(AccountBusy):
    """Another `dhbot schedule` holds the same state folder."""


class LockLost(AccountBusy):
    """A distributed worker no longer holds its account's lock: it must not submit."""


class LedgerUnavailable(BotError):
    """The shared ledger database could not be reached, even after retrying; nothing is lost
    (the workers go on, `dhbot wait RUN_ID` follows the run again)."""

    exit_code = 5


class Interrupted(BotError):
    """The run was stopped by SIGINT or SIGTERM after cleaning up."""

    exit_code = 130


class DeadlineReached(BotError):
    """The run's time limit (--deadline, run.max_minutes) passed; it stopped like SIGTERM."""


class BrowserGone(BotError):
    """Chromium died mid-run more often than the run restarts it (run.browser_restarts)."""


class FlowError(BotError):
    """A step of a portal flow failed; carries where it happened. `unsettled`: the tab may
    not be where the flow left it (a load broke off), so the next step starts afresh."""

    # Why it is worth a retry, as counted in the report ("timeout", "server error", …).
    reason = "error"

    def __init__(self, message: str, *, step: str = "", page: str = "",
                 unsettled: bool = False, reason: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.page = page
        self.unsettled = unsettled
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        where = " ".join(p for p in (f"page={self.page}" if self.page else "",
                                     f"step={self.step}" if self.step else "") if p)
        base = super().__str__()
        return f"{base} ({where})" if where else base


class TransientError(FlowError):
    """A failure worth retrying after a pause: HTTP 5xx, a dropped connection, a timeout."""

    reason = "transient"


class RateLimited(TransientError):
    """The portal asked us to slow down (HTTP 429, 操作太频繁)."""

    reason = "rate limited"


class SessionExpired(FlowError):
    """The portal showed its login page in the middle of a flow."""


class ProfileMismatch(FlowError):
    """A label or selector from the portal profile matched nothing (or too much)."""

    def __init__(self, message: str, *, step: str = "", page: str = "", key: str = "",
                 looked_for: str = "") -> None:
        super().__init__(message, step=step, page=page)
        self.key = key
        self.looked_for = looked_for
