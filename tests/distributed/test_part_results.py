"""A part that breaks off reports its orders from the ledger: what the ledger records as
done is never reported as skipped (no services needed: a SQLite ledger)."""

from __future__ import annotations

from pathlib import Path

from bot.distributed import _skipped
from bot.job import JobOrder
from bot.ledger import Ledger
from bot.outcomes import Outcome


def test_a_broken_off_part_reports_what_the_ledger_recorded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        orders = [JobOrder(order_no=n, reason="out_of_stock", note="缺货")
                  for n in ("1455953150", "1455953151", "1455953152", "1455953153")]
        ledger.plan("run-1", "b", [(o.order_no, o.reason, o.note) for o in orders])
        ledger.record_intent("run-1", "b", "1455953150", "out_of_stock", "缺货", "待发货")
        ledger.record_result("run-1", "b", "1455953150", Outcome.SUBMITTED,
                             status_before="待发货", status_after="取消审核中", attempts=1)
        ledger.record_result("run-0", "b", "1455953151", Outcome.NOT_CANCELLABLE,
                             status_before="已发货", status_after="已发货", attempts=1)
        ledger.record_intent("run-1", "b", "1455953152", "out_of_stock", "缺货", "待发货")

        results = {r.order_no: r for r in _skipped(ledger, "run-1", "b", "b", orders,
                                                    "Redis connection lost")}
    finally:
        ledger.close()
    assert results["1455953150"].outcome == Outcome.SUBMITTED
    assert results["1455953150"].previous_run is None  # done by this very run
    assert results["1455953151"].outcome == Outcome.NOT_CANCELLABLE
    assert results["1455953151"].previous_run == "run-0"
    assert results["1455953152"].outcome == Outcome.NEEDS_REVIEW  # a submit was under way
    assert results["1455953153"].outcome == Outcome.SKIPPED
    assert results["1455953153"].error == "not reached: Redis connection lost"
