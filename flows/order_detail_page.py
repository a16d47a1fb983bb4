"""订单详情: one order's detail page, where cancelling starts."""

from __future__ import annotations

from dataclasses import dataclass

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


class OrderDetailPage(PortalPage):
    """Read an order's facts and open its cancel dialog or 联系买家."""

    page_name = "order detail"

    async def read(self) -> OrderFacts:
        """Read order number, status, review fields and any notice the page shows."""
        detail = self.profile.detail
        fields = detail.fields
        shown = await self.fields()
        if fields.status not in shown:
            await self.require(self.field_term(fields.status), "detail.fields.status",
                               fields.status, "read status")
            shown = await self.fields()
        return OrderFacts(
            order_no=shown.get(fields.order_no),
            status=shown[fields.status],
            notice=await self._text_of(detail.notice_css),
            alert=await self._text_of(detail.alert_css),
            review_result=shown.get(fields.review_result),
            review_comment=shown.get(fields.review_comment),
            cancel_date=shown.get(fields.cancel_date),
        )

    async def _text_of(self, css: str) -> str | None:
        loc = self.page.locator(css)
        if await loc.count() == 0:
            return None
        text = " ".join(t.strip() for t in await loc.all_inner_texts() if t.strip())
        return text or None

    async def open_cancel_dialog(self) -> CancelDialog:
        """Click 取消订单 and wait for the dialog."""
        detail = self.profile.detail
        button = await self.require(self.button(detail.cancel_button), "detail.cancel_button",
                                    detail.cancel_button, "open cancel dialog")
        await self.press(button)()
        dialog: CancelDialog = self._sibling(CancelDialog)
        await dialog.wait_open()
        return dialog

    async def open_contact(self) -> MessagePage:
        """Click 联系买家 and land on the message form."""
        detail = self.profile.detail
        link = self.page.get_by_role("link", name=detail.contact_button, exact=True).or_(
            self.button(detail.contact_button))
        await self.require(link.first, "detail.contact_button", detail.contact_button,
                           "contact buyer")
        await self._navigate("contact buyer", self.press(link.first))
        page: MessagePage = self._sibling(MessagePage)
        return page
