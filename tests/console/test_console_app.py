"""The console's own rules, in-process: users and keys, starting small jobs, restarts,
languages, uploads of every kind, and following a run by its log."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.console.command import secret_key
from bot.console.store import JobState
from bot.console.work import landed
from bot.errors import ConfigError
from tests.console.conftest import PASSWORD, ConsoleApp, csrf, upload_csv

ONE = "order_no,reason,note\n1455953157,out_of_stock,断货\n"


def _dhbot(app: ConsoleApp, *args: str, stdin: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--config", str(app.root / "config.yaml")],
                                input=stdin)
    from loguru import logger

    logger.remove()
    return result.exit_code, result.output


# -- users and keys ------------------------------------------------------------------------


def test_users_are_added_changed_and_removed_from_the_command_line(
        console_app: ConsoleApp) -> None:
    code, out = _dhbot(console_app, "user", "add", "wang", "--role", "approver",
                       "--password-stdin", stdin="s3cret-enough\n")
    assert code == 0, out
    assert console_app.store.verify("wang", "s3cret-enough") is not None
    code, out = _dhbot(console_app, "user", "add", "wang", "--role", "operator",
                       "--password-stdin", stdin="another-one\n")
    assert code == 2 and "exists already" in out
    code, out = _dhbot(console_app, "user", "add", "zhao", "--role", "operator",
                       "--password-stdin", stdin="short\n")
    assert code == 2 and "at least 8" in out
    assert console_app.store.user("zhao") is None
    code, out = _dhbot(console_app, "user", "list")
    assert code == 0 and "wang\tapprover" in out and "s3cret" not in out
    assert "$argon2" not in out
    code, out = _dhbot(console_app, "user", "password", "wang", "--password-stdin",
                       stdin="changed-it-now\n")
    assert code == 0
    assert console_app.store.verify("wang", "s3cret-enough") is None
    assert console_app.store.verify("wang", "changed-it-now") is not None
    client = console_app.signed_in("olga")
    code, out = _dhbot(console_app, "user", "remove", "olga")
    assert code == 0
    assert client.get("/runs").status_code == 303  # signed out at the next click
    stored = console_app.store.ledger.query("SELECT password_hash FROM console_users")
    assert all(r["password_hash"].startswith("$argon2id$") for r in stored)


def test_the_signing_key_comes_from_the_environment_beyond_loopback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="DHBOT_CONSOLE_SECRET"):
        secret_key(tmp_path, "DHBOT_CONSOLE_SECRET", "0.0.0.0")
    assert not (tmp_path / "console").exists()
    first = secret_key(tmp_path, "DHBOT_CONSOLE_SECRET", "127.0.0.1")
    key_file = tmp_path / "console" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(first) >= 32 and secret_key(tmp_path, "DHBOT_CONSOLE_SECRET", "::1") == first
    key_file.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        secret_key(tmp_path, "DHBOT_CONSOLE_SECRET", "127.0.0.1")
    monkeypatch.setenv("DHBOT_CONSOLE_SECRET", "too-short")
    with pytest.raises(ConfigError, match="shorter than 32"):
        secret_key(tmp_path, "DHBOT_CONSOLE_SECRET", "0.0.0.0")
    monkeypatch.setenv("DHBOT_CONSOLE_SECRET", "x" * 40)
    assert secret_key(tmp_path, "DHBOT_CONSOLE_SECRET", "0.0.0.0") == "x" * 40


def test_serve_on_another_address_without_a_key_exits_2_before_listening(
        console_app: ConsoleApp) -> None:
    code, out = _dhbot(console_app, "serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2 and "DHBOT_CONSOLE_SECRET" in out


# -- jobs ----------------------------------------------------------------------------------


def _previewed(app: ConsoleApp, user: str, text: str = ONE) -> str:
    client = app.signed_in(user)
    response = upload_csv(client, text)
    assert response.status_code == 303, response.text
    job_id = response.headers["location"].rsplit("/", 1)[1]
    job = app.job(job_id)
    to = JobState.AWAITING_APPROVAL if job.needs_approval(1) else JobState.READY
    assert app.store.move(job_id, [JobState.PREVIEWING], to)
    return job_id


def test_a_job_within_the_threshold_is_started_by_its_uploader_not_by_another_operator(
        console_app: ConsoleApp) -> None:
    job_id = _previewed(console_app, "olga")
    assert console_app.job(job_id).state is JobState.READY
    other = console_app.signed_in("oscar")
    refused = other.post(f"/jobs/{job_id}/start",
                         data={"csrf_token": csrf(other, f"/jobs/{job_id}")})
    assert refused.status_code == 403
    owner = console_app.signed_in("olga")
    started = owner.post(f"/jobs/{job_id}/start",
                         data={"csrf_token": csrf(owner, f"/jobs/{job_id}")})
    assert started.status_code == 303
    job = console_app.job(job_id)
    assert job.state is JobState.QUEUED and job.decision == "started"
    assert job.decided_by == "olga"
    assert console_app.conductor.runs == [(job_id, job.run_id)]
    assert started.headers["location"] == f"/runs/{job.run_id}"


def test_work_cut_short_by_a_console_restart_is_shown_and_can_be_started_again(
        console_app: ConsoleApp) -> None:
    running = _previewed(console_app, "olga", ONE + "1455953158,out_of_stock,断货\n")
    approver = console_app.signed_in("amy")
    approver.post(f"/jobs/{running}/approve",
                  data={"csrf_token": csrf(approver, f"/jobs/{running}")})
    assert console_app.store.move(running, [JobState.QUEUED], JobState.RUNNING)
    previewing = console_app.signed_in("oscar")
    upload_csv(previewing, ONE)
    in_preview = next(j for j in console_app.store.jobs() if j.state is JobState.PREVIEWING)
    first_run = console_app.job(running).run_id

    console_app.client()  # a new console process starts on the same ledger
    assert console_app.job(running).state is JobState.INTERRUPTED
    assert "start it again" in str(console_app.job(running).error)
    assert console_app.job(in_preview.job_id).state is JobState.PREVIEW_FAILED
    again = approver.post(f"/jobs/{running}/start",
                          data={"csrf_token": csrf(approver, f"/jobs/{running}")})
    assert again.status_code == 303
    job = console_app.job(running)
    assert job.state is JobState.QUEUED and job.run_id != first_run
    assert job.decided_by == "amy" and job.decision == "approved"  # the approval is kept
    actions = [e.action for e in console_app.store.trail(running)]
    assert actions[-2:] == ["interrupted", "started_again"]


def test_pages_are_chinese_first_and_english_on_request(console_app: ConsoleApp) -> None:
    client = console_app.signed_in("olga")
    assert "新建任务" in client.get("/runs").text
    switched = client.get("/lang/en?next=/orders")
    assert switched.headers["location"] == "/orders"
    page = client.get("/runs").text
    assert "New job" in page and "新建任务" not in page
    client.get("/lang/zh")
    assert "新建任务" in client.get("/runs").text


def test_an_xlsx_and_a_yaml_job_file_are_accepted_a_word_file_is_not(
        console_app: ConsoleApp) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["order_no", "reason", "note"])
    sheet.append(["1455953157", "缺货", "断货"])
    sheet.append(["1455953158", "out_of_stock", "断货"])
    data = io.BytesIO()
    book.save(data)
    client = console_app.signed_in("olga")
    token = csrf(client, "/jobs/new")
    sent = client.post("/jobs/new", data={"csrf_token": token, "account": "main"},
                       files={"file": ("订单.xlsx", data.getvalue(), "application/vnd."
                                       "openxmlformats-officedocument.spreadsheetml.sheet")})
    assert sent.status_code == 303, sent.text
    job = console_app.job(sent.headers["location"].rsplit("/", 1)[1])
    assert job.orders == 2 and job.upload_name == "订单.xlsx"
    yaml_job = ("name: 双十一断货\ndefaults:\n  reason: out_of_stock\n  note: 断货\norders:\n"
                "  - order_no: \"1455953160\"\n")
    sent = upload_csv(client, yaml_job, name="job.yaml")
    assert sent.status_code == 303
    named = console_app.job(sent.headers["location"].rsplit("/", 1)[1])
    assert named.name == "双十一断货" and named.upload_name == "job.yaml"
    refused = upload_csv(client, "whatever", name="orders.docx")
    assert refused.status_code == 400 and ".docx" not in refused.text.split("problems")[0]
    assert "not a job file" in refused.text
    assert len(console_app.store.jobs()) == 2


def test_a_job_naming_another_account_is_refused(console_app: ConsoleApp) -> None:
    client = console_app.signed_in("olga")
    text = "account: other\norders:\n  - order_no: \"1455953157\"\n    reason: out_of_stock\n"
    refused = upload_csv(client, text, name="job.yaml")
    assert refused.status_code == 400
    assert "账号不符" in refused.text and "other" in refused.text
    assert console_app.store.jobs() == []


def test_a_run_is_followed_by_its_logged_outcomes(console_app: ConsoleApp) -> None:
    """The runner's line per order carries order_no and outcome (bot/runner.py); the
    console reads them back from the run's log.jsonl, a line still being written skipped."""
    from loguru import logger

    from bot.log import add_run_log

    run_id = "20261130-101500-abcd"
    folder = console_app.loaded.settings.paths.runs_dir / run_id
    sink = add_run_log(folder / "log.jsonl")
    try:
        logger.info("run starting")
        for no, outcome in (("1455953157", "submitted"), ("1455953158", "not_cancellable")):
            logger.bind(order_no=no, outcome=outcome).info("order {} -> {}", no, outcome)
    finally:
        logger.remove(sink)
    with (folder / "log.jsonl").open("a", encoding="utf-8") as log:
        log.write('{"text": "half a li')
    found = landed(console_app.loaded, console_app.store.ledger, run_id)
    assert [(x.order_no, x.outcome) for x in found] == [("1455953157", "submitted"),
                                                        ("1455953158", "not_cancellable")]
    assert os.stat(folder / "log.jsonl").st_mode & 0o777 == 0o600
    client = console_app.signed_in("olga")
    progress = client.get(f"/runs/{run_id}/progress").json()
    assert [o["label"] for o in progress["orders"]] == ["已提交 submitted",
                                                        "不可取消 not_cancellable"]
    assert progress["done"] == 2 and progress["finished"] is False  # no report.json yet


def test_the_password_never_reaches_the_console_log(console_app: ConsoleApp,
                                                    logged: list[str]) -> None:
    client = console_app.client()
    token = csrf(client, "/login")
    client.post("/login", data={"name": "olga", "password": "wrong-" + PASSWORD,
                                "csrf_token": token})
    client.post("/login", data={"name": "olga", "password": PASSWORD, "csrf_token": token})
    assert any("failed sign-in for 'olga'" in line for line in logged)
    assert not any(PASSWORD in line for line in logged)


def test_background_work_that_crashes_leaves_no_job_looking_busy(
        console_app: ConsoleApp, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from bot.console.work import Conductor

    conductor = Conductor(console_app.loaded, console_app.store)

    def broken(*_args: object, **_kwargs: object) -> list[str]:
        raise RuntimeError("no such interpreter")

    monkeypatch.setattr(conductor, "_command", broken)
    job = console_app.store.add_job("J20261130-120000-abcd", name=None, account="main",
                                    upload_name="orders.csv", job_file="job.yaml", orders=2,
                                    uploaded_by="olga")
    conductor.preview(job, "20261130-120000-abcd")
    deadline = time.monotonic() + 20
    while conductor.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    crashed = console_app.job(job.job_id)
    assert crashed.state is JobState.PREVIEW_FAILED
    assert "internal error: no such interpreter" in str(crashed.error)
