"""Cancelling orders, the platform's review, and messages to buyers, over plain HTTP."""

from __future__ import annotations

import re

import pytest

from tests.mock_portal.pages import SellerClient, buttons, by_role, fields, text_of
from tests.portal_server import PortalServer


def first(portal: PortalServer, status: str) -> dict[str, str]:
    return portal.orders(account="demo_seller", status=status)[0]


def cancel(
    seller: SellerClient, order: dict[str, str], reason: str = "out_of_stock", note: str = ""
) -> str:
    """POST the cancel form; follow the redirect back to the detail page and return it."""
    path = f"/orders/detail/{order['internal_id']}"
    response = seller.post_form(f"{path}/cancel", {"reason": reason, "note": note})
    assert response.status_code == 303, response.text[:300]
    assert response.headers["location"] == path
    return seller.page(path)


def test_cancel_unpaid_order_cancels_at_once(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "等待买家付款")
    page = cancel(seller, order, "buyer_request", "买家不想要了")
    assert by_role(page, "status") == ["订单已取消"]
    f = fields(page)
    assert f["订单状态："] == "已取消"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f["交易取消日期："])
    assert "取消订单" not in buttons(page)
    (logged,) = portal.cancel_requests()
    assert logged["order_no"] == order["order_no"] and logged["account"] == "demo_seller"
    assert logged["reason"] == "买家要求取消" and logged["note"] == "买家不想要了"
    assert logged["accepted"] is True and "T" in logged["at"]
    assert (
        portal.orders(status="已取消", account="demo_seller").count({**order, "status": "已取消"})
        == 1
    )
    # the notice is shown once
    assert by_role(seller.page(f"/orders/detail/{order['internal_id']}"), "status") == []


def test_submit_delay_holds_the_request_before_the_order_changes(
    portal: PortalServer, seller: SellerClient
) -> None:
    """submit_delay_ms: the request has left the browser, the portal acts on it only later."""
    import threading
    import time

    order = first(portal, "待发货")
    portal.set_faults(submit_delay_ms=1500)
    started = time.monotonic()
    worker = threading.Thread(target=cancel, args=(seller, order))
    worker.start()
    time.sleep(0.7)
    mid = portal.orders(account="demo_seller", status="取消审核中")
    assert order["order_no"] not in {o["order_no"] for o in mid}, "changed before the delay"
    worker.join(timeout=10)
    assert time.monotonic() - started >= 1.5
    after = portal.orders(account="demo_seller", status="取消审核中")
    assert order["order_no"] in {o["order_no"] for o in after}


def test_cancel_paid_order_goes_to_review_and_duplicates_are_refused(
    portal: PortalServer, seller: SellerClient
) -> None:
    order = first(portal, "待发货")
    page = cancel(seller, order, "out_of_stock", "仓库断货")
    assert by_role(page, "status") == ["取消申请已提交，等待平台审核"]
    assert fields(page)["订单状态："] == "取消审核中"
    assert "取消订单" not in buttons(page)
    again = cancel(seller, order, "out_of_stock", "仓库断货")
    assert by_role(again, "alert") == ["该订单已提交取消申请，请勿重复提交"]
    assert [r["accepted"] for r in portal.cancel_requests()] == [True, False]


def test_cancel_refused_for_shipped_and_cancelled_orders(
    portal: PortalServer, seller: SellerClient
) -> None:
    shipped = cancel(seller, first(portal, "已发货"))
    assert by_role(shipped, "alert") == ["当前订单状态不允许取消"]
    assert fields(shipped)["订单状态："] == "已发货"
    done = cancel(seller, first(portal, "已取消"))
    assert by_role(done, "alert") == ["该订单已提交取消申请，请勿重复提交"]
    assert [r["accepted"] for r in portal.cancel_requests()] == [False, False]


@pytest.mark.parametrize(
    ("reason", "note", "alert"),
    [
        ("", "", "请选择取消原因"),
        ("bogus", "", "请选择取消原因"),
        ("other", "   ", "请填写详细说明"),
        ("out_of_stock", "长" * 501, "详细说明不能超过500个字"),
    ],
)
def test_server_side_validation(
    portal: PortalServer, seller: SellerClient, reason: str, note: str, alert: str
) -> None:
    order = first(portal, "待发货")
    page = cancel(seller, order, reason, note)
    assert by_role(page, "alert") == [alert]
    assert fields(page)["订单状态："] == "待发货"
    (logged,) = portal.cancel_requests()
    assert logged["accepted"] is False


def test_note_of_500_chars_with_crlf_is_accepted(
    portal: PortalServer, seller: SellerClient
) -> None:
    note = "a\r\n" + "b" * 498
    page = cancel(seller, first(portal, "待发货"), "other", note)
    assert by_role(page, "status") == ["取消申请已提交，等待平台审核"]
    assert portal.cancel_requests()[0]["note"] == "a\n" + "b" * 498


def test_note_is_shown_as_plain_text(portal: PortalServer, seller: SellerClient) -> None:
    note = '<script>alert("x")</script> & 缺货'
    page = cancel(seller, first(portal, "待发货"), "other", note)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 缺货" in page
    assert fields(page)["详细说明："] == note


def test_cancel_without_csrf_is_refused_and_not_logged(
    portal: PortalServer, seller: SellerClient
) -> None:
    order = first(portal, "待发货")
    response = seller.http.post(
        f"/orders/detail/{order['internal_id']}/cancel", data={"reason": "out_of_stock"}
    )
    assert response.status_code == 403
    assert portal.cancel_requests() == []


def test_review_approve(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "待发货")
    cancel(seller, order)
    result = portal.review(order["order_no"], "approve", "同意")
    assert result["status"] == "已取消"
    page = seller.page(f"/orders/detail/{order['internal_id']}")
    f = fields(page)
    assert f["订单状态："] == "已取消"
    assert f["审核结果："] == "审核通过"
    assert f["交易取消日期："]
    assert f["退款金额："] == f["实付金额："]
    assert "平台审核通过，订单已取消" in text_of(page)


def test_review_reject(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "待发货")
    cancel(seller, order)
    assert (
        portal.review(order["order_no"], "reject", "买家已付款，请尽快发货")["status"] == "待发货"
    )
    page = seller.page(f"/orders/detail/{order['internal_id']}")
    f = fields(page)
    assert f["订单状态："] == "待发货"
    assert f["审核结果："] == "审核未通过"
    assert f["审核意见："] == "买家已付款，请尽快发货"
    assert "取消订单" in buttons(page)


def test_review_of_order_not_under_review_is_409(portal: PortalServer) -> None:
    order = first(portal, "待发货")
    response = portal.admin.post(
        f"__admin/reviews/{order['order_no']}", json={"decision": "approve"}
    )
    assert response.status_code == 409
    pending = first(portal, "取消审核中")
    bad = portal.admin.post(f"__admin/reviews/{pending['order_no']}", json={"decision": "maybe"})
    assert bad.status_code == 400
    assert portal.review(pending["order_no"], "approve")["status"] == "已取消"


def test_message_to_buyer(portal: PortalServer, seller: SellerClient) -> None:
    order = first(portal, "待发货")
    path = f"/orders/detail/{order['internal_id']}/message"
    form = seller.page(path)
    assert "<h1>联系买家</h1>" in form
    assert '<label for="content">站内信</label>' in form
    assert "发送" in buttons(form)
    response = seller.post_form(path, {"content": "您好，<b>抱歉</b>缺货"})
    assert response.status_code == 303
    page = seller.page(path)
    assert by_role(page, "status") == ["发送成功"]
    assert "&lt;b&gt;抱歉&lt;/b&gt;" in page
    (sent,) = portal.messages()
    assert sent["order_no"] == order["order_no"] and sent["account"] == "demo_seller"
    assert sent["content"] == "您好，<b>抱歉</b>缺货" and sent["at"]


def test_message_rate_limit(portal: PortalServer, seller: SellerClient) -> None:
    portal.set_faults(message_rate_per_minute=2)
    path = f"/orders/detail/{first(portal, '待发货')['internal_id']}/message"
    for _ in range(2):
        assert seller.post_form(path, {"content": "hi"}).status_code == 303
    refused = seller.post_form(path, {"content": "hi"})
    assert by_role(refused.text, "alert") == ["您发送站内信太频繁啦，请稍后发送！"]
    assert len(portal.messages()) == 2
