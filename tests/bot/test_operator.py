"""Operator commands through the CLI: reports, runs, config show, guardrails, login."""

from __future__ import annotations

import csv
import json
import stat

import pytest

from tests.bot.conftest import Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_report_files_runs_and_rerender(workspace: Workspace) -> None:
    portal = workspace.portal
    paid = by_status(portal, "待发货")[0]
    shipped = by_status(portal, "已发货")[0]
    job = workspace.write_job([{"order_no": paid}, {"order_no": shipped}])
    workspace.dhbot("run", str(job), check_code=0)
    report = workspace.last_report()
    run_dir = workspace.root / "runs" / report["run_id"]
    for name in ("report.json", "report.html", "report.csv", "junit.xml", "log.jsonl"):
        assert (run_dir / name).exists(), name
    raw = (run_dir / "report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM for Chinese
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert {r["order_no"]: r["outcome"] for r in rows} == {paid: "submitted",
                                                           shipped: "not_cancellable"}
    assert rows[0]["note"] == "仓库断货，无法按时发货"
    assert stat.S_IMODE((run_dir / "report.json").stat().st_mode) == 0o600

    listing = workspace.dhbot("runs", check_code=0).stdout
    assert report["run_id"] in listing and "submitted=1" in listing

    (run_dir / "report.html").unlink()
    out = workspace.dhbot("report", report["run_id"][:15], check_code=0).stdout
    assert (run_dir / "report.html").exists() and "report.html" in out
    assert workspace.dhbot("report", "no-such-run").returncode == 2


def test_config_show_names_sources_and_masks_nothing_secret(workspace: Workspace) -> None:
    out = workspace.dhbot("config", "show", check_code=0,
                          extra_env={"DHBOT_CONCURRENCY__PAGES_PER_ACCOUNT": "2"}).stdout
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "env:DHBOT_CONCURRENCY__PAGES_PER_ACCOUNT" in lines["concurrency.pages_per_account"]
    assert "file:" in lines["portal.base_url"]
    assert "default" in lines["retry.jitter"]
    assert "demo-pass" not in out


def test_large_jobs_need_allow_large(workspace: Workspace) -> None:
    workspace.write_config(max_orders_per_run=2)
    job = workspace.write_job([{"order_no": n} for n in by_status(workspace.portal,
                                                                   "已发货", 3)])
    proc = workspace.dhbot("run", str(job), check_code=2)
    assert "max_orders_per_run (2)" in proc.stderr and "--allow-large" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
    workspace.dhbot("run", "--allow-large", str(job), check_code=0)


def test_single_order_from_the_command_line(workspace: Workspace) -> None:
    order = by_status(workspace.portal, "待发货")[0]
    workspace.dhbot("run", "--order", order, "--reason", "price_error", "--note",
                    "价格设置错误", check_code=0)
    (request,) = workspace.portal.cancel_requests()
    assert request["order_no"] == order and request["reason"] == "价格设置错误"


def test_login_saves_a_session_and_explains_without_display(workspace: Workspace) -> None:
    workspace.dhbot("login", check_code=0)
    session = workspace.session_file()
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    env = {k: v for k, v in workspace.env.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    workspace.env = env
    proc = workspace.dhbot("login", "--account", "main", "--headed", check_code=2)
    assert "no display" in proc.stderr and "xvfb-run" in proc.stderr


def test_message_rate_limit_is_waited_out(workspace: Workspace) -> None:
    portal = workspace.portal
    portal.set_faults(message_rate_per_minute=1, rate_limit_window_s=3)
    workspace.write_config(retry={"attempts": 3, "backoff_s": 0.1, "backoff_max_s": 1,
                                  "message_wait_s": 0.5})
    paid = by_status(portal, "待发货", 2)
    job = workspace.write_job([{"order_no": n} for n in paid],
                              defaults={"reason": "out_of_stock", "note": "断货",
                                        "message": "订单 {order_no} 已申请取消"})
    proc = workspace.dhbot("run", str(job), check_code=0)
    assert sorted(m["order_no"] for m in portal.messages()) == sorted(paid)
    assert "limits buyer messages; waiting" in proc.stderr
    assert {o["outcome"] for o in workspace.last_report()["orders"]} == {"submitted"}


def test_real_portal_asks_for_confirmation_on_a_terminal(workspace: Workspace) -> None:
    import os
    import pty
    import subprocess
    import sys

    workspace.write_config(portal={"base_url": "https://seller.example.invalid/",
                                   "profile": "mock",
                                   "accounts": [{"name": "main", "username": "demo_seller",
                                                 "password_env": "DHBOT_PASSWORD_MAIN"}]})
    job = workspace.write_job([{"order_no": "1455953156"}])
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", str(job)],
                            cwd=workspace.root, env=workspace.env, stdin=follower,
                            stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while b"Go ahead?" not in output:
        output += os.read(leader, 1024)
    os.write(leader, b"n\n")
    assert proc.wait(timeout=30) == 2
    try:
        while chunk := os.read(leader, 1024):
            output += chunk
    except OSError:
        pass  # the terminal closes with the process
    os.close(leader)
    text = output.decode(errors="replace")
    assert "About to cancel 1 order(s)" in text and "seller.example.invalid" in text
    assert "not confirmed; nothing was done" in text
    assert not (workspace.root / "runs").exists()


def test_renaming_an_account_keeps_its_history(workspace: Workspace) -> None:
    """The ledger is keyed by the portal identity (host + user name), not by the name in the
    configuration: renamed there, the account keeps what it did (it used to start afresh,
    and the order was read from the portal again as already_requested)."""
    unpaid = by_status(workspace.portal, "等待买家付款")[0]  # cancelled at once: final
    job = workspace.write_job([{"order_no": unpaid}])
    workspace.dhbot("run", str(job), check_code=0)
    first = workspace.last_report()
    workspace.write_config(portal={"accounts": [{
        "name": "shop", "username": "demo_seller", "password_env": "DHBOT_PASSWORD_MAIN"}]})
    requests = workspace.portal.stats()["requests"]
    workspace.dhbot("run", str(job), check_code=0)
    (row,) = workspace.last_report()["orders"]
    assert (row["account"], row["outcome"], row["previous_run"]) == (
        "shop", "cancelled", first["run_id"])
    assert workspace.portal.stats()["requests"] == requests, "the portal was asked again"
    status = json.loads(workspace.dhbot("status", "--json", "--account", "shop",
                                        check_code=0).stdout)
    assert [(r["order_no"], r["account"], r["outcome"]) for r in status] == [
        (unpaid, "shop", "cancelled")]
    assert status[0]["identity"].startswith("127.0.0.1_")
