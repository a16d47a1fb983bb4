"""Fewer document loads per order: with `list.status_column` an order's status is read from
its row in the order list, and its detail page is opened only when it may be cancellable.
The mock portal counts every page it serves by route (orders, detail, cancel)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import yaml

from bot.outcomes import FINAL_OUTCOMES, PENDING_OUTCOMES
from flows.profile import profile_path
from tests.bot.conftest import Layout, Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

UNKNOWN = "9999999999"


def routes(workspace: Workspace) -> Counter[str]:
    """Pages served so far, by route."""
    return Counter(workspace.portal.stats()["by_route"])


def without_status_column(workspace: Workspace, layout: Layout) -> None:
    """The layout's bundled profile with `list.status_column` left out, as before it existed."""
    data: dict[str, Any] = yaml.safe_load(profile_path(layout.profile).read_text(
        encoding="utf-8"))
    del data["list"]["status_column"]
    path = workspace.root / "no-status-column.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    workspace.profile = str(path)
    workspace.write_config()


@pytest.mark.parametrize("status_column", [True, False], ids=["status_column", "no_key"])
def test_only_orders_that_may_be_cancellable_open_their_detail_page(
        workspace: Workspace, layout: Layout, status_column: bool) -> None:
    portal = workspace.portal
    if not status_column:
        if layout.name != "v1":
            pytest.skip("without list.status_column both layouts take the same path (the "
                        "detail page); v1 covers it, make test stays short")
        without_status_column(workspace, layout)
    paid = by_status(portal, layout.paid, 2)
    unpaid = by_status(portal, layout.unpaid)[0]
    answered_by_status = {
        by_status(portal, layout.cancelled)[0]: "already_cancelled",
        by_status(portal, layout.shipped)[0]: "not_cancellable",
        by_status(portal, layout.completed)[0]: "not_cancellable",
        by_status(portal, layout.pending)[0]: "already_requested",
    }
    cancellable = {paid[0]: layout.paid_outcome, paid[1]: layout.paid_outcome,
                   unpaid: "cancelled"}
    expected = {**cancellable, **answered_by_status, UNKNOWN: "not_found"}
    job = workspace.write_job([{"order_no": n} for n in expected])

    workspace.dhbot("run", str(job), check_code=0)

    report = workspace.last_report()
    # The same outcomes as ever (test_run_e2e.py), each cancellable order submitted once.
    assert {o["order_no"]: o["outcome"] for o in report["orders"]} == expected
    assert sorted(r["order_no"] for r in portal.cancel_requests()) == sorted(cancellable)
    assert sum(o["retries"] for o in report["orders"]) == 0, report["orders"]
    served = routes(workspace)
    assert served["cancel"] == len(cancellable)
    # A cancellable order: its detail page, then the page the submit redirects to (also
    # the detail). Every other order found is answered by its row, or read on its detail
    # page when the profile has no status column.
    looked_up = 0 if status_column else len(answered_by_status)
    assert served["detail"] == 2 * len(cancellable) + looked_up
    row = {o["order_no"]: o for o in report["orders"]}
    for order_no, outcome in answered_by_status.items():
        assert row[order_no]["status_before"] == row[order_no]["status_after"], row[order_no]
        assert row[order_no]["status_before"] in (layout.cancelled, layout.shipped,
                                                  layout.completed, layout.pending)
        assert row[order_no]["outcome"] == outcome

    # The rerun re-reads the requests waiting for review (a row that still shows the same
    # status needs no detail page: nothing changed, no review field is read) and looks at
    # the orders that had no final answer again (not_cancellable, not_found).
    read_again = [n for n, o in expected.items()
                  if n != UNKNOWN and (o in PENDING_OUTCOMES or o not in FINAL_OUTCOMES)]
    workspace.dhbot("run", str(job), check_code=0)
    again = routes(workspace) - served
    assert {o["order_no"]: o["outcome"] for o in workspace.last_report()["orders"]} == expected
    assert again["detail"] == (0 if status_column else len(read_again))
    assert again["cancel"] == 0


def test_sync_opens_the_detail_page_only_when_the_review_was_decided(
        workspace: Workspace) -> None:
    portal = workspace.portal
    approve, reject, waiting = by_status(portal, "待发货", 3)
    job = workspace.write_job([{"order_no": n} for n in (approve, reject, waiting)])
    workspace.dhbot("run", str(job), check_code=0)
    portal.review(approve, "approve")
    portal.review(reject, "reject", "买家已付款发货，请与买家协商")
    before = routes(workspace)

    proc = workspace.dhbot("sync", check_code=0)

    assert "cancelled: 1" in proc.stdout and "rejected: 1" in proc.stdout
    # The two decided ones are read on their detail pages (cancel date, review comment);
    # the one still waiting is answered by its row.
    assert (routes(workspace) - before)["detail"] == 2
    status = json.loads(workspace.dhbot("status", "--json", approve, reject, waiting,
                                        check_code=0).stdout)
    rows = {r["order_no"]: r for r in status}
    assert rows[approve]["outcome"] == "cancelled" and rows[approve]["cancel_date"]
    assert rows[reject]["review_comment"] == "买家已付款发货，请与买家协商"
    assert rows[waiting]["outcome"] == "submitted"


def test_a_submit_whose_answer_was_lost_is_read_back_from_its_row(
        workspace: Workspace, layout: Layout) -> None:
    portal = workspace.portal
    orders = by_status(portal, layout.paid, 2) + by_status(portal, layout.unpaid, 1)
    # The portal acts on each cancel request, then drops the connection: the answer is lost.
    portal.set_faults(commit_then_fail=1.0, commit_then_fail_mode="drop")
    job = workspace.write_job([{"order_no": n} for n in orders])

    workspace.dhbot("run", str(job), check_code=0)

    report = workspace.last_report()
    assert {o["order_no"]: o["outcome"] for o in report["orders"]} == {
        orders[0]: layout.paid_outcome, orders[1]: layout.paid_outcome,
        orders[2]: "cancelled"}
    assert Counter(r["order_no"] for r in portal.cancel_requests()) == Counter(orders)
    # Each detail page was opened once, to cancel; the read-back found the row's final
    # status (under review, or cancelled) and needed no detail page.
    assert routes(workspace)["detail"] == len(orders)
