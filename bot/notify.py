"""Messages to people through apprise (DingTalk, WeCom, Feishu, email, Slack, JSON webhooks)
after a run, as `notify: {urls, urls_env, on}` asks.

A message that cannot be sent is a warning in the log, never a change to the run's outcome.
The URLs hold tokens: they never reach a log, a report or the console (the log shows a URL
as its scheme only, and every token-like part of it is known to the redactor).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from loguru import logger

from bot.config import NotifyConfig, NotifyOn, Settings
from bot.display import DEFAULT_ZONE, outcome_label, shown_time
from bot.log import mask_notify_url, redactor
from bot.outcomes import PERSON_OUTCOMES, OrderResult
from bot.report import RunReport

# Exit codes of a run stopped by something only a person can fix: the portal refused the
# password (2), a captcha or a verification step at login (3).
PERSON_STOPS = frozenset({2, 3})
# Orders listed one by one in a message; the rest are counted (report.html has them all).
MAX_LISTED = 30
# Parts of a URL taken for tokens: long ones, or shorter ones with a digit (a path segment
# such as "services" or "robot" stays readable in the logs).
TOKEN_MIN, TOKEN_PLAIN_MIN = 8, 16


@dataclass(frozen=True)
class Message:
    """One notification: its title (an e-mail's subject), its text, and how grave it is."""

    title: str
    body: str
    grave: bool  # apprise's "failure" type (red in chat apps) rather than "info"


def notify_urls(config: NotifyConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """The configured URLs, then those of the variable `urls_env` (separated by spaces or
    commas, as apprise's own command line takes them). Each is taught to the redactor."""
    environ = os.environ if environ is None else environ
    urls = list(config.urls)
    if config.urls_env:
        urls += [u for u in re.split(r"[\s,]+", environ.get(config.urls_env, "")) if u]
    for url in urls:
        remember_url(url)
    return urls


def remember_url(url: str) -> None:
    """Teach the redactor a notification URL and every part of it that may be a token
    (dingtalk://TOKEN, wecombot://KEY, json://host/path/TOKEN, mailto://user:PASS@host)."""
    redactor.add(url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL apprise could use either; the whole text is known
        return
    redactor.add(password)
    host = parts.netloc.rpartition("@")[2].split(":")[0]
    pieces = [parts.username, *parts.path.split("/"), *(v for _, v in parse_qsl(parts.query))]
    if "." not in host and host != "localhost":  # a host without a dot is a token
        pieces.append(host)
    for piece in pieces:
        if piece and (len(piece) >= TOKEN_PLAIN_MIN or
                      (len(piece) >= TOKEN_MIN and any(c.isdigit() for c in piece))):
            redactor.add(piece)


def person_orders(report: RunReport) -> list[OrderResult]:
    """The run's orders a person has to act on: failed, needs_review, rejected."""
    return [r for r in report.orders if r.outcome in PERSON_OUTCOMES]


def stopped_for_person(report: RunReport) -> bool:
    """The run stopped on something only a person can fix (a captcha, a refused password)."""
    return report.stopped is not None and report.exit_code in PERSON_STOPS


def needs_person(report: RunReport) -> bool:
    """True when the run leaves work for a person (`notify.on: needs_person`). A portal that
    no longer matches the profile shows as failed orders naming `dhbot check`."""
    return bool(person_orders(report)) or stopped_for_person(report)


def wants_message(report: RunReport, on: NotifyOn) -> bool:
    """Whether `notify.on` asks for a message about this run."""
    if on == "never":
        return False
    if on == "always":
        return True
    if on == "failed":
        return report.exit_code != 0
    return needs_person(report)


def job_title(report: RunReport) -> str:
    """The job as people know it: its `name:` with the file, or the file alone."""
    name = getattr(report, "name", None)  # RunReport.name: the job file's `name:`
    return f"{name} ({report.job})" if name and name != report.job else report.job


def compose(report: RunReport, report_path: Path, timezone: str = DEFAULT_ZONE) -> Message:
    """The message about a run: what needs a person first, then the counts and the report."""
    waiting = person_orders(report)
    job = job_title(report)
    if waiting:
        headline = f"{len(waiting)} order(s) need a person (需要处理)"
    elif stopped_for_person(report):
        headline = "the run stopped: a person is needed (需要处理)"
    elif report.exit_code:
        headline = f"the run ended with exit code {report.exit_code}"
    else:
        headline = "the run finished"
    kind = "dry run" if report.dry_run else "run"
    counts = ", ".join(f"{outcome_label(k)} {v}" for k, v in report.summary.items())
    lines = [
        f"dhbot {kind} {report.run_id}: {headline}",
        f"job: {job}",
        f"account: {report.account}",
        f"finished: {shown_time(report.finished_at, timezone)} ({timezone})",
        f"exit code: {report.exit_code}",
        f"orders: {len(report.orders)} ({counts or 'none'})",
    ]
    if report.stopped:
        lines.append(f"stopped: {report.stopped}")
    if waiting:
        lines.append("needs a person 需要处理:")
        for r in waiting[:MAX_LISTED]:
            whose = f" [{r.account}]" if r.account != report.account else ""
            lines.append(f"- {r.order_no}{whose} {outcome_label(r.outcome)}: {r.error or '-'}")
        if len(waiting) > MAX_LISTED:
            lines.append(f"- … and {len(waiting) - MAX_LISTED} more (see the report)")
    lines.append(f"report: {report_path.with_name('report.html')}")
    grave = bool(waiting) or report.exit_code != 0
    title = f"dhbot: {headline} — {job}, account {report.account}"
    return Message(title=title, body=redactor.redact("\n".join(lines)), grave=grave)


def notify_run(settings: Settings, report: RunReport, report_path: Path) -> int:
    """Send the run's message when `notify.on` asks for one; returns how many URLs took it.
    Never raises for a URL that fails: it is a warning in the log."""
    config = settings.notify
    if not wants_message(report, config.on):
        return 0
    urls = notify_urls(config)
    if not urls:
        if config.urls_env:
            logger.warning("notify: no URL to send to ({} is not set or empty)",
                           config.urls_env)
        return 0
    return send(urls, compose(report, report_path, settings.display.timezone))


def send(urls: list[str], message: Message) -> int:
    """Send `message` to every URL, one at a time, so a failing one is named (masked) and
    the others still get it; returns how many took it."""
    import apprise

    sent = 0
    for url in urls:
        remember_url(url)
        shown = mask_notify_url(url)
        box = apprise.Apprise()
        with _apprise_says() as said:
            try:
                if not box.add(url):
                    logger.warning("notification URL {} is not one apprise understands: "
                                   "skipped", shown)
                    continue
                ok = bool(box.notify(body=message.body, title=message.title,
                                     body_format=apprise.NotifyFormat.TEXT,
                                     notify_type=(apprise.NotifyType.FAILURE if message.grave
                                                  else apprise.NotifyType.INFO)))
            except Exception as exc:  # a notification never ends a run
                ok = False
                said.append(f"{type(exc).__name__}: {redactor.redact(str(exc))}")
        if ok:
            sent += 1
            logger.info("notification sent to {}", shown)
        else:
            logger.warning("notification to {} failed: {}", shown,
                           "; ".join(said) or "no answer")
    return sent


@contextlib.contextmanager
def _apprise_says() -> Iterator[list[str]]:
    """Collect what apprise logs (warnings and errors) instead of letting it reach a handler
    of the root logger: its messages may quote a URL. The caller logs them, redacted."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(redactor.redact(record.getMessage()))

    log = logging.getLogger("apprise")
    handler = Keep(logging.WARNING)
    propagate = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield said
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
