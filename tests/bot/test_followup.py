"""After the submit: review follow-up (sync), buyer messages, status from the ledger, and
the dry run that stops before the submit."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.bot.conftest import Layout, Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MESSAGE = "您好，订单 {order_no} 因{reason_label}已申请取消，款项将按平台规则原路退回。"


def test_sync_records_approvals_and_rejections(workspace: Workspace) -> None:
    portal = workspace.portal
    approve, reject, waiting = by_status(portal, "待发货", 3)
    job = workspace.write_job([{"order_no": n} for n in (approve, reject, waiting)])
    workspace.dhbot("run", str(job), check_code=0)
    portal.review(approve, "approve")
    portal.review(reject, "reject", "买家已付款发货，请与买家协商")

    proc = workspace.dhbot("sync", check_code=0)
    assert "cancelled: 1" in proc.stdout and "rejected: 1" in proc.stdout
    status = json.loads(workspace.dhbot("status", "--json", approve, reject, waiting,
                                        check_code=0).stdout)
    rows = {r["order_no"]: r for r in status}
    assert rows[approve]["outcome"] == "cancelled" and rows[approve]["cancel_date"]
    assert rows[reject]["outcome"] == "rejected"
    assert rows[reject]["review_comment"] == "买家已付款发货，请与买家协商"
    assert rows[waiting]["outcome"] == "submitted"

    # A rerun never resubmits the rejected order; it reports it for a person.
    workspace.dhbot("run", str(job), check_code=0)
    assert len(portal.cancel_requests()) == 3
    rerun = {o["order_no"]: o for o in workspace.last_report()["orders"]}
    assert rerun[reject]["outcome"] == "rejected"
    assert "买家已付款发货" in rerun[reject]["error"]
    # Every run syncs the orders it touches: an approval shows up without `dhbot sync`.
    portal.review(waiting, "approve")
    workspace.dhbot("run", str(job), check_code=0)
    assert {o["order_no"]: o["outcome"] for o in workspace.last_report()["orders"]}[
        waiting] == "cancelled"


def test_status_answers_from_the_ledger_alone(workspace: Workspace) -> None:
    order = by_status(workspace.portal, "已发货")[0]
    job = workspace.write_job([{"order_no": order}])
    workspace.dhbot("run", str(job), check_code=0)
    # Point the config at a portal that does not exist: status must not need it.
    workspace.write_config(portal={"base_url": "http://127.0.0.1:9/", "profile": "mock",
                                   "accounts": [{"name": "main", "username": "demo_seller",
                                                 "password_env": "DHBOT_PASSWORD_MAIN"}]})
    rows = json.loads(workspace.dhbot("status", "--json", "--job", str(job),
                                      check_code=0).stdout)
    assert rows[0]["order_no"] == order and rows[0]["outcome"] == "not_cancellable"
    text = workspace.dhbot("status", order, "1234567890", check_code=0).stdout
    assert order in text and "never seen" in text


def test_buyer_message_is_sent_once(workspace: Workspace) -> None:
    portal = workspace.portal
    paid = by_status(portal, "待发货", 2)
    shipped = by_status(portal, "已发货")[0]
    job = workspace.write_job([{"order_no": n} for n in [*paid, shipped]],
                              defaults={"reason": "out_of_stock", "note": "仓库断货",
                                        "message": MESSAGE})
    workspace.dhbot("run", str(job), check_code=0)
    messages = portal.messages()
    assert sorted(m["order_no"] for m in messages) == sorted(paid)  # not the shipped one
    text = next(m["content"] for m in messages if m["order_no"] == paid[0])
    assert text == MESSAGE.format(order_no=paid[0], reason_label="缺货")
    workspace.dhbot("run", str(job), check_code=0)
    assert len(portal.messages()) == 2


def test_bad_message_placeholder_is_refused(workspace: Workspace) -> None:
    job = workspace.write_job([{"order_no": "1455953156"}],
                              defaults={"reason": "out_of_stock", "note": "x",
                                        "message": "您好 {buyer_name}"})
    proc = workspace.dhbot("run", str(job), check_code=2)
    assert "{buyer_name}" in proc.stderr


def test_dry_run_stops_before_the_submit(workspace: Workspace, layout: Layout) -> None:
    portal = workspace.portal
    paid = by_status(portal, layout.paid, 2)
    cancelled = by_status(portal, layout.cancelled)[0]
    job = workspace.write_job([{"order_no": n} for n in [*paid, cancelled, "9999999999"]])
    workspace.dhbot("run", "--dry-run", str(job), check_code=0)
    report = workspace.last_report()
    assert report["dry_run"] is True
    outcomes = {o["order_no"]: o for o in report["orders"]}
    assert outcomes[paid[0]]["outcome"] == "would_submit"
    assert outcomes[cancelled]["outcome"] == "already_cancelled"
    assert outcomes["9999999999"]["outcome"] == "not_found"
    shot = workspace.root / "runs" / report["run_id"] / outcomes[paid[0]]["artifacts"][0]
    assert shot.suffix == ".png" and shot.stat().st_size > 1000
    assert portal.cancel_requests() == []
    ledger = workspace.root / "state" / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT count(*) FROM orders WHERE outcome IS NOT NULL").fetchone() \
            == (0,)
    # The real run afterwards still does the work.
    workspace.dhbot("run", str(job), check_code=0)
    assert sorted(r["order_no"] for r in portal.cancel_requests()) == sorted(paid)


def test_dry_run_previews_the_reason_the_fine_and_the_buyer_message(
        workspace: Workspace) -> None:
    """Per order: the reason as the portal lists it, the note, the buyer message that would
    be sent and the fine the cancellation would cost (from the detail page's 实付金额)."""
    portal = workspace.portal
    paid = by_status(portal, "待发货")[0]
    unpaid = by_status(portal, "等待买家付款")[0]
    job = workspace.write_job([{"order_no": paid}, {"order_no": unpaid}],
                              defaults={"reason": "缺货", "note": "仓库断货",
                                        "message": MESSAGE})
    proc = workspace.dhbot("run", "--dry-run", str(job), check_code=0,
                           extra_env={"COLUMNS": "250"})
    shown = {o["order_no"]: o for o in portal.orders(account="demo_seller")}
    report = workspace.last_report()
    orders = {o["order_no"]: o for o in report["orders"]}
    assert {o["outcome"] for o in orders.values()} == {"would_submit"}
    assert orders[paid]["fine"] == shown[paid]["fine"]  # the portal's own figure
    assert orders[unpaid]["fine"] == "none"  # an unpaid order is cancelled free
    for no in (paid, unpaid):
        assert orders[no]["reason"] == "out_of_stock" and orders[no]["reason_label"] == "缺货"
        assert orders[no]["message"] == MESSAGE.format(order_no=no, reason_label="缺货")
    out = proc.stdout  # a table: the long message folds at its space
    assert f"buyer message: 您好，订单 {paid}" in out and "因缺货已申请取消" in out
    assert shown[paid]["fine"] in out and "none (unpaid)" in out
    assert "缺货 out_of_stock" in out and "note: 仓库断货" in out
    html = (workspace.root / "runs" / report["run_id"] / "report.html").read_text()
    assert f"违约金 fine: {shown[paid]['fine']}" in html and "买家留言 buyer message" in html
    assert portal.cancel_requests() == [] and portal.messages() == []


def test_history_only_moves_forward(workspace: Workspace) -> None:
    """A failed read-back in a later run never turns a submitted order into `failed`, and
    the run that submitted it is kept for good."""
    portal = workspace.portal
    paid = by_status(portal, "待发货")[0]
    job = workspace.write_job([{"order_no": paid}])
    workspace.dhbot("run", str(job), check_code=0)
    first = workspace.last_report()["run_id"]

    # The order list fails (the row still showing 取消审核中 needs no detail page, so a
    # failing detail page would not be reached).
    portal.set_faults(error_rates={"orders": 1.0})
    workspace.dhbot("run", str(job), check_code=1)  # the read-back fails in this run...
    assert workspace.last_report()["orders"][0]["outcome"] == "failed"
    portal.set_faults(error_rates={})
    workspace.dhbot("run", str(job), check_code=0)  # ...and is only reported, not recorded
    row = workspace.last_report()["orders"][0]
    assert row["outcome"] == "submitted" and row["previous_run"] == first

    status = json.loads(workspace.dhbot("status", paid, "--json", check_code=0).stdout)
    assert status[0]["outcome"] == "submitted" and status[0]["submitted_run"] == first
    assert len(portal.cancel_requests()) == 1
