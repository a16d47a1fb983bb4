"""A run's report.json rendered for people and tools: report.html, report.csv, junit.xml.

Also finds runs on disk (`list_runs`, `resolve_run`) so the CLI can say "show me that run".
Everything here reads report.json only; it never touches the ledger or a browser.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from loguru import logger

from bot.display import DEFAULT_ZONE, preview_fine, seconds_between, shown_duration, shown_time
from bot.errors import UsageError
from bot.log import write_private
from bot.outcomes import LABELS_ZH, PERSON_OUTCOMES, Outcome
from bot.outcomes import PROBLEM_OUTCOMES as PROBLEMS

TEMPLATES = Path(__file__).parent / "templates"

# outcome_zh: the outcome's Chinese label; finished_at: when the order's outcome was decided,
# in the display time zone with its offset ("2026-11-30 16:05:03 +08:00").
CSV_COLUMNS = ("order_no", "account", "outcome", "outcome_zh", "status_before",
               "status_after", "reason", "note", "attempts", "retries", "error", "artifacts",
               "finished_at")

# render.py reads report.json, where outcomes are plain strings.
PROBLEM_OUTCOMES = frozenset(o.value for o in PROBLEMS)
# Outcomes listed under 需要处理 (to look at): the problems, and rejected requests.
PERSON_LISTED = frozenset(o.value for o in PERSON_OUTCOMES)
OUTCOME_LABELS: dict[str, str] = {o.value: label for o, label in LABELS_ZH.items()}

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp"}
# Full-page screenshots can be large; past these sizes the page links to the file instead of
# embedding it, so report.html stays something a browser (or a mail) can open.
MAX_EMBED_BYTES = 4 * 1024 * 1024
MAX_EMBED_TOTAL = 40 * 1024 * 1024

# Playwright's messages carry ANSI colour codes: noise on a page, and illegal in XML 1.0,
# which cannot carry these control characters at all.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class RunSummary(TypedDict):
    """One row of `list_runs`: a run as report.json describes it."""

    run_id: str
    started_at: str
    finished_at: str
    account: str
    job: str
    name: str  # the job's `name:` ("" when it has none)
    summary: dict[str, int]
    exit_code: int
    dry_run: bool
    path: Path


@dataclass
class Artifact:
    """One evidence file of an order, as the page shows it."""

    name: str
    href: str | None  # relative link from report.html; None when the file is not usable
    kind: str  # "image", "trace", "html" or "file"
    data_uri: str | None = None  # the embedded image, when small enough
    note: str = ""  # why there is no link or no thumbnail


@dataclass
class OrderRow:
    """One order, as the page's table shows it."""

    index: int  # 1-based position in the job, also the row's anchor
    order_no: str
    outcome: str
    status_before: str
    status_after: str
    reason: str
    note: str
    attempts: int
    retries: int
    error: str
    previous_run: str
    duration_s: float
    problem: bool
    person: bool  # listed under 需要处理: a problem, or a request the platform rejected
    label: str  # the outcome's Chinese label
    finished_at: str  # in the display time zone
    finished_iso: str  # as stored (UTC), for <time datetime>
    reason_label: str = ""  # the reason as the portal's list says it
    fine: str = ""  # a dry run's preview: what cancelling would cost
    message: str = ""  # the buyer message sent (or, in a dry run, that would be)
    images: list[Artifact] = field(default_factory=list)
    files: list[Artifact] = field(default_factory=list)


def render_run(run_dir: Path, *, zone: str = DEFAULT_ZONE) -> list[Path]:
    """Write report.html, report.csv and junit.xml beside run_dir/report.json; return them.
    Times are shown in `zone` (display.timezone)."""
    report = _read_report(run_dir / "report.json")
    outputs = [
        (run_dir / "report.html", render_html(report, run_dir, zone=zone).encode("utf-8")),
        (run_dir / "report.csv", render_csv(report, zone=zone).encode("utf-8-sig")),
        (run_dir / "junit.xml", render_junit(report)),
    ]
    for path, data in outputs:
        write_private(path, data)
    return [path for path, _ in outputs]


def render_html(report: dict[str, Any], run_dir: Path, *, zone: str = DEFAULT_ZONE) -> str:
    """The self-contained report page: inline CSS, screenshots embedded, no script. Times
    are shown in `zone`."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    budget = [MAX_EMBED_TOTAL]
    rows = [_order_row(i, order, run_dir, budget, zone)
            for i, order in enumerate(_orders(report), start=1)]
    # Counted from the orders, which are the truth the summary in report.json derives from.
    summary = _count(report)
    run = {key: _text(report.get(key)) for key in
           ("run_id", "job", "name", "account", "started_at", "finished_at", "stopped",
            "exit_code")}
    return env.get_template("report.html.j2").render(
        run={**run, "dry_run": bool(report.get("dry_run")),
             "started": shown_time(run["started_at"], zone),
             "finished": shown_time(run["finished_at"], zone)},
        rows=rows,
        summary=[(name, OUTCOME_LABELS.get(name, ""), count) for name, count in summary.items()],
        problems=[r for r in rows if r.person],
        problem_outcomes=PROBLEM_OUTCOMES,
        person_outcomes=PERSON_LISTED,
        kinds={"trace": "trace ", "html": "页面 page "},
        duration=shown_duration(run["started_at"], run["finished_at"]),
        total_retries=sum(r.retries for r in rows),
        retry_reasons=_retry_reasons(report),
    )


def _retry_reasons(report: dict[str, Any]) -> list[tuple[str, int]]:
    """The run's retries by reason (report.json's retries_by_reason; an older report.json
    without it shows the total only)."""
    reasons = report.get("retries_by_reason")
    if not isinstance(reasons, dict):
        return []
    return [(_text(k), int(_number(v))) for k, v in reasons.items()]


def render_csv(report: dict[str, Any], *, zone: str = DEFAULT_ZONE) -> str:
    """One row per order (CSV_COLUMNS), times in `zone`; encode with utf-8-sig so Excel
    reads the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for order in _orders(report):
        shown = {
            "outcome_zh": OUTCOME_LABELS.get(_text(order.get("outcome")), ""),
            "artifacts": " ".join(str(a) for a in order.get("artifacts") or []),
            "finished_at": shown_time(_text(order.get("finished_at")), zone),
        }
        row = [shown[col] if col in shown else _text(order.get(col)) for col in CSV_COLUMNS]
        writer.writerow([_inert(cell) for cell in row])
    return out.getvalue()


def _inert(cell: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula (=, +, -, @, tab,
    CR; a note or a portal message could) gets a leading apostrophe, as OWASP advises."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def render_junit(report: dict[str, Any]) -> bytes:
    """junit.xml for CI dashboards: a testcase per order, failed/needs_review as failures."""
    orders = _orders(report)
    failures = sum(1 for o in orders if _text(o.get("outcome")) in PROBLEM_OUTCOMES)
    skipped = sum(1 for o in orders if _text(o.get("outcome")) == Outcome.SKIPPED.value)
    counts = {"tests": str(len(orders)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped), "time": f"{_wall_time(report):.3f}"}
    root = ET.Element("testsuites", counts)
    suite = ET.SubElement(root, "testsuite", {
        "name": _xml(f"dhbot run {_text(report.get('run_id'))}"), **counts,
        "timestamp": _xml(_text(report.get("started_at")))})
    props = ET.SubElement(suite, "properties")
    for key in ("job", "name", "account", "dry_run", "exit_code", "stopped"):
        value = report.get(key)
        shown = str(value).lower() if isinstance(value, bool) else _text(value)
        ET.SubElement(props, "property", {"name": key, "value": _xml(shown)})
    for order in orders:
        outcome = _text(order.get("outcome"))
        case = ET.SubElement(suite, "testcase", {
            "classname": _xml(_text(order.get("account") or report.get("account"))),
            "name": _xml(_text(order.get("order_no"))),
            "time": f"{_number(order.get('duration_s')):.3f}"})
        artifacts = [str(a) for a in order.get("artifacts") or []]
        if artifacts:
            # As pytest-playwright and Playwright's JUnit reporter attach files: CI
            # dashboards (Jenkins, GitLab) show them beside the testcase. Paths are relative
            # to the run folder, where junit.xml is.
            attached = ET.SubElement(case, "properties")
            for path in artifacts:
                ET.SubElement(attached, "property", {"name": "attachment", "value": _xml(path)})
        if outcome in PROBLEM_OUTCOMES:
            error = _text(order.get("error"))
            failure = ET.SubElement(case, "failure", {
                "message": _xml(f"{outcome}: {error}" if error else outcome), "type": outcome})
            failure.text = _xml(_details(order))
        elif outcome == Outcome.SKIPPED.value:
            ET.SubElement(case, "skipped", {
                "message": _xml(_text(report.get("stopped")) or "not reached")})
        else:
            ET.SubElement(case, "system-out").text = _xml(_details(order))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _wall_time(report: dict[str, Any]) -> float:
    """Seconds from the run's start to its end (its orders overlap, so their durations do
    not add up to it); 0 when either time is missing."""
    return seconds_between(_text(report.get("started_at")),
                           _text(report.get("finished_at"))) or 0.0


def list_runs(runs_dir: Path, limit: int = 20) -> list[RunSummary]:
    """The most recent runs under runs_dir, newest first; unreadable reports are skipped."""
    found: list[RunSummary] = []
    if not runs_dir.is_dir():
        return found
    for folder in runs_dir.iterdir():
        if not folder.is_dir():
            continue
        try:
            report = _read_report(folder / "report.json")
        except UsageError:
            continue  # a run still going, or one that died before writing its report
        summary = report.get("summary")
        found.append(RunSummary(
            run_id=_text(report.get("run_id")) or folder.name,
            started_at=_text(report.get("started_at")),
            finished_at=_text(report.get("finished_at")),
            account=_text(report.get("account")),
            job=_text(report.get("job")),
            name=_text(report.get("name")),
            summary=summary if isinstance(summary, dict) else _count(report),
            exit_code=int(_number(report.get("exit_code"))),
            dry_run=bool(report.get("dry_run")),
            path=folder,
        ))
    found.sort(key=lambda r: (r["started_at"], r["run_id"]), reverse=True)
    return found[:max(limit, 0)]


def resolve_run(runs_dir: Path, run_id_or_dir: str) -> Path:
    """A run folder from a run id, a unique prefix of one, or a path to the folder."""
    wanted = run_id_or_dir.strip()
    if not wanted:
        raise UsageError("no run given: pass a run id (see `dhbot runs`) or a run folder")
    as_path = Path(wanted).expanduser()
    if (as_path / "report.json").is_file():
        return as_path
    if len(Path(wanted).parts) == 1 and wanted not in (".", ".."):
        exact = runs_dir / wanted
        if exact.is_dir():
            return exact
        matches = sorted(p for p in (runs_dir.iterdir() if runs_dir.is_dir() else [])
                         if p.is_dir() and p.name.startswith(wanted))
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(p.name for p in matches[:5]) + (" …" if len(matches) > 5 else "")
            raise UsageError(f"run id {wanted!r} is ambiguous in {runs_dir}: it starts "
                             f"{len(matches)} runs ({shown}); give more of it")
    if as_path.is_dir():
        raise UsageError(f"{as_path} is a folder but not a run folder: it has no report.json")
    raise UsageError(f"no run {wanted!r}: not a run id under {runs_dir} nor a run folder "
                     "(`dhbot runs` lists the recent ones)")


def _read_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist: the run has not written its report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} cannot be read as a run report: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("orders", []), list):
        raise UsageError(f"{path} is not a run report (expected an object with an orders list)")
    return data


def _orders(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in report.get("orders") or [] if isinstance(o, dict)]


def _count(report: dict[str, Any]) -> dict[str, int]:
    """Outcome -> count from the orders, known outcomes in their usual order first."""
    counts = Counter(_text(o.get("outcome")) for o in _orders(report))
    known = [o.value for o in Outcome if counts[o.value]]
    return {k: counts[k] for k in known + sorted(set(counts) - set(known))}


def _order_row(index: int, order: dict[str, Any], run_dir: Path, budget: list[int],
               zone: str) -> OrderRow:
    outcome = _text(order.get("outcome"))
    finished = _text(order.get("finished_at"))
    row = OrderRow(
        index=index, order_no=_text(order.get("order_no")), outcome=outcome,
        status_before=_text(order.get("status_before")),
        status_after=_text(order.get("status_after")),
        reason=_text(order.get("reason")), note=_text(order.get("note")),
        attempts=int(_number(order.get("attempts"))), retries=int(_number(order.get("retries"))),
        error=_ANSI.sub("", _text(order.get("error"))),
        previous_run=_text(order.get("previous_run")),
        duration_s=_number(order.get("duration_s")), problem=outcome in PROBLEM_OUTCOMES,
        person=outcome in PERSON_LISTED, label=OUTCOME_LABELS.get(outcome, ""),
        finished_at=shown_time(finished, zone), finished_iso=finished,
        reason_label=_text(order.get("reason_label")), message=_text(order.get("message")),
        fine=preview_fine(order.get("fine")) if outcome == Outcome.WOULD_SUBMIT else "")
    for name in order.get("artifacts") or []:
        artifact = _artifact(str(name), run_dir, budget)
        (row.images if artifact.kind == "image" else row.files).append(artifact)
    return row


def _artifact(name: str, run_dir: Path, budget: list[int]) -> Artifact:
    """Link (and for images, embed) one artifact, only if it lies inside the run folder."""
    suffix = PurePosixPath(name).suffix.lower()
    kind = ("image" if suffix in IMAGE_TYPES else "trace" if suffix == ".zip"
            else "html" if suffix in (".html", ".htm") else "file")
    root = run_dir.resolve()
    path = (run_dir / name).resolve()
    if not path.is_relative_to(root):
        return Artifact(name=name, href=None, kind=kind, note="outside the run folder")
    if not path.is_file():
        return Artifact(name=name, href=None, kind=kind, note="missing")
    rel = path.relative_to(root).as_posix()
    # quote() also encodes ':' so no artifact name can become a javascript: or other URL.
    artifact = Artifact(name=name, href=quote(rel), kind=kind)
    if kind == "image":
        size = path.stat().st_size
        if size > MAX_EMBED_BYTES or size > budget[0]:
            artifact.note = "too large to embed; open the file"
        else:
            budget[0] -= size
            encoded = base64.b64encode(path.read_bytes()).decode("ascii")
            artifact.data_uri = f"data:{IMAGE_TYPES[suffix]};base64,{encoded}"
    return artifact


def _details(order: dict[str, Any]) -> str:
    lines = [f"{key}: {_text(order.get(key))}" for key in
             ("outcome", "status_before", "status_after", "reason", "note", "attempts",
              "retries", "error", "notice", "previous_run") if order.get(key) not in (None, "")]
    artifacts = order.get("artifacts") or []
    if artifacts:
        lines.append("artifacts: " + " ".join(str(a) for a in artifacts))
    return "\n".join(lines)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _xml(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", _ANSI.sub("", text))


def render_readable(run_dir: Path, *, zone: str = DEFAULT_ZONE) -> None:
    """report.html, report.csv and junit.xml beside report.json (times in `zone`)."""
    try:
        render_run(run_dir, zone=zone)
    except Exception as exc:  # report.json is written; the readable copies are a convenience
        logger.warning("could not render the readable reports in {}: {}", run_dir, exc)
