"""What people read: outcomes with their Chinese label, times in the display time zone, the
console summary, `dhbot status` and `dhbot runs` (in-process, no browser)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from bot.config import load_settings
from bot.display import outcome_from_text, outcome_label, shown_duration, shown_time
from bot.outcomes import LABELS_ZH, OrderResult, Outcome
from bot.report import RunReport, job_name, order_from_json, order_to_json, print_summary
from tests.bot.conftest import Workspace

# --- the helpers ------------------------------------------------------------------------


def test_every_outcome_has_a_chinese_label_shown_before_its_code() -> None:
    assert set(LABELS_ZH) == set(Outcome)
    assert len(set(LABELS_ZH.values())) == len(Outcome)  # no two read the same
    expected = {"submitted": "已提交", "cancelled": "已取消", "not_found": "未找到",
                "not_cancellable": "不可取消", "failed": "失败", "needs_review": "待人工处理",
                "rejected": "平台驳回"}
    for code, label in expected.items():
        assert outcome_label(code) == f"{label} {code}"
        assert outcome_label(Outcome(code)) == f"{label} {code}"
    assert outcome_label("from_a_newer_dhbot") == "from_a_newer_dhbot"


@pytest.mark.parametrize(("text", "expected"), [
    ("rejected", Outcome.REJECTED), ("REJECTED", Outcome.REJECTED),
    (" 平台驳回 ", Outcome.REJECTED), ("待人工处理", Outcome.NEEDS_REVIEW),
    ("not_found", Outcome.NOT_FOUND), ("reject", None), ("驳回", None), ("", None),
])
def test_an_outcome_is_named_by_code_or_label(text: str, expected: Outcome | None) -> None:
    assert outcome_from_text(text) == expected


@pytest.mark.parametrize(("stored", "zone", "shown"), [
    ("2026-11-30T08:05:03+00:00", "Asia/Shanghai", "2026-11-30 16:05:03 +08:00"),
    ("2026-11-30T20:05:03+00:00", "Asia/Shanghai", "2026-12-01 04:05:03 +08:00"),
    ("2026-11-30T08:05:03+00:00", "UTC", "2026-11-30 08:05:03 +00:00"),
    ("2026-07-01T08:05:03+00:00", "America/New_York", "2026-07-01 04:05:03 -04:00"),
    ("2026-11-30T08:05:03+00:00", "Asia/Kolkata", "2026-11-30 13:35:03 +05:30"),
    ("2026-11-30T08:05:03", "Asia/Shanghai", "2026-11-30 16:05:03 +08:00"),  # naive: UTC
    ("2026-11-30T08:05:03Z", "Asia/Shanghai", "2026-11-30 16:05:03 +08:00"),
    ("", "Asia/Shanghai", ""), (None, "Asia/Shanghai", ""),
    ("yesterday", "Asia/Shanghai", "yesterday"),
])
def test_stored_utc_times_are_shown_in_the_display_zone(stored: str | None, zone: str,
                                                         shown: str) -> None:
    assert shown_time(stored, zone) == shown


def test_durations() -> None:
    assert shown_duration("2026-11-26T05:25:00+00:00", "2026-11-26T05:28:12+00:00") == "3m 12s"
    assert shown_duration("2026-11-26T05:25:00+00:00", "2026-11-26T06:26:01+00:00") == (
        "1h 1m 1s")
    assert shown_duration("2026-11-26T05:25:00+00:00", "") == ""
    assert shown_duration("2026-11-26T05:28:00+00:00", "2026-11-26T05:25:00+00:00") == ""


# --- report.json and the console summary -------------------------------------------------


def result(order_no: str, outcome: Outcome, **kw: object) -> OrderResult:
    return OrderResult(order_no=order_no, account="main", outcome=outcome,
                       reason="out_of_stock", note="仓库断货", **kw)  # type: ignore[arg-type]


def a_report(**kw: object) -> RunReport:
    report = RunReport(run_id="20261126-132500-3fa2", job="jobs/nightly.yaml", account="main",
                       started_at="2026-11-26T05:25:00+00:00",
                       finished_at="2026-11-26T05:28:12+00:00", name="夜间取消", exit_code=1,
                       **kw)  # type: ignore[arg-type]
    report.orders = [
        result("1455953101", Outcome.SUBMITTED, status_before="待发货",
               status_after="取消审核中"),
        result("1455953102", Outcome.REJECTED, error="买家已发货 [/bold] [link=x]"),
        result("1455953103", Outcome.FAILED, error="Timeout 5000ms exceeded",
               retries=2, retry_reasons={"timeout": 2}),
    ]
    return report


def test_report_json_keeps_the_name_and_utc_times(tmp_path: Path) -> None:
    report = a_report()
    path = report.write(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["name"] == "夜间取消"
    assert data["started_at"] == "2026-11-26T05:25:00+00:00"
    finished = data["orders"][0]["finished_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", finished), finished
    back = order_from_json(order_to_json(report.orders[1]))
    assert back == report.orders[1]
    assert RunReport(run_id="r", job="j", account="a", started_at="").to_json()["name"] is None


def summary_of(report: RunReport, report_path: Path, *, terminal: bool = False,
               zone: str = "Asia/Shanghai") -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=terminal, soft_wrap=True,
                      highlight=False, color_system="truecolor" if terminal else None)
    print_summary(report, console, report_path, zone=zone)
    return out.getvalue()


def test_console_summary_shows_labels_times_name_and_report_html(tmp_path: Path) -> None:
    report = a_report()
    json_path = report.write(tmp_path)
    (tmp_path / "report.html").write_text("<html></html>", encoding="utf-8")

    text = summary_of(report, json_path)

    lines = text.splitlines()
    assert lines[0].strip() == "run 20261126-132500-3fa2 · 夜间取消"
    row = {line.split("│")[1].strip(): line for line in lines if line.startswith("│")}
    assert "已提交 submitted" in row["1455953101"]
    assert "平台驳回 rejected" in row["1455953102"]
    assert "失败 failed" in row["1455953103"]
    # Portal text is shown as it is: never read as rich markup (which would raise or hide it).
    assert "买家已发货 [/bold] [link=x]" in row["1455953102"]
    assert "3 orders: 已提交 submitted: 1, 平台驳回 rejected: 1, 失败 failed: 1" in lines
    assert ("started 2026-11-26 13:25:00 +08:00, finished 2026-11-26 13:28:12 +08:00 "
            "(3m 12s)") in lines
    assert "retries: 2 (timeout 2)" in lines
    assert lines[-1] == f"report: {tmp_path / 'report.html'}"
    assert "\x1b" not in text  # off a terminal: no escape codes, no hyperlink

    in_utc = summary_of(report, json_path, zone="UTC")
    assert "started 2026-11-26 05:25:00 +00:00" in in_utc


def test_console_summary_links_report_html_on_a_terminal(tmp_path: Path) -> None:
    report = a_report(dry_run=True)
    json_path = report.write(tmp_path)
    html = tmp_path / "report.html"
    html.write_text("<html></html>", encoding="utf-8")
    text = summary_of(report, json_path, terminal=True)
    assert "\x1b]8;id=" in text and f";{html.resolve().as_uri()}\x1b\\" in text
    assert "(dry run)" in text


def test_console_summary_falls_back_to_report_json(tmp_path: Path) -> None:
    report = a_report()
    json_path = report.write(tmp_path)  # report.html could not be rendered
    assert summary_of(report, json_path).splitlines()[-1] == f"report: {json_path}"


def test_job_name_is_read_back_from_the_job_file(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: 夜间取消\norders: []\n", encoding="utf-8")
    assert job_name(str(job)) == "夜间取消"
    job.write_text("orders: []\n", encoding="utf-8")
    assert job_name(str(job)) is None
    job.write_text("name: [1, 2]\n", encoding="utf-8")
    assert job_name(str(job)) is None
    job.write_text("a: &x [*x]\n", encoding="utf-8")
    assert job_name(str(job)) is None
    assert job_name(str(tmp_path / "gone.yaml")) is None
    assert job_name("sync") is None


# --- dhbot status and dhbot runs -------------------------------------------------------


def ledger_with_orders(workspace: Workspace) -> dict[str, Outcome]:
    """A ledger holding one order of several outcomes, as runs leave it."""
    from bot.ledger import new_run_id, open_ledger

    settings = load_settings(workspace.config, {}).settings
    key = settings.portal.key("main")
    outcomes = {"1455953101": Outcome.SUBMITTED, "1455953102": Outcome.REJECTED,
                "1455953103": Outcome.FAILED, "1455953104": Outcome.REJECTED}
    ledger = open_ledger(settings)
    try:
        run_id = new_run_id()
        ledger.start_run(run_id, "job.yaml", settings.paths.runs_dir / run_id)
        ledger.plan(run_id, key, [(n, "out_of_stock", "仓库断货") for n in outcomes])
        for order_no, outcome in outcomes.items():
            ledger.record_result(run_id, key, order_no, outcome, status_before="待发货",
                                 status_after="待发货", attempts=1)
    finally:
        ledger.close()
    return outcomes


def test_status_filters_by_outcome_code_or_chinese_label(workspace: Workspace) -> None:
    outcomes = ledger_with_orders(workspace)
    rejected = sorted(n for n, o in outcomes.items() if o == Outcome.REJECTED)

    by_code = json.loads(workspace.cli("status", "--outcome", "rejected", "--json",
                                       check_code=0).stdout)
    assert [r["order_no"] for r in by_code] == rejected
    assert {(r["outcome"], r["outcome_zh"]) for r in by_code} == {("rejected", "平台驳回")}
    by_label = json.loads(workspace.cli("status", "--outcome", "平台驳回", "--json",
                                        check_code=0).stdout)
    assert by_label == by_code
    two = json.loads(workspace.cli("status", "--outcome", "失败", "--outcome", "submitted",
                                   "--json", check_code=0).stdout)
    assert sorted(r["order_no"] for r in two) == ["1455953101", "1455953103"]
    # With order numbers too: only those that have the outcome (never-seen ones match none).
    some = json.loads(workspace.cli("status", "1455953101", "1455953102", "9999999999",
                                    "--outcome", "rejected", "--json", check_code=0).stdout)
    assert [r["order_no"] for r in some] == ["1455953102"]

    refused = workspace.cli("status", "--outcome", "驳回", check_code=2)
    assert "unknown outcome '驳回'" in refused.stderr
    assert "平台驳回 rejected" in refused.stderr and "待人工处理 needs_review" in refused.stderr


def test_status_table_shows_labels_and_local_times(workspace: Workspace) -> None:
    ledger_with_orders(workspace)
    rows = {r["order_no"]: r for r in json.loads(workspace.cli("status", "--json",
                                                               check_code=0).stdout)}
    stored = rows["1455953102"]["updated_at"]
    assert stored.endswith("+00:00")  # the machine-readable form stays UTC
    table = workspace.cli("status", check_code=0).stdout
    line = next(line for line in table.splitlines() if "1455953102" in line)
    assert "平台驳回 rejected" in line
    assert shown_time(stored, "Asia/Shanghai") in line and "+08:00" in line

    workspace.write_config(display={"timezone": "UTC"})
    line = next(line for line in workspace.cli("status", check_code=0).stdout.splitlines()
                if "1455953102" in line)
    assert shown_time(stored, "UTC") in line


def write_run(workspace: Workspace, *, dry_run: bool, exit_code: int,
              name: str | None) -> RunReport:
    """A finished run, recorded in the ledger and its folder, as `dhbot run` leaves it."""
    from bot.ledger import new_run_id, now_iso, open_ledger

    settings = load_settings(workspace.config, {}).settings
    run_id = new_run_id()
    run_dir = settings.paths.runs_dir / run_id
    ledger = open_ledger(settings)
    try:
        ledger.start_run(run_id, "job.yaml", run_dir)
        report = RunReport(run_id=run_id, job="job.yaml", account="main",
                           started_at=now_iso(), dry_run=dry_run, exit_code=exit_code,
                           name=name)
        report.orders = [result("1455953101", Outcome.WOULD_SUBMIT if dry_run
                                else Outcome.FAILED)]
        report.finished_at = now_iso()
        ledger.finish_run(run_id, report.summary)
    finally:
        ledger.close()
    run_dir.mkdir(parents=True)
    report.write(run_dir)
    return report


def test_runs_marks_dry_runs_and_shows_exit_codes(workspace: Workspace) -> None:
    real = write_run(workspace, dry_run=False, exit_code=1, name="夜间取消")
    dry = write_run(workspace, dry_run=True, exit_code=0, name=None)
    pruned = write_run(workspace, dry_run=False, exit_code=0, name=None)
    (workspace.root / "runs" / pruned.run_id / "report.json").unlink()  # folder pruned

    listed = {r["run_id"]: r for r in json.loads(workspace.cli("runs", "--json",
                                                               check_code=0).stdout)}
    assert set(listed) == {real.run_id, dry.run_id, pruned.run_id}
    assert (listed[real.run_id]["dry_run"], listed[real.run_id]["exit_code"]) == (False, 1)
    assert listed[real.run_id]["name"] == "夜间取消"
    assert (listed[dry.run_id]["dry_run"], listed[dry.run_id]["exit_code"]) == (True, 0)
    assert (listed[pruned.run_id]["dry_run"], listed[pruned.run_id]["exit_code"]) == (
        None, None)
    assert listed[real.run_id]["started_at"] == real.started_at  # UTC, as stored
    assert listed[real.run_id]["summary"] == {"failed": 1}
    assert listed[real.run_id]["mode"] == "local" and listed[real.run_id]["parts"] == []

    table = workspace.cli("runs", check_code=0).stdout
    lines = {run_id: next(line for line in table.splitlines() if run_id in line)
             for run_id in listed}
    cells = {run_id: [c.strip() for c in line.split("│")[1:-1]]
             for run_id, line in lines.items()}
    assert "dry run" in cells[dry.run_id][3] and "dry run" not in cells[real.run_id][3]
    assert cells[real.run_id][3] == "夜间取消 (job.yaml)"
    assert cells[real.run_id][4] == "1" and cells[dry.run_id][4] == "0"
    assert cells[pruned.run_id][4] == ""
    assert cells[real.run_id][1] == shown_time(real.started_at, "Asia/Shanghai")
    assert cells[real.run_id][5] == "failed=1"


def test_runs_lists_a_distributed_runs_parts(workspace: Workspace) -> None:
    from bot.ledger import new_run_id, open_ledger

    settings = load_settings(workspace.config, {}).settings
    run_id = new_run_id()
    ledger = open_ledger(settings)
    try:
        ledger.start_run(run_id, "big.yaml", settings.paths.runs_dir / run_id,
                         mode="distributed")
        orders = json.dumps([{"order_no": "1455953101"}, {"order_no": "1455953102"}])
        ledger.add_parts(run_id, [("main", orders), ("main", orders)])
        ledger.start_part(run_id, 1, "w1@host-a")
        ledger.requeue_part(run_id, 1, "lock lost")
        ledger.start_part(run_id, 1, "w2@host-b")
        ledger.finish_part(run_id, 1, state="done", summary={"submitted": 2}, results=[],
                           exit_code=0)
    finally:
        ledger.close()

    listed = json.loads(workspace.cli("runs", "--json", check_code=0).stdout)
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["mode"] == "distributed" and listed[0]["exit_code"] is None  # waiting
    parts = listed[0]["parts"]
    assert [(p["part_no"], p["state"], p["worker"], p["attempts"], p["exit_code"], p["orders"])
            for p in parts] == [(1, "done", "w2@host-b", 2, 0, 2),
                                (2, "queued", None, 0, None, 2)]
    assert parts[0]["summary"] == {"submitted": 2}

    table = workspace.cli("runs", check_code=0).stdout
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines()
            if line.startswith("│")]
    assert [r[0] for r in rows] == [run_id, "part 1", "part 2"]
    assert rows[0][2] == "(unfinished)"
    assert rows[1][3] == "main: 2 orders on w2@host-b, attempt 2" and rows[1][4] == "0"
    assert rows[1][5] == "submitted=2"
    assert rows[2][3] == "main: 2 orders on (not started)" and rows[2][5] == "queued"
