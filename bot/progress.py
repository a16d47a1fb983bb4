"""Progress while a run works: a live bar on a terminal, plain lines elsewhere (cron, CI)."""

from __future__ import annotations

from collections import Counter
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

from bot.outcomes import OrderResult


class RunProgress:
    """Counts outcomes as orders finish and shows them."""

    def __init__(self, console: Console, total: int, label: str) -> None:
        self.console = console
        self.total = total
        self.label = label
        self.done = 0
        self.counts: Counter[str] = Counter()
        self._live = console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self._live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[counts]}"),
                console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, counts="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, result: OrderResult) -> None:
        """One more order has its outcome."""
        self.done += 1
        self.counts[result.outcome.value] += 1
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, counts=counts)
        else:
            self.console.print(f"[{self.done}/{self.total}] {result.order_no} "
                               f"{result.outcome.value}", highlight=False)
