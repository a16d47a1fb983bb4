"""The seller pages over plain HTTP: login, sessions, 我的敦煌, the order list and details."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.mock_portal.conftest import OTHER_ACCOUNT
from tests.mock_portal.pages import (
    SellerClient,
    buttons,
    by_role,
    csrf_token,
    fields,
    h1,
    links,
    order_rows,
    text_of,
)
from tests.portal_server import PortalServer

STATUS_TABS = ("等待买家付款", "待发货", "取消审核中", "已发货", "交易成功", "已取消")


def detail_path(portal: PortalServer, order_no: str) -> str:
    (order,) = [o for o in portal.orders() if o["order_no"] == order_no]
    return f"/orders/detail/{order['internal_id']}"


def first(portal: PortalServer, status: str, account: str = "demo_seller") -> dict[str, str]:
    return portal.orders(account=account, status=status)[0]


# -- landing and login ---------------------------------------------------------------------


def test_landing_page_offers_login_top_right(client: SellerClient) -> None:
    page = client.page("/")
    assert "敦煌网" in page and "DHgate" in page and "卖家后台" in page
    assert links(page)["登录"] == "/login"
    assert links(page)["我的敦煌"] == "/mydh"
    assert "退出" not in links(page)


def test_login_page_has_labelled_fields_and_one_login_button_and_link(
    client: SellerClient,
) -> None:
    page = client.page("/login")
    assert '<label for="username">用户名</label>' in page
    assert '<label for="password">密码</label>' in page
    assert re.search(r'<input id="password" name="password" type="password"', page)
    assert csrf_token(page)
    assert [b for b in buttons(page) if "登录" in b] == ["登录"]
    assert len([t for t in re.findall(r"<a [^>]*>(.*?)</a>", page) if "登录" in t]) == 1
    assert "请拖动滑块完成拼图" not in page


def test_login_success_sets_httponly_session_and_goes_to_mydh(client: SellerClient) -> None:
    response = client.login("demo_seller", "demo-pass")
    assert response.status_code == 303
    assert response.headers["location"] == "/mydh"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("DHSESSID="))
    assert "httponly" in cookie.lower()
    page = client.page("/mydh")
    assert "您好，demo_seller" in page
    assert links(page)["退出"] == "/logout"
    # signed in, the landing page sends you to 我的敦煌
    assert client.get("/").headers["location"] == "/mydh"


def test_wrong_password_shows_alert(client: SellerClient) -> None:
    response = client.login("demo_seller", "nope")
    assert response.status_code == 200
    assert by_role(response.text, "alert") == ["用户名或密码错误"]
    assert "DHSESSID" not in client.http.cookies


def test_login_without_or_with_wrong_csrf_is_refused(client: SellerClient) -> None:
    client.get("/login")
    data = {"username": "demo_seller", "password": "demo-pass"}
    for sent in ({}, {"csrf_token": "forged"}):
        response = client.http.post("/login", data={**data, **sent})
        assert response.status_code == 403
        assert "请求已失效，请刷新页面后重试" in response.text


def test_captcha_after_five_failures(client: SellerClient) -> None:
    for _ in range(4):
        assert "请拖动滑块完成拼图" not in client.login("demo_seller", "bad").text
    fifth = client.login("demo_seller", "bad").text
    assert "请拖动滑块完成拼图" in fifth
    refused = client.login("demo_seller", "demo-pass")
    assert by_role(refused.text, "alert") == ["请完成滑块验证"]
    token = re.search(r'data-token="([^"]+)"', refused.text)
    assert token
    ok = client.login("demo_seller", "demo-pass", captcha=token.group(1))
    assert ok.status_code == 303
    # a token works once only
    client.get("/logout")
    assert client.login("other_seller", "other-pass").status_code == 303


def test_captcha_fault_puts_slider_on_every_login(
    portal: PortalServer, client: SellerClient
) -> None:
    portal.set_faults(captcha=True)
    page = client.page("/login")
    assert "请拖动滑块完成拼图" in page
    response = client.login("demo_seller", "demo-pass")
    assert by_role(response.text, "alert") == ["请完成滑块验证"]
    stale = re.search(r'data-token="([^"]+)"', page)
    assert stale
    assert client.login("demo_seller", "demo-pass", captcha=stale.group(1)).status_code == 303


def test_protected_pages_redirect_to_login_with_next(client: SellerClient) -> None:
    response = client.get("/orders?status=待发货&page=2")
    assert response.status_code in (302, 303)
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    target = parse_qs(location.query)["next"][0]
    assert target == "/orders?status=%E5%BE%85%E5%8F%91%E8%B4%A7&page=2"
    back = client.login("demo_seller", "demo-pass", next_path=target)
    assert back.headers["location"] == target
    assert h1(client.page(target)) == "订单管理"


def test_session_expires_after_lifetime(portal: PortalServer, seller: SellerClient) -> None:
    assert seller.get("/mydh").status_code == 200
    portal.set_faults(session_lifetime_s=0)
    response = seller.get("/orders")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Forders"


def test_session_ends_after_its_pages(portal: PortalServer, seller: SellerClient) -> None:
    portal.set_faults(session_max_pages=3)
    assert seller.get("/mydh").status_code == 200
    assert seller.get("/orders").status_code == 200
    assert seller.get("/mydh").status_code == 200
    response = seller.get("/orders")  # the fourth page: the session has ended
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Forders"


def test_login_ignores_next_pointing_elsewhere(client: SellerClient) -> None:
    response = client.login("demo_seller", "demo-pass", next_path="//evil.example/x")
    assert response.headers["location"] == "/mydh"


def test_logout_ends_session(seller: SellerClient) -> None:
    response = seller.get("/logout")
    assert response.headers["location"] == "/"
    assert seller.get("/mydh").status_code == 303
    assert links(seller.page("/"))["登录"] == "/login"


# -- 我的敦煌 and the order list --------------------------------------------------------------


def test_mydh_counts_and_menu(portal: PortalServer, seller: SellerClient) -> None:
    page = seller.page("/mydh")
    assert h1(page) == "我的敦煌"
    menu = re.search(r'<nav class="side-menu" aria-label="个人中心菜单">(.*?)</nav>', page, re.S)
    assert menu
    menu_links = links(menu.group(1))
    assert menu_links["订单管理"] == "/orders"
    assert "商品管理" in menu_links and "资金账户" in menu_links
    for status in ("待发货", "已发货", "取消审核中", "等待买家付款"):
        n = len(portal.orders(account="demo_seller", status=status))
        assert (
            f'<span class="counter-value">{n}</span><span class="counter-label">{status}</span>'
            in page
        )


def test_order_list_tabs_rows_and_paging(portal: PortalServer, seller: SellerClient) -> None:
    mine = portal.orders(account="demo_seller")
    page = seller.page("/orders")
    assert h1(page) == "订单管理"
    tab_links = links(page)
    assert f"全部订单 ({len(mine)})" in tab_links
    for status in STATUS_TABS:
        n = sum(1 for o in mine if o["status"] == status)
        assert f"{status} ({n})" in tab_links
    newest_first = sorted((o["order_no"] for o in mine), reverse=True)
    assert order_rows(page) == newest_first[:20]
    assert '<label for="order_no">订单号</label>' in page
    assert page.count("<label") == 1  # the table header 订单号 is a <th>, not a label
    assert "<th>订单号</th>" in page
    assert "搜索" in buttons(page)
    assert "下一页" in links(page) and "上一页" not in links(page)
    last = seller.page(links(page)["5"])
    assert order_rows(last) == newest_first[80:100]
    assert "下一页" not in links(last) and "上一页" in links(last)


def test_status_tab_filters(portal: PortalServer, seller: SellerClient) -> None:
    pending = {o["order_no"] for o in portal.orders(account="demo_seller", status="待发货")}
    page = seller.page("/orders?status=待发货")
    rows = order_rows(page)
    assert len(rows) == 20 and set(rows) <= pending
    assert 'aria-current="page">待发货 (' in page


def test_search_by_order_number_and_empty_result(
    portal: PortalServer, seller: SellerClient
) -> None:
    order = portal.orders(account="demo_seller")[7]
    page = seller.page(f"/orders?order_no={order['order_no']}")
    assert order_rows(page) == [order["order_no"]]
    assert links(page)[order["order_no"]] == f"/orders/detail/{order['internal_id']}"
    # substring match
    partial = seller.page("/orders?order_no=145595315")
    assert set(order_rows(partial)) == {
        "1455953150",
        "1455953152",
        "1455953154",
        "1455953156",
        "1455953158",
    }
    empty = seller.page("/orders?order_no=9999999999")
    assert "您暂时没有符合条件的订单，请更改条件后重试。" in empty
    assert order_rows(empty) == []
    assert "下一页" not in links(empty)


def test_other_accounts_orders_are_invisible(portal: PortalServer, seller: SellerClient) -> None:
    theirs = first(portal, "待发货", account=OTHER_ACCOUNT[0])
    page = seller.page(f"/orders?order_no={theirs['order_no']}")
    assert "您暂时没有符合条件的订单，请更改条件后重试。" in page
    response = seller.get(f"/orders/detail/{theirs['internal_id']}")
    assert response.status_code == 404
    assert "页面不存在" in response.text


def test_unknown_paths_and_ids_are_404(seller: SellerClient) -> None:
    assert seller.get("/orders/detail/" + "0" * 32).status_code == 404
    response = seller.get("/no/such/page")
    assert response.status_code == 404 and h1(response.text) == "页面不存在"


# -- order detail --------------------------------------------------------------------------


def test_detail_fields_of_a_paid_order(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "待发货")
    assert re.fullmatch(r"[0-9a-f]{32}", order["internal_id"])
    page = seller.page(f"/orders/detail/{order['internal_id']}")
    assert h1(page) == "订单详情"
    f = fields(page)
    assert f["订单号："] == order["order_no"]
    assert f["订单状态："] == "待发货"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f["下单日期："])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f["付款日期："])
    assert f["买家名称："] and f["买家国家："]
    assert re.fullmatch(r"US \$\d+\.\d\d", f["实付金额："])
    assert "取消订单" in buttons(page)
    assert links(page)["联系买家"].endswith("/message")
    assert '<dialog id="cancel-dialog" class="dialog" aria-labelledby="cancel-title">' in page
    assert '<h2 id="cancel-title">取消订单</h2>' in page
    assert '<h2 id="confirm-title">确认取消</h2>' in page
    assert "取消订单将扣除实付金额10%的违约金（最低US $5，最高US $20），确定要取消吗？" in page
    options = re.findall(r'<option value="([^"]*)">([^<]*)</option>', page)
    assert [t for _, t in options] == [
        "请选择",
        "缺货",
        "价格设置错误",
        "买家要求取消",
        "无法配送至买家地址",
        "其他",
    ]
    assert options[0][0] == ""
    assert '<label for="reason">取消原因</label>' in page
    assert '<label for="note">详细说明</label>' in page
    assert 'maxlength="500"' in page
    assert {"提交", "关闭", "确定", "返回"} <= set(buttons(page))


def test_detail_of_unpaid_and_cancelled_orders(portal: PortalServer, seller: SellerClient) -> None:
    unpaid = seller.page(f"/orders/detail/{first(portal, '等待买家付款')['internal_id']}")
    assert fields(unpaid)["付款日期："] == "—"
    assert "取消订单" in buttons(unpaid)
    shipped = seller.page(f"/orders/detail/{first(portal, '已发货')['internal_id']}")
    assert "取消订单" not in buttons(shipped)
    cancelled = seller.page(f"/orders/detail/{first(portal, '已取消')['internal_id']}")
    f = fields(cancelled)
    assert f["订单状态："] == "已取消"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f["交易取消日期："])
    assert 'class="timeline"' in cancelled


def test_data_is_deterministic_per_seed(portal: PortalServer, seller: SellerClient) -> None:
    before = portal.orders()
    page = seller.page(f"/orders/detail/{before[4]['internal_id']}")
    portal.reset(seed=42)
    assert portal.orders() == before
    seller.login("demo_seller", "demo-pass")
    assert text_of(seller.page(f"/orders/detail/{before[4]['internal_id']}")) == text_of(page)
    portal.reset(seed=7, orders=30)
    other = portal.orders()
    assert len(other) == 30 and other[0]["order_no"] == "1455953150"
    assert other[0]["internal_id"] != before[0]["internal_id"]
    statuses = {o["status"] for o in before}
    assert statuses == set(STATUS_TABS)
