"""The Prometheus textfile, read back with prometheus_client's own parser."""

from __future__ import annotations

import stat
import threading
from datetime import datetime
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.alerts import after_run
from bot.config import LoadedSettings, load_settings
from bot.outcomes import OrderResult, Outcome
from bot.report import RunReport

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def settings_with(tmp_path: Path, textfile: str = "metrics/dhbot.prom") -> LoadedSettings:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"metrics": {"textfile": textfile}}), encoding="utf-8")
    return load_settings(path, {}, {})


def run(account: str, *outcomes: Outcome, exit_code: int = 0, started: str = "08:00:00",
        finished: str = "08:02:30", previous_run: str | None = None) -> RunReport:
    orders = [OrderResult(order_no=f"10{i:08d}", account=account, outcome=o, reason="x",
                          note="", previous_run=previous_run) for i, o in enumerate(outcomes)]
    return RunReport(run_id="r", job="job.yaml", account=account,
                     started_at=f"2026-11-30T{started}+00:00",
                     finished_at=f"2026-11-30T{finished}+00:00", orders=orders,
                     exit_code=exit_code)


def samples(path: Path) -> Samples:
    """(sample name, labels) -> value, as Prometheus would read the file."""
    families = list(text_string_to_metric_families(path.read_text(encoding="utf-8")))
    assert {f.name: f.type for f in families} == {
        "dhbot_orders": "counter", "dhbot_last_run_timestamp_seconds": "gauge",
        "dhbot_last_run_exit_code": "gauge", "dhbot_run_duration_seconds": "gauge"}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families for s in f.samples}


def orders(found: Samples) -> dict[tuple[str, str], float]:
    return {(dict(labels)["account"], dict(labels)["outcome"]): value
            for (name, labels), value in found.items() if name == "dhbot_orders_total"}


def gauge(found: Samples, name: str, account: str) -> float:
    return found[(name, (("account", account),))]


def test_runs_of_several_accounts_add_up_and_keep_their_own_last_run(tmp_path: Path) -> None:
    loaded = settings_with(tmp_path)
    textfile = tmp_path / "metrics" / "dhbot.prom"
    after_run(loaded, run("main", Outcome.CANCELLED, Outcome.CANCELLED, Outcome.FAILED,
                          exit_code=1), tmp_path / "report.json")
    after_run(loaded, run("backup", Outcome.NOT_FOUND, started="09:00:00",
                          finished="09:00:20"), tmp_path / "report.json")
    after_run(loaded, run("main", Outcome.CANCELLED, started="10:00:00", finished="10:01:00"),
              tmp_path / "report.json")

    found = samples(textfile)
    assert orders(found) == {("main", "cancelled"): 3, ("main", "failed"): 1,
                             ("backup", "not_found"): 1}
    assert gauge(found, "dhbot_last_run_exit_code", "main") == 0  # its last run's
    assert gauge(found, "dhbot_last_run_exit_code", "backup") == 0
    assert gauge(found, "dhbot_last_run_timestamp_seconds", "main") == datetime.fromisoformat(
        "2026-11-30T10:01:00+00:00").timestamp()
    assert gauge(found, "dhbot_run_duration_seconds", "main") == 60
    assert gauge(found, "dhbot_run_duration_seconds", "backup") == 20
    # node_exporter (another user) can read it; no temporary file is left behind.
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert sorted(p.name for p in textfile.parent.iterdir()) == ["dhbot.prom",
                                                                 "dhbot.prom.lock"]


def test_a_rerun_does_not_count_orders_it_only_reports_from_the_ledger(tmp_path: Path) -> None:
    loaded = settings_with(tmp_path)
    after_run(loaded, run("main", Outcome.SUBMITTED), tmp_path / "report.json")
    after_run(loaded, run("main", Outcome.SUBMITTED, previous_run="r1"),
              tmp_path / "report.json")
    synced = run("main", Outcome.REJECTED, previous_run="r1")
    synced.orders[0].synced = True  # read back by this run: the platform's new answer
    after_run(loaded, synced, tmp_path / "report.json")
    assert orders(samples(tmp_path / "metrics" / "dhbot.prom")) == {
        ("main", "submitted"): 1, ("main", "rejected"): 1}


def test_runs_finishing_at_once_never_lose_each_others_counts(tmp_path: Path) -> None:
    loaded = settings_with(tmp_path)
    accounts = ["main", "backup"]

    def one(i: int) -> None:
        after_run(loaded, run(accounts[i % 2], Outcome.CANCELLED, Outcome.NOT_FOUND),
                  tmp_path / "report.json")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert orders(samples(tmp_path / "metrics" / "dhbot.prom")) == {
        ("main", "cancelled"): 6, ("main", "not_found"): 6,
        ("backup", "cancelled"): 6, ("backup", "not_found"): 6}


def test_a_file_that_does_not_parse_is_written_afresh(tmp_path: Path,
                                                      logged: list[str]) -> None:
    loaded = settings_with(tmp_path)
    textfile = tmp_path / "metrics" / "dhbot.prom"
    textfile.parent.mkdir()
    textfile.write_text("dhbot_orders_total{account=\"main\" garbage\n", encoding="utf-8")
    after_run(loaded, run("main", Outcome.CANCELLED), tmp_path / "report.json")
    assert orders(samples(textfile)) == {("main", "cancelled"): 1}
    assert any("does not parse" in line for line in logged)


def test_a_metrics_file_that_cannot_be_written_is_a_warning(tmp_path: Path,
                                                           logged: list[str]) -> None:
    (tmp_path / "metrics").write_text("a file where the folder should be", encoding="utf-8")
    loaded = settings_with(tmp_path)
    report = run("main", Outcome.FAILED, exit_code=1)
    after_run(loaded, report, tmp_path / "report.json")  # never raises
    assert report.exit_code == 1
    warnings = [line for line in logged if line.startswith("WARNING")]
    assert len(warnings) == 1 and "metrics: could not write" in warnings[0]


def test_no_textfile_configured_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("{}\n", encoding="utf-8")
    after_run(load_settings(path, {}, {}), run("main", Outcome.CANCELLED),
              tmp_path / "report.json")
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
