"""The cancel dialog (取消原因, 详细说明, 提交) and its confirmation (确定)."""

from __future__ import annotations

from playwright.async_api import Locator
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import TransientError
from flows.base_page import PortalPage


class CancelDialog(PortalPage):
    """Choose the reason, write the note, submit and confirm."""

    page_name = "cancel dialog"

    @property
    def dialog(self) -> Locator:
        """The dialog element, by its accessible name."""
        return self.page.get_by_role("dialog", name=self.profile.dialog.name, exact=True)

    async def wait_open(self) -> None:
        """Wait until the dialog is shown.

        No dialog at all after the click usually means the page's script did not load
        (worth a retry); an open dialog under another name means the portal changed.
        """
        try:
            await self.page.locator(self.profile.dialog.open_css).first.wait_for(
                state="visible", timeout=self.element_timeout_ms)
        except PlaywrightTimeoutError as exc:
            raise TransientError("the cancel dialog did not open (the page's script may not "
                                 "have loaded)", step="open dialog", page=self.page_name) from exc
        await self.require(self.dialog, "dialog.name", self.profile.dialog.name, "open dialog")

    async def fill(self, reason_label: str, note: str) -> None:
        """Choose the reason by its label and type the note."""
        labels = self.profile.dialog
        select = await self.require(self.dialog.get_by_label(labels.reason_label, exact=True),
                                    "dialog.reason_label", labels.reason_label, "choose reason")
        await select.select_option(label=reason_label)
        note_box = await self.require(self.dialog.get_by_label(labels.note_label, exact=True),
                                      "dialog.note_label", labels.note_label, "fill note")
        await note_box.fill(note)

    async def submit_and_confirm(self) -> None:
        """Press 提交, then 确定 in the confirmation; the portal answers with a new page."""
        labels = self.profile.dialog
        submit = await self.require(
            self.dialog.get_by_role("button", name=labels.submit_button, exact=True),
            "dialog.submit_button", labels.submit_button, "submit")
        await self.press(submit)()
        confirm_dialog = self.page.get_by_role("dialog", name=labels.confirm_name, exact=True)
        await self.require(confirm_dialog, "dialog.confirm_name", labels.confirm_name,
                           "confirm")
        confirm = await self.require(
            confirm_dialog.get_by_role("button", name=labels.confirm_button, exact=True),
            "dialog.confirm_button", labels.confirm_button, "confirm")
        await self._navigate("confirm", self.press(confirm), safe=False)

    async def validation_error(self) -> str | None:
        """Text of an error the dialog shows after 提交, if any."""
        alert = self.dialog.locator(self.profile.detail.alert_css)
        if await alert.count() == 0 or not await alert.first.is_visible():
            return None
        return (await alert.first.inner_text()).strip() or None
