"""The run report: report.json (names other tools rely on) and the console summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from bot.display import DEFAULT_ZONE, outcome_label, preview_fine, shown_duration, shown_time
from bot.errors import BotError, JobError
from bot.inputs import decode_text, load_yaml, read_regular
from bot.log import write_private
from bot.outcomes import BAD_OUTCOMES, OrderResult, Outcome


@dataclass
class RunReport:
    """Everything a person or a script needs to know about one run."""

    run_id: str
    job: str
    account: str
    started_at: str
    finished_at: str = ""
    dry_run: bool = False
    orders: list[OrderResult] = field(default_factory=list)
    stopped: str | None = None
    exit_code: int = 0
    name: str | None = None  # the job file's `name:`

    @property
    def summary(self) -> dict[str, int]:
        """Outcome -> count, in a stable order."""
        counts = Counter(r.outcome.value for r in self.orders)
        return {o.value: counts[o.value] for o in Outcome if counts[o.value]}

    @property
    def retries_by_reason(self) -> dict[str, int]:
        """Retries over every order, by reason (like scrapy's retry stats), most first."""
        total: Counter[str] = Counter()
        for r in self.orders:
            total.update(r.retry_reasons)
        return dict(total.most_common())

    def to_json(self) -> dict[str, Any]:
        """The report.json document."""
        return {
            "run_id": self.run_id,
            "job": self.job,
            "name": self.name,
            "account": self.account,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "stopped": self.stopped,
            "summary": self.summary,
            "retries": sum(r.retries for r in self.orders),
            "retries_by_reason": self.retries_by_reason,
            "orders": [order_to_json(r) for r in self.orders],
        }

    def write(self, run_dir: Path, extra: Path | None = None) -> Path:
        """Write report.json into the run folder (and to `extra` when given)."""
        data = json.dumps(self.to_json(), ensure_ascii=False, indent=2).encode()
        path = run_dir / "report.json"
        write_private(path, data)
        if extra is not None:
            write_private(extra, data)
        return path


def order_to_json(r: OrderResult) -> dict[str, Any]:
    """One order of report.json."""
    return {
        "order_no": r.order_no, "account": r.account, "outcome": r.outcome.value,
        "status_before": r.status_before, "status_after": r.status_after,
        "reason": r.reason, "note": r.note, "attempts": r.attempts,
        "retries": r.retries, "error": r.error, "artifacts": r.artifacts,
        "previous_run": r.previous_run, "duration_s": round(r.duration_s, 3),
        "notice": r.notice, "retry_reasons": r.retry_reasons, "finished_at": r.finished_at,
        "reason_label": r.reason_label, "fine": r.fine, "message": r.message,
    }


def order_from_json(data: dict[str, Any]) -> OrderResult:
    """An order result back from its report.json form (a distributed part's results)."""
    return OrderResult(
        order_no=data["order_no"], account=data["account"], outcome=Outcome(data["outcome"]),
        reason=data["reason"], note=data["note"], status_before=data.get("status_before"),
        status_after=data.get("status_after"), attempts=data.get("attempts", 0),
        retries=data.get("retries", 0), error=data.get("error"),
        artifacts=list(data.get("artifacts") or []), previous_run=data.get("previous_run"),
        notice=data.get("notice"), retry_reasons=dict(data.get("retry_reasons") or {}),
        duration_s=float(data.get("duration_s") or 0.0),
        finished_at=str(data.get("finished_at") or ""), reason_label=data.get("reason_label"),
        fine=data.get("fine"), message=data.get("message"))


def load_report(path: Path) -> dict[str, Any]:
    """Read a report.json back."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def job_name(source: str) -> str | None:
    """The `name:` of the job file at `source`, read again; None when the file is gone,
    unreadable or unnamed. For a distributed run's merged report, which `dhbot wait` may
    build in another process: the ledger keeps the job file's path, not its name."""
    from bot.job import MAX_JOB_BYTES

    try:
        path = Path(source)
        text = decode_text(read_regular(path, "job file", MAX_JOB_BYTES, JobError), path,
                           JobError)
        data = load_yaml(text, source, JobError)
    except (BotError, OSError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name.strip() or None if isinstance(name, str) else None


def print_summary(report: RunReport, console: Console, report_path: Path, *,
                  zone: str = DEFAULT_ZONE) -> None:
    """The table at the end of a run, its counts and times (in `zone`), and where its
    report.html is (a link on terminals that show them)."""
    title = Text(f"run {report.run_id}")
    if report.name:
        title.append(f" · {report.name}", style="bold")
    if report.dry_run:
        title.append(" (dry run)")
    table = Table(title=title, show_lines=report.dry_run)
    table.add_column("order")
    table.add_column("outcome")
    table.add_column("status")
    if report.dry_run:  # the preview: what each order would be sent with, and would cost
        table.add_column("reason")
        table.add_column("fine")
    table.add_column("note / error", overflow="fold")
    shown = report.orders if len(report.orders) <= 50 else [
        r for r in report.orders if r.outcome in BAD_OUTCOMES][:50]
    for r in shown:
        status = r.status_before or ""
        if r.status_after and r.status_after != r.status_before:
            status = f"{status} → {r.status_after}"
        style = "red" if r.outcome in BAD_OUTCOMES else None
        detail = r.error or (f"earlier run {r.previous_run}" if r.previous_run else "")
        preview: list[Text] = []
        if report.dry_run:
            preview = [Text(" ".join(t for t in (r.reason_label, r.reason) if t)),
                       Text(preview_fine(r.fine) if r.outcome == Outcome.WOULD_SUBMIT else "")]
            if r.outcome == Outcome.WOULD_SUBMIT:
                detail = "\n".join([f"note: {r.note}" if r.note else "",
                                     f"buyer message: {r.message}" if r.message else "",
                                     detail]).strip()
        # Portal text and errors are shown as they are, never read as rich markup.
        table.add_row(Text(r.order_no), Text(outcome_label(r.outcome)), Text(status),
                      *preview, Text(detail), style=style)
    if shown:
        console.print(table)
    counts = ", ".join(f"{outcome_label(k)}: {v}" for k, v in report.summary.items())
    console.print(Text.assemble((f"{len(report.orders)} orders", "bold"), f": {counts}"))
    took = shown_duration(report.started_at, report.finished_at)
    console.print(Text(f"started {shown_time(report.started_at, zone)}, finished "
                       f"{shown_time(report.finished_at, zone) or '-'}"
                       + (f" ({took})" if took else "")))
    if report.retries_by_reason:
        why = ", ".join(f"{k} {v}" for k, v in report.retries_by_reason.items())
        console.print(Text(f"retries: {sum(report.retries_by_reason.values())} ({why})"))
    if report.stopped:
        console.print(Text.assemble(("stopped:", "red"), f" {report.stopped}"))
    html = report_path.with_name("report.html")
    readable = html if html.is_file() else report_path
    # rich writes the link (OSC 8) only to a terminal; elsewhere the path is plain text.
    console.print(Text.assemble(
        "report: ", (str(readable), Style(link=readable.resolve().as_uri()))))
