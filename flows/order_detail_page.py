"""订单详情: one order's detail page, where cancelling starts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import FlowError
from flows.base_page import PortalPage
from flows.cancel_dialog import CancelDialog
from flows.message_page import MessagePage


@dataclass(frozen=True)
class OrderFacts:
    """What the detail page showed; the runner decides what it means."""

    order_no: str | None
    status: str
    notice: str | None = None
    alert: str | None = None
    review_result: str | None = None
    review_comment: str | None = None
    cancel_date: str | None = None
    amount: str | None = None  # what the buyer paid, as shown (e.g. "US $123.45")


class OrderDetailPage(PortalPage):
    """Read an order's facts and open its cancel dialog or 联系买家."""

    page_name = "order detail"

    async def read(self) -> OrderFacts:
        """Read order number, status, review fields and any notice, once the status is shown."""
        shown = await self.fields(wait_for="status")
        return OrderFacts(
            order_no=shown.get("order_no"),
            status=shown["status"],
            notice=await self.texts_of("detail.notice"),
            alert=await self.texts_of("detail.alert"),
            review_result=shown.get("review_result"),
            review_comment=shown.get("review_comment"),
            cancel_date=shown.get("cancel_date"),
            amount=shown.get("amount"),
        )

    async def open_cancel_dialog(self) -> CancelDialog:
        """Click the cancel entry (取消订单, 申请退款, …) and wait for the dialog."""
        button = await self.require("detail.cancel_button", "open cancel dialog")
        await self.press(button)()
        dialog: CancelDialog = self._sibling(CancelDialog)
        await dialog.wait_open()
        return dialog

    async def open_contact(self) -> MessagePage:
        """Click 联系买家 and land on the message form."""
        if not self.profile.can_message:
            raise FlowError(f"the portal profile ({self.profile.name}) has no contact button "
                            "(detail.contact_button is null)",
                            step="contact buyer", page=self.page_name)
        link = await self.require("detail.contact_button", "contact buyer")
        await self._navigate("contact buyer", self.press(link))
        page: MessagePage = self._sibling(MessagePage)
        return page
