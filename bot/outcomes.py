"""What can happen to an order, and the rules that decide it: read this first.

Every rule that keeps a cancellation exactly once is a pure function here: facts in (what the
portal's page showed, what the ledger holds, whether this is a dry run), a decision out. The
runner gathers the facts and carries the decisions out; it decides nothing itself.
`tests/bot/test_outcome_decisions.py` holds every rule as a table.

The rules, in the order an order meets them:

1. `from_ledger`: an order the ledger records as final is never touched again; one waiting
   for the platform's review is read back (`review`).
2. `takeover_delay_s`: a new holder of a shared account lock waits for an older holder's
   unfinished submit to land before it reads the order back.
3. `before_submit`: the status the portal shows decides the answer, or that dhbot submits.
   An order whose earlier submit's result is unknown (an *intent* without a result) is read
   back first: under review or cancelled means that submit landed; still cancellable means
   it never arrived and is made now; anything else needs a person.
4. `after_submit`: the page after the submit decides the outcome; a page that says nothing
   clear is read back, never submitted again blindly.
5. `not_found`, `after_failure`: with a submit under way, neither can be an answer.
6. `moves_forward`: a recorded final outcome only moves forward.
7. `run_exit_code`: what the run's exit status says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.ledger import LedgerRow


class Outcome(StrEnum):
    """What happened to an order."""

    SUBMITTED = "submitted"  # request accepted, waiting for the platform's review
    CANCELLED = "cancelled"  # cancelled (at once, or review approved)
    ALREADY_REQUESTED = "already_requested"
    ALREADY_CANCELLED = "already_cancelled"
    NOT_CANCELLABLE = "not_cancellable"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"  # the platform's review refused the request
    NEEDS_REVIEW = "needs_review"  # a person must look: result could not be determined
    FAILED = "failed"
    WOULD_SUBMIT = "would_submit"  # dry run
    SKIPPED = "skipped"  # not reached: the run was interrupted or the account stopped


# Outcomes after which a rerun must not act on the order again.
FINAL_OUTCOMES = frozenset({
    Outcome.SUBMITTED, Outcome.CANCELLED, Outcome.ALREADY_REQUESTED, Outcome.ALREADY_CANCELLED,
    Outcome.REJECTED,
})
# Outcomes meaning the platform has not decided yet (sync re-reads them).
PENDING_OUTCOMES = frozenset({Outcome.SUBMITTED, Outcome.ALREADY_REQUESTED})
# Outcomes that make a run exit 1: the order has no answer yet.
BAD_OUTCOMES = frozenset({Outcome.FAILED, Outcome.NEEDS_REVIEW, Outcome.SKIPPED})
# Outcomes that went wrong: highlighted red in report.html, <failure> in junit.xml.
PROBLEM_OUTCOMES = frozenset({Outcome.FAILED, Outcome.NEEDS_REVIEW})
# Outcomes that wait for a person (notifications, `dhbot health`): the problems, and the
# requests the platform rejected (never resubmitted automatically: someone decides).
PERSON_OUTCOMES = PROBLEM_OUTCOMES | {Outcome.REJECTED}

# What each outcome means, in the portal's language, shown beside the code.
LABELS_ZH: dict[Outcome, str] = {
    Outcome.SUBMITTED: "已提交",
    Outcome.CANCELLED: "已取消",
    Outcome.ALREADY_REQUESTED: "此前已申请",
    Outcome.ALREADY_CANCELLED: "此前已取消",
    Outcome.NOT_CANCELLABLE: "不可取消",
    Outcome.NOT_FOUND: "未找到",
    Outcome.REJECTED: "平台驳回",
    Outcome.NEEDS_REVIEW: "待人工处理",
    Outcome.FAILED: "失败",
    Outcome.WOULD_SUBMIT: "演练：将提交",
    Outcome.SKIPPED: "未处理",
}


class State(StrEnum):
    """Where an order is in its life inside dhbot."""

    PLANNED = "planned"
    INTENT = "intent"  # about to submit / submitted, result not yet known
    DONE = "done"


@dataclass
class OrderResult:
    """What happened to one order in this run (one row of the report)."""

    order_no: str
    account: str
    outcome: Outcome
    reason: str
    note: str
    status_before: str | None = None
    status_after: str | None = None
    attempts: int = 0
    retries: int = 0
    error: str | None = None
    artifacts: list[str] = field(default_factory=list)
    previous_run: str | None = None
    duration_s: float = 0.0
    synced: bool = False
    message_sent: bool = False
    notice: str | None = None  # what the portal said after the submit, word for word
    # Retries by their reason ("timeout", "server error", "rate limited", …).
    retry_reasons: dict[str, int] = field(default_factory=dict)
    # When the outcome was decided (UTC, ISO 8601; people see it in the display time zone).
    finished_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    # What a dry run previews (and a real run did): the fine the portal charges for the
    # cancellation ("none" for an unpaid order, None when unknown), the buyer message.
    fine: str | None = None
    message: str | None = None
    reason_label: str | None = None  # the reason as the portal's 取消原因 list says it


# --- the decisions -----------------------------------------------------------------------

# What a status means, as the profile's `statuses` section maps it (None: anything else).
CANCELLABLE, PENDING_REVIEW, CANCELLED = "cancellable", "pending_review", "cancelled"


class Act(StrEnum):
    """What the runner does with an order once it has read it."""

    RECORD = "record"  # the outcome is decided: record it, touch nothing more
    SUBMIT = "submit"  # fill the dialog, commit the intent, submit
    REHEARSE = "rehearse"  # dry run: fill the dialog, keep a screenshot, stop
    READ_BACK = "read_back"  # the page said nothing clear: read the order back


@dataclass(frozen=True)
class Decision:
    """A rule's answer: what to do, the outcome to record, and why (for the report)."""

    act: Act
    outcome: Outcome | None = None
    why: str | None = None
    # The portal refused the submit: nothing was done, the intent is no longer open.
    clears_intent: bool = False

    @property
    def recorded(self) -> Outcome:
        """The outcome of a RECORD decision."""
        if self.outcome is None:
            raise ValueError(f"a {self.act} decision records no outcome")
        return self.outcome


def from_ledger(prior_final: bool, prior: Outcome | None, dry_run: bool) -> str:
    """What a run does with an order the ledger already knows: "cancel" (work on it),
    "sync" (read back a request waiting for review) or "report" (final: report what the
    ledger holds, never touch the portal for it)."""
    if not prior_final or prior is None:
        return "cancel"
    if prior in PENDING_OUTCOMES and not dry_run:
        return "sync"
    return "report"


def before_submit(meaning: str | None, status: str, *, intent_unknown: bool,
                  dry_run: bool) -> Decision:
    """The order's status, read before acting, decides its answer, or that dhbot submits.

    With `intent_unknown` (an earlier submit's result was never recorded) the status says
    whether that submit landed; only a still-cancellable order is submitted (again)."""
    if meaning in _ANSWERED:
        ours, before_us = _ANSWERED[meaning]
        return Decision(Act.RECORD, ours if intent_unknown else before_us)
    if meaning != CANCELLABLE:
        if intent_unknown:
            return Decision(Act.RECORD, Outcome.NEEDS_REVIEW,
                            f"a submit was attempted; the order now shows {status}, which is "
                            "neither cancelled nor under review")
        return Decision(Act.RECORD, Outcome.NOT_CANCELLABLE,
                        f"status {status} cannot be cancelled")
    # Cancellable (with an intent open: the earlier submit never reached the portal).
    return Decision(Act.REHEARSE if dry_run else Act.SUBMIT)


# A status that already answers: (our own earlier submit landed, someone asked before us).
_ANSWERED = {PENDING_REVIEW: (Outcome.SUBMITTED, Outcome.ALREADY_REQUESTED),
             CANCELLED: (Outcome.CANCELLED, Outcome.ALREADY_CANCELLED)}


def after_submit(meaning: str | None, notice: str | None, *, status: str,
                 words: str | None) -> Decision:
    """The page after the submit decides the outcome. `notice` is what the profile's
    notices make of the page's message (duplicate, refused, insufficient_funds, …) and
    `words` the message itself. A page that says nothing clear is read back."""
    if meaning == PENDING_REVIEW:
        return Decision(Act.RECORD, Outcome.SUBMITTED)
    if meaning == CANCELLED:
        return Decision(Act.RECORD, Outcome.CANCELLED)
    if notice == "duplicate":
        return Decision(Act.RECORD, Outcome.ALREADY_REQUESTED)
    if notice == "insufficient_funds":
        return Decision(Act.RECORD, Outcome.FAILED,
                        f"the fine cannot be paid from the seller's funds account: {words}",
                        clears_intent=True)
    if notice == "refused":
        return Decision(Act.RECORD, Outcome.NOT_CANCELLABLE,
                        f"the portal refused to cancel: {words}", clears_intent=True)
    return Decision(Act.READ_BACK, None,
                    f"the portal's answer to the submit is unclear (status {status}, "
                    f"message {words!r}); reading the order back")


def not_found(intent_unknown: bool) -> Decision:
    """The order list, read to the end once ready, does not have the order."""
    if intent_unknown:
        return Decision(Act.RECORD, Outcome.NEEDS_REVIEW,
                        "a submit was attempted but the order is no longer found; check it "
                        "in the portal")
    return Decision(Act.RECORD, Outcome.NOT_FOUND)


def after_failure(intent_unknown: bool, what: str) -> Decision:
    """Retries are spent (or the error is not worth one): failed, or, with a submit under
    way, a person must look."""
    if intent_unknown:
        return Decision(Act.RECORD, Outcome.NEEDS_REVIEW,
                        f"a submit was attempted and its result could not be read back: "
                        f"{what}. Check the order in the portal")
    return Decision(Act.RECORD, Outcome.FAILED, what)


def review(prior: Outcome, meaning: str | None, status: str,
           comment: str | None) -> Decision:
    """An order waiting for the platform's review, read back: the platform's decision."""
    if meaning == CANCELLED:
        return Decision(Act.RECORD, Outcome.CANCELLED)
    if meaning == CANCELLABLE:
        return Decision(Act.RECORD, Outcome.REJECTED,
                        f"the platform rejected the cancellation: {comment or '-'}; not "
                        "resubmitted, a person must decide")
    if meaning != PENDING_REVIEW:
        return Decision(Act.RECORD, Outcome.NEEDS_REVIEW,
                        f"the order waiting for review now shows {status}")
    return Decision(Act.RECORD, prior)


def moves_forward(state: State | None, outcome: Outcome | None, new: Outcome) -> bool:
    """May an order's recorded outcome become `new`? History only moves forward: a final
    outcome is never replaced by a failure of a later run; a request waiting for review may
    only become cancelled or rejected (or stay what it is)."""
    if state != State.DONE or outcome not in FINAL_OUTCOMES:
        return True
    if outcome in PENDING_OUTCOMES:
        return new in (outcome, Outcome.CANCELLED, Outcome.REJECTED)
    return new == outcome


def takeover_delay_s(row: LedgerRow | None, token: int | None, window_s: float,
                     now: datetime | None = None) -> float:
    """Seconds a new holder of an account's lock (fencing token `token`) must wait before
    it reads back an order whose submit was left unfinished by an *older* holder.

    That holder passed its lock check before it clicked, so its click left within the lock's
    lifetime of the intent, and the browser gives up on a request after the navigation
    timeout: `window_s` (lock TTL + navigation timeout + a grace) after the intent, a click
    that was on its way has landed, and reading the order back tells the truth. 0 when the
    intent is this holder's own, is not fenced (one machine) or is old enough."""
    if (row is None or row.state != State.INTENT or token is None or row.intent_fence is None
            or row.intent_fence >= token or row.intent_at is None):
        return 0.0
    since = ((now or datetime.now(UTC)) - datetime.fromisoformat(row.intent_at)).total_seconds()
    return max(0.0, window_s + 1 - since)  # intent_at has whole seconds


def run_exit_code(outcomes: Iterable[Outcome], stopped: Iterable[int] = ()) -> int:
    """A run's exit status: the gravest reason it stopped early (captcha 3, busy 4, …,
    signal 130), else 1 when some order has no answer (failed, needs_review, skipped),
    else 0. `rejected`, `not_found` and `not_cancellable` are answers, not errors."""
    codes = list(stopped)
    if codes:
        return max(codes)
    return 1 if any(o in BAD_OUTCOMES for o in outcomes) else 0
