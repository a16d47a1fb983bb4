"""The `dhbot` command line. Errors map to exit codes in one place: `main()`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import click
from loguru import logger
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot import __version__
from bot.alerts import after_run
from bot.config import LoadedSettings, describe
from bot.context import config_options, load_context
from bot.display import outcome_from_text, outcome_label, shown_duration, shown_time
from bot.errors import BotError, Interrupted, JobError, UsageError
from bot.inputs import check_writable
from bot.job import Job, load_csv_job, load_job, single_order_job
from bot.outcomes import LABELS_ZH, Outcome
from flows.profile import Profile

if TYPE_CHECKING:
    from bot.ledger import PartRow, RunRow

EXIT_CODES_HELP = """Exit codes: 0 every order has an outcome other than failed, needs_review or
skipped; 1 some order failed, needs review or was skipped; 2 bad config or job (nothing done),
or the portal refused the user name or password; 3 login needs a person (captcha or
verification: run `dhbot login --account NAME --headed`); 4 another run holds the account;
5 submit/wait: the shared ledger could not be reached; 130 stopped by SIGINT/SIGTERM (report
written)."""


def _console() -> Console:
    # Off a terminal (cron, CI, pipes) tables get room to keep order numbers on one line.
    width = None if sys.stdout.isatty() else 160
    return Console(stderr=False, highlight=False, soft_wrap=True, width=width)


def _load(config_file: Path | None, cli: dict[str, Any] | None = None,
          verbose: bool = False) -> tuple[LoadedSettings, Profile]:
    context = load_context(config_file, cli, verbose)
    return context.loaded, context.profile


class DhbotGroup(click.Group):
    """The dhbot command group.

    - Errors map to exit codes here, in one place, for every command (so click's test
      runner sees the same codes as a shell): a BotError exits with its `exit_code`, said
      in one line on stderr, never as a traceback.
    - Subcommands whose modules are heavy are imported only when they run (click's recipe
      for lazy subcommands): `dhbot --help` and input refusals start without Playwright
      or SQLAlchemy.
    """

    # name: (module:command, the line `dhbot --help` shows without importing the module)
    lazy: ClassVar[dict[str, tuple[str, str]]] = {
        "check": ("bot.check:check_command",
                  "Check that every label and selector of the portal profile still matches."),
        "schedule": ("bot.schedule:schedule_command",
                     "Run the configured schedules in the foreground until stopped."),
        "health": ("bot.health:health_command",
                   "Check the schedule, the ledger and orders waiting for a person."),
        "serve": ("bot.console.command:serve_command",
                  "Serve the web console: upload, preview, approve, watch, read."),
        "user": ("bot.console.command:user_group", "Manage the web console's users."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, name = self.lazy[cmd_name][0].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BotError as exc:
            if isinstance(exc, UsageError):  # nothing was done: the one line says it all
                logger.remove()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(Interrupted.exit_code)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=DhbotGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="dhbot")
def cli() -> None:
    """dhbot cancels orders in the DHgate seller backend by driving a real browser.

    Give it a YAML job file (or a .csv/.xlsx order list) with order numbers, a reason and
    a note; it logs in, finds each order under 我的敦煌 → 订单管理, cancels it exactly once
    and reports what happened to every order. Job files: docs/job-files.md; configuration:
    docs/configuration.md; 中文快速上手: docs/quickstart.zh.md.
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@config_options
@click.option("--orders", "orders_csv", type=click.Path(dir_okay=False, path_type=Path),
              help="Orders from a .csv (UTF-8 or GB18030) or .xlsx file (order_no, reason, note).")
@click.option("--order", "one_order", help="Cancel this one order number.")
@click.option("--reason",
              help="Reason for --order: the code (out_of_stock) or its option text (缺货).")
@click.option("--note", default="", help="详细说明 text for --order.")
@click.option("--account", help="Account name from the configuration. A job (or an order in "
              "it) naming another account is refused: nothing is done.")
@click.option("--report", "report_copy", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write report.json to this path.")
@click.option("--dry-run", is_flag=True,
              help="Do everything up to the final submit, screenshot the filled dialog, stop.")
@click.option("--headed", is_flag=True, help="Show the browser window.")
@click.option("--pages", type=int, help="Tabs in parallel for the account.")
@click.option("--base-url", help="Portal base URL (overrides the configuration).")
@click.option("--allow-large", is_flag=True, help="Allow more orders than max_orders_per_run.")
@click.option("--deadline", type=click.FloatRange(min=0.01), metavar="MINUTES",
              help="Stop after MINUTES as SIGTERM would: the orders in flight finish, the "
                   "rest are skipped, the report is written (run.max_minutes).")
@click.option("-y", "--yes", is_flag=True,
              help="Do not ask for confirmation against a real portal (for scheduled runs).")
@click.option("--run-id", callback=lambda ctx, param, value: _new_run_id(value), hidden=True,
              help="Run under this new id (the web console follows the run by it).")
def run(job_file: Path | None, config_file: Path | None, verbose: bool, orders_csv: Path | None,
        one_order: str | None, reason: str | None, note: str, account: str | None,
        report_copy: Path | None, dry_run: bool, headed: bool, pages: int | None,
        base_url: str | None, allow_large: bool, deadline: float | None, yes: bool,
        run_id: str | None) -> None:
    """Cancel every order listed in JOB_FILE (YAML), --orders FILE (.csv/.xlsx) or --order NO."""
    cli_values: dict[str, Any] = {"concurrency.pages_per_account": pages,
                                  "portal.base_url": base_url, "run.max_minutes": deadline}
    if headed:
        cli_values["browser.headless"] = False
    sources = [s for s in (job_file, orders_csv, one_order) if s]
    if len(sources) != 1:
        raise JobError("give exactly one of: a job file, --orders FILE (.csv or .xlsx), or "
                       "--order NUMBER")
    loaded, profile = _load(config_file, cli_values, verbose)
    if job_file is not None:
        job = load_job(job_file, profile)
    elif orders_csv is not None:
        job = load_csv_job(orders_csv, profile)
    else:
        if not reason:
            raise JobError("--order needs --reason (one of: " + ", ".join(profile.reasons) + ")")
        job = single_order_job(str(one_order), reason, note, profile)
    if report_copy is not None:
        check_writable(report_copy, "--report", UsageError)
    named = job.one_account(account, "`dhbot run` drives one account: give --account, or "
                                      "run the job on workers with `dhbot submit`")
    acc = loaded.settings.portal.account(named)
    _preflight(loaded, job, acc.name, allow_large)
    console = _console()
    _confirm(loaded, job, acc.name, dry_run, yes, console)
    from bot.report import print_summary
    from bot.run_shell import execute_job  # the browser and the ledger: only past every check

    if run_id is not None and (loaded.settings.paths.runs_dir / run_id).exists():
        raise UsageError(f"--run-id {run_id}: that run exists already")
    report, path = execute_job(loaded, job, acc, profile, console=console, dry_run=dry_run,
                               report_copy=report_copy, run_id=run_id)
    print_summary(report, console, path, zone=loaded.settings.display.timezone)
    if report.stopped and report.exit_code == 3:
        console.print(f"Login needs a person. Run: dhbot login --account {acc.name} --headed")
    after_run(loaded, report, path)
    sys.exit(report.exit_code)


def _new_run_id(value: str | None) -> str | None:
    if value is None:
        return None
    from bot.ledger import is_run_id  # SQLAlchemy: only when the option is given

    if not is_run_id(value):
        raise click.BadParameter(f"{value!r} is not a run id (like 20261130-112500-3fa2)")
    return value


def _confirm(loaded: LoadedSettings, job: Job, account: str, dry_run: bool, yes: bool,
             console: Console) -> None:
    """Against a real (non-loopback) portal, an interactive operator confirms first."""
    portal = loaded.settings.portal
    if yes or dry_run or portal.is_loopback or not sys.stdin.isatty():
        return
    console.print(f"About to cancel {len(job.orders)} order(s) as account {account!r} on "
                  f"{portal.base_url}. Each cancellation may cost the seller a fine.")
    if not click.confirm("Go ahead?", default=False):
        raise UsageError("not confirmed; nothing was done")


def _preflight(loaded: LoadedSettings, job: Job, account: str | None,
               allow_large: bool) -> None:
    """Checks that must pass before a browser starts (account None: the workers' job)."""
    settings = loaded.settings
    limit = settings.max_orders_per_run
    if len(job.orders) > limit and not allow_large:
        raise JobError(f"{job.source}: {len(job.orders)} orders is more than "
                       f"max_orders_per_run ({limit}); split the job or pass --allow-large")
    if account is None:
        return
    acc = settings.portal.account(account)
    from bot.session import session_file

    if not session_file(settings, acc.name).exists():
        acc.password()  # raises a clear ConfigError when the secret is missing


@cli.command()
@config_options
@click.option("--account", help="Account name from the configuration.")
@click.option("--headed", is_flag=True, help="Open a visible browser so a person can log in.")
def login(config_file: Path | None, verbose: bool, account: str | None, headed: bool) -> None:
    """Log in once and save the session for later headless runs."""
    from bot.interactive import interactive_login

    loaded, profile = _load(config_file, {}, verbose)
    acc = loaded.settings.portal.account(account)
    interactive_login(loaded, profile, acc, headed=headed, console=_console())


@cli.command(epilog=EXIT_CODES_HELP)
@config_options
@click.option("--account", help="Only this account (default: every configured account).")
@click.option("--headed", is_flag=True, help="Show the browser window.")
def sync(config_file: Path | None, verbose: bool, account: str | None, headed: bool) -> None:
    """Re-read orders waiting for review and record the platform's decision.

    Approved requests become `cancelled` (with the cancel date); rejected ones become
    `rejected` with the platform's comment and are never resubmitted automatically.
    """
    from bot.report import print_summary
    from bot.run_shell import sync_accounts

    cli_values: dict[str, Any] = {"browser.headless": False} if headed else {}
    loaded, profile = _load(config_file, cli_values, verbose)
    accounts = ([loaded.settings.portal.account(account)] if account
                else list(loaded.settings.portal.accounts))
    console = _console()
    worst = 0
    for acc in accounts:
        report, path = sync_accounts(loaded, acc, profile, console=console)
        if report is None or path is None:
            console.print(f"account {acc.name}: nothing is waiting for review")
            continue
        print_summary(report, console, path, zone=loaded.settings.display.timezone)
        after_run(loaded, report, path)
        worst = max(worst, report.exit_code)
    sys.exit(worst)


class OutcomeParam(click.ParamType):
    """An outcome named by its code or its Chinese label (submitted or 已提交)."""

    name = "outcome"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Outcome:
        if isinstance(value, Outcome):
            return value
        found = outcome_from_text(str(value))
        if found is None:
            valid = ", ".join(outcome_label(o) for o in Outcome)
            self.fail(f"unknown outcome {value!r}; one of: {valid}", param, ctx)
        return found


@cli.command()
@click.argument("order_nos", nargs=-1)
@config_options
@click.option("--job", "job_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Show the orders of this job file.")
@click.option("--account", help="Only this account.")
@click.option("--outcome", "outcomes", type=OutcomeParam(), multiple=True,
              help="Only orders with this outcome, by code or Chinese label (failed, 失败, "
                   "rejected, 平台驳回, …); repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (times UTC).")
def status(order_nos: tuple[str, ...], config_file: Path | None, verbose: bool,
           job_file: Path | None, account: str | None, outcomes: tuple[Outcome, ...],
           as_json: bool) -> None:
    """Show what the ledger knows about orders (no browser is opened)."""
    loaded, profile = _load(config_file, {}, verbose)
    wanted: list[str] | None = list(order_nos) or None
    if job_file is not None:
        wanted = (wanted or []) + [o.order_no for o in load_job(job_file, profile).orders]
    from bot.ledger import existing_ledger

    portal = loaded.settings.portal
    key = portal.key(account) if account is not None else None  # unknown name: exit 2
    names = {portal.key(a.name): a.name for a in portal.accounts}  # identity → name shown
    ledger = existing_ledger(loaded.settings)
    rows = []
    if ledger is not None:
        rows = ledger.rows(account=key, order_nos=wanted, outcomes=outcomes or None)
        ledger.close()
    known = {r.order_no for r in rows}
    # Filtered by outcome, an order the ledger has never seen matches no outcome.
    unknown = [] if outcomes else [n for n in (wanted or []) if n not in known]
    if as_json:
        data = [{"order_no": r.order_no, "account": names.get(r.account, r.account),
                 "identity": r.account,
                 "outcome": r.outcome.value if r.outcome else None,
                 "outcome_zh": LABELS_ZH.get(r.outcome) if r.outcome else None,
                 "state": r.state.value,
                 "status_after": r.status_after, "updated_at": r.updated_at,
                 "run_id": r.run_id, "submitted_run": r.submitted_run,
                 "review_result": r.review_result,
                 "review_comment": r.review_comment, "cancel_date": r.cancel_date,
                 "message_sent_at": r.message_sent_at, "error": r.error} for r in rows]
        data += [{"order_no": n, "account": None, "outcome": None, "state": "unknown"}
                 for n in unknown]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table()
    for col in ("order", "account", "outcome", "portal status", "when", "run",
                "submitted by", "review"):
        table.add_column(col)
    zone = loaded.settings.display.timezone
    for r in rows:
        outcome = outcome_label(r.outcome) if r.outcome else f"({r.state.value})"
        review = " ".join(x for x in (r.review_result, r.review_comment, r.cancel_date) if x)
        # Portal text is shown as it is, never read as rich markup.
        table.add_row(*(Text(cell) for cell in (
            r.order_no, names.get(r.account, r.account), outcome, r.status_after or "",
            shown_time(r.updated_at, zone), r.run_id or "", r.submitted_run or "", review)))
    for n in unknown:
        table.add_row(n, "", "(never seen)", "", "", "", "", "")
    _console().print(table)


@cli.command()
@config_options
@click.option("--limit", default=20, show_default=True, help="How many runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines (times UTC).")
def runs(config_file: Path | None, verbose: bool, limit: int, as_json: bool) -> None:
    """List recent runs: when, the job, dry runs marked, exit codes and counts
    (distributed runs with their parts)."""
    from bot.ledger import existing_ledger

    loaded, _ = _load(config_file, {}, verbose)
    listed: list[dict[str, Any]] = []
    ledger = existing_ledger(loaded.settings)
    if ledger is not None:
        try:
            for run_row in ledger.runs(limit):
                parts = (ledger.parts(run_row.run_id) if run_row.mode == "distributed"
                         else [])
                listed.append(_run_entry(loaded, run_row, parts))
        finally:
            ledger.close()
    if as_json:
        click.echo(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    zone = loaded.settings.display.timezone
    table = Table()
    for col in ("run", "started", "took", "job", "exit", "counts"):
        table.add_column(col, overflow="fold", no_wrap=col in ("run", "started", "exit"))
    for entry in listed:
        job = Text(entry["job"])
        if entry["name"]:
            job = Text.assemble((entry["name"], "bold"), f" ({entry['job']})")
        if entry["dry_run"]:
            job.append(" · dry run", style="cyan")
        table.add_row(entry["run_id"], shown_time(entry["started_at"], zone),
                      _took(entry["started_at"], entry["finished_at"]), job,
                      _exit(entry["exit_code"]), _counts(entry["summary"]))
        for part in entry["parts"]:
            table.add_row(*_part_row(part, zone))
    _console().print(table)


def _run_entry(loaded: LoadedSettings, run: RunRow, parts: list[PartRow]) -> dict[str, Any]:
    """One run of `dhbot runs` (its --json form; times as stored, UTC). Whether it was a
    dry run, its exit code and its job's name come from its report.json, which the ledger
    has no columns for: None when the report is not (or no longer) there."""
    from bot.report import load_report

    report: dict[str, Any] = {}
    folders = [Path(run.report_dir)] if run.report_dir else []
    for folder in [*folders, loaded.settings.paths.runs_dir / run.run_id]:
        try:
            found = load_report(folder / "report.json")
        except (OSError, ValueError):  # not written yet, pruned, or unreadable
            continue
        if isinstance(found, dict):
            report = found
            break
    dry_run = report.get("dry_run")
    exit_code = report.get("exit_code")
    name = report.get("name")
    return {
        "run_id": run.run_id, "mode": run.mode, "job": run.job,
        "name": name if isinstance(name, str) else None,
        "dry_run": dry_run if isinstance(dry_run, bool) else None,
        "exit_code": exit_code if isinstance(exit_code, int) else None,
        "started_at": run.started_at, "finished_at": run.finished_at,
        "summary": run.summary, "report_dir": run.report_dir,
        "parts": [{"part_no": p.part_no, "account": p.account, "orders": len(p.orders),
                   "worker": p.worker, "state": p.state, "attempts": p.attempts,
                   "started_at": p.started_at, "finished_at": p.finished_at,
                   "summary": p.summary, "exit_code": p.exit_code, "error": p.error}
                  for p in parts],
    }


def _counts(summary: dict[str, int] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in (summary or {}).items())


def _took(started: str | None, finished: str | None) -> str:
    return shown_duration(started, finished) if finished else "(unfinished)"


def _exit(code: int | None) -> Text:
    return Text("" if code is None else str(code), style="red" if code else "")


def _part_row(part: dict[str, Any], zone: str) -> tuple[str | Text, ...]:
    """A distributed run's part as a row under its run in `dhbot runs`."""
    where = f"{part['account']}: {part['orders']} orders on {part['worker'] or '(not started)'}"
    if part["attempts"] > 1:
        where += f", attempt {part['attempts']}"
    detail = _counts(part["summary"]) if part["summary"] else part["state"]
    if part["error"]:
        detail += f" ({part['error']})"
    took = _took(part["started_at"], part["finished_at"]) if part["started_at"] else ""
    return (f"  part {part['part_no']}", shown_time(part["started_at"], zone), took,
            Text(where), _exit(part["exit_code"]), Text(detail))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@config_options
@click.option("--account", help="Run every order as this account; a job naming another "
              "account is refused.")
@click.option("--no-wait", is_flag=True,
              help="Queue the parts and return; follow the run later with `dhbot wait`.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Stop waiting after SECONDS.")
@click.option("--allow-large", is_flag=True, help="Allow more orders than max_orders_per_run.")
@click.option("--report", "report_copy", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write report.json to this path.")
@click.option("-y", "--yes", is_flag=True,
              help="Do not ask for confirmation before cancelling on a real portal.")
@click.option("--run-id", callback=lambda ctx, param, value: _new_run_id(value), hidden=True,
              help="Record the run under this new id (the web console follows it by it).")
def submit(job_file: Path, config_file: Path | None, verbose: bool, account: str | None,
           no_wait: bool, timeout: float | None, allow_large: bool,
           report_copy: Path | None, yes: bool, run_id: str | None) -> None:
    """Split a job into per-account parts and queue them for `dhbot worker`s.

    The orders may belong to several accounts (`account:` per order or at the top of the
    job file). Workers on any machine run the parts, one worker per account at a time;
    the ledger keeps every cancellation exactly once. Waits for the run and writes its
    report, as `dhbot run` does, unless --no-wait.
    """
    loaded, profile = _load(config_file, {}, verbose)
    job = load_job(job_file, profile)
    if report_copy is not None:
        check_writable(report_copy, "--report", UsageError)
    if account is not None:
        job.only_for(account)
    _preflight(loaded, job, None, allow_large)
    accounts = ", ".join(str(a) for a in job.accounts(account))
    _confirm(loaded, job, accounts, False, yes, _console())
    from bot.distributed import submit_job  # Celery and the ledger: only past every check

    run_id = submit_job(loaded, job, account, run_id)
    if no_wait:
        click.echo(run_id)
        return
    _follow(loaded, run_id, timeout, report_copy)


@cli.command(name="wait", epilog=EXIT_CODES_HELP)
@click.argument("run_id")
@config_options
@click.option("--timeout", type=click.FloatRange(min=1), help="Stop waiting after SECONDS.")
def wait_command(run_id: str, config_file: Path | None, verbose: bool,
                 timeout: float | None) -> None:
    """Follow a submitted run until every part is done; write and print its report."""
    loaded, _ = _load(config_file, {}, verbose)
    _follow(loaded, run_id, timeout)


def _follow(loaded: LoadedSettings, run_id: str, timeout: float | None,
            report_copy: Path | None = None) -> None:
    from bot.distributed import wait_for_run
    from bot.report import print_summary

    console = _console()
    console.print(f"run {run_id}: waiting for the workers")
    try:
        report, path = wait_for_run(loaded, run_id, console=console, timeout_s=timeout,
                                    report_copy=report_copy)
    except KeyboardInterrupt:
        raise Interrupted(f"stopped waiting; the workers go on with run {run_id}: "
                          f"`dhbot wait {run_id}` follows it again") from None
    print_summary(report, console, path, zone=loaded.settings.display.timezone)
    after_run(loaded, report, path)
    sys.exit(report.exit_code)


@cli.command()
@config_options
@click.option("-c", "--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Pool processes; each runs one part at a time with its own browser.")
@click.option("-n", "--name", help="Worker name (default: dhbot-PID@HOST).")
def worker(config_file: Path | None, verbose: bool, concurrency: int,
           name: str | None) -> None:
    """Run a Celery worker that executes parts queued by `dhbot submit`.

    Needs the broker (distributed.broker_url), the shared ledger (ledger:), the account
    passwords in this machine's environment, and the session key (DHBOT_SESSION_KEY when
    the ledger is a database server). Stop it with SIGTERM: it finishes its part first.
    """
    from bot.distributed import start_worker

    loaded, profile = _load(config_file, {}, verbose)
    start_worker(loaded, profile, concurrency=concurrency, name=name,
                 loglevel="DEBUG" if verbose else "WARNING")


@cli.command()
@click.argument("run", metavar="RUN_ID_OR_DIR")
@config_options
def report(run: str, config_file: Path | None, verbose: bool) -> None:
    """Re-render report.html, report.csv and junit.xml of a run from its report.json."""
    from bot.render import render_run, resolve_run

    loaded, _ = _load(config_file, {}, verbose)
    run_dir = resolve_run(loaded.settings.paths.runs_dir, run)
    for path in render_run(run_dir, zone=loaded.settings.display.timezone):
        click.echo(str(path))


@cli.command()
@click.argument("dest", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@config_options
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def backup(dest: Path, config_file: Path | None, verbose: bool, force: bool) -> None:
    """Write a consistent copy of the SQLite ledger to FILE, safe while runs write to it.

    A PostgreSQL ledger is backed up with pg_dump instead.
    """
    loaded, _ = _load(config_file, {}, verbose)
    from bot.ledger import backup_sqlite, sqlite_path

    source = sqlite_path(loaded.settings.ledger_url)
    if source is None:
        raise UsageError("the ledger is a PostgreSQL database: back it up with pg_dump, e.g. "
                         "pg_dump --format=custom --file=dhbot-ledger.dump DBNAME (restore: "
                         "pg_restore)")
    if not source.exists():
        raise UsageError(f"no ledger at {source} yet: nothing to back up")
    if dest.exists() and not force:
        raise UsageError(f"{dest} exists; give another file name or --force to replace it")
    check_writable(dest, "FILE", UsageError)
    orders, revision = backup_sqlite(source, dest)
    click.echo(f"ledger {source} copied to {dest}: {orders} orders, schema {revision}")


@cli.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="show")
@config_options
def config_show(config_file: Path | None, verbose: bool) -> None:
    """Print every effective value and where it came from (secrets masked)."""
    loaded, _ = _load(config_file, {}, verbose)
    table = Table(title=f"config file: {loaded.config_file or '(none)'}")
    for col in ("key", "value", "source"):
        table.add_column(col)
    for key, value, source in describe(loaded):
        table.add_row(key, value, source)
    _console().print(table)



def main() -> None:
    """Entry point: run the command, map any error to its exit code."""
    # Everything dhbot (and the Chromium it starts) writes is private from creation: the
    # ledger and its -wal/-shm files, sessions, logs, reports, traces, temporary folders.
    os.umask(0o077)
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(Interrupted.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
