"""The web console with `console.run_with: workers`: the preview runs on the console's
machine, the approved job goes to the workers through `dhbot submit`, the page follows its
parts, and every order is cancelled exactly once; the console's tables live in PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
import yaml
from starlette.testclient import TestClient

from bot.config import load_settings
from bot.console.app import create_app
from bot.console.store import ConsoleStore, JobState, Role
from bot.ledger import open_ledger
from flows.profile import load_profile
from tests.console.conftest import PASSWORD, csrf, upload_csv
from tests.distributed.conftest import Cluster

pytestmark = [pytest.mark.distributed, pytest.mark.browser]


def _until(check: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _sign_in(client: TestClient, name: str) -> None:
    token = csrf(client, "/login")
    signed = client.post("/login", data={"name": name, "password": PASSWORD,
                                         "csrf_token": token})
    assert signed.status_code == 303


def test_an_approved_job_runs_on_the_workers_exactly_once(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load(cluster.config.read_text())
    config["console"] = {"run_with": "workers"}
    config["distributed"]["part_size"] = 2
    cluster.config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    for key, value in cluster.env.items():  # the console's children get its environment
        if key.startswith("DHBOT_"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(cluster.root)
    loaded = load_settings(cluster.config, {})
    ledger = open_ledger(loaded.settings)
    store = ConsoleStore(ledger)
    store.add_user("olga", Role.OPERATOR, PASSWORD)
    store.add_user("amy", Role.APPROVER, PASSWORD)
    orders = [o for o in cluster.portal.orders(account="demo_seller")
              if o["status"] == "待发货"][:3]
    cluster.start_worker("w1")
    app = create_app(loaded, load_profile("mock"), "k" * 48)
    try:
        with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
            _sign_in(client, "olga")
            sent = upload_csv(client, "order_no,reason,note\n" + "".join(
                f"{o['order_no']},out_of_stock,断货\n" for o in orders))
            assert sent.status_code == 303, sent.text
            job_id = sent.headers["location"].rsplit("/", 1)[1]

            def state() -> JobState:
                job = store.job(job_id)
                assert job is not None
                return job.state

            _until(lambda: state() is not JobState.PREVIEWING, "the preview")
            assert state() is JobState.AWAITING_APPROVAL
            client.post("/logout", data={"csrf_token": csrf(client, "/runs")})
            _sign_in(client, "amy")
            approved = client.post(f"/jobs/{job_id}/approve",
                                   data={"csrf_token": csrf(client, f"/jobs/{job_id}")})
            assert approved.status_code == 303
            run_id = approved.headers["location"].rsplit("/", 1)[1]
            _until(lambda: state() not in (JobState.QUEUED, JobState.RUNNING), "the run")
            job = store.job(job_id)
            assert job is not None
            assert (job.state, job.exit_code) == (JobState.DONE, 0), cluster.worker_logs()
            run = ledger.run(run_id)
            assert run is not None and run.mode == "distributed"
            assert len(ledger.parts(run_id)) == 2  # 3 orders in parts of 2
            progress = client.get(f"/runs/{run_id}/progress").json()
            assert progress["finished"] is True
            assert Counter(o["outcome"] for o in progress["orders"]) == {"submitted": 3}
            page = client.get(f"/runs/{run_id}")
            assert page.text.count('class="report-order"') == 3
    finally:
        ledger.close()
    requests = Counter(r["order_no"] for r in cluster.portal.cancel_requests())
    assert requests == Counter(o["order_no"] for o in orders)
