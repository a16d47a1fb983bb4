"""The Prometheus textfile (`metrics: {textfile: PATH}`, for node_exporter's textfile
collector), written after every run, sync, distributed run and scheduled job.

    dhbot_orders_total{account,outcome}             counter: orders settled, by outcome
    dhbot_last_run_timestamp_seconds{account}       gauge: when the last run finished
    dhbot_last_run_exit_code{account}               gauge: its exit code
    dhbot_run_duration_seconds{account}             gauge: how long it took

The counter is cumulative: each run adds the orders it settled to what the file already
holds (an order a rerun only reports from the ledger, untouched, is not counted again;
deleting the file starts the counts afresh, which Prometheus reads as a counter reset).
Every series carries its account, and the file is read back and merged under a lock, so
runs of several accounts, or several runs at once, never clobber each other.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.lock import FileLock
from bot.report import RunReport

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

ORDERS = "dhbot_orders"  # a counter: its samples are dhbot_orders_total
GAUGES = {
    "dhbot_last_run_timestamp_seconds": "When the account's last dhbot run finished "
                                        "(Unix time).",
    "dhbot_last_run_exit_code": "Exit code of the account's last dhbot run (0 = every order "
                                "answered).",
    "dhbot_run_duration_seconds": "How long the account's last dhbot run took.",
}
# Another run writing the file holds its lock for milliseconds; give up after this long.
LOCK_WAIT_S = 30.0
# node_exporter reads the file as another user; the counts and account names are no secret.
TEXTFILE_MODE = 0o644


@dataclass
class Snapshot:
    """What the textfile holds: order counts by (account, outcome), gauges by account."""

    orders: Counter[tuple[str, str]] = field(default_factory=Counter)
    gauges: dict[str, dict[str, float]] = field(
        default_factory=lambda: {name: {} for name in GAUGES})

    def collect(self) -> Iterator[Metric]:
        """The metric families (prometheus_client's custom collector protocol)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        orders = CounterMetricFamily(ORDERS, "Orders settled by dhbot runs, by outcome "
                                     "(cumulative).", labels=["account", "outcome"])
        for (account, outcome), count in sorted(self.orders.items()):
            orders.add_metric([account, outcome], count)
        yield orders
        for name, doc in GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["account"])
            for account, value in sorted(self.gauges[name].items()):
                gauge.add_metric([account], value)
            yield gauge


def read_textfile(path: Path) -> Snapshot:
    """The series a textfile holds (an empty snapshot when there is none yet). A file that
    does not parse raises ValueError."""
    from prometheus_client.parser import text_string_to_metric_families

    snap = Snapshot()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return snap
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            account = sample.labels.get("account")
            if account is None:
                continue
            if sample.name == f"{ORDERS}_total" and "outcome" in sample.labels:
                snap.orders[(account, sample.labels["outcome"])] += int(sample.value)
            elif sample.name in GAUGES:
                snap.gauges[sample.name][account] = sample.value
    return snap


def settled(report: RunReport) -> Counter[tuple[str, str]]:
    """(account, outcome) -> orders this run settled; orders it only reported from the
    ledger (finished by an earlier run, not read back) are left out."""
    return Counter((r.account, r.outcome.value) for r in report.orders
                   if r.previous_run is None or r.synced)


def add_run(snap: Snapshot, report: RunReport) -> None:
    """Count the run's orders in and set its accounts' last-run gauges."""
    snap.orders.update(settled(report))
    finished = _epoch(report.finished_at)
    duration = max(0.0, finished - _epoch(report.started_at or report.finished_at))
    # A distributed run's orders belong to several accounts; each gets the run's values.
    accounts = {r.account for r in report.orders} or {
        a.strip() for a in report.account.split(",") if a.strip()}
    for account in accounts:
        snap.gauges["dhbot_last_run_timestamp_seconds"][account] = finished
        snap.gauges["dhbot_last_run_exit_code"][account] = float(report.exit_code)
        snap.gauges["dhbot_run_duration_seconds"][account] = round(duration, 3)


def write_metrics(textfile: Path, report: RunReport) -> None:
    """Merge the run into the textfile: read it back, add the run, write it atomically
    (prometheus_client's write_to_textfile: a temporary file renamed over it)."""
    from loguru import logger
    from prometheus_client import CollectorRegistry, write_to_textfile
    from prometheus_client.registry import Collector

    class Collected(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from snap.collect()

    with FileLock(textfile.with_name(textfile.name + ".lock"), wait_s=LOCK_WAIT_S):
        try:
            snap = read_textfile(textfile)
        except ValueError as exc:  # not ours or cut short: start the series afresh
            logger.warning("metrics: {} does not parse ({}); writing it afresh", textfile, exc)
            snap = Snapshot()
        add_run(snap, report)
        registry = CollectorRegistry(auto_describe=True)
        registry.register(Collected())
        write_to_textfile(str(textfile), registry)
        os.chmod(textfile, TEXTFILE_MODE)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() if iso else datetime.now().timestamp()
