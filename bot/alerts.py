"""What happens after a run, the same for every command: the message to people (bot.notify),
the Prometheus textfile (bot.metrics) and pruning old run folders (bot.retention). `dhbot
run`, `sync`, `submit`/`wait` (once for a whole distributed run) call `after_run`; the
scheduler calls `after_slot` and, for a job whose run wrote no report,
`after_unreported_job`.

The scheduler runs each job as a `dhbot run`/`sync`/`submit` child, which calls `after_run`
itself: the scheduler adds nothing for a job that has a report, so nobody gets a message
twice. Nothing here ever changes a run's outcome or exit code: a failure is a warning.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from bot.config import LoadedSettings
from bot.log import redactor
from bot.report import RunReport

# Exit codes of a scheduled job that are no news: the account was busy (the job stays in
# the inbox for the next slot), the scheduler itself was stopped.
QUIET_EXITS = frozenset({4, 130})
# Lines of a failed scheduled job's output quoted in its message.
TAIL_LINES = 12


def after_run(loaded: LoadedSettings, report: RunReport, report_path: Path) -> None:
    """Notify (as `notify.on` says) and write the metrics textfile, if configured."""
    settings = loaded.settings
    if settings.notify.on != "never" and (settings.notify.urls or settings.notify.urls_env):
        try:
            from bot.notify import notify_run

            notify_run(settings, report, report_path)
        except Exception as exc:  # never the run's outcome
            logger.warning("notification not sent: {}", exc)
    textfile = settings.metrics.textfile
    if textfile is not None:
        try:
            from bot.metrics import write_metrics

            write_metrics(textfile, report)
        except Exception as exc:
            logger.warning("metrics: could not write {}: {}", textfile, exc)
    if settings.retention.runs_days:
        from bot.retention import prune_runs

        prune_runs(settings)  # logs what it could not remove; never raises for a folder


def after_slot(loaded: LoadedSettings, schedule: str, started: float, ok: bool) -> None:
    """Record a scheduler slot that began at `started` (time.time()) for `dhbot health`;
    a failure to record is a warning."""
    try:
        from bot.health import record_slot

        record_slot(loaded.settings, schedule, datetime.fromtimestamp(started, UTC), ok)
    except Exception as exc:
        logger.warning("[{}] could not record the slot for `dhbot health`: {}", schedule, exc)


def after_unreported_job(loaded: LoadedSettings, schedule: str, job_file: Path, code: int,
                         output: Path, report_json: Path) -> None:
    """A scheduled job that failed and whose run wrote no report (`report_json`, the copy the
    scheduler asked for, is missing): a refused job file, a run killed past its deadline, a
    crash. Its child could not say so; the scheduler does, for `notify.on` needs_person,
    failed and always (the job file waits in failed/ for a person). The message quotes the
    end of the run's `output`."""
    notify = loaded.settings.notify
    if code == 0 or code in QUIET_EXITS or notify.on == "never" or report_json.exists():
        return
    try:
        from bot.notify import Message, notify_urls, send

        urls = notify_urls(notify)
        if not urls:
            return
        title = f"dhbot: scheduled job {job_file.name} failed (exit {code}) — schedule {schedule}"
        body = "\n".join([
            f"dhbot schedule {schedule}: the job {job_file.name} ended with exit code {code} "
            "and wrote no report (需要处理)",
            "it said:", *_tail(output),
            f"the job file moves to {job_file.parent.parent / 'failed'}",
        ])
        send(urls, Message(title=title, body=redactor.redact(body), grave=True))
    except Exception as exc:
        logger.warning("[{}] notification not sent: {}", schedule, exc)


def _tail(output: Path) -> list[str]:
    """The last lines a run wrote (where its error is), indented."""
    try:
        text = output.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ["  (no output)"]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [f"  {line}" for line in lines[-TAIL_LINES:]] or ["  (no output)"]
