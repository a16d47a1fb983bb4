"""The console as ops staff use it, in a browser, against `dhbot serve` and the mock portal:
upload, preview with screenshots, a second person approves, the run, the report."""

from __future__ import annotations

from collections import Counter

import pytest
from playwright.sync_api import Page, expect

from tests.bot.conftest import by_status
from tests.console.conftest import PASSWORD, Served

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TIMEOUT_MS = 90_000  # a dry run or a run of a few orders, on a loaded machine


def sign_in(page: Page, served: Served, name: str) -> None:
    page.goto(served.url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(served.url + "/runs")


def sign_out(page: Page) -> None:
    page.click("header form button")
    expect(page.locator("#password")).to_be_visible()


def upload(page: Page, served: Served, csv: str, name: str = "orders.csv") -> str:
    page.goto(served.url + "/jobs/new")
    page.set_input_files("#file", files=[{"name": name, "mimeType": "text/csv",
                                          "buffer": csv.encode("utf-8")}])
    page.click("#submit")
    return page.url


def test_upload_preview_approve_run_report(page: Page, served: Served) -> None:
    portal = served.portal
    paid = by_status(portal, "待发货", 3)
    shipped = by_status(portal, "已发货", 1)
    csv = "order_no,reason,note\n" + "".join(f"{no},out_of_stock,仓库断货\n"
                                             for no in paid + shipped)
    sign_in(page, served, "olga")
    job_url = upload(page, served, csv)
    assert "/jobs/J" in job_url
    # The preview: a dry run in the background; the page follows it and shows every order.
    rows = page.locator("tr.preview-order")
    expect(rows).to_have_count(4, timeout=TIMEOUT_MS)
    outcomes = {rows.nth(i).get_attribute("data-order"): rows.nth(i).get_attribute(
        "data-outcome") for i in range(4)}
    assert outcomes == {**dict.fromkeys(paid, "would_submit"), shipped[0]: "not_cancellable"}
    for no in paid:  # the filled dialog's screenshot, really served
        row = page.locator(f'tr.preview-order[data-order="{no}"]')
        expect(row).to_contain_text("缺货")
        expect(row).to_contain_text("仓库断货")
        shot = row.locator("img.shot")
        expect(shot).to_have_count(1)
        assert shot.evaluate("img => img.complete && img.naturalWidth > 100")
    assert portal.cancel_requests() == []  # nothing was submitted by the preview
    # The uploader is an operator: no approve button, the reason said.
    expect(page.locator("#approve")).to_have_count(0)
    expect(page.locator("#why-not")).to_contain_text("只有审批人可以审批")
    sign_out(page)

    sign_in(page, served, "amy")
    page.goto(job_url)
    page.fill("#comment", "同意取消")
    page.click("#approve")
    expect(page).to_have_url(f"{served.url}/runs/20" + page.url.rsplit("/runs/20", 1)[-1])
    report_rows = page.locator("tr.report-order")
    expect(report_rows).to_have_count(4, timeout=TIMEOUT_MS)
    shown = {report_rows.nth(i).get_attribute("data-order"): report_rows.nth(i).get_attribute(
        "data-outcome") for i in range(4)}
    assert shown == {**dict.fromkeys(paid, "submitted"), shipped[0]: "not_cancellable"}
    expect(page.locator("#exit-code")).to_have_text("0")
    # Exactly one cancellation request per cancellable order, as the portal itself counts.
    requests = Counter(r["order_no"] for r in portal.cancel_requests())
    assert requests == Counter(paid)
    # The run was followed by its log: every order's outcome, as it landed.
    run_id = page.url.rsplit("/", 1)[1]
    progress = page.request.get(f"{served.url}/runs/{run_id}/progress").json()
    assert progress["finished"] is True
    assert {o["order_no"]: o["outcome"] for o in progress["orders"]} == shown
    # report.html opens from the page.
    with page.expect_popup() as popup:
        page.click("#report-html")
    expect(popup.value.locator("body")).to_contain_text(paid[0])

    # The audit trail, and the run list, say who did what.
    page.goto(job_url)
    actions = page.locator("tr.audit-entry").evaluate_all(
        "rows => rows.map(r => [r.dataset.action, r.cells[1].textContent])")
    assert [a for a, _ in actions] == ["uploaded", "previewed", "approved", "run_started",
                                       "run_finished"]
    assert dict(actions)["uploaded"] == "olga" and dict(actions)["approved"] == "amy"
    page.goto(served.url + "/runs")
    row = page.locator("tr.job-row").first
    expect(row).to_contain_text("olga")
    expect(row).to_contain_text("amy")
    expect(row).to_contain_text("已完成")


def test_an_approver_cannot_approve_a_job_they_uploaded(page: Page, served: Served) -> None:
    paid = by_status(served.portal, "待发货", 2)
    sign_in(page, served, "amy")
    upload(page, served, "order_no,reason,note\n" + "".join(f"{no},out_of_stock,断货\n"
                                                            for no in paid))
    expect(page.locator("#job-state")).to_have_attribute("data-state", "awaiting_approval",
                                                         timeout=TIMEOUT_MS)
    expect(page.locator("#approve")).to_have_count(0)
    expect(page.locator("#why-not")).to_contain_text("不能审批自己上传的任务")
    assert served.portal.cancel_requests() == []


def test_a_bad_order_list_shows_its_problems_by_line_and_queues_nothing(
        page: Page, served: Served) -> None:
    sign_in(page, served, "olga")
    upload(page, served, "order_no,reason,note\n12AB,out_of_stock,x\n1455953157,缺货了,x\n")
    problems = page.locator("tr.problem")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("第 2 行")
    expect(problems.nth(0)).to_contain_text("line 2")
    expect(problems.nth(1)).to_contain_text("第 3 行")
    page.goto(served.url + "/runs")
    expect(page.locator("tr.job-row")).to_have_count(0)


def test_a_captcha_at_login_says_what_to_run_and_never_asks_for_the_password(
        page: Page, served: Served) -> None:
    served.portal.set_faults(captcha=True)
    paid = by_status(served.portal, "待发货", 1)
    sign_in(page, served, "olga")
    upload(page, served, f"order_no,reason,note\n{paid[0]},out_of_stock,断货\n")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "preview_failed",
                                                         timeout=TIMEOUT_MS)
    expect(page.locator("#job-error")).to_contain_text("登录需要人工处理")
    expect(page.locator("main")).to_contain_text("dhbot login --account main --headed")
    expect(page.locator("input[type=password]")).to_have_count(0)
    page.goto(served.url + "/attention")
    expect(page.locator(".login-needed")).to_contain_text("dhbot login --account main --headed")
    assert served.portal.cancel_requests() == []
