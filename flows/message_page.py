"""联系买家: the message form to the buyer (站内信)."""

from __future__ import annotations

from enum import StrEnum

from flows.base_page import PortalPage


class MessageResult(StrEnum):
    """What the portal said after 发送."""

    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    UNKNOWN = "unknown"


class MessagePage(PortalPage):
    """Write a message to the buyer and send it."""

    page_name = "contact buyer"

    async def send(self, text: str) -> MessageResult:
        """Type the message and press 发送; report what the portal said."""
        labels = self.profile.message
        assert labels is not None  # the detail page opens this form only when it exists
        box = await self.require("message.body_label", "write message")
        await box.fill(text)
        button = await self.require("message.send_button", "send message")
        await self._navigate("send message", self.press(button))
        if await self.text_visible(labels.rate_limited_text):
            return MessageResult.RATE_LIMITED
        if await self.text_visible(labels.sent_text):
            return MessageResult.SENT
        return MessageResult.UNKNOWN
