"""The mock portal in Chromium, the way a seller (and the bot) uses it: roles and labels only."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.portal_server import PortalServer

pytestmark = pytest.mark.browser


def test_seller_cancels_an_order_through_both_dialogs(portal: PortalServer, page: Page) -> None:
    order = portal.orders(account="demo_seller", status="待发货")[3]
    page.goto(portal.url)
    page.get_by_role("link", name="登录").click()
    page.get_by_label("用户名").fill("demo_seller")
    page.get_by_label("密码").fill("demo-pass")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="退出")).to_be_visible()

    page.get_by_role("link", name="我的敦煌").click()
    expect(page.get_by_role("heading", name="我的敦煌")).to_be_visible()
    page.get_by_role("navigation", name="个人中心菜单").get_by_role("link", name="订单管理").click()
    expect(page.get_by_role("heading", name="订单管理")).to_be_visible()
    page.get_by_label("订单号").fill(order["order_no"])
    page.get_by_role("button", name="搜索").click()
    expect(page.locator("table.order-list tbody tr")).to_have_count(1)
    page.get_by_role("link", name=order["order_no"], exact=True).click()

    expect(page.get_by_role("heading", name="订单详情")).to_be_visible()
    status = page.locator("dt", has_text="订单状态：").locator("xpath=following-sibling::dd[1]")
    expect(status).to_have_text("待发货")
    page.get_by_role("button", name="取消订单").click()
    dialog = page.get_by_role("dialog", name="取消订单")
    expect(dialog).to_be_visible()
    # client-side validation first: no reason chosen
    dialog.get_by_role("button", name="提交").click()
    expect(dialog.get_by_role("alert")).to_have_text("请选择取消原因")
    dialog.get_by_label("取消原因").select_option(label="缺货")
    dialog.get_by_label("详细说明").fill("仓库断货，无法按时发货")
    dialog.get_by_role("button", name="提交").click()
    confirm = page.get_by_role("dialog", name="确认取消")
    expect(confirm).to_contain_text("取消订单将扣除实付金额10%的违约金")
    confirm.get_by_role("button", name="确定").click()

    expect(page.get_by_role("status")).to_have_text("取消申请已提交，等待平台审核")
    expect(status).to_have_text("取消审核中")
    (logged,) = portal.cancel_requests()
    assert logged["order_no"] == order["order_no"]
    assert logged["reason"] == "缺货" and logged["note"] == "仓库断货，无法按时发货"
    assert logged["accepted"] is True


def test_slider_captcha_can_be_dragged_to_log_in(portal: PortalServer, page: Page) -> None:
    portal.set_faults(captcha=True)
    page.goto(portal.url + "login")
    expect(page.get_by_text("请拖动滑块完成拼图")).to_be_visible()
    page.get_by_label("用户名").fill("demo_seller")
    page.get_by_label("密码").fill("demo-pass")

    knob = page.locator("[data-knob]").bounding_box()
    track = page.locator("[data-track]").bounding_box()
    assert knob and track
    y = knob["y"] + knob["height"] / 2
    page.mouse.move(knob["x"] + knob["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] / 2, y, steps=8)
    page.mouse.move(track["x"] + track["width"] + 20, y, steps=8)
    page.mouse.up()
    expect(page.get_by_text("验证通过")).to_be_visible()

    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/mydh$"))
    expect(page.get_by_role("heading", name="我的敦煌")).to_be_visible()


def test_slider_released_halfway_does_not_log_in(portal: PortalServer, page: Page) -> None:
    portal.set_faults(captcha=True)
    page.goto(portal.url + "login")
    page.get_by_label("用户名").fill("demo_seller")
    page.get_by_label("密码").fill("demo-pass")
    knob = page.locator("[data-knob]").bounding_box()
    assert knob
    y = knob["y"] + knob["height"] / 2
    page.mouse.move(knob["x"] + 5, y)
    page.mouse.down()
    page.mouse.move(knob["x"] + 100, y, steps=5)
    page.mouse.up()
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("请完成滑块验证")


def test_dropped_cancel_answer_is_a_network_error_in_the_browser(
    portal: PortalServer, page: Page
) -> None:
    order = portal.orders(account="demo_seller", status="待发货")[0]
    page.goto(portal.url + "login")
    page.get_by_label("用户名").fill("demo_seller")
    page.get_by_label("密码").fill("demo-pass")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="退出")).to_be_visible()
    portal.set_faults(commit_then_fail=1.0, commit_then_fail_mode="drop")
    page.goto(portal.url + f"orders/detail/{order['internal_id']}")
    page.get_by_role("button", name="取消订单").click()
    page.get_by_label("取消原因").select_option(label="缺货")
    page.get_by_role("button", name="提交").click()
    failures: list[str] = []
    page.on("requestfailed", lambda request: failures.append(request.failure or ""))
    page.get_by_role("button", name="确定").click()
    expect(page).to_have_url(re.compile(r"^chrome-error://"))
    assert failures and failures[0].startswith("net::ERR_")
    # the change was committed once; the browser did not resend the POST
    assert [r["accepted"] for r in portal.cancel_requests()] == [True]
    assert any(o["order_no"] == order["order_no"] for o in portal.orders(status="取消审核中"))
