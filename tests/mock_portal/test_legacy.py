"""Layout ``legacy`` over plain HTTP: JSP-style markup, DHgate's status names and cancel rules."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.mock_portal.pages import (
    ORDER_DATA_RE,
    SellerClient,
    by_role,
    info,
    links,
    order_data,
    text_of,
    tips,
)
from tests.portal_server import PortalServer

# internal status -> legacy name (已取消 depends on payment, checked separately)
LEGACY_NAMES = {
    "等待买家付款": "等待买家付款",
    "待发货": "等待您发货",
    "取消审核中": "等待平台审核",
    "已发货": "等待买家确认收货",
    "交易成功": "交易成功",
}
# Anything a bot could find by role, label or heading.
ACCESSIBLE_MARKUP = re.compile(r"<h[1-6][\s>]|<label|<dialog|<button|\srole=|\saria-", re.I)
PAID_CONFIRM = "取消订单将扣除实付金额10%的违约金（最低US $5，最高US $20），确定要取消吗？"


@pytest.fixture(autouse=True)
def legacy(portal: PortalServer, fresh_portal: None) -> None:
    """Every test here runs on the legacy layout (after the reset)."""
    portal.set_faults(layout="legacy")


def first(portal: PortalServer, status: str) -> dict[str, str]:
    return portal.orders(account="demo_seller", status=status)[0]


def detail_of(order: dict[str, str]) -> str:
    return f"/orders/detail/{order['internal_id']}"


def cancel(
    seller: SellerClient, order: dict[str, str], reason: str = "out_of_stock", note: str = ""
) -> str:
    """POST the cancel form, follow the redirect to the detail page and return it."""
    path = detail_of(order)
    response = seller.post_form(f"{path}/cancel", {"reason": reason, "note": note})
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"] == path
    return seller.page(path)


def fine_for(amount: str) -> str:
    """10% of ``US $x.yy``, at least US $5 and at most US $20, written as the portal does."""
    cents = int(amount.removeprefix("US $").replace(".", ""))
    fine = min(max(cents // 10, 500), 2000)
    return f"US ${fine // 100}.{fine % 100:02d}"


# -- admin API and faults --------------------------------------------------------------------


def test_admin_shows_legacy_status_names_and_filters_by_either_name(
    portal: PortalServer,
) -> None:
    legacy = {o["order_no"]: o["status"] for o in portal.orders()}
    portal.set_faults(layout="v1")
    internal = {o["order_no"]: o["status"] for o in portal.orders()}
    assert legacy.keys() == internal.keys()
    for order_no, status in internal.items():
        if status == "已取消":
            assert legacy[order_no] in ("订单取消", "交易关闭")
        else:
            assert legacy[order_no] == LEGACY_NAMES[status]
    assert {"订单取消", "交易关闭"} <= set(legacy.values())
    # v1 still lists internal names, and takes legacy names as a filter
    assert [o["status"] for o in portal.orders(status="等待您发货")] == [
        "待发货" for s in internal.values() if s == "待发货"
    ]
    closed = {o["order_no"] for o in portal.orders(status="交易关闭")}
    fined = {o["order_no"] for o in portal.orders(status="订单取消")}
    assert closed and fined and not closed & fined
    assert closed | fined == {o["order_no"] for o in portal.orders(status="已取消")}
    portal.set_faults(layout="legacy")
    assert portal.orders(status="待发货") == portal.orders(status="等待您发货")
    assert {o["order_no"] for o in portal.orders(status="已取消")} == closed | fined
    assert {o["status"] for o in portal.orders(status="交易关闭")} == {"交易关闭"}


def test_new_fault_keys_are_validated(portal: PortalServer) -> None:
    faults = portal.admin.get("__admin/faults").json()
    assert faults["layout"] == "legacy"
    assert faults["rows_delay_ms"] == 300 and faults["insufficient_funds"] is False
    merged = portal.set_faults(rows_delay_ms=0, insufficient_funds=True)
    assert merged == {**faults, "rows_delay_ms": 0, "insufficient_funds": True}
    for bad in (
        {"rows_delay_ms": -1},
        {"rows_delay_ms": "slow"},
        {"rows_delay_ms": True},
        {"rows_delay_ms": 1.5},
        {"insufficient_funds": "yes"},
        {"insufficient_funds": 1},
        {"layout": "v0"},
    ):
        response = portal.admin.put("__admin/faults", json=bad)
        assert response.status_code == 400, bad
        assert next(iter(bad)) in response.json()["error"]
    assert "legacy" in portal.admin.put("__admin/faults", json={"layout": "x"}).json()["error"]
    assert portal.admin.get("__admin/faults").json() == merged


# -- markup ----------------------------------------------------------------------------------


def test_no_page_has_headings_labels_roles_or_buttons(
    portal: PortalServer, client: SellerClient
) -> None:
    pages = {"/": client.page("/"), "/login": client.page("/login")}
    assert tips(client.login("demo_seller", "nope").text, "error") == ["用户名或密码错误"]
    client.login("demo_seller", "demo-pass")
    unpaid, paid = first(portal, "等待买家付款"), first(portal, "待发货")
    for path in ("/mydh", "/orders", detail_of(unpaid), detail_of(paid)):
        pages[path] = client.page(path)
    pages["after cancel"] = cancel(client, paid)
    pages["refused"] = cancel(client, paid)
    pages["404"] = client.get("/orders/detail/" + "0" * 32).text
    portal.set_faults(error_rates={"home": 1.0})
    pages["500"] = client.get("/mydh").text
    portal.set_faults(captcha=True)
    with SellerClient(portal.url) as other:
        pages["captcha"] = other.page("/login")
    for name, page in pages.items():
        assert not ACCESSIBLE_MARKUP.search(page), (name, ACCESSIBLE_MARKUP.search(page))
        assert "<title>" in page and 'href="/static/legacy.css"' in page, name
    assert '<div class="title">页面不存在</div>' in pages["404"]
    assert '<div class="title">系统繁忙</div>' in pages["500"]
    assert "请拖动滑块完成拼图" in pages["captcha"] and "data-knob" in pages["captcha"]


def test_login_page_is_a_table_with_text_before_the_inputs(client: SellerClient) -> None:
    page = client.page("/login")
    assert re.search(r'<td>用户名：</td><td><input type="text" name="username"', page)
    assert re.search(r'<td>密码：</td><td><input type="password" name="password"', page)
    assert re.search(r'<input type="submit" value="登 录" class="btn"', page)
    assert links(page)["登录"] == "/login" and links(page)["我的DHgate"] == "/mydh"
    assert "退出" not in links(page)
    response = client.login("demo_seller", "demo-pass")
    assert response.status_code == 303 and response.headers["location"] == "/mydh"
    home = client.page("/mydh")
    assert links(home)["退出"] == "/logout" and "登录" not in links(home)


def test_captcha_is_required_after_failures_as_in_v1(client: SellerClient) -> None:
    for _ in range(4):
        assert tips(client.login("demo_seller", "nope").text, "error") == ["用户名或密码错误"]
    fifth = client.login("demo_seller", "nope").text
    assert "请拖动滑块完成拼图" in fifth and 'src="/static/portal.js"' in fifth
    refused = client.login("demo_seller", "demo-pass")
    assert refused.status_code == 200
    assert tips(refused.text, "error") == ["请完成滑块验证"]
    token = re.search(r'data-token="([^"]+)"', refused.text)
    assert token
    assert client.login("demo_seller", "demo-pass", captcha=token.group(1)).status_code == 303


def test_mydh_hides_my_orders_inside_the_trade_group(seller: SellerClient) -> None:
    page = seller.page("/mydh")
    assert '<div class="title">我的摘要</div>' in page
    groups = dict(
        re.findall(
            r'<div class="menu-group"><span class="menu-title">(.*?)</span>\s*'
            r'<ul class="sub">(.*?)</ul>\s*</div>',
            page,
            re.S,
        )
    )
    assert list(groups) == ["产品", "交易", "推广营销", "资金账户"]
    assert '<li><a href="/orders">我的订单</a></li>' in groups["交易"]
    assert page.count("我的订单") == 1
    assert page.count('href="/orders') == 1  # no other way to the order list


# -- the order list --------------------------------------------------------------------------


def test_order_rows_travel_only_as_inline_json(portal: PortalServer, seller: SellerClient) -> None:
    page = seller.page("/orders")
    assert re.search(r'<table class="list-table" id="orderTable">.*?<tbody></tbody>', page, re.S)
    assert (
        '<div class="no-data" id="emptyTip" style="display:none">'
        "您暂时没有符合条件的订单，请更改条件后重试。</div>"
    ) in page
    data = order_data(page)
    assert data["page_no"] == 1 and data["delay_ms"] == 300
    assert len(data["rows"]) == 20
    mine = portal.orders(account="demo_seller")
    assert data["pages"] == -(-len(mine) // 20) and data["total"] == len(mine)
    markup = ORDER_DATA_RE.sub("", page)
    for row in data["rows"]:
        assert row["order_no"] not in markup and row["id"] not in markup
    by_no = {o["order_no"]: o for o in mine}
    newest = max(mine, key=lambda o: int(o["order_no"]))
    assert data["rows"][0]["order_no"] == newest["order_no"]
    for row in data["rows"]:
        assert row["status"] == by_no[row["order_no"]]["status"]  # the legacy names
        assert row["id"] == by_no[row["order_no"]]["internal_id"]
        assert row["amount"].startswith("US $")


def test_search_tabs_and_the_hidden_paging_form(portal: PortalServer, seller: SellerClient) -> None:
    page = seller.page("/orders")
    assert re.search(
        r'<form id="searchForm" method="get" action="/orders"><table><tr>'
        r'<td>订单号：<input type="text" name="order_no" value=""[^>]*></td>'
        r'<td>买家名称：<input type="text" name="buyer_name"[^>]*></td>'
        r'<td><a href="javascript:;" class="btn" id="searchBtn">搜 索</a></td>',
        re.sub(r">\s+<", "><", page),
    )
    tab_bar = re.search(r'<div class="tabs">(.*?)</div>', page, re.S)
    assert tab_bar
    tabs = dict(re.findall(r'<a href="(/orders[^"]*)"[^>]*>([^<]+)</a>', tab_bar.group(1)))
    assert list(tabs.values()) == [
        "全部订单",
        "未付款订单",
        "待发货订单",
        "已发货订单",
        "90天内交易完成",
        "90天内交易取消",
    ]
    expected = {
        "未付款订单": {"等待买家付款"},
        "待发货订单": {"等待您发货"},
        "已发货订单": {"等待买家确认收货"},
        "90天内交易完成": {"交易成功"},
        "90天内交易取消": {"订单取消", "交易关闭"},
    }
    for href, text in tabs.items():
        if text in expected:
            tab = seller.page(html.unescape(href))
            assert {r["status"] for r in order_data(tab)["rows"]} == expected[text], text
            assert re.search(r'<a href="[^"]*" class="cur">' + text, tab)

    order = first(portal, "待发货")
    found = seller.page(f"/orders?order_no={order['order_no']}")
    assert [r["order_no"] for r in order_data(found)["rows"]] == [order["order_no"]]
    paging = re.search(
        r'<form id="pageForm" method="get" action="/orders">(.*?)</form>', found, re.S
    )
    assert paging
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', paging.group(1)))
    assert hidden["order_no"] == order["order_no"] and hidden["page"] == ""
    assert found.count('name="order_no"') == 2  # the search field and its hidden twin

    second = order_data(seller.page("/orders?status=awaiting_shipment&page=2"))
    assert second["page_no"] == 2 and second["rows"]
    assert {r["status"] for r in second["rows"]} == {"等待您发货"}
    buyer = order_data(seller.page("/orders?buyer_name=john smith"))["rows"]
    assert buyer and {r["buyer"] for r in buyer} == {"John Smith"}
    assert order_data(seller.page("/orders?order_no=0000000"))["rows"] == []


# -- the detail page and cancelling ----------------------------------------------------------


def test_detail_fields_and_the_cancel_entry(portal: PortalServer, seller: SellerClient) -> None:
    unpaid, paid = first(portal, "等待买家付款"), first(portal, "待发货")
    page = seller.page(detail_of(paid))
    fields = info(page)
    assert fields["订单号："] == paid["order_no"]
    assert fields["订单状态："] == "等待您发货"
    assert '<li>订单状态：<span class="red">等待您发货</span></li>' in page
    for key in ("下单日期：", "付款日期：", "买家名称："):
        assert fields[key] and fields[key] != "—"
    assert re.fullmatch(r"US \$\d+\.\d\d", fields["实付金额："])
    assert '<a href="javascript:;" class="btn" id="cancelBtn">申请退款</a>' in page
    assert '<div class="pop-title">申请退款</div>' in page
    assert f'data-confirm="{PAID_CONFIRM}"' in html.unescape(page)
    items = re.findall(r'<li data-value="(\w+)">(.*?)</li>', page)
    assert items == [
        ("out_of_stock", "缺货"),
        ("price_error", "价格设置错误"),
        ("buyer_request", "买家要求取消"),
        ("undeliverable", "无法配送至买家地址"),
        ("other", "其他"),
    ]
    assert '<input type="hidden" name="reason" value="" />' in page
    assert '<textarea name="note" maxlength="500"' in page
    assert "联系买家" not in page
    assert seller.get(detail_of(paid) + "/message").status_code == 404

    unpaid_page = seller.page(detail_of(unpaid))
    assert info(unpaid_page)["付款日期："] == "—"
    assert '<a href="javascript:;" class="btn" id="cancelBtn">取消订单</a>' in unpaid_page
    assert '<div class="pop-title">取消订单</div>' in unpaid_page
    shipped = seller.page(detail_of(first(portal, "已发货")))
    assert info(shipped)["订单状态："] == "等待买家确认收货"
    assert "cancelBtn" not in shipped and "cancelMask" not in shipped


def test_unpaid_order_closes_at_once_without_fine(
    portal: PortalServer, seller: SellerClient
) -> None:
    order = first(portal, "等待买家付款")
    page = cancel(seller, order, "buyer_request", "买家不想要了")
    assert tips(page, "success") == ["交易已关闭"] and tips(page, "error") == []
    fields = info(page)
    assert fields["订单状态："] == "交易关闭"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["交易取消日期："])
    assert "违约金：" not in fields and "cancelBtn" not in page
    assert [o["order_no"] for o in portal.orders(status="交易关闭")].count(order["order_no"]) == 1
    (logged,) = portal.cancel_requests()
    assert logged["order_no"] == order["order_no"] and logged["account"] == "demo_seller"
    assert logged["reason"] == "买家要求取消" and logged["note"] == "买家不想要了"
    assert logged["accepted"] is True
    # the notice is shown once
    assert tips(seller.page(detail_of(order)), "success") == []


def test_paid_order_is_cancelled_at_once_with_the_fine(
    portal: PortalServer, seller: SellerClient
) -> None:
    order = first(portal, "待发货")
    amount = info(seller.page(detail_of(order)))["实付金额："]
    page = cancel(seller, order, "out_of_stock", "仓库断货")
    fine = fine_for(amount)
    assert tips(page, "success") == [f"订单已取消，已扣除违约金{fine}"]
    fields = info(page)
    assert fields["订单状态："] == "订单取消"
    assert fields["违约金："] == fine and fields["退款金额："] == amount
    assert fields["交易取消日期："] and fields["审核结果："] == "审核通过"
    assert fields["取消原因："] == "缺货" and fields["详细说明："] == "仓库断货"
    assert any(o["order_no"] == order["order_no"] for o in portal.orders(status="订单取消"))
    assert [r["accepted"] for r in portal.cancel_requests()] == [True]
    # no review step: the platform has nothing to decide
    review = portal.admin.post(f"__admin/reviews/{order['order_no']}", json={"decision": "approve"})
    assert review.status_code == 409
    again = cancel(seller, order)
    assert tips(again, "error") == ["该订单已提交取消申请，请勿重复提交"]
    assert [r["accepted"] for r in portal.cancel_requests()] == [True, False]


@pytest.mark.parametrize(
    ("status", "reason", "note", "error"),
    [
        ("已发货", "out_of_stock", "", "该订单当前状态不可取消"),
        ("交易成功", "out_of_stock", "", "该订单当前状态不可取消"),
        ("取消审核中", "out_of_stock", "", "该订单已提交取消申请，请勿重复提交"),
        ("已取消", "out_of_stock", "", "该订单已提交取消申请，请勿重复提交"),
        ("待发货", "", "", "请选择取消原因"),
        ("待发货", "other", "  ", "请填写详细说明"),
    ],
)
def test_refusals(
    portal: PortalServer, seller: SellerClient, status: str, reason: str, note: str, error: str
) -> None:
    order = first(portal, status)
    before = info(seller.page(detail_of(order)))["订单状态："]
    page = cancel(seller, order, reason, note)
    assert tips(page, "error") == [error] and tips(page, "success") == []
    assert info(page)["订单状态："] == before
    (logged,) = portal.cancel_requests()
    assert logged["accepted"] is False and logged["order_no"] == order["order_no"]


@pytest.mark.parametrize("layout", ["legacy", "v1"])
def test_insufficient_funds_refuses_paid_orders_only(
    portal: PortalServer, seller: SellerClient, layout: str
) -> None:
    portal.set_faults(layout=layout, insufficient_funds=True)
    paid, unpaid = first(portal, "待发货"), first(portal, "等待买家付款")
    page = cancel(seller, paid, "out_of_stock", "缺货")
    refusal = "资金账户余额不足，无法支付违约金，取消失败"
    if layout == "legacy":
        assert tips(page, "error") == [refusal]
        assert info(page)["订单状态："] == "等待您发货" and "cancelBtn" in page
    else:
        assert by_role(page, "alert") == [refusal]
    assert paid in portal.orders(status="待发货")
    closed = cancel(seller, unpaid)
    assert (tips(closed, "success") if layout == "legacy" else by_role(closed, "status")) == [
        "交易已关闭" if layout == "legacy" else "订单已取消"
    ]
    assert [r["accepted"] for r in portal.cancel_requests()] == [False, True]


def test_commit_then_fail_commits_then_shows_500(
    portal: PortalServer, seller: SellerClient
) -> None:
    portal.set_faults(commit_then_fail=1.0)
    order = first(portal, "待发货")
    response = seller.post_form(f"{detail_of(order)}/cancel", {"reason": "out_of_stock"})
    assert response.status_code == 500
    assert '<div class="title">系统繁忙</div>' in response.text
    assert "服务器内部错误，请稍后再试。" in text_of(response.text)
    assert [r["accepted"] for r in portal.cancel_requests()] == [True]
    assert any(o["order_no"] == order["order_no"] for o in portal.orders(status="订单取消"))
    page = seller.page(detail_of(order))
    assert tips(page, "success") == [] and info(page)["订单状态："] == "订单取消"


def test_commit_then_fail_drop(portal: PortalServer, seller: SellerClient) -> None:
    portal.set_faults(commit_then_fail=1.0, commit_then_fail_mode="drop")
    order = first(portal, "等待买家付款")
    with pytest.raises(httpx.TransportError):
        seller.post_form(f"{detail_of(order)}/cancel", {"reason": "out_of_stock"})
    assert [r["accepted"] for r in portal.cancel_requests()] == [True]
    assert any(o["order_no"] == order["order_no"] for o in portal.orders(status="交易关闭"))


def test_platform_review_of_a_pending_order_answers_in_legacy_names(
    portal: PortalServer, seller: SellerClient
) -> None:
    pending = first(portal, "等待平台审核")
    assert pending["status"] == "等待平台审核"
    assert "cancelBtn" not in seller.page(detail_of(pending))
    assert portal.review(pending["order_no"], "reject", "请尽快发货")["status"] == "等待您发货"
    page = seller.page(detail_of(pending))
    fields = info(page)
    assert fields["订单状态："] == "等待您发货"
    assert fields["审核结果："] == "审核未通过" and fields["审核意见："] == "请尽快发货"
    assert '<a href="javascript:;" class="btn" id="cancelBtn">申请退款</a>' in page
    # a tab named by its internal status is the same tab
    by_name = seller.page("/orders?status=待发货")
    assert re.search(r'<a href="/orders\?status=awaiting_shipment" class="cur">待发货订单', by_name)
    assert order_data(by_name) == order_data(seller.page("/orders?status=awaiting_shipment"))
