"""dhbot run, end to end through the CLI against the mock portal."""

from __future__ import annotations

import stat
from collections import Counter

import pytest

from flows.profile import load_profile
from tests.bot.conftest import Layout, Workspace, by_status

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_run_gives_each_order_its_outcome_and_submits_once(workspace: Workspace,
                                                           layout: Layout) -> None:
    portal = workspace.portal
    paid = by_status(portal, layout.paid, 2)
    unpaid = by_status(portal, layout.unpaid)[0]
    cancelled = by_status(portal, layout.cancelled)[0]
    shipped = by_status(portal, layout.shipped)[0]
    completed = by_status(portal, layout.completed)[0]
    pending = by_status(portal, layout.pending)[0]
    unknown = "9999999999"
    job = workspace.write_job([
        {"order_no": paid[0]},
        {"order_no": paid[1], "reason": "price_error", "note": "价格设置错误，已与买家沟通"},
        {"order_no": unpaid},
        {"order_no": cancelled},
        {"order_no": shipped},
        {"order_no": completed},
        {"order_no": pending},
        {"order_no": unknown},
    ])

    proc = workspace.dhbot("run", str(job), check_code=0)

    report = workspace.last_report()
    outcomes = {o["order_no"]: o["outcome"] for o in report["orders"]}
    expected = {
        paid[0]: layout.paid_outcome, paid[1]: layout.paid_outcome, unpaid: "cancelled",
        cancelled: "already_cancelled", shipped: "not_cancellable",
        completed: "not_cancellable", pending: "already_requested", unknown: "not_found",
    }
    assert outcomes == expected
    assert report["summary"] == dict(Counter(expected.values()))
    for key in ("run_id", "job", "started_at", "finished_at", "summary", "orders"):
        assert key in report
    row = next(o for o in report["orders"] if o["order_no"] == paid[0])
    assert row["status_before"] == layout.paid and row["status_after"] == layout.paid_after
    assert set(row) >= {"order_no", "account", "outcome", "status_before", "status_after",
                        "reason", "note", "attempts", "error", "artifacts", "notice"}
    # What the portal said after the submit is kept word for word, as evidence.
    said = load_profile(layout.profile).notice_meaning(row["notice"])
    assert said is not None and said[0] == layout.paid_outcome, row["notice"]
    assert f"{layout.paid_outcome}: " in proc.stdout

    requests = portal.cancel_requests()
    assert sorted(r["order_no"] for r in requests) == sorted([paid[0], paid[1], unpaid])
    by_no = {r["order_no"]: r for r in requests}
    assert by_no[paid[0]]["reason"] == "缺货"
    assert by_no[paid[0]]["note"] == "仓库断货，无法按时发货"
    assert by_no[paid[1]]["reason"] == "价格设置错误"
    assert by_no[paid[1]]["note"] == "价格设置错误，已与买家沟通"
    assert all(r["accepted"] for r in requests)
    status_now = {o["order_no"]: o["status"] for o in portal.orders(account="demo_seller")}
    assert status_now[paid[0]] == layout.paid_after
    assert status_now[unpaid] == layout.unpaid_after

    # The saved session is private to its owner.
    session_file = workspace.session_file()
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600

    # Running the same job again submits nothing new and reports the earlier outcomes.
    workspace.dhbot("run", str(job), check_code=0)
    assert len(portal.cancel_requests()) == 3
    again = {o["order_no"]: o for o in workspace.last_report()["orders"]}
    assert again[paid[0]]["outcome"] == layout.paid_outcome
    assert again[paid[0]]["previous_run"] == report["run_id"]
    assert again[unpaid]["outcome"] == "cancelled"


def test_second_run_reuses_the_saved_session(workspace: Workspace) -> None:
    portal = workspace.portal
    first, second = by_status(portal, "已发货", 2)
    workspace.dhbot("run", str(workspace.write_job([{"order_no": first}])), check_code=0)
    logins = portal.stats()["logins"].get("demo_seller", 0)
    assert logins == 1
    proc = workspace.dhbot("run", str(workspace.write_job([{"order_no": second}], "b.yaml")),
                           check_code=0)
    assert portal.stats()["logins"].get("demo_seller", 0) == 1, proc.stderr
    assert "reusing the saved session" in proc.stderr


def test_bad_job_exits_2_before_any_browser(workspace: Workspace) -> None:
    job = workspace.root / "bad.yaml"
    job.write_text('orders:\n  - order_no: "1455953156"\n    reason: nonsense\n',
                   encoding="utf-8")
    proc = workspace.dhbot("run", str(job), check_code=2)
    assert "bad.yaml:3" in proc.stderr and "unknown reason 'nonsense'" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
    assert not (workspace.root / "state" / "ledger.sqlite").exists()


def test_missing_password_is_explained(workspace: Workspace) -> None:
    job = workspace.write_job([{"order_no": "1455953156"}])
    env = {k: v for k, v in workspace.env.items() if k != "DHBOT_PASSWORD_MAIN"}
    workspace.env = env
    proc = workspace.dhbot("run", str(job), check_code=2)
    assert "DHBOT_PASSWORD_MAIN is not set" in proc.stderr
    assert workspace.portal.stats()["requests"] == 0
