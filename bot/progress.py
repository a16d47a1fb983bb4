"""Progress while a run works: a live bar on a terminal, plain lines elsewhere (cron, CI).

On a terminal the bar and the log lines share one rich Console: log lines print above the
bar, never into it. Elsewhere each order gets one line: the runner's own log line when it
logs one (`lines=False`), else a line from here (following a distributed run)."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bot.display import outcome_label
from bot.log import logs_above
from bot.outcomes import OrderResult


class RunProgress:
    """Counts outcomes as orders finish and shows them."""

    def __init__(self, console: Console, total: int, label: str, *, lines: bool = True) -> None:
        """`lines`: off a terminal, print a line per order (False when the runner already
        logs one: two lines per order would say everything twice)."""
        self.console = console
        self.total = total
        self.label = label
        self.done = 0
        self.counts: Counter[str] = Counter()
        self._live = console.is_terminal
        self._lines = lines
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._stack = ExitStack()

    def __enter__(self) -> RunProgress:
        if self._live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[counts]}"),
                console=self.console, transient=True,
            )
            self._stack.enter_context(logs_above(self.console))
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, counts="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._stack.close()

    def update(self, result: OrderResult) -> None:
        """One more order has its outcome."""
        self.done += 1
        self.counts[result.outcome.value] += 1
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, counts=counts)
        elif self._lines:
            self.console.print(f"[{self.done}/{self.total}] {result.order_no} "
                               f"{outcome_label(result.outcome)}", highlight=False,
                               markup=False)
