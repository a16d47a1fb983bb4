"""`make bench-distributed`: dhbot's distributed throughput with 1, 2 and 3 workers, here.

Starts, once, a private redis-server and PostgreSQL (tests/services.py) and the mock portal
with four seller accounts (seed 7). Then, for each worker count N (default 1, 2, 3), on a
freshly reset portal, with a fresh database and a queue of its own:

1. starts N `dhbot worker`s (one pool process and one Chromium each, each in its own process
   group as if on its own machine) and waits until every one of them polls the queue;
2. runs `dhbot submit job.yaml --timeout 1200` over K orders of each of the 4 accounts
   (K = 50 by default, 10 with --quick) and measures its wall time, from launch to exit;
3. checks the result as tests/distributed/test_scale_out.py does: every order has a final
   outcome in report.json, the portal received exactly one cancellation request per
   cancellable order (and none for the others), and never saw two sessions of one account
   at once;
4. stops the workers (SIGTERM to each worker, SIGKILL to its group after 20 s).

Worker start-up (Python, Celery, connecting to the broker) is NOT in the measured time; the
first login and Chromium launch of each part are, as they would be in production. The job is
split into parts of 25 orders (two per account at K = 50), and one account runs on one worker
at a time, so at most four workers can ever be busy at once.

Prints a table (wall time, orders/min, speed-up against 1 worker, the portal's high-water mark
of concurrent sessions per account, verdict) and writes bench/distributed-results.json. Exits 1
when any check fails. Needs redis-server and PostgreSQL (`make services`).

    .venv/bin/python bench/distributed.py [--quick] [--orders-per-account K] [--workers 1,2,3]
                                          [--out bench/distributed-results.json] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
import psycopg
import redis
import yaml
from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # run as a script: make tests/ importable

from bench.host import load, machine, versions  # noqa: E402
from tests.portal_server import PortalServer  # noqa: E402
from tests.services import PostgresServer, RedisServer  # noqa: E402

SEED = 7
# demo_seller is the mock's own account; the others come from an accounts file (as in
# tests/distributed/conftest.py).
ACCOUNTS = {"main": ("demo_seller", "demo-pass"), "b": ("seller_b", "pass-b-2026"),
            "c": ("seller_c", "pass-c-2026"), "d": ("seller_d", "pass-d-2026")}
CANCELLABLE = {"待发货", "等待买家付款"}
FINAL = {"submitted", "cancelled", "already_requested", "already_cancelled",
         "not_cancellable", "not_found"}
SUBMIT_TIMEOUT_S = 1200
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
DISTRIBUTED = {"part_size": 25, "lock_ttl_s": 10, "busy_retry_s": 0.5,
               "visibility_timeout_s": 120}
PAGES_PER_ACCOUNT = 3


@dataclass
class Round:
    """One worker count: what was measured and whether the result was right."""

    workers: int
    orders: int
    cancellable: int = 0
    startup_s: float = 0.0
    wall_s: float = 0.0
    orders_per_min: float = 0.0
    speedup: float | None = None
    exit_code: int | None = None
    max_concurrent_sessions: dict[str, int] = field(default_factory=dict)
    cancel_requests: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)
    parts_per_worker: dict[str, int] = field(default_factory=dict)
    worker_log_lines: dict[str, list[str]] = field(default_factory=dict)
    load_avg_before: list[float] = field(default_factory=list)
    load_avg_after: list[float] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    folder: str = ""

    @property
    def ok(self) -> bool:
        """Whether every check held."""
        return not self.problems


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM behaves like Ctrl-C, so that every `finally` cleans up."""
    raise KeyboardInterrupt(f"signal {signum}")


class Bench:
    """The shared services, and the workers and submit of the round under way."""

    def __init__(self, portal: PortalServer, redis_server: RedisServer,
                 postgres: PostgresServer, workdir: Path, console: Console,
                 latency_ms: int = 0) -> None:
        self.portal = portal
        self.latency_ms = latency_ms
        self.redis_server = redis_server
        self.postgres = postgres
        self.workdir = workdir
        self.console = console
        self.workers: list[subprocess.Popen[bytes]] = []
        self.families: set[int] = set()  # every process seen below a worker
        self.submit: subprocess.Popen[bytes] | None = None

    # -- set-up ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment of workers and submit: passwords, a session key, the repo."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DHBOT_")}
        env.update({f"DHBOT_PASSWORD_{n.upper()}": pw for n, (_, pw) in ACCOUNTS.items()})
        env["DHBOT_SESSION_KEY"] = Fernet.generate_key().decode()
        env["PYTHONPATH"] = str(ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def write_config(self, folder: Path, n: int, ledger: str) -> None:
        """config.yaml as tests/distributed/conftest.py writes it, with a queue per round."""
        config = {
            "ledger": ledger,
            "distributed": {"broker_url": self.redis_server.url, "queue": f"bench-w{n}",
                            **DISTRIBUTED},
            "portal": {"base_url": self.portal.url, "profile": "mock", "accounts": [
                {"name": name, "username": user,
                 "password_env": f"DHBOT_PASSWORD_{name.upper()}"}
                for name, (user, _) in ACCOUNTS.items()]},
            "browser": {"headless": True, "timeout_s": 5, "navigation_timeout_s": 15},
            "paths": {"state_dir": "state", "runs_dir": "runs"},
            "concurrency": {"pages_per_account": PAGES_PER_ACCOUNT},
            "retry": {"attempts": 3, "backoff_s": 0.1, "backoff_max_s": 1},
            "max_orders_per_run": 10_000,
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                            encoding="utf-8")

    def pick_orders(self, per_account: int) -> list[dict[str, Any]]:
        """The first `per_account` orders of every account, as the reset portal lists them."""
        picked: list[dict[str, Any]] = []
        for name, (user, _) in ACCOUNTS.items():
            mine = self.portal.orders(account=user)[:per_account]
            if len(mine) < per_account:
                raise RuntimeError(f"{user} has only {len(mine)} orders; need {per_account}")
            picked += [{**o, "config_account": name} for o in mine]
        return picked

    @staticmethod
    def write_job(folder: Path, orders: list[dict[str, Any]]) -> Path:
        """A job whose orders name their accounts one by one."""
        path = folder / "job.yaml"
        path.write_text(yaml.safe_dump({
            "defaults": {"reason": "out_of_stock", "note": "仓库断货，无法按时发货"},
            "orders": [{"order_no": o["order_no"], "account": o["config_account"]}
                       for o in orders],
        }, allow_unicode=True), encoding="utf-8")
        return path

    # -- workers ---------------------------------------------------------------------------

    def start_workers(self, folder: Path, n: int, env: dict[str, str]) -> None:
        """N `dhbot worker`s, each in its own process group, output in worker-wI.log."""
        for i in range(1, n + 1):
            with open(folder / f"worker-w{i}.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "worker", "--config",
                     str(folder / "config.yaml"), "--name", f"w{i}@bench"],
                    cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
            self.workers.append(proc)

    def wait_ready(self, folder: Path, n: int) -> float:
        """Wait until N clients poll the broker (BRPOP): every worker consumes the queue.

        The workers log at WARNING, so Celery's "ready" line never shows; the broker sees
        each worker's consumer instead. Returns the seconds it took."""
        started = time.monotonic()
        client = redis.Redis.from_url(self.redis_server.url)
        try:
            while True:
                self.remember_families()
                for i, proc in enumerate(self.workers, 1):
                    if proc.poll() is not None:
                        raise RuntimeError(f"worker w{i} exited with {proc.returncode} while "
                                           f"starting:\n{tail(folder / f'worker-w{i}.log')}")
                polling = sum(1 for c in client.client_list() if c.get("cmd") == "brpop")
                if polling >= n:
                    return time.monotonic() - started
                if time.monotonic() - started > READY_TIMEOUT_S:
                    raise RuntimeError(f"only {polling} of {n} workers polled the queue after "
                                       f"{READY_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
        finally:
            client.close()

    def remember_families(self) -> None:
        """Note every process below the workers, to be sure they are gone afterwards."""
        for proc in self.workers:
            with contextlib.suppress(psutil.Error):
                self.families.update(p.pid for p in psutil.Process(proc.pid).children(
                    recursive=True))

    def stop_workers(self) -> list[str]:
        """Warm shutdown (SIGTERM to each worker), SIGKILL after 20 s; returns the processes
        that were still alive afterwards and had to be killed one by one."""
        self.remember_families()
        for proc in self.workers:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)  # the pool finishes its parts first
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Anything of theirs that left the group (or outlived it): kill it by pid.
        leftovers = []
        for pid in sorted(self.families):
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    leftovers.append(f"{pid} {p.name()}")
                    p.kill()
        # Chromium's crashpad handlers start sessions of their own and are re-parented to
        # init: find whatever still runs in a round's folder (wN/; not redis/).
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error, ValueError, IndexError):
                cwd = Path(p.cwd())
                if (p.pid != os.getpid() and cwd.is_relative_to(self.workdir)
                        and re.fullmatch(r"w\d+", cwd.relative_to(self.workdir).parts[0])
                        and p.status() != psutil.STATUS_ZOMBIE):
                    leftovers.append(f"{p.pid} {p.name()}")
                    p.kill()
        self.workers, self.families = [], set()
        return leftovers

    def stop_submit(self) -> None:
        """Kill a `dhbot submit` still running (after Ctrl-C or a failure)."""
        proc, self.submit = self.submit, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # -- one round -------------------------------------------------------------------------

    def round(self, n: int, per_account: int, base_wall_s: float | None) -> Round:
        """Measure one worker count on a fresh portal and database."""
        folder = self.workdir / f"w{n}"
        folder.mkdir()
        self.portal.reset()
        if self.latency_ms:  # as a portal across the internet answers
            self.portal.set_faults(latency_ms=self.latency_ms)
        orders = self.pick_orders(per_account)
        r = Round(workers=n, orders=len(orders), folder=str(folder),
                  cancellable=sum(o["status"] in CANCELLABLE for o in orders))
        ledger = self.postgres.new_database(f"bench_w{n}")
        self.write_config(folder, n, ledger)
        job = self.write_job(folder, orders)
        env = self.env()
        self.console.print(f"[bold]{n} worker(s)[/]: {len(orders)} orders "
                           f"({r.cancellable} cancellable), folder {folder}")
        try:
            self.start_workers(folder, n, env)
            r.startup_s = self.wait_ready(folder, n)
            self.console.print(f"  workers ready after {r.startup_s:.1f} s (not measured)")
            r.load_avg_before = load()
            with open(folder / "submit.log", "wb") as log:
                started = time.perf_counter()
                self.submit = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "submit", str(job), "--config",
                     str(folder / "config.yaml"), "--timeout", str(SUBMIT_TIMEOUT_S)],
                    cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    r.exit_code = self.submit.wait(timeout=SUBMIT_TIMEOUT_S + 120)
                except subprocess.TimeoutExpired:
                    r.problems.append("dhbot submit did not exit in time; killed")
                r.wall_s = time.perf_counter() - started
                self.remember_families()
            r.load_avg_after = load()
        finally:
            self.stop_submit()
            leftovers = self.stop_workers()
        if leftovers:  # a cleanup matter, not a wrong result
            r.leftovers = leftovers
            self.console.print(f"  [yellow]killed worker processes that outlived their "
                               f"group: {leftovers}[/]")
        if r.exit_code not in (None, 0):
            r.problems.append(f"dhbot submit exited with {r.exit_code}:\n"
                              f"{tail(folder / 'submit.log')}")
        r.orders_per_min = 60 * len(orders) / r.wall_s if r.wall_s else 0.0
        if base_wall_s and r.wall_s:
            r.speedup = round(base_wall_s / r.wall_s, 2)
        self.check(r, folder, orders)
        r.parts = self.parts(ledger)
        r.parts_per_worker = dict(Counter(
            (p["worker"] or "(none)").split(" pid ")[0] for p in r.parts))
        r.worker_log_lines = {log.stem: interesting(log)
                              for log in sorted(folder.glob("worker-*.log"))}
        verdict = "[green]ok[/]" if r.ok else "[red]CHECK FAILED[/]"
        self.console.print(f"  {r.wall_s:.1f} s, {r.orders_per_min:.1f} orders/min, parts per "
                           f"worker {r.parts_per_worker}, {verdict}")
        for problem in r.problems:
            self.console.print(f"  [bold red]CHECK FAILED:[/] {problem}")
        return r

    def check(self, r: Round, folder: Path, orders: list[dict[str, Any]]) -> None:
        """tests/distributed/test_scale_out.py's _check_exactly_once, as a list of problems."""
        problems = r.problems
        reports = sorted((folder / "runs").glob("*/report.json"))
        if len(reports) != 1:
            problems.append(f"expected one report.json, found {len(reports)}")
            report: dict[str, Any] = {"orders": []}
        else:
            report = json.loads(reports[0].read_text(encoding="utf-8"))
        outcomes = {o["order_no"]: o for o in report["orders"]}
        r.outcomes = dict(Counter(o["outcome"] for o in report["orders"]))
        missing = [o["order_no"] for o in orders if o["order_no"] not in outcomes]
        if missing:
            problems.append(f"{len(missing)} orders have no outcome (e.g. {missing[0]})")
        stray = set(outcomes) - {o["order_no"] for o in orders}
        if stray:
            problems.append(f"{len(stray)} outcomes for orders not in the job")
        not_final = {no: row["outcome"] for no, row in outcomes.items()
                     if row["outcome"] not in FINAL}
        if not_final:
            problems.append(f"{len(not_final)} orders without a final outcome: "
                            f"{dict(list(not_final.items())[:3])}")
        cancellable = {o["order_no"] for o in orders if o["status"] in CANCELLABLE}
        cancel_log = self.portal.cancel_requests()
        r.cancel_requests = len(cancel_log)
        requests = Counter(entry["order_no"] for entry in cancel_log)
        twice = {no: k for no, k in requests.items() if k > 1}
        if twice:
            problems.append(f"{len(twice)} orders submitted more than once: "
                            f"{dict(list(twice.items())[:3])}")
        if set(requests) != cancellable:
            problems.append(f"cancellable orders and requests differ: "
                            f"{len(cancellable - set(requests))} never requested, "
                            f"{len(set(requests) - cancellable)} requested but not cancellable")
        status = {o["order_no"]: o["status"] for o in self.portal.orders()}
        wrong = [no for no in cancellable
                 if no in outcomes and (outcomes[no]["outcome"] not in ("submitted", "cancelled")
                                        or status[no] not in ("取消审核中", "已取消"))]
        if wrong:
            no = wrong[0]
            problems.append(f"{len(wrong)} cancellable orders not cancelled (e.g. {no}: "
                            f"{outcomes[no]['outcome']}, portal {status[no]})")
        users = {name: user for name, (user, _) in ACCOUNTS.items()}
        misrouted = [o["order_no"] for o in orders
                     if o["order_no"] in outcomes and (
                         outcomes[o["order_no"]]["account"] != o["config_account"]
                         or o["account"] != users[o["config_account"]])]
        if misrouted:
            problems.append(f"{len(misrouted)} orders ran as the wrong account")
        concurrent = self.portal.stats()["max_concurrent_sessions"]
        r.max_concurrent_sessions = dict(concurrent)
        if set(concurrent) != set(users.values()):
            problems.append(f"sessions seen for {sorted(concurrent)}, expected "
                            f"{sorted(users.values())}")
        if concurrent and max(concurrent.values()) > 1:
            problems.append(f"two sessions of one account at once: {concurrent}")

    def parts(self, ledger: str) -> list[dict[str, Any]]:
        """The run's parts from the ledger: who ran them, how often, when."""
        query = ("SELECT part_no, account, state, worker, attempts, started_at, finished_at "
                 "FROM parts ORDER BY part_no")
        try:
            with psycopg.connect(ledger) as conn:
                cur = conn.execute(query)
                names = [d.name for d in cur.description or []]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        except psycopg.Error as exc:
            self.console.print(f"  [yellow]cannot read the parts from the ledger: {exc}[/]")
            return []


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


ODD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|Exception|busy|again|retry|"
                 r"lost|timed? ?out|refused|killed", re.IGNORECASE)


def interesting(log: Path, limit: int = 20) -> list[str]:
    """A worker's warnings, errors, retries and hand-outs (its INFO lines are per order)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    lines = [line for line in lines if ODD.search(line)]
    return lines[:limit] + ([f"... {len(lines) - limit} more lines"]
                            if len(lines) > limit else [])


def results_table(rounds: list[Round], title: str) -> Table:
    """One row per worker count."""
    table = Table(title=title, title_justify="left")
    for col in ("workers", "orders", "wall s", "orders/min", "speed-up vs 1",
                "max sessions/account", "parts per worker", "load 1m before→after", "check"):
        table.add_column(col, justify="left" if col in ("parts per worker", "check")
                         else "right")
    for r in rounds:
        sessions = max(r.max_concurrent_sessions.values(), default=0)
        table.add_row(
            str(r.workers), str(r.orders), f"{r.wall_s:.1f}", f"{r.orders_per_min:.1f}",
            "—" if r.speedup is None else f"{r.speedup:.2f}×", str(sessions),
            " ".join(f"{w.split('@')[0]}:{k}" for w, k in sorted(r.parts_per_worker.items())),
            (f"{r.load_avg_before[0]:.1f}→{r.load_avg_after[0]:.1f}"
             if r.load_avg_before and r.load_avg_after else "—"),
            "ok" if r.ok else "[bold red]FAILED[/]")
    return table


def parse_workers(text: str) -> list[int]:
    """'1,2,3' → [1, 2, 3]."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"need distinct counts ≥ 1: {text!r}")
    return counts


def main() -> int:
    """Run the benchmark; exit 1 when a check failed, 130 on Ctrl-C."""
    parser = argparse.ArgumentParser(description="dhbot submit + N dhbot workers: throughput")
    parser.add_argument("--quick", action="store_true",
                        help="10 orders per account instead of 50 (a few minutes)")
    parser.add_argument("--orders-per-account", type=int, metavar="K",
                        help="orders per account (4 accounts); default 50, 10 with --quick")
    parser.add_argument("--workers", type=parse_workers, default=[1, 2, 3], metavar="1,2,3",
                        help="worker counts to measure")
    parser.add_argument("--out", type=Path, default=BENCH / "distributed-results.json")
    parser.add_argument("--latency-ms", type=int, default=0, metavar="MS",
                        help="portal latency per request (0: the portal answers at once)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (configs, logs, reports) even when all is ok")
    args = parser.parse_args()
    per_account = args.orders_per_account or (10 if args.quick else 50)
    if per_account < 1:
        parser.error("--orders-per-account must be at least 1")
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)  # a log file: keep table rows whole
    workdir = Path(tempfile.mkdtemp(prefix="dhbot-bench-dist-"))
    date = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    host = machine()
    code = versions("celery", "playwright")  # before the rounds: the code that was measured
    rounds: list[Round] = []
    failed = True
    bench: Bench | None = None
    console.print(f"machine: {host['cpu_count']} CPUs ({host['cpu_model']}), "
                  f"{host['platform']}; load {host['load_avg_at_start']}; work folder {workdir}")
    try:
        accounts = workdir / "accounts.yaml"
        accounts.write_text(yaml.safe_dump({"accounts": [
            {"username": user, "password": password} for user, password in ACCOUNTS.values()]}))
        # Enough orders that every account has K of them (about a quarter each).
        portal_orders = max(400, 8 * per_account)
        with contextlib.ExitStack() as stack:
            redis_server = stack.enter_context(RedisServer(workdir / "redis"))
            postgres = stack.enter_context(PostgresServer())
            portal = stack.enter_context(PortalServer(seed=SEED, orders=portal_orders,
                                                      accounts_file=accounts))
            console.print(f"redis {redis_server.url} · postgres port {postgres.port} · "
                          f"mock portal {portal.url} ({portal_orders} orders, seed {SEED})")
            bench = Bench(portal, redis_server, postgres, workdir, console, args.latency_ms)
            base: float | None = None
            for n in args.workers:
                r = bench.round(n, per_account, base)
                rounds.append(r)
                if n == 1 and r.ok:
                    base = r.wall_s
        failed = any(not r.ok for r in rounds)
    except KeyboardInterrupt:
        console.print("[red]interrupted; cleaning up[/]")
        return 130
    finally:
        if bench is not None:  # after an error inside a round (its own finally ran already)
            bench.stop_submit()
            bench.stop_workers()
        if failed or args.keep:
            console.print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    host["load_avg_at_end"] = load()
    results = {
        "date": date,
        "mode": "quick" if args.quick else "full",
        "duration_s": round(time.perf_counter() - started, 1),
        "measures": "wall time of `dhbot submit` from launch to exit, workers already "
                    "running; worker start-up excluded",
        "machine": host,
        "versions": code,
        "setup": {"seed": SEED, "portal_orders": portal_orders, "accounts": len(ACCOUNTS),
                  "orders_per_account": per_account, "distributed": DISTRIBUTED,
                  "pages_per_account": PAGES_PER_ACCOUNT, "headless": True,
                  "portal_latency_ms": args.latency_ms,
                  "submit_timeout_s": SUBMIT_TIMEOUT_S},
        "rounds": [{**asdict(r), "ok": r.ok} for r in rounds],
        "all_ok": not failed,
    }
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n",
                        encoding="utf-8")
    console.print()
    console.print(results_table(rounds, f"dhbot distributed: {per_account} orders × "
                                        f"{len(ACCOUNTS)} accounts, part size "
                                        f"{DISTRIBUTED['part_size']}, "
                                        f"{PAGES_PER_ACCOUNT} pages per account, portal "
                                        f"latency {args.latency_ms} ms"))
    console.print("wall s: `dhbot submit` from launch to exit, workers already running "
                  "(worker start-up excluded)")
    console.print(f"machine: {host['cpu_count']} CPUs ({host['cpu_model']}), "
                  f"{host['platform']}; load {host['load_avg_at_start']} at start, "
                  f"{host['load_avg_at_end']} at end; results in {args.out} "
                  f"({results['duration_s']:.0f} s)")
    if failed:
        console.print("[bold red]CHECK FAILED[/] — see the problems above and the kept work "
                      "folder")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
