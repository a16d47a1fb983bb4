"""How stored facts are shown to people: times in the display time zone, outcomes with their
Chinese label beside the code.

What dhbot stores (report.json, the ledger, log.jsonl) keeps UTC ISO 8601 times and bare
outcome codes, for scripts; only what people read (the console, report.html, report.csv,
`status`, `runs`) goes through here, so every place shows them the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.config import DisplayConfig
from bot.outcomes import LABELS_ZH, Outcome

DEFAULT_ZONE = DisplayConfig().timezone  # display.timezone's default (Asia/Shanghai)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def shown_time(stored: str | None, zone: str = DEFAULT_ZONE) -> str:
    """A stored UTC time as people read it in `zone`, with the offset so it is never
    ambiguous: "2026-11-30T08:05:03+00:00" -> "2026-11-30 16:05:03 +08:00". No time gives
    ""; text that is not a time is shown as it is."""
    if not stored:
        return ""
    try:
        moment = datetime.fromisoformat(stored)
    except (TypeError, ValueError):
        return stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # dhbot stores UTC
    local = moment.astimezone(_zone(zone))
    offset = local.strftime("%z")  # +0800
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:5]}"


def seconds_between(started: str | None, finished: str | None) -> float | None:
    """Seconds from one stored time to another; None when either is missing or unreadable
    or they are out of order."""
    try:
        seconds = (datetime.fromisoformat(finished or "")
                   - datetime.fromisoformat(started or "")).total_seconds()
    except (ValueError, TypeError):
        return None
    return seconds if seconds >= 0 else None


def shown_duration(started: str | None, finished: str | None) -> str:
    """How long from one stored time to another, as "3m 12s" or "1h 2m 3s" ("" when it
    cannot be told)."""
    seconds = seconds_between(started, finished)
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"


def shown_clock(moment: datetime, zone: str = DEFAULT_ZONE) -> str:
    """The time of day of an aware datetime in `zone` (HH:MM:SS), for log lines."""
    return moment.astimezone(_zone(zone)).strftime("%H:%M:%S")


def outcome_label(code: str | Outcome) -> str:
    """The outcome as people read it, Chinese label first: "已提交 submitted". An unknown
    code (an older or newer report) is shown alone."""
    value = code.value if isinstance(code, Outcome) else str(code)
    try:
        label = LABELS_ZH.get(Outcome(value))
    except ValueError:
        label = None
    return f"{label} {value}" if label else value


def outcome_from_text(text: str) -> Outcome | None:
    """The outcome a person named, by its code (any case) or its Chinese label; None when
    it is neither."""
    wanted = text.strip()
    for outcome in Outcome:
        if wanted.lower() == outcome.value or wanted == LABELS_ZH.get(outcome):
            return outcome
    return None


def preview_fine(fine: str | None) -> str:
    """A previewed order's fine (OrderResult.fine) as people read it."""
    if fine is None:
        return "unknown (no 实付金额 shown)"
    return "none (unpaid)" if fine == "none" else fine
