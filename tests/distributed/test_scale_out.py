"""dhbot submit + dhbot worker on Celery/Redis with the ledger on PostgreSQL: every order
gets its outcome, exactly one cancellation request per cancellable order, never two
sessions of one account at once — also when a worker is SIGKILLed mid-run."""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from typing import Any

import pytest
import yaml

from bot.ledger import Ledger
from tests.distributed.conftest import ACCOUNTS, Cluster

pytestmark = pytest.mark.distributed

CANCELLABLE = {"待发货", "等待买家付款"}
FINAL = {"submitted", "cancelled", "already_requested", "already_cancelled",
         "not_cancellable", "not_found"}


def _check_exactly_once(cluster: Cluster, orders: list[dict[str, Any]],
                        report: dict[str, Any]) -> None:
    outcomes = {o["order_no"]: o for o in report["orders"]}
    assert set(outcomes) == {o["order_no"] for o in orders}, "an order has no outcome"
    for no, row in outcomes.items():
        assert row["outcome"] in FINAL, (no, row)
    cancellable = {o["order_no"] for o in orders if o["status"] in CANCELLABLE}
    requests = Counter(r["order_no"] for r in cluster.portal.cancel_requests())
    assert {no: n for no, n in requests.items() if n > 1} == {}, "submitted twice"
    assert set(requests) == cancellable, "cancellable orders and requests differ"
    status = {o["order_no"]: o["status"] for o in cluster.portal.orders()}
    for no in cancellable:
        assert outcomes[no]["outcome"] in ("submitted", "cancelled"), outcomes[no]
        assert status[no] in ("取消审核中", "已取消"), (no, status[no])
    # The orders ran as their own accounts.
    users = {name: user for name, (user, _) in ACCOUNTS.items()}
    for o in orders:
        assert outcomes[o["order_no"]]["account"] == o["config_account"]
        assert o["account"] == users[o["config_account"]]
    concurrent = cluster.portal.stats()["max_concurrent_sessions"]
    assert set(concurrent) == {users[o["config_account"]] for o in orders}, concurrent
    assert max(concurrent.values()) == 1, f"two sessions of one account at once: {concurrent}"


def test_submit_small_job_one_worker(cluster: Cluster) -> None:
    orders = cluster.orders(per_account=3)
    job = cluster.write_job(orders)
    cluster.start_worker("w1")
    proc = cluster.dhbot("submit", str(job), "--timeout", "240")
    assert proc.returncode == 0, proc.stdout + proc.stderr + cluster.worker_logs()
    report = json.loads(next((cluster.root / "runs").glob("*/report.json")).read_text())
    _check_exactly_once(cluster, orders, report)
    assert report["account"] == "main, b, c, d"
    # runs lists the run with its four parts; status reads the same ledger.
    runs = cluster.dhbot("runs")
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.count("part ") == 4, runs.stdout
    status = cluster.dhbot("status", "--json", orders[0]["order_no"])
    assert json.loads(status.stdout)[0]["outcome"] == report["orders"][0]["outcome"]


def _spread(cluster: Cluster, per_account: int, part_size: int) -> None:
    """Parts over 4 accounts and 3 workers: every order once, every worker used."""
    config = yaml.safe_load(cluster.config.read_text())
    config["distributed"]["part_size"] = part_size
    cluster.config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    orders = cluster.orders(per_account=per_account)
    job = cluster.write_job(orders)
    for name in ("w1", "w2", "w3"):
        cluster.start_worker(name)
    started = time.monotonic()
    proc = cluster.dhbot("submit", str(job), "--timeout", "500")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr + cluster.worker_logs()
    report = json.loads(next((cluster.root / "runs").glob("*/report.json")).read_text())
    _check_exactly_once(cluster, orders, report)
    # The work was really spread: every worker ran parts.
    runs = cluster.dhbot("runs").stdout
    for name in ("w1", "w2", "w3"):
        assert f"{name}@test" in runs, runs
    print(f"{len(orders)} orders in parts of {part_size}, 4 accounts, 3 workers: "
          f"{elapsed:.1f}s")


def test_submit_8_parts_over_4_accounts_and_3_workers(cluster: Cluster) -> None:
    _spread(cluster, per_account=12, part_size=6)  # 48 orders: 8 parts for 3 workers


@pytest.mark.soak
def test_submit_200_orders_4_accounts_3_workers(cluster: Cluster) -> None:
    """The long version (make soak): the same spread at 200 orders."""
    _spread(cluster, per_account=50, part_size=25)


def test_worker_sigkilled_mid_run_job_completes_exactly_once(cluster: Cluster) -> None:
    orders = cluster.orders(per_account=10)
    job = cluster.write_job(orders)
    victim = cluster.start_worker("victim")
    proc = cluster.dhbot("submit", str(job), "--no-wait")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    # Kill the only worker once it has submitted some cancellations, mid-part.
    deadline = time.monotonic() + 120
    while len(cluster.portal.cancel_requests()) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cluster.portal.cancel_requests()) >= 8, cluster.worker_logs()
    cluster.kill_worker(victim)
    killed_at = len(cluster.portal.cancel_requests())
    # Two fresh workers pick up the rest, including the killed worker's part.
    cluster.start_worker("w2")
    cluster.start_worker("w3")
    waited = cluster.dhbot("wait", run_id, "--timeout", "400")
    assert waited.returncode == 0, waited.stdout[-3000:] + waited.stderr + cluster.worker_logs()
    report = json.loads((cluster.root / "runs" / run_id / "report.json").read_text())
    _check_exactly_once(cluster, orders, report)
    assert len(cluster.portal.cancel_requests()) > killed_at, "nothing happened after the kill"
    # The killed worker's part was handed out again and finished by another worker.
    runs = cluster.dhbot("runs").stdout
    assert "attempt 2" in runs, runs


def test_run_with_the_shared_ledger_respects_the_workers_account_lock(
        cluster: Cluster) -> None:
    """`dhbot run` on a PostgreSQL ledger takes the same Redis lock as the workers."""
    orders = cluster.orders(per_account=4, only=("b",))
    job = cluster.write_job(orders)
    with cluster.account_lock("b", ttl_s=30):
        busy = cluster.dhbot("run", str(job))
        assert busy.returncode == 4, busy.stdout + busy.stderr
        assert "account 'b' is in use by another dhbot" in busy.stderr
        assert cluster.portal.stats()["requests"] == 0
    done = cluster.dhbot("run", str(job))
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(cluster.dhbot("status", "--json", "--account", "b").stdout)
    assert sorted(r["order_no"] for r in status) == sorted(o["order_no"] for o in orders)
    # The session was saved in the shared ledger, sealed: nothing in the state folder.
    assert not (cluster.root / "state" / "sessions").exists()


def test_queue_messages_carry_only_the_part_and_no_secret_reaches_a_file(
        cluster: Cluster) -> None:
    orders = cluster.orders(per_account=2)
    job = cluster.write_job(orders)
    proc = cluster.dhbot("submit", str(job), "--no-wait")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    by_queue = cluster.queued()
    # One part per account, each on its account's queue (in the job's order: main, b, c, d).
    assert {name: len(m) for name, m in by_queue.items()} == {
        "": 0, "main": 1, "b": 1, "c": 1, "d": 1}
    assert [json.loads(base64.b64decode(json.loads(by_queue[name][0])["body"]))[0][1]
            for name in ("main", "b", "c", "d")] == [1, 2, 3, 4]
    queued = [raw for messages in by_queue.values() for raw in messages]
    secrets = [v for k, v in cluster.env.items()
               if k.startswith(("DHBOT_PASSWORD_", "DHBOT_SESSION_KEY"))]
    bodies = []
    for raw in queued:
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        bodies.append(body[0])
        text = raw.decode()
        for o in orders:
            assert o["order_no"] not in text
        assert "仓库断货" not in text and "\\u4ed3" not in text  # the note, raw or escaped
        assert not any(secret in text for secret in secrets)
    assert sorted(bodies) == [[run_id, n] for n in range(1, 5)]
    # A worker runs them; nothing it or submit writes holds a password or the session key.
    cluster.start_worker("w1")
    waited = cluster.dhbot("wait", run_id, "--timeout", "240")
    assert waited.returncode == 0, waited.stdout + waited.stderr + cluster.worker_logs()
    files = [p for p in cluster.root.rglob("*") if p.is_file()]
    assert any(p.name == "log.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"a secret in {path}"
    for output in (waited.stdout, waited.stderr):
        assert not any(secret in output for secret in secrets)


def test_part_waits_for_a_busy_account_as_long_as_it_takes(cluster: Cluster) -> None:
    orders = cluster.orders(per_account=2, only=("c",))
    job = cluster.write_job(orders)
    with cluster.account_lock("c", ttl_s=60):
        cluster.start_worker("w1")
        proc = cluster.dhbot("submit", str(job), "--no-wait")
        assert proc.returncode == 0, proc.stderr
        # More retries than Celery's default limit of 3: the part waits as long as it takes.
        deadline = time.monotonic() + 60
        while cluster.worker_logs().count("busy on another worker") <= 4 and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert cluster.worker_logs().count("busy on another worker") > 4, cluster.worker_logs()
        assert cluster.portal.stats()["requests"] == 0
    waited = cluster.dhbot("wait", proc.stdout.strip(), "--timeout", "120")
    assert waited.returncode == 0, waited.stdout + waited.stderr + cluster.worker_logs()


def test_worker_without_a_password_says_so_for_its_orders(cluster: Cluster) -> None:
    orders = cluster.orders(per_account=2, only=("b", "d"))
    job = cluster.write_job(orders)
    del cluster.env["DHBOT_PASSWORD_D"]
    cluster.start_worker("w1")
    proc = cluster.dhbot("submit", str(job), "--timeout", "180")
    assert proc.returncode == 2, proc.stdout + proc.stderr + cluster.worker_logs()
    assert "DHBOT_PASSWORD_D" in proc.stdout
    report = json.loads(next((cluster.root / "runs").glob("*/report.json")).read_text())
    by_account = {o["account"]: o for o in report["orders"]}
    assert by_account["d"]["outcome"] == "skipped"
    assert "DHBOT_PASSWORD_D" in by_account["d"]["error"]
    assert by_account["b"]["outcome"] in FINAL
    assert {r["order_no"] for r in cluster.portal.cancel_requests()} <= {
        o["order_no"] for o in orders if o["config_account"] == "b"}


def test_login_on_the_shared_ledger_seals_the_session_for_every_worker(
        cluster: Cluster) -> None:
    proc = cluster.dhbot("login", "--account", "b")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(encrypted)" in proc.stdout
    assert not (cluster.root / "state" / "sessions").exists()
    config = yaml.safe_load(cluster.config.read_text())
    ledger = Ledger(config["ledger"])
    try:
        from bot.config import load_settings

        key = load_settings(cluster.config, {}).settings.portal.key("b")
        assert ledger.load_session("b") is None  # kept under the portal identity
        sealed = ledger.load_session(key)
    finally:
        ledger.close()
    assert sealed is not None
    assert b"DHSESSID" not in sealed and b"cookies" not in sealed  # encrypted, not JSON
    assert cluster.portal.stats()["logins"] == {"seller_b": 1}
    # A worker then runs b's orders on that session: no second login.
    orders = cluster.orders(per_account=2, only=("b",))
    cluster.start_worker("w1")
    done = cluster.dhbot("submit", str(cluster.write_job(orders)), "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr + cluster.worker_logs()
    assert "reusing the saved session" in cluster.worker_logs()
    assert cluster.portal.stats()["logins"] == {"seller_b": 1}


def test_schedule_hands_inbox_jobs_to_the_workers(cluster: Cluster) -> None:
    config = yaml.safe_load(cluster.config.read_text())
    config["schedules"] = [{"name": "inbox", "cron": "*/5 * * * *", "inbox": "inbox",
                            "submit": True}]
    cluster.config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    orders = cluster.orders(per_account=2)  # eight orders of four accounts in one file
    inbox = cluster.root / "inbox"
    inbox.mkdir()
    cluster.write_job(orders).rename(inbox / "many.yaml")
    old = time.time() - 10  # older than the stability window, as after a cron tick
    os.utime(inbox / "many.yaml", (old, old))
    cluster.start_worker("w1")
    proc = cluster.dhbot("schedule", "--config", str(cluster.config), "--once")
    assert proc.returncode == 0, proc.stdout + proc.stderr + cluster.worker_logs()
    done = cluster.root / "done"
    report = json.loads((done / "many.report.json").read_text(encoding="utf-8"))
    _check_exactly_once(cluster, orders, report)
    assert "finished many.yaml: exit 0 → done/many.yaml" in proc.stderr
