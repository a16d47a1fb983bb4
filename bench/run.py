"""`make bench`: naive script vs. dhbot vs. the HTTP floor, on the same orders, on this machine.

Starts the mock portal itself (seed 42, 2,500 orders), picks cancellable orders of
demo_seller, and for each added portal latency (0 ms and 100 ms) runs, each on a freshly reset
portal: the naive Playwright script (bench/naive.py), the httpx floor (bench/floor.py), and the
real `dhbot run` CLI at several --pages. Every run is checked against the portal's cancellation
log (each order cancelled exactly once, nothing else touched) and measured from the outside:
wall time, per-order times, CPU seconds and peak RSS of the contender's whole process tree.
A second table runs dhbot at its best concurrency on a small and a large job to show that the
cost per order stays flat. Prints both tables and writes bench/results.json.

    .venv/bin/python bench/run.py [--quick] [--out bench/results.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # run as a script: make bench/ and tests/ importable

from bench.host import load, machine, versions  # noqa: E402
from bench.measure import TreeUsage, run_measured  # noqa: E402
from tests.portal_server import PortalServer  # noqa: E402

SEED = 42
PORTAL_ORDERS = 2500  # gives demo_seller well over 1,000 cancellable orders
ACCOUNT = "demo_seller"
PASSWORD = "demo-pass"  # the mock portal's published demo account
CANCELLABLE = ("待发货", "等待买家付款")
LATENCIES_MS = (0, 100)
CHROMIUM = "/usr/bin/chromium"
ACCEPTED_OUTCOMES = {"submitted", "cancelled"}


@dataclass(frozen=True)
class Plan:
    """How many orders each part of the benchmark uses."""

    orders: int
    naive_orders: int
    pages: tuple[int, ...]
    scale: tuple[int, int]
    scale_latency_ms: int = 0


# Sized for a 2-core machine: dhbot spends about half a CPU-second per order there, so the
# 1,000-order scale run alone takes several minutes.
FULL = Plan(orders=100, naive_orders=20, pages=(1, 2, 4, 8), scale=(100, 1000))
QUICK = Plan(orders=6, naive_orders=2, pages=(1, 4), scale=(10, 30))


@dataclass
class Measurement:
    """One contender on one set of orders at one latency: raw figures and verdict."""

    contender: str
    latency_ms: int
    orders: int
    pages: int | None = None
    valid: bool = False
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    per_order_s: list[float] = field(default_factory=list)
    orders_per_min: float = 0.0
    median_s: float = 0.0
    p95_s: float = 0.0
    wall_s_per_order: float = 0.0
    cpu_s: float = 0.0
    cpu_s_per_order: float = 0.0
    orphans_reaped: int = 0
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    peak_processes: int = 0
    exit_code: int = 0
    cpu_by_process: dict[str, float] = field(default_factory=dict)
    portal_requests: int = 0
    requests_per_order: float = 0.0
    portal_by_route: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    load_avg_1m: float = 0.0

    @property
    def label(self) -> str:
        """The contender as the tables name it."""
        return f"dhbot --pages {self.pages}" if self.pages else self.contender


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually measured."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Bench:
    """Runs the contenders against one portal and keeps their measurements."""

    def __init__(self, portal: PortalServer, workdir: Path, console: Console) -> None:
        self.portal = portal
        self.workdir = workdir
        self.console = console
        self._runs = 0

    def cancellable(self) -> list[str]:
        """demo_seller's cancellable orders in the freshly reset portal, in a fixed order."""
        self.portal.reset()
        return [o["order_no"] for o in self.portal.orders(account=ACCOUNT)
                if o["status"] in CANCELLABLE]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DHBOT_")}
        env["DHBOT_PASSWORD_MAIN"] = PASSWORD
        env["PYTHONPATH"] = str(ROOT)
        return env

    def _folder(self, name: str) -> Path:
        self._runs += 1
        folder = self.workdir / f"{self._runs:02d}-{name}"
        folder.mkdir(parents=True)
        return folder

    def _prepare(self, latency_ms: int) -> None:
        self.portal.reset()  # also puts the faults back to none
        if latency_ms:
            self.portal.set_faults(latency_ms=latency_ms)

    def script(self, name: str, orders: list[str], latency_ms: int) -> Measurement:
        """naive.py or floor.py as a measured subprocess."""
        folder = self._folder(f"{name}-{latency_ms}ms")
        orders_file = folder / "orders.json"
        orders_file.write_text(json.dumps(orders), encoding="utf-8")
        out = folder / "times.json"
        argv = [sys.executable, str(BENCH / f"{name}.py"), "--base-url", self.portal.url,
                "--orders", str(orders_file), "--out", str(out)]
        m = Measurement(contender=name, latency_ms=latency_ms, orders=len(orders))
        self._prepare(latency_ms)
        usage = run_measured(argv, cwd=ROOT, env=self._env(), stdout_path=folder / "log.txt",
                             timeout_s=120 + 30 * len(orders))
        if out.exists():
            data = json.loads(out.read_text(encoding="utf-8"))
            m.per_order_s = data["per_order_s"]
            m.problems += [f"{no}: {err}" for no, err in list(data["errors"].items())[:3]]
        else:
            m.problems.append(f"no times written; see {folder / 'log.txt'}")
        return self._finish(m, usage, orders)

    def dhbot(self, orders: list[str], latency_ms: int, pages: int,
              browser: dict[str, Any] | None = None) -> Measurement:
        """`dhbot run` on a job file, in a fresh workspace (no saved session, no ledger).

        `browser` overrides keys of the config's browser section (for profiling runs).
        """
        folder = self._folder(f"dhbot-p{pages}-{latency_ms}ms-{len(orders)}")
        config = {
            "portal": {"base_url": self.portal.url, "profile": "mock",
                       "accounts": [{"name": "main", "username": ACCOUNT,
                                     "password_env": "DHBOT_PASSWORD_MAIN"}]},
            "browser": {"headless": True, "executable_path": CHROMIUM, **(browser or {})},
            "paths": {"state_dir": "state", "runs_dir": "runs"},
            "concurrency": {"total_pages": max(8, pages)},
            "max_orders_per_run": max(500, len(orders)),
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                            encoding="utf-8")
        job = {"defaults": {"reason": "out_of_stock", "note": "仓库断货，无法按时发货"},
               "orders": [{"order_no": no} for no in orders]}
        (folder / "job.yaml").write_text(yaml.safe_dump(job, allow_unicode=True),
                                         encoding="utf-8")
        report = folder / "report.json"
        argv = [sys.executable, "-m", "bot.cli", "run", "job.yaml", "--config", "config.yaml",
                "--pages", str(pages), "--base-url", self.portal.url, "--report", str(report)]
        m = Measurement(contender="dhbot", latency_ms=latency_ms, orders=len(orders),
                        pages=pages)
        self._prepare(latency_ms)
        usage = run_measured(argv, cwd=folder, env=self._env(), stdout_path=folder / "log.txt",
                             timeout_s=120 + 10 * len(orders))
        if report.exists():
            data = json.loads(report.read_text(encoding="utf-8"))
            m.per_order_s = [o["duration_s"] for o in data["orders"]]
            m.outcomes = dict(Counter(o["outcome"] for o in data["orders"]))
            m.problems += [f"{o['order_no']}: {o['outcome']} {o['error'] or ''}".strip()
                           for o in data["orders"]
                           if o["outcome"] not in ACCEPTED_OUTCOMES][:3]
        else:
            m.problems.append(f"no report.json; see {folder / 'log.txt'}")
        return self._finish(m, usage, orders)

    def _finish(self, m: Measurement, usage: TreeUsage, orders: list[str]) -> Measurement:
        m.problems += self._verify(orders)
        if usage.exit_code != 0:
            m.problems.append(f"exit code {usage.exit_code}")
        stats = self.portal.stats()
        n = len(orders)
        m.exit_code = usage.exit_code
        m.wall_s = usage.wall_s
        m.cpu_s = usage.cpu_s
        m.orphans_reaped = usage.orphans_reaped
        m.peak_rss_mb = usage.peak_rss_mb
        m.peak_pss_mb = usage.peak_pss_mb
        m.peak_processes = usage.peak_processes
        m.orders_per_min = 60 * n / usage.wall_s
        m.wall_s_per_order = usage.wall_s / n
        m.cpu_s_per_order = usage.cpu_s / n
        m.median_s = statistics.median(m.per_order_s) if m.per_order_s else 0.0
        m.p95_s = percentile(m.per_order_s, 95)
        m.cpu_by_process = usage.cpu_by_process
        m.portal_requests = int(stats["requests"])
        m.portal_by_route = dict(stats["by_route"])
        m.requests_per_order = m.portal_requests / n
        m.load_avg_1m = os.getloadavg()[0]
        m.valid = not m.problems
        mark = "[green]valid[/]" if m.valid else f"[red]INVALID[/] {m.problems[:2]}"
        self.console.print(f"  {m.label:<16} {m.latency_ms:>3} ms  {n:>4} orders  "
                           f"{m.wall_s:7.1f} s  {m.orders_per_min:7.1f}/min  "
                           f"cpu {m.cpu_s_per_order:6.3f} s/order  "
                           f"peak {m.peak_rss_mb:6.0f} MB RSS {m.peak_pss_mb:6.0f} MB PSS  "
                           f"{mark}")
        return m

    def _verify(self, orders: list[str]) -> list[str]:
        """Every order of the set cancelled exactly once and accepted; no other order touched."""
        wanted = set(orders)
        per_order: dict[str, list[bool]] = {}
        for entry in self.portal.cancel_requests():
            per_order.setdefault(entry["order_no"], []).append(bool(entry["accepted"]))
        problems: list[str] = []
        missing = [no for no in orders if no not in per_order]
        twice = [no for no, seen in per_order.items() if no in wanted and len(seen) > 1]
        refused = [no for no, seen in per_order.items() if no in wanted and not all(seen)]
        stray = [no for no in per_order if no not in wanted]
        for what, nos in (("never cancelled", missing), ("cancel POSTed more than once", twice),
                          ("refused by the portal", refused), ("not in the set", stray)):
            if nos:
                problems.append(f"{len(nos)} orders {what} (e.g. {nos[0]})")
        return problems


def best(measurements: list[Measurement], latency_ms: int) -> Measurement | None:
    """The valid dhbot run with the highest throughput at a latency."""
    runs = [m for m in measurements
            if m.contender == "dhbot" and m.latency_ms == latency_ms and m.valid]
    return max(runs, key=lambda m: m.orders_per_min, default=None)


def find(measurements: list[Measurement], contender: str, latency_ms: int,
         pages: int | None = None) -> Measurement | None:
    """The valid measurement of a contender, if there is one."""
    for m in measurements:
        if (m.contender == contender and m.latency_ms == latency_ms and m.pages == pages
                and m.valid):
            return m
    return None


def ratio(a: Measurement | None, b: Measurement | None, figure: str) -> float | None:
    """a.figure / b.figure, or None when either run is missing or invalid."""
    if a is None or b is None or not (a.valid and b.valid):
        return None
    denominator = float(getattr(b, figure))
    return round(float(getattr(a, figure)) / denominator, 3) if denominator else None


def compute_ratios(main: list[Measurement], scale: list[Measurement],
                   plan: Plan) -> tuple[dict[str, float | None], dict[str, Any]]:
    """The six headline ratios, and the details they were computed from."""
    ratios: dict[str, float | None] = {}
    details: dict[str, Any] = {}
    for lat in LATENCIES_MS:
        top, naive, floor = best(main, lat), find(main, "naive", lat), find(main, "floor", lat)
        ratios[f"throughput_vs_naive_{lat}ms"] = ratio(top, naive, "orders_per_min")
        ratios[f"time_vs_floor_{lat}ms"] = ratio(top, floor, "wall_s_per_order")
        details[f"best_pages_{lat}ms"] = top.pages if top else None
    small, large = (scale[0], scale[-1]) if scale else (None, None)
    ratios["cost_per_order_1000_vs_100"] = ratio(large, small, "cpu_s_per_order")
    details["wall_per_order_large_vs_small"] = ratio(large, small, "wall_s_per_order")
    details["scale_orders"] = list(plan.scale)
    lo, hi = min(plan.pages), max(plan.pages)
    per_page: dict[str, float | None] = {}
    for lat in LATENCIES_MS:
        one, many = find(main, "dhbot", lat, lo), find(main, "dhbot", lat, hi)
        # PSS: what each extra page really adds (RSS counts shared memory per process).
        per_page[f"{lat}ms"] = (round((many.peak_pss_mb - one.peak_pss_mb) / (hi - lo), 1)
                                if one and many else None)
    known = [v for v in per_page.values() if v is not None]
    ratios["mb_per_extra_page"] = max(known) if known else None
    details["mb_per_extra_page_by_latency"] = per_page
    details["mb_per_extra_page_pages"] = [lo, hi]
    order = ["throughput_vs_naive_0ms", "throughput_vs_naive_100ms", "time_vs_floor_0ms",
             "time_vs_floor_100ms", "cost_per_order_1000_vs_100", "mb_per_extra_page"]
    return {k: ratios[k] for k in order}, details


TARGETS: dict[str, tuple[str, float]] = {
    "throughput_vs_naive_0ms": (">=", 10.0),
    "throughput_vs_naive_100ms": (">=", 10.0),
    "time_vs_floor_0ms": ("<=", 10.0),
    "time_vs_floor_100ms": ("<=", 3.0),
    "cost_per_order_1000_vs_100": ("<=", 1.2),
    "mb_per_extra_page": ("<", 150.0),
}


def verdicts(ratios: dict[str, float | None]) -> dict[str, bool | None]:
    """Whether each headline figure meets its target (None: not measured)."""
    out: dict[str, bool | None] = {}
    for key, (op, limit) in TARGETS.items():
        value = ratios.get(key)
        out[key] = None if value is None else (
            value >= limit if op == ">=" else value <= limit if op == "<=" else value < limit)
    return out


def main_table(measurements: list[Measurement], title: str) -> Table:
    """One row per measurement; `load` is the machine's 1-minute load average after it."""
    table = Table(title=title, title_justify="left")
    for col in ("contender", "latency", "orders", "valid", "orders/min", "median s",
                "p95 s", "wall s", "wall s/order", "CPU s/order", "peak RSS MB",
                "peak PSS MB", "procs",
                "req/order", "load"):
        table.add_column(col, justify="left" if col in ("contender", "valid") else "right")
    for m in measurements:
        table.add_row(m.label, f"{m.latency_ms} ms", str(m.orders),
                      "yes" if m.valid else "[red]NO[/]", f"{m.orders_per_min:.1f}",
                      f"{m.median_s:.2f}", f"{m.p95_s:.2f}", f"{m.wall_s:.1f}",
                      f"{m.wall_s_per_order:.3f}", f"{m.cpu_s_per_order:.3f}",
                      f"{m.peak_rss_mb:.0f}", f"{m.peak_pss_mb:.0f}", str(m.peak_processes),
                      f"{m.requests_per_order:.1f}", f"{m.load_avg_1m:.1f}")
    return table


def ratio_table(ratios: dict[str, float | None], ok: dict[str, bool | None]) -> Table:
    """The headline ratios against their targets."""
    table = Table(title="Ratios", title_justify="left")
    for col in ("ratio", "value", "target", "holds"):
        table.add_column(col)
    for key, value in ratios.items():
        op, limit = TARGETS[key]
        holds = ok[key]
        table.add_row(key, "—" if value is None else f"{value:g}", f"{op} {limit:g}",
                      "—" if holds is None else ("yes" if holds else "[red]no[/]"))
    return table


def main() -> int:
    """Run the benchmark; exit 1 when a contender's result was invalid."""
    parser = argparse.ArgumentParser(description="naive vs. dhbot vs. HTTP floor")
    parser.add_argument("--quick", action="store_true",
                        help="small runs (about 3 minutes) for development")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (logs, reports) even when all is valid")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # a log file: keep table rows whole
    workdir = Path(tempfile.mkdtemp(prefix="dhbot-bench-"))
    started = time.perf_counter()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    host = machine()
    main_runs: list[Measurement] = []
    scale_runs: list[Measurement] = []
    with PortalServer(seed=SEED, orders=PORTAL_ORDERS) as portal:
        bench = Bench(portal, workdir, console)
        pool = bench.cancellable()
        need = max(plan.orders, plan.scale[1])
        if len(pool) < need:
            console.print(f"[red]only {len(pool)} cancellable orders; need {need}[/]")
            return 2
        orders, naive_orders = pool[:plan.orders], pool[:plan.naive_orders]
        console.print(f"mock portal {portal.url} · {len(pool)} cancellable orders · "
                      f"work folder {workdir}")
        for lat in LATENCIES_MS:
            console.print(f"[bold]latency {lat} ms[/]")
            main_runs.append(bench.script("naive", naive_orders, lat))
            main_runs.append(bench.script("floor", orders, lat))
            for pages in plan.pages:
                main_runs.append(bench.dhbot(orders, lat, pages))
        top = best(main_runs, plan.scale_latency_ms)
        scale_pages = top.pages if top and top.pages else max(plan.pages)
        console.print(f"[bold]scale: dhbot --pages {scale_pages} at "
                      f"{plan.scale_latency_ms} ms[/]")
        for n in plan.scale:
            scale_runs.append(bench.dhbot(pool[:n], plan.scale_latency_ms, scale_pages))
    ratios, details = compute_ratios(main_runs, scale_runs, plan)
    ok = verdicts(ratios)
    host["load_avg_at_end"] = load()
    results = {
        "date": date,
        "mode": "quick" if args.quick else "full",
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": host,
        "versions": versions("playwright", "httpx", "psutil", chromium=CHROMIUM),
        "plan": asdict(plan),
        "portal": {"seed": SEED, "orders": PORTAL_ORDERS, "account": ACCOUNT,
                   "latencies_ms": list(LATENCIES_MS)},
        "contenders": [asdict(m) for m in main_runs],
        "scale": [asdict(m) for m in scale_runs],
        "ratios": ratios,
        "ratio_details": details,
        "targets": {k: f"{op} {limit:g}" for k, (op, limit) in TARGETS.items()},
        "targets_met": ok,
    }
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n",
                        encoding="utf-8")
    console.print()
    console.print(main_table(main_runs, "Contenders (same orders, portal reset between runs)"))
    console.print(main_table(scale_runs, f"Scale: dhbot --pages {scale_pages}, "
                                         f"{plan.scale_latency_ms} ms latency"))
    console.print(ratio_table(ratios, ok))
    console.print(f"machine: {host['cpu_count']} × {host['cpu_model']}, {host['ram_gb']} GB; "
                  f"results in {args.out} ({results['duration_s']:.0f} s)")
    invalid = [m for m in main_runs + scale_runs if not m.valid]
    if invalid or args.keep:
        console.print(f"work folder kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
