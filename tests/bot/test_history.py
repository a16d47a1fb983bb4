"""The ledger's rules as tables: which recorded outcome may replace which, and how long a
new holder of an account waits for an older holder's unfinished submit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.ledger import LedgerRow, Outcome, State, moves_forward, takeover_delay_s

Out = Outcome


@pytest.mark.parametrize(("state", "old", "new", "allowed"), [
    (None, None, Out.FAILED, True),  # never seen
    (State.PLANNED, None, Out.SUBMITTED, True),
    (State.INTENT, None, Out.NEEDS_REVIEW, True),  # a submit whose answer is unknown
    (State.DONE, Out.FAILED, Out.SUBMITTED, True),  # failures are retried
    (State.DONE, Out.NOT_FOUND, Out.CANCELLED, True),
    (State.DONE, Out.SUBMITTED, Out.CANCELLED, True),  # the review approved it
    (State.DONE, Out.SUBMITTED, Out.REJECTED, True),
    (State.DONE, Out.SUBMITTED, Out.SUBMITTED, True),
    (State.DONE, Out.ALREADY_REQUESTED, Out.CANCELLED, True),
    (State.DONE, Out.SUBMITTED, Out.FAILED, False),  # a later read-back failed: kept
    (State.DONE, Out.SUBMITTED, Out.NEEDS_REVIEW, False),
    (State.DONE, Out.SUBMITTED, Out.ALREADY_REQUESTED, False),  # would lose who submitted
    (State.DONE, Out.SUBMITTED, Out.NOT_FOUND, False),
    (State.DONE, Out.CANCELLED, Out.FAILED, False),
    (State.DONE, Out.CANCELLED, Out.SUBMITTED, False),
    (State.DONE, Out.ALREADY_CANCELLED, Out.NOT_CANCELLABLE, False),
    (State.DONE, Out.REJECTED, Out.SUBMITTED, False),
    (State.DONE, Out.REJECTED, Out.REJECTED, True),
])
def test_history_only_moves_forward(state: State | None, old: Outcome | None, new: Outcome,
                                    allowed: bool) -> None:
    assert moves_forward(state, old, new) is allowed


def _row(state: State, fence: int | None, at: str | None) -> LedgerRow:
    return LedgerRow(account="b", order_no="1", state=state, outcome=None, reason=None,
                     note=None, status_before="待发货", status_after=None, run_id="r",
                     attempts=1, error=None, intent_at=at, updated_at=at or "",
                     review_result=None, review_comment=None, cancel_date=None,
                     message_sent_at=None, intent_fence=fence)


NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
AGO_5S = "2026-11-30T11:59:55+00:00"
AGO_1H = "2026-11-30T11:00:00+00:00"


@pytest.mark.parametrize(("row", "token", "delay"), [
    (None, 7, 0.0),  # never seen
    (_row(State.PLANNED, None, None), 7, 0.0),  # nothing under way
    (_row(State.INTENT, None, AGO_5S), 7, 0.0),  # one machine: not fenced
    (_row(State.INTENT, 5, AGO_5S), None, 0.0),  # this run holds no shared lock
    (_row(State.INTENT, 7, AGO_5S), 7, 0.0),  # this holder's own submit
    (_row(State.INTENT, 5, AGO_5S), 7, 26.0),  # an older holder's, 5 s ago: 30 + 1 - 5
    (_row(State.INTENT, 5, AGO_1H), 7, 0.0),  # long enough ago
    (_row(State.DONE, 5, AGO_5S), 7, 0.0),  # finished: nothing to wait for
])
def test_a_new_holder_waits_out_an_older_holders_unfinished_submit(
        row: LedgerRow | None, token: int | None, delay: float) -> None:
    assert takeover_delay_s(row, token, window_s=30, now=NOW) == delay
