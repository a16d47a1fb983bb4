"""The ledger's history rule as a table: which recorded outcome may replace which."""

from __future__ import annotations

import pytest

from bot.ledger import Outcome, State, moves_forward

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
