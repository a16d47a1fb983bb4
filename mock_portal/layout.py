"""Page wording per portal layout.

v2 is a redesign that renames exactly four labels. ``legacy`` is built like an old JSP seller
backend with the real DHgate words: its own templates, and its own names for order statuses
(the model keeps its internal names; only pages and the admin API show these).
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_portal.data import (
    AWAITING_SHIPMENT,
    CANCELLED,
    COMPLETED,
    SHIPPED,
    UNDER_REVIEW,
    UNPAID,
    Order,
)

LEGACY = "legacy"


@dataclass(frozen=True)
class Labels:
    """The labels a layout may change; everything else is worded the same in every layout."""

    order_management: str  # menu link in 我的敦煌 and the order list's heading
    search_button: str
    cancel_button: str  # on the detail page; the dialog's title stays 取消订单
    submit_button: str  # in the cancel dialog


LAYOUTS: dict[str, Labels] = {
    "v1": Labels(
        order_management="订单管理",
        search_button="搜索",
        cancel_button="取消订单",
        submit_button="提交",
    ),
    "v2": Labels(
        order_management="我的订单",
        search_button="搜 索",
        cancel_button="申请取消",
        submit_button="提 交",
    ),
    # The legacy templates write their words themselves (the cancel entry reads 取消订单 or
    # 申请退款 depending on the order); these are here so every layout has a Labels.
    LEGACY: Labels(
        order_management="我的订单",
        search_button="搜 索",
        cancel_button="取消订单",
        submit_button="提 交",
    ),
}

# Internal status -> what the legacy pages show. 已取消 depends on payment: see legacy_status.
LEGACY_STATUS_NAMES: dict[str, str] = {
    UNPAID: "等待买家付款",
    AWAITING_SHIPMENT: "等待您发货",
    UNDER_REVIEW: "等待平台审核",
    SHIPPED: "等待买家确认收货",
    COMPLETED: "交易成功",
}
LEGACY_CANCELLED_PAID = "订单取消"
LEGACY_CANCELLED_UNPAID = "交易关闭"


@dataclass(frozen=True)
class Tab:
    """One status tab of the legacy order list: its ``status=`` code, text and status filter."""

    code: str
    text: str
    status: str | None  # internal status; None lists every order


LEGACY_TABS: tuple[Tab, ...] = (
    Tab("", "全部订单", None),
    Tab("unpaid", "未付款订单", UNPAID),
    Tab("awaiting_shipment", "待发货订单", AWAITING_SHIPMENT),
    Tab("shipped", "已发货订单", SHIPPED),
    # "90天内": the sample history spans 60 days, so every order of these statuses qualifies.
    Tab("completed", "90天内交易完成", COMPLETED),
    Tab("cancelled", "90天内交易取消", CANCELLED),
)


def legacy_status(order: Order) -> str:
    """The status name the legacy pages show for ``order``."""
    if order.status == CANCELLED:
        return LEGACY_CANCELLED_PAID if order.paid_at is not None else LEGACY_CANCELLED_UNPAID
    return LEGACY_STATUS_NAMES.get(order.status, order.status)


def shown_status(order: Order, layout: str) -> str:
    """The status name pages of ``layout`` (and the admin API) show for ``order``."""
    return legacy_status(order) if layout == LEGACY else order.status


def status_matches(order: Order, name: str) -> bool:
    """True when ``name`` is the order's internal status or its legacy name (any layout)."""
    return name in (order.status, legacy_status(order))
