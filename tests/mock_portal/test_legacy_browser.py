"""Layout ``legacy`` in Chromium: hover menus, late rows, new tabs, a home-made dropdown and
the browser's own confirm(), found by text and CSS the way a legacy profile has to."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.portal_server import PortalServer

pytestmark = pytest.mark.browser

PAID_CONFIRM = "取消订单将扣除实付金额10%的违约金（最低US $5，最高US $20），确定要取消吗？"
EMPTY = "您暂时没有符合条件的订单，请更改条件后重试。"
# Records (in page time) when the first row and the empty text appear, whatever draws them.
WATCH_LIST = """
window.__seen = {};
new MutationObserver(function () {
  var t = performance.now();
  if (!window.__seen.rows && document.querySelector("#orderTable tbody tr")) window.__seen.rows = t;
  var tip = document.getElementById("emptyTip");
  if (!window.__seen.empty && tip && tip.style.display !== "none") window.__seen.empty = t;
}).observe(document, {childList: true, subtree: true, attributes: true});
"""


def after_text(page: Page, text: str) -> Any:
    """The input or textarea in the table cell after the cell that reads ``text``."""
    return page.locator(
        f"xpath=//td[normalize-space()='{text}']/following-sibling::td[1]"
        "//*[self::input or self::textarea]"
    )


def log_in(page: Page, portal: PortalServer) -> None:
    page.goto(portal.url + "login")
    after_text(page, "用户名：").fill("demo_seller")
    after_text(page, "密码：").fill("demo-pass")
    page.locator("input[type=submit][value='登 录']").click()
    expect(page.locator("div.title")).to_have_text("我的摘要")


def drawn_after_load_ms(page: Page, what: str) -> float:
    """Milliseconds between DOMContentLoaded and the moment ``what`` (rows, empty) appeared."""
    result: float = page.evaluate(
        "what => window.__seen[what] -"
        " performance.getEntriesByType('navigation')[0].domContentLoadedEventStart",
        what,
    )
    return result


def assert_nothing_drawn(page: Page) -> None:
    assert page.locator("#orderTable tbody tr").count() == 0
    assert page.locator("#emptyTip").is_hidden()
    assert page.locator("#pagination a").count() == 0


def test_menu_opens_on_hover_and_rows_are_drawn_late(portal: PortalServer, page: Page) -> None:
    portal.set_faults(layout="legacy", rows_delay_ms=1000)
    page.add_init_script(WATCH_LIST)
    log_in(page, portal)
    my_orders = page.locator(".menu-group a", has_text="我的订单")
    expect(my_orders).to_be_hidden()
    page.locator(".menu-title", has_text="交易").hover()
    expect(my_orders).to_be_visible()
    page.mouse.move(900, 500)  # leaving the group closes it again
    expect(my_orders).to_be_hidden()
    page.locator(".menu-title", has_text="交易").hover()
    my_orders.click()

    page.wait_for_load_state("domcontentloaded")
    assert_nothing_drawn(page)
    rows = page.locator("#orderTable tbody tr")
    expect(rows).to_have_count(20)
    assert drawn_after_load_ms(page, "rows") >= 990
    expect(page.locator("#emptyTip")).to_be_hidden()

    # Enter in the 订单号 field submits the search form natively; nothing matches
    search_field = page.locator("#searchForm input[name=order_no]")
    search_field.fill("0000000")
    search_field.press("Enter")
    page.wait_for_load_state("domcontentloaded")
    expect(page).to_have_url(re.compile(r"order_no=0000000"))
    assert_nothing_drawn(page)
    assert not page.get_by_text(EMPTY).is_visible()
    expect(page.get_by_text(EMPTY)).to_be_visible()
    assert drawn_after_load_ms(page, "empty") >= 990
    assert rows.count() == 0

    # 搜 索 (a link) finds one order; its number opens the detail in a new tab
    portal.set_faults(rows_delay_ms=0)
    order = portal.orders(account="demo_seller", status="待发货")[2]
    search_field.fill(order["order_no"])
    page.get_by_text("搜 索", exact=True).click()
    expect(rows).to_have_count(1)
    link = rows.get_by_role("link", name=order["order_no"])
    expect(link).to_have_attribute("target", "_blank")
    with page.context.expect_page() as opened:
        link.click()
    detail = opened.value
    expect(detail).to_have_url(re.compile(f"/orders/detail/{order['internal_id']}$"))
    expect(detail.locator(".order-info li", has_text="订单状态：").locator("span")).to_have_text(
        "等待您发货"
    )
    expect(rows).to_have_count(1)  # the list stayed where it was

    # paging goes through the hidden form
    page.goto(portal.url + "orders?status=awaiting_shipment")
    page.locator("#pagination").get_by_text("下一页").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page).to_have_url(re.compile(r"status=awaiting_shipment"))
    expect(page.locator("#pagination .page-cur")).to_have_text("2")
    expect(rows.locator("td.status").first).to_have_text("等待您发货")


def test_cancel_through_the_custom_dropdown_and_native_confirm(
    portal: PortalServer, page: Page
) -> None:
    portal.set_faults(layout="legacy")
    order = portal.orders(account="demo_seller", status="待发货")[1]
    log_in(page, portal)
    page.goto(portal.url + f"orders/detail/{order['internal_id']}")
    amount = page.locator(".order-info li", has_text="实付金额：").locator("span").inner_text()
    mask = page.locator("#cancelMask")
    expect(mask).to_be_hidden()
    # (the hidden pop-up's title reads 申请退款 too, so text alone is ambiguous)
    entry = page.locator("a.btn", has_text="申请退款")
    expect(entry).to_have_attribute("href", "javascript:;")
    entry.click()
    expect(mask).to_be_visible()
    expect(mask.locator(".pop-title")).to_have_text("申请退款")

    confirms: list[str] = []

    def answer(accept: bool) -> Any:
        def handle(dialog: Dialog) -> None:
            confirms.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    submit = mask.get_by_text("提 交", exact=True)
    submit.click()  # no reason chosen yet: the script refuses before any confirm()
    expect(mask.locator(".err")).to_have_text("请选择取消原因")
    assert confirms == []

    options = mask.locator(".dropdown-list")
    expect(options).to_be_hidden()
    mask.locator(".dropdown-text").click()
    expect(options).to_be_visible()
    options.get_by_text("缺货", exact=True).click()
    expect(options).to_be_hidden()
    expect(mask.locator(".dropdown-text")).to_have_text("缺货")
    expect(mask.locator("input[name=reason]")).to_have_value("out_of_stock")
    after_text(page, "详细说明：").fill("仓库断货，无法发货")

    submit.click()  # the confirm() is dismissed: nothing is sent
    assert confirms == [PAID_CONFIRM]
    expect(mask).to_be_visible()
    assert portal.cancel_requests() == []

    page.once("dialog", answer(True))
    submit.click()
    cents = int(amount.removeprefix("US $").replace(".", ""))
    fine = min(max(cents // 10, 500), 2000)
    expect(page.locator("div.tip-success")).to_have_text(
        f"订单已取消，已扣除违约金US ${fine // 100}.{fine % 100:02d}"
    )
    expect(page.locator(".order-info span.red")).to_have_text("订单取消")
    assert confirms == [PAID_CONFIRM, PAID_CONFIRM]
    (logged,) = portal.cancel_requests()  # one request: the dismissed confirm sent nothing
    assert logged["order_no"] == order["order_no"] and logged["accepted"] is True
    assert logged["reason"] == "缺货" and logged["note"] == "仓库断货，无法发货"
