"""A distributed run sends one message and counts its metrics once, for the whole run, never
per part: `dhbot submit` (which waits) does it, the workers never do."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.bot.test_notify import Receiver
from tests.distributed.conftest import ACCOUNTS, Cluster

pytestmark = pytest.mark.distributed


def test_a_distributed_run_notifies_once_and_counts_every_account(cluster: Cluster) -> None:
    receiver = Receiver()
    try:
        config = yaml.safe_load(cluster.config.read_text())
        config["distributed"]["part_size"] = 1  # one part per order: many parts
        config["notify"] = {"urls": [receiver.url()], "on": "always"}
        config["metrics"] = {"textfile": "metrics/dhbot.prom"}
        cluster.config.write_text(yaml.safe_dump(config, allow_unicode=True),
                                  encoding="utf-8")
        orders = cluster.orders(per_account=2)
        job = cluster.write_job(orders)
        cluster.start_worker("w1")

        proc = cluster.dhbot("submit", str(job), "--timeout", "300")
        assert proc.returncode == 0, proc.stdout + proc.stderr + cluster.worker_logs()
        time.sleep(1)  # a late message from a worker would have arrived by now

        report = json.loads(next((cluster.root / "runs").glob("*/report.json")).read_text())
        assert len(receiver.received) == 1, receiver.received
        text = receiver.received[0]["message"]
        assert f"dhbot run {report['run_id']}: the run finished" in text
        assert f"orders: {len(orders)} " in text
        families = text_string_to_metric_families(
            (cluster.root / "metrics" / "dhbot.prom").read_text(encoding="utf-8"))
        counted: dict[str, float] = {}
        for family in families:
            for sample in family.samples:
                if sample.name == "dhbot_orders_total":
                    account = sample.labels["account"]
                    counted[account] = counted.get(account, 0) + sample.value
        assert counted == {name: 2 for name in ACCOUNTS}
    finally:
        receiver.close()
