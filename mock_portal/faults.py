"""Fault settings: the knobs tests and benchmarks turn to make the portal slow, flaky or strict.

The same keys are read from the ``--faults`` YAML file and merged by ``PUT /__admin/faults``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

# Names of the routes that `error_rates` can target; "*" targets every one of them.
ROUTE_NAMES: tuple[str, ...] = (
    "landing",
    "login",
    "login_submit",
    "logout",
    "home",
    "orders",
    "detail",
    "cancel",
    "message",
    "message_submit",
    "static",
)
COMMIT_THEN_FAIL_MODES: tuple[str, ...] = ("status500", "drop")
LAYOUTS: tuple[str, ...] = ("v1", "v2", "legacy")


class FaultError(ValueError):
    """A faults object named an unknown key or gave a value of the wrong type."""


@dataclass(frozen=True)
class Faults:
    """Every fault knob with its default (no faults, layout v1)."""

    latency_ms: int = 0
    latency_jitter_ms: int = 0
    error_rates: dict[str, float] = field(default_factory=dict)
    commit_then_fail: float = 0.0
    commit_then_fail_mode: str = "status500"
    session_lifetime_s: int = 1800
    # A session also ends after serving this many pages (0: no limit): a re-login that
    # comes at the same point of a run however fast or loaded the machine is.
    session_max_pages: int = 0
    captcha: bool = False
    rate_limit_per_minute: int = 0
    message_rate_per_minute: int = 10
    # The "minute" of both rate limits; shorter windows keep tests fast.
    rate_limit_window_s: int = 60
    layout: str = "v1"
    # Legacy layout only: the order list draws its rows this long after the page has loaded.
    rows_delay_ms: int = 300
    # The seller's funds account cannot pay the fine: cancelling a paid order is refused.
    insufficient_funds: bool = False
    # A cancel request is held this long before the portal acts on it (a slow backend: the
    # request has left the browser, the order changes only later).
    submit_delay_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by ``GET /__admin/faults``."""
        return asdict(self)

    def merged(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied; raises FaultError naming the first bad key."""
        if not isinstance(changes, Mapping):
            raise FaultError("faults must be an object of key: value pairs")
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            checker = _CHECKERS.get(key)
            if checker is None:
                known = ", ".join(_CHECKERS)
                raise FaultError(f"unknown fault key {key!r} (known: {known})")
            clean[key] = checker(key, value)
        return replace(self, **clean)

    def delay_s(self, rng: random.Random) -> float:
        """Seconds of added latency for one request (0 when latency is off)."""
        if self.latency_ms <= 0 and self.latency_jitter_ms <= 0:
            return 0.0
        jitter = rng.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000.0

    def error_rate(self, route: str) -> float:
        """Probability of a plain 500 before handling ``route``."""
        if route in self.error_rates:
            return self.error_rates[route]
        return self.error_rates.get("*", 0.0)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultError(f"{key} must be a non-negative integer, got {value!r}")
    return value


def _probability(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultError(f"{key} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FaultError(f"{key} must be true or false, got {value!r}")
    return value


def _choice(options: tuple[str, ...]) -> Any:
    def check(key: str, value: Any) -> str:
        if value not in options:
            raise FaultError(f"{key} must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    return check


def _error_rates(key: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise FaultError(f"{key} must be an object of route name: probability")
    rates: dict[str, float] = {}
    for route, rate in value.items():
        if route != "*" and route not in ROUTE_NAMES:
            raise FaultError(f"{key}: unknown route {route!r} (known: *, {', '.join(ROUTE_NAMES)})")
        rates[str(route)] = _probability(f"{key}.{route}", rate)
    return rates


_CHECKERS: dict[str, Any] = {
    "latency_ms": _int,
    "latency_jitter_ms": _int,
    "error_rates": _error_rates,
    "commit_then_fail": _probability,
    "commit_then_fail_mode": _choice(COMMIT_THEN_FAIL_MODES),
    "session_lifetime_s": _int,
    "session_max_pages": _int,
    "captcha": _bool,
    "rate_limit_per_minute": _int,
    "message_rate_per_minute": _int,
    "rate_limit_window_s": _int,
    "layout": _choice(LAYOUTS),
    "rows_delay_ms": _int,
    "insufficient_funds": _bool,
    "submit_delay_ms": _int,
}


def load_faults_file(path: Path) -> Faults:
    """Read a faults YAML file (the same keys as the admin API) over the defaults."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return Faults().merged(loaded)
    except FaultError as exc:
        raise FaultError(f"{path}: {exc}") from exc
