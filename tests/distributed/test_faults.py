"""Scale-out under faults, with real restarts and freezes on loopback: a Redis restart that
loses the queue, a PostgreSQL restart mid-run, a worker frozen between its intent and the
portal's answer, a submit while the database is down, a worker that lacks an account."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.distributed.conftest import Cluster, make_cluster, queue_name
from tests.distributed.test_scale_out import _check_exactly_once
from tests.portal_server import PortalServer
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.distributed


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own (it is restarted)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own (it is restarted)."""
    with PostgresServer() as server:
        yield server


def _cluster(tmp_path: Path, request: pytest.FixtureRequest, portal: PortalServer,
             redis_url: str, database_url: str, **distributed: object) -> Cluster:
    portal.reset()
    (tmp_path / "ws").mkdir()
    return make_cluster(tmp_path / "ws", queue_name(request), portal, redis_url,
                        database_url, **distributed)


def _report(cluster: Cluster, run_id: str) -> dict:
    return json.loads((cluster.root / "runs" / run_id / "report.json").read_text())


def _wait_done(cluster: Cluster, run_id: str,
               orders: list[dict]) -> subprocess.CompletedProcess[str]:
    """`dhbot wait` until the run ends: exit 0, every order once."""
    waited = cluster.dhbot("wait", run_id, "--timeout", "300")
    assert waited.returncode == 0, (waited.stdout[-3000:] + waited.stderr
                                    + cluster.worker_logs())
    _check_exactly_once(cluster, orders, _report(cluster, run_id))
    return waited


def test_redis_restart_loses_the_queue_and_wait_puts_the_parts_back(
        tmp_path: Path, request: pytest.FixtureRequest, scale_portal: PortalServer,
        own_redis: RedisServer, postgres_server: PostgresServer) -> None:
    """The parts are queued, then Redis restarts empty (no persistence): every message is
    gone. The ledger still has the parts; `dhbot wait` puts them back on the queue."""
    cluster = _cluster(tmp_path, request, scale_portal, own_redis.url,
                       postgres_server.new_database(queue_name(request)))
    try:
        orders = cluster.orders(per_account=3)
        proc = cluster.dhbot("submit", str(cluster.write_job(orders)), "--no-wait")
        assert proc.returncode == 0, proc.stderr
        run_id = proc.stdout.strip()
        assert sum(len(m) for m in cluster.queued().values()) == 4
        own_redis.restart()
        assert sum(len(m) for m in cluster.queued().values()) == 0
        cluster.start_worker("w1")
        waited = _wait_done(cluster, run_id, orders)
        assert "its task message is gone from the broker; queued again" in (
            waited.stdout + cluster.worker_logs())
    finally:
        cluster.stop_workers()


def test_postgres_restart_mid_run_finishes_exactly_once(
        tmp_path: Path, request: pytest.FixtureRequest, scale_portal: PortalServer,
        redis_server: RedisServer, own_postgres: PostgresServer) -> None:
    """PostgreSQL restarts (fast shutdown: every connection cut, 3 s down) while a worker is
    submitting and `dhbot wait` follows: the run still ends with every order once."""
    cluster = _cluster(tmp_path, request, scale_portal, redis_server.url,
                       own_postgres.new_database("ledger"))
    try:
        orders = cluster.orders(per_account=10, only=("main", "b"))
        cluster.start_worker("w1")
        proc = cluster.dhbot("submit", str(cluster.write_job(orders)), "--no-wait")
        assert proc.returncode == 0, proc.stderr
        run_id = proc.stdout.strip()
        deadline = time.monotonic() + 120
        while len(cluster.portal.cancel_requests()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cluster.portal.cancel_requests(), cluster.worker_logs()
        own_postgres.restart(down_s=3)
        waited = _wait_done(cluster, run_id, orders)
        assert "Traceback" not in waited.stderr
    finally:
        cluster.stop_workers()


def test_submit_while_the_database_is_down_is_a_clear_error_with_its_own_code(
        tmp_path: Path, request: pytest.FixtureRequest, scale_portal: PortalServer,
        redis_server: RedisServer, own_postgres: PostgresServer) -> None:
    """It used to end in a 132-line traceback and exit 1 (the code of "some orders
    failed"). Now it retries for ledger_patience_s, then says so and exits 5."""
    cluster = _cluster(tmp_path, request, scale_portal, redis_server.url,
                       own_postgres.new_database("ledger"), ledger_patience_s=4)
    job = cluster.write_job(cluster.orders(per_account=2, only=("b",)))
    proc = cluster.dhbot("submit", str(job), "--no-wait")  # the database is up: tables made
    assert proc.returncode == 0, proc.stderr
    own_postgres.stop()
    started = time.monotonic()
    down = cluster.dhbot("submit", str(job), "--no-wait")
    assert down.returncode == 5, down.stdout + down.stderr
    assert time.monotonic() - started >= 4, "gave up without retrying"
    assert "Traceback" not in down.stderr
    assert "could not be reached for 4s" in down.stderr
    assert "trying again" in down.stderr  # it said it was retrying


def test_frozen_worker_never_clicks_twice_after_losing_its_lock(
        tmp_path: Path, request: pytest.FixtureRequest, scale_portal: PortalServer,
        redis_server: RedisServer, postgres_server: PostgresServer) -> None:
    """A worker is frozen (SIGSTOP, with its Chromium) while its cancel request is still on
    its way: the portal acts on it 20 s later. The lock expires, the part goes to another
    worker, which must not read the order back as "did not land" and submit it again: it
    waits lock TTL + navigation timeout + grace after the older holder's intent."""
    name = queue_name(request)
    database = postgres_server.new_database(name)
    cluster = _cluster(tmp_path, request, scale_portal, redis_server.url, database,
                       visibility_timeout_s=10, takeover_grace_s=3)
    try:
        orders = [o for o in cluster.orders(per_account=12, only=("b",))
                  if o["status"] == "待发货"][:4]
        assert len(orders) == 4
        scale_portal.set_faults(submit_delay_ms=20_000)
        victim = cluster.start_worker("victim")
        proc = cluster.dhbot("submit", str(cluster.write_job(orders)), "--no-wait")
        assert proc.returncode == 0, proc.stderr
        run_id = proc.stdout.strip()
        frozen_order = _wait_for_intent(database, timeout_s=120)
        assert frozen_order, cluster.worker_logs()
        time.sleep(0.5)  # the click has left: the request sits in the portal
        os.killpg(victim.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            scale_portal.set_faults(submit_delay_ms=0)
            cluster.start_worker("w2")
            waited = cluster.dhbot("wait", run_id, "--timeout", "240")
        finally:
            os.killpg(victim.pid, signal.SIGCONT)
        assert waited.returncode == 0, (waited.stdout[-3000:] + waited.stderr
                                        + cluster.worker_logs())
        # The portal acts on the frozen worker's requests 20 s after they arrived; count
        # only after that (and give the thawed worker time to find its lock gone).
        time.sleep(max(5.0, frozen_at + 20 + 3 - time.monotonic()))
        requests = Counter(r["order_no"] for r in scale_portal.cancel_requests())
        assert requests[frozen_order] == 1, (requests, cluster.worker_logs())
        assert {no: n for no, n in requests.items() if n > 1} == {}
        report = _report(cluster, run_id)
        outcome = {o["order_no"]: o["outcome"] for o in report["orders"]}
        assert outcome[frozen_order] == "submitted", report
        assert "waiting" in cluster.worker_logs() and "to land" in cluster.worker_logs()
    finally:
        scale_portal.set_faults(submit_delay_ms=0)
        cluster.stop_workers()


def _wait_for_intent(database_url: str, timeout_s: float) -> str | None:
    """The first order whose submit is under way (its intent committed), polling the ledger."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(database_url) as conn:
                while time.monotonic() < deadline:
                    row = conn.execute(
                        "SELECT order_no FROM orders WHERE state='intent' LIMIT 1").fetchone()
                    conn.commit()
                    if row:
                        return str(row[0])
                    time.sleep(0.02)
        except psycopg.errors.UndefinedTable:
            time.sleep(0.2)
    return None


def test_a_part_goes_only_to_a_worker_that_has_its_account(cluster: Cluster) -> None:
    """Each account's parts wait on a queue of their own. A worker without the account used
    to take the part, put it back and take it again, starving the worker that had it."""
    orders = cluster.orders(per_account=3, only=("c",))
    job = cluster.write_job(orders)
    config = yaml.safe_load(cluster.config.read_text())
    config["portal"]["accounts"] = [a for a in config["portal"]["accounts"] if a["name"] != "c"]
    narrow = cluster.root / "narrow.yaml"
    narrow.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    cluster.start_worker("narrow", config=narrow)
    _wait_for_workers(config["ledger"], {"narrow@test"})
    # With only that worker up, submit refuses a job no worker could run.
    refused = cluster.dhbot("submit", str(job), "--no-wait")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no running worker has account(s) c" in refused.stderr
    assert "narrow@test" in refused.stderr
    # The worker that has the account is up but busy (frozen): the part waits for it on
    # account c's queue, and the idle narrow worker never touches it.
    full = cluster.start_worker("full")
    _wait_for_workers(config["ledger"], {"narrow@test", "full@test"})
    os.killpg(full.pid, signal.SIGSTOP)
    try:
        proc = cluster.dhbot("submit", str(job), "--no-wait")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run_id = proc.stdout.strip()
        # A message for the part on the shared queue, as an older dhbot sent every part:
        # the narrow worker takes it and moves it to account c's queue.
        from bot.config import load_settings
        from bot.distributed import TASK_NAME, celery_app

        app = celery_app(load_settings(cluster.config, {}).settings)
        app.send_task(TASK_NAME, args=[run_id, 1], queue=cluster.queue)
        app.close()
        deadline = time.monotonic() + 30
        while "moved to queue" not in cluster.worker_logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        narrow_log = (cluster.root / "worker-narrow.log").read_text(errors="replace")
        assert f"has no account 'c' in its configuration; moved to queue {cluster.queue}.c" \
            in narrow_log, cluster.worker_logs()
        assert narrow_log.count("has no account 'c'") == 1, narrow_log  # that message only
    finally:
        os.killpg(full.pid, signal.SIGCONT)
    waited = cluster.dhbot("wait", run_id, "--timeout", "180")
    assert waited.returncode == 0, waited.stdout + waited.stderr + cluster.worker_logs()
    _check_exactly_once(cluster, orders, _report(cluster, run_id))
    assert cluster.portal.cancel_requests(), "nothing was cancelled"
    narrow_log = (cluster.root / "worker-narrow.log").read_text(errors="replace")
    assert narrow_log.count("has no account 'c'") == 1, narrow_log


def _wait_for_workers(database_url: str, names: set[str], timeout_s: float = 60) -> None:
    """Until these workers have signed in to the ledger."""
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(database_url) as conn:
                seen = {r[0] for r in conn.execute("SELECT name FROM workers")}
        except psycopg.errors.UndefinedTable:
            seen = set()
        if names <= seen:
            return
        time.sleep(0.3)
    raise AssertionError(f"workers {names - seen} never signed in")
