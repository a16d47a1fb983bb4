"""A legacy-markup backend described by nothing but its profile: late rows never make a
wrong `not_found`, refusals are told apart, absent features are refused up front."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.bot.conftest import LAYOUTS, Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LEGACY = LAYOUTS["legacy"]


def use_legacy(workspace: Workspace, **faults: object) -> None:
    workspace.portal.set_faults(layout="legacy", **faults)
    workspace.profile = LEGACY.profile
    workspace.write_config()


def test_rows_drawn_2s_late_never_yield_not_found(workspace: Workspace) -> None:
    portal = workspace.portal
    use_legacy(workspace, rows_delay_ms=2000)
    existing = (by_status(portal, LEGACY.paid, 2) + by_status(portal, LEGACY.unpaid, 1)
                + by_status(portal, LEGACY.shipped, 2) + by_status(portal, LEGACY.cancelled, 1)
                + by_status(portal, LEGACY.pending, 1))
    job = workspace.write_job([{"order_no": n} for n in [*existing, "9999999999"]])
    workspace.dhbot("run", str(job), check_code=0, timeout=240)
    outcomes = {o["order_no"]: o["outcome"] for o in workspace.last_report()["orders"]}
    assert [n for n in existing if outcomes[n] == "not_found"] == []
    assert outcomes["9999999999"] == "not_found"  # the empty text, once drawn, is proof
    assert Counter(outcomes.values()) == Counter({
        "cancelled": 3, "not_cancellable": 2, "already_cancelled": 1, "already_requested": 1,
        "not_found": 1})
    # Statuses were read from the rows once drawn: only the three cancellable orders opened
    # their detail page (and came back to it after the submit).
    assert portal.stats()["by_route"]["detail"] == 2 * 3


def test_rows_later_than_the_timeout_fail_instead_of_not_found(workspace: Workspace) -> None:
    portal = workspace.portal
    use_legacy(workspace, rows_delay_ms=4000)
    workspace.write_config(browser={"headless": True, "timeout_s": 1,
                                    "navigation_timeout_s": 15})
    orders = by_status(portal, LEGACY.paid, 2)
    job = workspace.write_job([{"order_no": n} for n in orders])
    workspace.dhbot("run", str(job), check_code=1, timeout=240)
    report = workspace.last_report()
    assert {o["outcome"] for o in report["orders"]} == {"failed"}
    assert all("neither order rows nor its empty text" in o["error"]
               for o in report["orders"]), report["orders"]
    assert portal.cancel_requests() == []


def test_a_fine_the_funds_cannot_pay_fails_the_order_and_a_rerun_cancels_it(
        workspace: Workspace) -> None:
    portal = workspace.portal
    use_legacy(workspace, insufficient_funds=True)
    paid = by_status(portal, LEGACY.paid)[0]
    unpaid = by_status(portal, LEGACY.unpaid)[0]
    job = workspace.write_job([{"order_no": paid}, {"order_no": unpaid}])
    workspace.dhbot("run", str(job), check_code=1)
    rows = {o["order_no"]: o for o in workspace.last_report()["orders"]}
    assert rows[paid]["outcome"] == "failed"
    assert "the fine cannot be paid from the seller's funds account" in rows[paid]["error"]
    assert "资金账户余额不足" in rows[paid]["error"]
    assert rows[unpaid]["outcome"] == "cancelled"  # no fine for an unpaid order
    # Refused means nothing happened: once the funds are there, the rerun cancels it.
    portal.set_faults(insufficient_funds=False)
    workspace.dhbot("run", str(job), check_code=0)
    rows = {o["order_no"]: o for o in workspace.last_report()["orders"]}
    assert rows[paid]["outcome"] == "cancelled"
    accepted = Counter(r["order_no"] for r in portal.cancel_requests() if r["accepted"])
    assert accepted == Counter({paid: 1, unpaid: 1})


def test_a_buyer_message_on_a_portal_without_contact_is_refused_before_the_browser(
        workspace: Workspace) -> None:
    use_legacy(workspace)
    job = workspace.write_job([{"order_no": "1455953156"}],
                              defaults={"reason": "out_of_stock", "message": "您好"})
    proc = workspace.dhbot("run", str(job), check_code=2)
    assert "has no 联系买家" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
