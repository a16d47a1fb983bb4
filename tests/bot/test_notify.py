"""Notifications through apprise, received by a local HTTP server on loopback (apprise's
json:// URL): what a message says, when one is sent, and that a failing one changes
nothing and never shows its URL."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.alerts import after_run, after_unreported_job
from bot.config import LoadedSettings, load_settings
from bot.display import outcome_label
from bot.notify import compose, notify_urls, remember_url, wants_message
from bot.outcomes import OrderResult, Outcome
from bot.report import RunReport
from tests.bot.conftest import Workspace, by_status

# What a chat robot's webhook token looks like (DingTalk, WeCom: long, hex, digits).
TOKEN = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class Receiver:
    """A webhook on loopback that keeps every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                outer.paths.append(self.path)
                outer.received.append(json.loads(self.rfile.read(size)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet test output
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, token: str = TOKEN) -> str:
        return f"json://127.0.0.1:{self.port}/robot/send/{token}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    server = Receiver(status=500)
    yield server
    server.close()


def closed_port_url() -> str:
    """A json:// URL on a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"json://127.0.0.1:{port}/robot/send/{TOKEN}"


def settings_with(tmp_path: Path, environ: dict[str, str] | None = None,
                  **notify: Any) -> LoadedSettings:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"notify": notify}), encoding="utf-8")
    return load_settings(path, {}, environ or {})


def result(order_no: str, outcome: Outcome, error: str | None = None,
           account: str = "main") -> OrderResult:
    return OrderResult(order_no=order_no, account=account, outcome=outcome,
                       reason="out_of_stock", note="仓库断货", error=error)


def run_report(*orders: OrderResult, exit_code: int = 0, stopped: str | None = None,
               name: str | None = "十一月撤单") -> RunReport:
    report = RunReport(run_id="20261130-080500-ab12", job="jobs/november.yaml",
                       account="main", started_at="2026-11-30T08:05:00+00:00",
                       finished_at="2026-11-30T08:07:30+00:00", orders=list(orders),
                       stopped=stopped, exit_code=exit_code)
    report.name = name  # the job file's `name:`
    return report


MIXED = (
    result("1000000001", Outcome.CANCELLED),
    result("1000000002", Outcome.FAILED, "HTTP 500 系统繁忙 (page=detail step=open)"),
    result("1000000003", Outcome.NEEDS_REVIEW, "a submit was attempted; check it"),
    result("1000000004", Outcome.REJECTED, "the platform rejected the cancellation: 买家已发货"),
    result("1000000005", Outcome.NOT_FOUND),
)


def test_a_run_leaving_orders_for_a_person_sends_one_message_naming_them(
        tmp_path: Path, receiver: Receiver, logged: list[str]) -> None:
    loaded = settings_with(tmp_path, urls=[receiver.url()], on="needs_person")
    report_path = tmp_path / "runs" / "20261130-080500-ab12" / "report.json"

    after_run(loaded, run_report(*MIXED, exit_code=1), report_path)

    assert len(receiver.received) == 1
    sent = receiver.received[0]
    assert receiver.paths == [f"/robot/send/{TOKEN}"]
    text = sent["message"]
    waiting = {o.order_no: o for o in MIXED
               if o.outcome in (Outcome.FAILED, Outcome.NEEDS_REVIEW, Outcome.REJECTED)}
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("- ")}
    assert set(lines) == set(waiting)  # cancelled and not_found orders need nobody
    for order_no, order in waiting.items():
        assert outcome_label(order.outcome) in lines[order_no]  # 失败 failed, 平台驳回 rejected
        assert str(order.error) in lines[order_no]
    assert f"report: {report_path.with_name('report.html')}" in text
    assert "十一月撤单 (jobs/november.yaml)" in text and "account: main" in text
    assert f"{outcome_label('not_found')} 1" in text  # the counts
    assert "3 order(s) need a person" in sent["title"]
    assert sent["type"] == "failure"
    assert "finished: 2026-11-30 16:07:30 +08:00 (Asia/Shanghai)" in text
    assert any("notification sent to json://***" in line for line in logged)
    assert not any(TOKEN in line for line in logged)


@pytest.mark.parametrize(("on", "orders", "exit_code", "stopped", "sent"), [
    ("never", MIXED, 1, None, False),
    ("needs_person", (result("1", Outcome.CANCELLED), result("2", Outcome.NOT_FOUND),
                      result("3", Outcome.NOT_CANCELLABLE), result("4", Outcome.SUBMITTED)),
     0, None, False),
    ("needs_person", (result("1", Outcome.SKIPPED),), 1, "stopped by SIGTERM", False),
    # A captcha at login: exit 3, every order skipped; only a person can go on.
    ("needs_person", (result("1", Outcome.SKIPPED),), 3,
     "the login page asks for a captcha", True),
    ("needs_person", (result("1", Outcome.REJECTED),), 0, None, True),
    ("failed", (result("1", Outcome.REJECTED),), 0, None, False),
    ("failed", (result("1", Outcome.SKIPPED),), 1, "the run's time limit was reached", True),
    ("always", (result("1", Outcome.CANCELLED),), 0, None, True),
])
def test_notify_on_decides_whether_a_message_goes(
        tmp_path: Path, receiver: Receiver, on: str, orders: tuple[OrderResult, ...],
        exit_code: int, stopped: str | None, sent: bool) -> None:
    loaded = settings_with(tmp_path, urls=[receiver.url()], on=on)
    report = run_report(*orders, exit_code=exit_code, stopped=stopped)
    assert wants_message(report, loaded.settings.notify.on) is sent
    after_run(loaded, report, tmp_path / "report.json")
    assert len(receiver.received) == (1 if sent else 0)


def test_a_stopped_run_says_why_and_a_clean_one_says_it_finished(tmp_path: Path) -> None:
    stopped = compose(run_report(result("1", Outcome.SKIPPED), exit_code=3,
                                 stopped="the login page asks for a captcha"),
                      tmp_path / "report.json")
    assert "a person is needed" in stopped.title
    assert "stopped: the login page asks for a captcha" in stopped.body
    clean = compose(run_report(result("1", Outcome.CANCELLED), name=None),
                    tmp_path / "report.json")
    assert clean.title == "dhbot: the run finished — jobs/november.yaml, account main"
    assert not clean.grave


@pytest.mark.parametrize("server", ["failing_receiver", "closed_port"])
def test_a_failing_notification_is_a_masked_warning_and_the_others_still_get_it(
        tmp_path: Path, receiver: Receiver, logged: list[str], server: str,
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    bad = (request.getfixturevalue(server).url() if server == "failing_receiver"
           else closed_port_url())
    loaded = settings_with(tmp_path, urls=[bad, receiver.url("other" + TOKEN[:20])],
                           on="needs_person")
    report = run_report(*MIXED, exit_code=1)

    after_run(loaded, report, tmp_path / "report.json")  # never raises

    assert report.exit_code == 1  # untouched
    assert len(receiver.received) == 1  # the good URL still got its message
    warnings = [line for line in logged if line.startswith("WARNING")]
    assert len(warnings) == 1 and "notification to json://*** failed" in warnings[0]
    out = capsys.readouterr()
    everything = "\n".join([*logged, out.out, out.err])
    assert TOKEN not in everything and "other" + TOKEN[:20] not in everything


def test_a_url_apprise_cannot_use_is_skipped_with_a_masked_warning(
        tmp_path: Path, receiver: Receiver, logged: list[str]) -> None:
    bad = f"nosuchservice://{TOKEN}"
    loaded = settings_with(tmp_path, urls=[bad, receiver.url()], on="always")
    after_run(loaded, run_report(*MIXED, exit_code=1), tmp_path / "report.json")
    assert len(receiver.received) == 1
    assert any("nosuchservice://*** is not one apprise understands" in line for line in logged)
    assert not any(TOKEN in line for line in logged)


def test_urls_come_from_the_environment_variable_too(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    second = Receiver()
    try:
        monkeypatch.setenv("ALERT_URLS", f"{receiver.url()}, {second.url()}")
        loaded = settings_with(tmp_path, urls_env="ALERT_URLS", on="needs_person")
        assert notify_urls(loaded.settings.notify) == [receiver.url(), second.url()]
        after_run(loaded, run_report(*MIXED, exit_code=1), tmp_path / "report.json")
        assert len(receiver.received) == 1 and len(second.received) == 1
    finally:
        second.close()


def test_an_unset_urls_env_is_a_warning_not_an_error(
        tmp_path: Path, logged: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERT_URLS", raising=False)
    loaded = settings_with(tmp_path, urls_env="ALERT_URLS", on="always")
    after_run(loaded, run_report(*MIXED, exit_code=1), tmp_path / "report.json")
    assert any("ALERT_URLS is not set" in line for line in logged)


def test_the_redactor_learns_the_tokens_of_a_url() -> None:
    from bot.log import redactor

    remember_url(f"dingtalk://{TOKEN[:32]}/?secret=SEC{TOKEN[32:]}")
    remember_url("mailto://ops:hunter2pass@mail.example.com")
    text = redactor.redact(f"said {TOKEN[:32]} and SEC{TOKEN[32:]} and hunter2pass; "
                           "services and robot stay readable")
    assert TOKEN[:32] not in text and TOKEN[32:] not in text and "hunter2pass" not in text
    assert "services and robot stay readable" in text


def test_config_show_masks_the_urls(workspace: Workspace, receiver: Receiver) -> None:
    workspace.write_config(notify={"urls": [receiver.url()]})
    proc = workspace.cli("config", "show", check_code=0)
    assert TOKEN not in proc.stdout and "json://***" in proc.stdout


def test_a_scheduled_job_refused_before_any_report_is_notified_by_the_scheduler(
        workspace: Workspace, receiver: Receiver) -> None:
    from bot.schedule import Scheduler

    inbox = workspace.root / "jobs" / "inbox"
    inbox.mkdir(parents=True)
    workspace.write_config(notify={"urls": [receiver.url()], "on": "needs_person"},
                           schedules=[{"name": "inbox", "cron": "*/15 * * * *",
                                       "inbox": "jobs/inbox"}])
    bad = inbox / "broken.yaml"
    bad.write_text("orders: [{order_no: '1455953156', reason: no_such_reason}]\n",
                   encoding="utf-8")
    loaded = load_settings(workspace.config, {}, workspace.env)
    scheduler = Scheduler(loaded, stable_s=0.0)

    assert scheduler.run_once() is False

    assert len(receiver.received) == 1
    text = receiver.received[0]["message"]
    assert "broken.yaml" in text and "exit code 2" in text and "no_such_reason" in text
    assert (workspace.root / "jobs" / "failed" / "broken.yaml").exists()
    # A busy account (exit 4) is retried at the next slot: no news.
    after_unreported_job(loaded, "inbox", bad, 4, "account busy", workspace.root / "r.json")
    assert len(receiver.received) == 1


# -- end to end: dhbot run and dhbot sync against the mock portal ---------------------------


@pytest.mark.e2e
@pytest.mark.browser
def test_run_and_sync_send_one_message_per_run_and_count_the_metrics(
        workspace: Workspace, receiver: Receiver) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    portal = workspace.portal
    paid, failing = by_status(portal, "待发货", 2)
    unknown = "9999999999"
    dead = closed_port_url()
    workspace.write_config(notify={"urls": [dead], "urls_env": "ALERT_URLS",
                                   "on": "needs_person"},
                           metrics={"textfile": "metrics/dhbot.prom"})
    env = {"ALERT_URLS": receiver.url()}

    # 1. Every order answered (submitted, not_found): nobody is needed, nothing is sent.
    job = workspace.write_job([{"order_no": paid}, {"order_no": unknown}])
    first = workspace.dhbot("run", str(job), check_code=0, extra_env=env)
    assert receiver.received == []

    # 2. The platform rejects the request; `dhbot sync` records it and says so, once.
    portal.review(paid, "reject", "买家已付款发货，请与买家协商")
    synced = workspace.dhbot("sync", check_code=0, extra_env=env)
    assert len(receiver.received) == 1
    text = receiver.received[0]["message"]
    sync_report = workspace.last_report()
    assert f"- {paid} {outcome_label('rejected')}" in text and "买家已付款发货" in text
    assert f"report: {workspace.root / 'runs' / sync_report['run_id'] / 'report.html'}" in text
    assert (workspace.root / "runs" / sync_report["run_id"] / "report.html").exists()

    # 3. An order whose page keeps failing: exit 1, one message naming it; the dead URL is a
    # masked warning and the exit code stays the run's own.
    portal.set_faults(error_rates={"detail": 1.0})
    job2 = workspace.write_job([{"order_no": failing}, {"order_no": unknown}], "b.yaml")
    third = workspace.dhbot("run", str(job2), check_code=1, extra_env=env)
    portal.set_faults(error_rates={})
    report = workspace.last_report()
    assert report["exit_code"] == 1
    assert len(receiver.received) == 2
    text = receiver.received[1]["message"]
    assert f"- {failing} {outcome_label('failed')}: " in text and "HTTP 500" in text
    assert f"- {unknown}" not in text  # not_found is an answer, not a person's job
    assert "notification to json://*** failed" in third.stderr

    # No URL anywhere but in config.yaml: not in the output, the logs, the reports.
    written = [p.read_bytes().decode("utf-8", "replace") for p in workspace.root.rglob("*")
               if p.is_file() and p != workspace.config]
    assert len(written) > 10
    for text in [first.stdout, first.stderr, synced.stdout, synced.stderr, third.stdout,
                 third.stderr, *written]:
        assert TOKEN not in text

    # The metrics add up over the three runs.
    families = text_string_to_metric_families(
        (workspace.root / "metrics" / "dhbot.prom").read_text(encoding="utf-8"))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families for s in f.samples}
    orders = {dict(k)["outcome"]: v for (name, k), v in samples.items()
              if name == "dhbot_orders_total"}
    assert orders == {"submitted": 1, "not_found": 2, "rejected": 1, "failed": 1}
    assert samples[("dhbot_last_run_exit_code", (("account", "main"),))] == 1
