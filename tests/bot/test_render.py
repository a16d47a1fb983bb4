"""report.html / report.csv / junit.xml from a run's report.json, and finding runs on disk."""

from __future__ import annotations

import csv
import json
import stat
import struct
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, Request, expect

from bot.errors import UsageError
from bot.render import list_runs, render_run, resolve_run

RUN_ID = "20261126-132500-3fa2"
CHINESE_NOTE = "价格设置错误，已与买家沟通"
SCRIPT_NOTE = "<script>alert(1)</script>"
# Playwright's messages carry ANSI colour codes; XML 1.0 cannot hold them.
FAILED_ERROR = 'Timeout 5000ms exceeded waiting for get_by_role("button", name="取消订单") \x1b[2m'


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid, solid-colour PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def order(order_no: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """One order of report.json, with the runner's defaults."""
    data: dict[str, Any] = {
        "order_no": order_no, "account": "main", "outcome": outcome, "status_before": "待发货",
        "status_after": "待发货", "reason": "out_of_stock", "note": "仓库断货，无法按时发货",
        "attempts": 1, "retries": 0, "error": None, "artifacts": [], "previous_run": None,
        "duration_s": 1.25, "finished_at": "2026-11-26T05:26:03+00:00",
    }
    data.update(fields)
    return data


ORDERS = [
    order("1455953101", "submitted", status_after="取消审核中"),
    order("1455953102", "submitted", status_after="取消审核中", reason="price_error",
          note=CHINESE_NOTE),
    order("1455953103", "cancelled", status_before="等待买家付款", status_after="已取消",
          note=SCRIPT_NOTE),
    order("1455953104", "not_found", status_before=None, status_after=None,
          note='逗号, "引号" and a\nsecond line'),
    order("1455953156", "failed", status_after=None, attempts=3, retries=2, error=FAILED_ERROR,
          artifacts=["artifacts/1455953156-failed.png", "artifacts/1455953156-failed.html",
                     "artifacts/trace-1455953156.zip"]),
    order("1455953157", "needs_review", status_after="待发货", attempts=1,
          error='submitted, but the portal\'s answer is unclear: <img src=x onerror="alert(2)">',
          artifacts=["artifacts/1455953157-unclear.png"]),
    order("1455953158", "skipped", status_before=None, status_after=None, attempts=0),
]


def write_run(runs_dir: Path, run_id: str, orders: list[dict[str, Any]], **fields: Any) -> Path:
    """A run folder as dhbot leaves it: report.json plus the artifacts it names."""
    run_dir = runs_dir / run_id
    (run_dir / "artifacts").mkdir(parents=True)
    report: dict[str, Any] = {
        "run_id": run_id, "job": "jobs/cancel-2026-11-26.csv", "account": "main",
        "started_at": "2026-11-26T05:25:00+00:00", "finished_at": "2026-11-26T05:28:12+00:00",
        "dry_run": False, "exit_code": 1, "stopped": None,
        "summary": dict(Counter(o["outcome"] for o in orders)),
        "retries": sum(o["retries"] for o in orders), "orders": orders,
    }
    report.update(fields)
    for o in orders:
        for name in o["artifacts"]:
            path = run_dir / name
            if name.endswith(".png"):
                path.write_bytes(png(640, 400))  # a screenshot, shrunk to a thumbnail
            elif name.endswith(".html"):
                path.write_text("<html><body>订单详情</body></html>", encoding="utf-8")
            else:
                path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    (run_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2),
                                         encoding="utf-8")
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished run with one order of most outcomes, rendered."""
    folder = write_run(tmp_path / "runs", RUN_ID, ORDERS,
                       stopped="SIGINT received: stopped after the orders in flight")
    render_run(folder)
    return folder


def test_render_writes_three_private_files_beside_the_report(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "runs", RUN_ID, ORDERS)
    written = render_run(folder)
    assert [p.name for p in written] == ["report.html", "report.csv", "junit.xml"]
    for path in written:
        assert path.parent == folder
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(folder.glob("*.tmp"))


def test_csv_has_a_bom_and_reads_back_with_chinese_intact(run_dir: Path) -> None:
    data = (run_dir / "report.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    with (run_dir / "report.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["order_no", "account", "outcome", "outcome_zh", "status_before",
                             "status_after", "reason", "note", "attempts", "retries", "error",
                             "artifacts", "finished_at"]
    labels = {"submitted": "已提交", "cancelled": "已取消", "not_found": "未找到",
              "failed": "失败", "needs_review": "待人工处理", "skipped": "未处理"}
    expected = [{
        "order_no": o["order_no"], "account": o["account"], "outcome": o["outcome"],
        "outcome_zh": labels[o["outcome"]],
        "status_before": o["status_before"] or "", "status_after": o["status_after"] or "",
        "reason": o["reason"], "note": o["note"], "attempts": str(o["attempts"]),
        "retries": str(o["retries"]), "error": o["error"] or "",
        "artifacts": " ".join(o["artifacts"]),
        # 05:26:03 UTC, shown in the default display time zone (Asia/Shanghai).
        "finished_at": "2026-11-26 13:26:03 +08:00",
    } for o in ORDERS]
    assert rows == expected
    by_no = {r["order_no"]: r for r in rows}
    assert by_no["1455953102"]["note"] == CHINESE_NOTE
    assert by_no["1455953104"]["note"] == '逗号, "引号" and a\nsecond line'
    assert by_no["1455953156"]["artifacts"] == (
        "artifacts/1455953156-failed.png artifacts/1455953156-failed.html "
        "artifacts/trace-1455953156.zip")


def test_junit_counts_failures_and_skips(run_dir: Path) -> None:
    root = ET.parse(run_dir / "junit.xml").getroot()
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == f"dhbot run {RUN_ID}"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [o["order_no"] for o in ORDERS]
    assert {c.get("classname") for c in cases} == {"main"}
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {"1455953156", "1455953157"}
    skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
    assert skipped == {"1455953158"}
    failure = next(c for c in cases if c.get("name") == "1455953156").find("failure")
    assert failure is not None
    assert "取消订单" in (failure.get("message") or "")
    assert "\x1b" not in (failure.get("message") or "")
    assert "[2m" not in (failure.get("message") or "")


@pytest.mark.browser
@pytest.mark.browser
def test_html_report_in_a_browser(run_dir: Path, page: Page) -> None:
    requests: list[str] = []
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_request(request: Request) -> None:
        requests.append(request.url)

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.goto((run_dir / "report.html").as_uri())

    expect(page.locator("h1")).to_contain_text(RUN_ID)
    expect(page.locator("#stopped")).to_contain_text("SIGINT received")
    expect(page.locator("#dry-run")).to_have_count(0)
    counts = {"submitted": "2", "cancelled": "1", "not_found": "1", "failed": "1",
              "needs_review": "1", "skipped": "1", "total": "7"}
    for outcome, count in counts.items():
        expect(page.locator(f'#summary [data-outcome="{outcome}"]')).to_have_text(count)
    expect(page.locator('#summary [data-outcome="already_cancelled"]')).to_have_count(0)

    failed = page.locator('tr[data-order-no="1455953156"]')
    expect(failed).to_have_class("outcome-failed problem")
    expect(failed.locator("td.status")).to_have_text("待发货")
    expect(failed.locator("td.attempts")).to_contain_text("3")
    expect(failed.locator("td.error")).to_contain_text('name="取消订单"')
    expect(failed.locator("td.error")).not_to_contain_text("[2m")
    thumb = failed.locator("figure.shot img")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 640
    small = thumb.bounding_box()
    assert small is not None and small["width"] <= 160
    full = failed.get_by_role("link", name="artifacts/1455953156-failed.png", exact=True)
    expect(full).to_have_attribute("href", "artifacts/1455953156-failed.png")
    expect(failed.get_by_role("link", name="trace-1455953156.zip")).to_have_attribute(
        "href", "artifacts/trace-1455953156.zip")
    expect(failed.get_by_role("link", name="1455953156-failed.html")).to_be_visible()

    # Clicking the thumbnail shows the whole screenshot, bigger, without leaving the page.
    thumb.click()
    big = thumb.bounding_box()
    assert big is not None and big["width"] >= 640 > small["width"]
    page.get_by_role("link", name="关闭").filter(visible=True).click()
    expect(page.locator("figure.shot:target")).to_have_count(0)

    expect(page.locator('tr[data-order-no="1455953157"]')).to_have_class(
        "outcome-needs_review problem")
    expect(page.locator('tr[data-order-no="1455953101"]')).not_to_have_class("problem")
    expect(page.locator('tr[data-order-no="1455953102"] td.status')).to_have_text(
        "待发货 → 取消审核中")
    expect(page.get_by_text(CHINESE_NOTE)).to_be_visible()

    # Untrusted text shows as text and runs nothing.
    expect(page.get_by_text(SCRIPT_NOTE, exact=True)).to_be_visible()
    expect(page.get_by_text('<img src=x onerror="alert(2)">')).to_be_visible()
    expect(page.locator("td script, td img:not(figure img)")).to_have_count(0)
    assert dialogs == []

    assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests


@pytest.mark.browser
@pytest.mark.browser
def test_html_report_marks_a_dry_run(tmp_path: Path, page: Page) -> None:
    folder = write_run(tmp_path / "runs", RUN_ID, [
        order("1455953101", "would_submit", artifacts=["artifacts/1455953101-dry-run.png"])],
        dry_run=True, exit_code=0)
    render_run(folder)
    page.goto((folder / "report.html").as_uri())
    expect(page.locator("#dry-run")).to_be_visible()
    expect(page.locator('#summary [data-outcome="would_submit"]')).to_have_text("1")
    expect(page.locator("#stopped")).to_have_count(0)
    expect(page.locator("#problems")).to_have_count(0)


def test_html_does_not_embed_or_link_files_outside_the_run(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(4, 4))
    folder = write_run(tmp_path / "runs", RUN_ID, [
        order("1455953156", "failed", artifacts=["../../secret.png",
                                                 "artifacts/gone.png"])])
    (folder / "artifacts" / "gone.png").unlink()
    render_run(folder)
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "data:image/png" not in html
    assert 'href="../../secret.png"' not in html
    assert "outside the run folder" in html and "missing" in html


def test_render_of_a_folder_without_a_report_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"report\.json"):
        render_run(tmp_path / "empty")


def test_list_runs_newest_first_skipping_unreadable(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "20261124-090000-aaaa", ORDERS[:1],
              started_at="2026-11-24T01:00:00+00:00", exit_code=0)
    write_run(runs, "20261126-090000-cccc", ORDERS[4:5],
              started_at="2026-11-26T01:00:00+00:00", dry_run=True)
    write_run(runs, "20261125-090000-bbbb", ORDERS[:2],
              started_at="2026-11-25T01:00:00+00:00", exit_code=0, summary=None)
    (runs / "20261127-000000-dead").mkdir()  # died before writing its report
    (runs / "20261127-000001-bad0").mkdir()
    (runs / "20261127-000001-bad0" / "report.json").write_text("{not json", encoding="utf-8")
    (runs / "notes.txt").write_text("not a run", encoding="utf-8")

    found = list_runs(runs)
    assert [r["run_id"] for r in found] == [
        "20261126-090000-cccc", "20261125-090000-bbbb", "20261124-090000-aaaa"]
    newest = found[0]
    assert newest["dry_run"] is True and newest["exit_code"] == 1
    assert newest["account"] == "main" and newest["job"] == "jobs/cancel-2026-11-26.csv"
    assert newest["path"] == runs / "20261126-090000-cccc"
    assert newest["summary"] == {"failed": 1}
    assert found[1]["summary"] == {"submitted": 2}  # counted when the report has none
    assert [r["run_id"] for r in list_runs(runs, limit=2)] == [
        "20261126-090000-cccc", "20261125-090000-bbbb"]
    assert list_runs(tmp_path / "no-runs-yet") == []


def test_resolve_run_by_id_prefix_or_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = write_run(runs, "20261125-090000-bbbb", ORDERS[:1])
    second = write_run(runs, "20261126-090000-cccc", ORDERS[:1])
    write_run(runs, "20261126-100000-dddd", ORDERS[:1])

    assert resolve_run(runs, "20261125-090000-bbbb") == first
    assert resolve_run(runs, "20261125") == first
    assert resolve_run(runs, "20261126-09") == second
    assert resolve_run(runs, str(second)) == second
    outside = write_run(tmp_path / "elsewhere", "copied-run", ORDERS[:1])
    assert resolve_run(runs, str(outside)) == outside

    with pytest.raises(UsageError, match=r"ambiguous.*20261126-090000-cccc"):
        resolve_run(runs, "20261126")
    with pytest.raises(UsageError, match=r"no run '2027'"):
        resolve_run(runs, "2027")
    with pytest.raises(UsageError, match=r"no report\.json"):
        resolve_run(runs, str(tmp_path / "elsewhere"))
    with pytest.raises(UsageError, match="no run"):
        resolve_run(tmp_path / "missing", "20261125")


def test_csv_cells_that_look_like_formulas_stay_text(tmp_path: Path) -> None:
    orders = [order("1455953101", "submitted", note="=HYPERLINK(\"http://x\",\"点我\")"),
              order("1455953102", "failed", note="+1 备注", error="-2 @ page")]
    folder = write_run(tmp_path / "runs", RUN_ID, orders)
    render_run(folder)
    with (folder / "report.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["note"] for r in rows] == ["'=HYPERLINK(\"http://x\",\"点我\")", "'+1 备注"]
    assert rows[1]["error"] == "'-2 @ page"
    assert rows[0]["order_no"] == "1455953101"


def test_csv_labels_outcomes_and_shows_times_in_the_display_zone(tmp_path: Path) -> None:
    orders = [order("1455953101", "rejected", finished_at="2026-07-01T08:05:03+00:00"),
              order("1455953102", "would_submit"),
              order("1455953103", "from_a_newer_dhbot", finished_at=None)]  # older report
    folder = write_run(tmp_path / "runs", RUN_ID, orders)
    for zone, shown in (("America/New_York", "2026-07-01 04:05:03 -04:00"),
                        ("Asia/Shanghai", "2026-07-01 16:05:03 +08:00")):
        render_run(folder, zone=zone)
        with (folder / "report.csv").open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [(r["outcome"], r["outcome_zh"]) for r in rows] == [
            ("rejected", "平台驳回"), ("would_submit", "演练：将提交"), ("from_a_newer_dhbot", "")]
        assert rows[0]["finished_at"] == shown
        assert rows[2]["finished_at"] == ""
    # report.json itself keeps UTC.
    kept = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert kept["orders"][0]["finished_at"] == "2026-07-01T08:05:03+00:00"


def test_junit_has_the_runs_wall_time_real_durations_and_attachments(tmp_path: Path) -> None:
    orders = [order("1455953156", "failed", duration_s=37.5, error="Timeout",
                    artifacts=["artifacts/1455953156-failed.png",
                               "artifacts/trace-1455953156.zip"]),
              order("1455953101", "submitted", duration_s=2.25,
                    artifacts=["artifacts/1455953101-dry-run.png"]),
              order("1455953102", "not_found", duration_s=0.5)]
    # 3m 12s of wall time; the orders ran in parallel, their durations add up to 40.25s.
    folder = write_run(tmp_path / "runs", RUN_ID, orders, name="夜间取消")
    render_run(folder)
    root = ET.parse(folder / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("time") == "192.000" and root.get("time") == "192.000"
    assert suite.get("timestamp") == "2026-11-26T05:25:00+00:00"
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["name"] == "夜间取消" and props["job"] == "jobs/cancel-2026-11-26.csv"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert {n: c.get("time") for n, c in cases.items()} == {
        "1455953156": "37.500", "1455953101": "2.250", "1455953102": "0.500"}
    for o in orders:
        case = cases[o["order_no"]]
        attached = [(p.get("name"), p.get("value")) for p in case.findall("properties/property")]
        assert attached == [("attachment", a) for a in o["artifacts"]]
        assert len(case.findall("properties")) == (1 if o["artifacts"] else 0)
    # Properties come first in a testcase, as JUnit's schema orders them.
    assert [child.tag for child in cases["1455953156"]] == ["properties", "failure"]
    # A report without times (an older or unfinished one) still renders.
    write_run(tmp_path / "old", RUN_ID, orders[:1], started_at=None, finished_at="")
    render_run(tmp_path / "old" / RUN_ID)
    old = ET.parse(tmp_path / "old" / RUN_ID / "junit.xml").getroot().find("testsuite")
    assert old is not None and old.get("time") == "0.000"


def test_list_runs_reads_the_job_name(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", RUN_ID, ORDERS[:1], name="夜间取消")
    write_run(tmp_path / "runs", "20261125-090000-bbbb", ORDERS[:1])  # before names existed
    names = {r["run_id"]: r["name"] for r in list_runs(tmp_path / "runs")}
    assert names == {RUN_ID: "夜间取消", "20261125-090000-bbbb": ""}


@pytest.mark.browser
def test_html_report_lists_rejected_orders_and_shows_name_and_local_times(
        tmp_path: Path, page: Page) -> None:
    orders = [order("1455953101", "submitted", finished_at="2026-11-26T05:26:03+00:00"),
              order("1455953102", "rejected",
                    error="the platform rejected the cancellation: 买家已发货"),
              order("1455953156", "failed", error="Timeout")]
    folder = write_run(tmp_path / "runs", RUN_ID, orders, name="夜间取消 <b>")
    render_run(folder)
    page.goto((folder / "report.html").as_uri())

    assert page.title() == f"夜间取消 <b> · dhbot {RUN_ID}"
    expect(page.locator("#job-name")).to_have_text("夜间取消 <b>")
    expect(page.locator("#started")).to_have_text("2026-11-26 13:25:00 +08:00")
    expect(page.locator("#started")).to_have_attribute("datetime", "2026-11-26T05:25:00+00:00")
    expect(page.locator("#finished")).to_have_text("2026-11-26 13:28:12 +08:00")

    # 需要处理 lists the rejected order beside the failed one, highlighted.
    listed = page.locator("#problems [data-order-no]")
    expect(listed).to_have_count(2)
    rejected = page.locator('#problems [data-order-no="1455953102"]')
    expect(rejected.get_by_role("link", name="1455953102")).to_have_attribute("href", "#row-2")
    expect(rejected.locator("mark")).to_have_text("平台驳回 rejected")
    expect(page.locator("#problems h2")).to_contain_text("(2)")
    row = page.locator('tr[data-order-no="1455953102"]')
    expect(row).to_have_class("outcome-rejected person")
    warn = "rgb(254, 243, 226)"  # --warn-bg
    assert row.evaluate("e => getComputedStyle(e).backgroundColor") == warn
    assert page.locator('#summary li.outcome-rejected').evaluate(
        "e => getComputedStyle(e).backgroundColor") == warn
    expect(page.locator('tr[data-order-no="1455953101"]')).to_have_class("outcome-submitted")

    # Each outcome with its Chinese label; when it was decided, in the display zone.
    submitted = page.locator('tr[data-order-no="1455953101"] td.outcome')
    expect(submitted).to_contain_text("已提交 submitted")
    expect(submitted.locator("time")).to_have_text("2026-11-26 13:26:03 +08:00")
    expect(page.locator('tr[data-order-no="1455953156"] td.outcome')).to_contain_text(
        "失败 failed")

    render_run(folder, zone="UTC")
    page.goto((folder / "report.html").as_uri())
    expect(page.locator("#started")).to_have_text("2026-11-26 05:25:00 +00:00")
