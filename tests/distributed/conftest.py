"""Fixtures for the distributed tests: private Redis and PostgreSQL servers, the mock portal
with four seller accounts, and a workspace that runs `dhbot submit` and `dhbot worker`s."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from cryptography.fernet import Fernet

from bot.distlock import RedisAccountLock
from tests.bot.conftest import descendants, wait_gone
from tests.portal_server import PortalServer
from tests.services import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parents[2]
# demo_seller is the mock's own account; the others come from an accounts file.
ACCOUNTS = {"main": ("demo_seller", "demo-pass"), "b": ("seller_b", "pass-b-2026"),
            "c": ("seller_c", "pass-c-2026"), "d": ("seller_d", "pass-d-2026")}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def scale_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    """The mock portal with four seller accounts, 100 orders each."""
    accounts = tmp_path_factory.mktemp("portal") / "accounts.yaml"
    accounts.write_text(yaml.safe_dump({"accounts": [
        {"username": user, "password": password} for user, password in ACCOUNTS.values()]}))
    with PortalServer(seed=7, orders=400, accounts_file=accounts) as server:
        yield server


@dataclass
class Cluster:
    """A workspace whose config points at the portal, Redis and a fresh database."""

    root: Path
    portal: PortalServer
    env: dict[str, str]
    queue: str
    redis_url: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def orders(self, per_account: int,
               only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The first `per_account` orders of every account (or of `only` these), as the
        portal lists them, each with `config_account`: its account's name in config.yaml."""
        picked = []
        for name, (user, _) in ACCOUNTS.items():
            if only is not None and name not in only:
                continue
            mine = self.portal.orders(account=user)[:per_account]
            assert len(mine) == per_account
            picked += [{**o, "config_account": name} for o in mine]
        return picked

    def write_job(self, orders: list[dict[str, Any]]) -> Path:
        """A job whose orders name their accounts one by one."""
        path = self.root / "job.yaml"
        path.write_text(yaml.safe_dump({
            "defaults": {"reason": "out_of_stock", "note": "仓库断货，无法按时发货"},
            "orders": [{"order_no": o["order_no"], "account": o["config_account"]}
                       for o in orders],
        }, allow_unicode=True), encoding="utf-8")
        return path

    def account_lock(self, account: str, ttl_s: float) -> RedisAccountLock:
        """The Redis lock the workers take for `account` (to hold it as another worker);
        it is keyed by the account's portal identity."""
        from bot.config import load_settings
        from bot.lock import account_lock

        settings = load_settings(self.config, {}).settings
        lock: RedisAccountLock = account_lock(settings, account, ttl_s=ttl_s)
        return lock

    def start_worker(self, name: str, config: Path | None = None) -> subprocess.Popen[bytes]:
        """A `dhbot worker` in its own process group (as if on its own machine)."""
        log = open(self.root / f"worker-{name}.log", "wb")  # noqa: SIM115 - closed by the OS
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--config", str(config or self.config),
             "--name", f"{name}@test"], cwd=self.root, env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker with everything under it (its pool, Chromium), as a crash would."""
        family = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert not wait_gone(family), "processes of the killed worker are still running"

    def stop_workers(self) -> None:
        """Warm shutdown of every worker still running (SIGTERM to the worker itself, as
        systemd's KillMode=mixed does), then SIGKILL to what is left of its group."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def dhbot(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run the CLI in the workspace."""
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def queued(self) -> dict[str, list[bytes]]:
        """The task messages waiting in the broker: the shared queue ("") and each account's."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            return {name: client.lrange(f"{self.queue}.{name}" if name else self.queue, 0, -1)
                    for name in ("", *ACCOUNTS)}
        finally:
            client.close()

    def worker_logs(self) -> str:
        """Every worker's output, for assertion messages."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.root.glob("worker-*.log")))


def make_cluster(root: Path, name: str, portal: PortalServer, redis_url: str,
                 database_url: str, **distributed: Any) -> Cluster:
    """A workspace on `portal`, the broker at `redis_url` and the ledger at `database_url`,
    with a queue of its own; `distributed` overrides the distributed settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DHBOT_")}
    env.update({f"DHBOT_PASSWORD_{n.upper()}": pw for n, (_, pw) in ACCOUNTS.items()})
    env["DHBOT_SESSION_KEY"] = Fernet.generate_key().decode()
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    ws = Cluster(root=root, portal=portal, env=env, queue=name, redis_url=redis_url)
    ws.config.write_text(yaml.safe_dump({
        "ledger": database_url,
        "distributed": {"broker_url": redis_url, "queue": name, "part_size": 25,
                        "lock_ttl_s": 6, "busy_retry_s": 0.5, "visibility_timeout_s": 20,
                        **distributed},
        "portal": {"base_url": portal.url, "profile": "mock", "accounts": [
            {"name": n, "username": user, "password_env": f"DHBOT_PASSWORD_{n.upper()}"}
            for n, (user, _) in ACCOUNTS.items()]},
        "browser": {"headless": True, "timeout_s": 5, "navigation_timeout_s": 15},
        "paths": {"state_dir": "state", "runs_dir": "runs"},
        "concurrency": {"pages_per_account": 3},
        "retry": {"attempts": 3, "backoff_s": 0.1, "backoff_max_s": 1},
    }, allow_unicode=True), encoding="utf-8")
    return ws


def queue_name(request: pytest.FixtureRequest) -> str:
    """The test's name as a queue and database name."""
    return request.node.name.lower().replace("[", "_").replace("]", "")[:40]


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest, scale_portal: PortalServer,
            redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Cluster]:
    """A fresh portal, a fresh database and a queue of its own; workers stopped after."""
    scale_portal.reset()
    name = queue_name(request)
    ws = make_cluster(tmp_path, name, scale_portal, redis_server.url,
                      postgres_server.new_database(name))
    try:
        yield ws
    finally:
        ws.stop_workers()
