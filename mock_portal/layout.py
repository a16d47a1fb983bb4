"""Page wording per portal layout: v2 is a redesign that renames exactly four labels."""

from __future__ import annotations

from dataclasses import dataclass


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
}
