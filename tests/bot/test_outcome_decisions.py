"""The exactly-once rules as tables (bot/outcomes.py): read these first.

Each row is one situation an order can be in, and what dhbot does about it. No browser, no
portal, no database: the rules are pure functions, and this file runs in well under a
second.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.ledger import LedgerRow
from bot.outcomes import (
    Act,
    Decision,
    Outcome,
    State,
    after_failure,
    after_submit,
    before_submit,
    from_ledger,
    moves_forward,
    not_found,
    review,
    run_exit_code,
    takeover_delay_s,
)

Out = Outcome
R, S, H, B = Act.RECORD, Act.SUBMIT, Act.REHEARSE, Act.READ_BACK


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


# 1. What a run does with an order the ledger already knows.
@pytest.mark.parametrize(("final", "prior", "dry_run", "kind"), [
    (False, None, False, "cancel"),  # never seen
    (False, Out.FAILED, False, "cancel"),  # failures are tried again
    (False, Out.NOT_FOUND, False, "cancel"),
    (False, Out.NEEDS_REVIEW, False, "cancel"),  # read back first (see before_submit)
    (True, Out.SUBMITTED, False, "sync"),  # waiting for review: read its answer
    (True, Out.ALREADY_REQUESTED, False, "sync"),
    (True, Out.SUBMITTED, True, "report"),  # a dry run reads nothing back
    (True, Out.CANCELLED, False, "report"),  # final: never touched again
    (True, Out.ALREADY_CANCELLED, False, "report"),
    (True, Out.REJECTED, False, "report"),  # a person decides, never resubmitted
])
def test_what_a_run_does_with_what_the_ledger_knows(final: bool, prior: Outcome | None,
                                                    dry_run: bool, kind: str) -> None:
    assert from_ledger(final, prior, dry_run) == kind


# 3. The status read before acting: an answer, or submit. With an earlier submit's result
# unknown, the status says whether it landed.
@pytest.mark.parametrize(("meaning", "intent_unknown", "dry_run", "act", "outcome"), [
    ("cancellable", False, False, S, None),
    ("cancellable", False, True, H, None),  # dry run: fill the dialog, stop
    ("pending_review", False, False, R, Out.ALREADY_REQUESTED),  # someone asked before us
    ("cancelled", False, False, R, Out.ALREADY_CANCELLED),
    (None, False, False, R, Out.NOT_CANCELLABLE),  # shipped, completed, …
    ("pending_review", True, False, R, Out.SUBMITTED),  # our earlier submit landed
    ("cancelled", True, False, R, Out.CANCELLED),  # … and was decided at once
    (None, True, False, R, Out.NEEDS_REVIEW),  # shipped meanwhile? a person looks
    ("cancellable", True, False, S, None),  # it never arrived: submit now (once)
    ("cancellable", True, True, H, None),
    ("pending_review", True, True, R, Out.SUBMITTED),
])
def test_the_status_before_acting_decides(meaning: str | None, intent_unknown: bool,
                                          dry_run: bool, act: Act,
                                          outcome: Outcome | None) -> None:
    decided = before_submit(meaning, "某状态", intent_unknown=intent_unknown, dry_run=dry_run)
    assert (decided.act, decided.outcome) == (act, outcome)
    if outcome in (Out.NOT_CANCELLABLE, Out.NEEDS_REVIEW):
        assert decided.why and "某状态" in decided.why  # the report says what it showed


# 4. The page after the submit.
@pytest.mark.parametrize(("meaning", "notice", "act", "outcome", "clears"), [
    ("pending_review", None, R, Out.SUBMITTED, False),
    ("cancelled", None, R, Out.CANCELLED, False),  # unpaid orders close at once
    ("pending_review", "submitted", R, Out.SUBMITTED, False),
    ("cancellable", "duplicate", R, Out.ALREADY_REQUESTED, False),  # asked meanwhile
    ("cancellable", "refused", R, Out.NOT_CANCELLABLE, True),  # nothing was done
    ("cancellable", "insufficient_funds", R, Out.FAILED, True),  # retried next run
    ("cancellable", None, B, None, False),  # the page says nothing: read back, no resubmit
    (None, None, B, None, False),
    ("cancellable", "session_expired", B, None, False),
])
def test_the_page_after_the_submit_decides(meaning: str | None, notice: str | None, act: Act,
                                           outcome: Outcome | None, clears: bool) -> None:
    decided = after_submit(meaning, notice, status="待发货", words="提示")
    assert (decided.act, decided.outcome, decided.clears_intent) == (act, outcome, clears)


# 5. Not found, and failures, with and without a submit under way.
@pytest.mark.parametrize(("intent_unknown", "outcome"), [
    (False, Out.NOT_FOUND), (True, Out.NEEDS_REVIEW)])
def test_not_found_is_an_answer_only_without_a_submit_under_way(
        intent_unknown: bool, outcome: Outcome) -> None:
    assert not_found(intent_unknown).outcome == outcome


@pytest.mark.parametrize(("intent_unknown", "outcome"), [
    (False, Out.FAILED), (True, Out.NEEDS_REVIEW)])
def test_a_failure_with_a_submit_under_way_needs_a_person(intent_unknown: bool,
                                                          outcome: Outcome) -> None:
    decided = after_failure(intent_unknown, "timeout")
    assert decided.outcome == outcome and decided.why and "timeout" in decided.why


# The platform's review, read back by a sync.
@pytest.mark.parametrize(("prior", "meaning", "outcome"), [
    (Out.SUBMITTED, "pending_review", Out.SUBMITTED),  # not decided yet
    (Out.SUBMITTED, "cancelled", Out.CANCELLED),  # approved
    (Out.SUBMITTED, "cancellable", Out.REJECTED),  # refused: back to where it was
    (Out.SUBMITTED, None, Out.NEEDS_REVIEW),  # shipped meanwhile?
    (Out.ALREADY_REQUESTED, "pending_review", Out.ALREADY_REQUESTED),
    (Out.ALREADY_REQUESTED, "cancelled", Out.CANCELLED),
])
def test_the_platforms_review(prior: Outcome, meaning: str | None, outcome: Outcome) -> None:
    decided = review(prior, meaning, "已发货", "买家已付款")
    assert decided == Decision(R, outcome, decided.why)
    if outcome == Out.REJECTED:
        assert decided.why and "买家已付款" in decided.why


# 7. The run's exit status.
@pytest.mark.parametrize(("outcomes", "stopped", "code"), [
    ([Out.SUBMITTED, Out.CANCELLED], [], 0),
    ([Out.REJECTED, Out.NOT_FOUND, Out.NOT_CANCELLABLE], [], 0),  # answers, not errors
    ([], [], 0),
    ([Out.SUBMITTED, Out.FAILED], [], 1),
    ([Out.NEEDS_REVIEW], [], 1),
    ([Out.SKIPPED], [], 1),
    ([Out.WOULD_SUBMIT], [], 0),
    ([Out.SKIPPED], [3], 3),  # captcha: login needs a person
    ([Out.SKIPPED], [130], 130),  # SIGINT/SIGTERM
    ([Out.SUBMITTED], [4, 2], 4),  # parts of a distributed run: the gravest
])
def test_the_runs_exit_status(outcomes: list[Outcome], stopped: list[int],
                              code: int) -> None:
    assert run_exit_code(outcomes, stopped) == code
