"""The cancel dialog (取消原因, 详细说明, 提交) and its confirmation (确定)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from loguru import logger
from playwright.async_api import Dialog, Locator
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from bot.errors import FlowError, ProfileMismatch, TransientError
from flows.base_page import PortalPage
from flows.locators import squeeze, text_pattern

# In a run, the page's confirm() is answered inside the page, not through a browser dialog:
# a dialog stops the renderer that all of an account's tabs share (browser.renderer_processes)
# and clicks that reach the other tabs as it opens are lost (three tabs pressing 提交 within
# milliseconds lost one click in ten; a dropdown click in another tab was lost the same way).
# Armed right before the click, for one call: it answers OK, as the person would, and leaves
# the question in sessionStorage (kept across the page the form leads to) for the log.
_ANSWER_CONFIRM = """button => {
    const w = button.ownerDocument.defaultView;  // the button's window (a frame's, too)
    const real = w.confirm;
    w.confirm = message => {
        w.confirm = real;
        try { w.sessionStorage.setItem('dhbot-confirm', String(message)); } catch (e) {}
        return true;
    };
}"""
_ASKED = """() => { const m = sessionStorage.getItem('dhbot-confirm');
                     sessionStorage.removeItem('dhbot-confirm'); return m; }"""


# While the click on 提交 has not finished, the confirm() it opens may still come: wait this
# many element timeouts for it (a finished click without one is concluded at once).
CLICK_PENDING_FACTOR = 3

# The <option> of a <select> whose text, whitespace removed, is the wanted label.
_OPTION_VALUE = """(select, wanted) => {
    const squeeze = s => (s || '').replace(/[\\s\\u3000]+/g, '');
    const option = [...select.options].find(o => squeeze(o.textContent) === wanted);
    return option ? option.value : null;
}"""


class CancelDialog(PortalPage):
    """Choose the reason, write the note, submit and confirm."""

    page_name = "cancel dialog"
    _click: asyncio.Future[None] | None = None

    def container(self) -> Locator:
        """The open dialog (its visible match)."""
        target = self.target("dialog.container")
        assert target is not None  # required by the profile schema
        return target.shown.first

    async def wait_open(self) -> None:
        """Wait until the dialog is shown.

        No dialog at all after the click usually means the page's script did not load
        (worth a retry); an open dialog under another name means the portal changed.
        """
        any_open = self.target("dialog.any_open")
        if any_open is not None:
            try:
                await any_open.wait_shown(self.element_timeout_ms)
            except PlaywrightTimeoutError as exc:
                raise TransientError("the cancel dialog did not open (the page's script may "
                                     "not have loaded)", step="open dialog",
                                     page=self.page_name, reason="dialog not shown") from exc
        await self.require("dialog.container", "open dialog")

    async def fill(self, reason_label: str, note: str, reason_key: str = "reasons") -> None:
        """Choose the reason by its label (a <select> or a custom dropdown) and type the note.

        A label the portal does not offer (the portal renamed the option) fails at once as
        a ProfileMismatch naming `reason_key`, the profile key that holds the label."""
        dialog = self.container()
        control = await self.require("dialog.reason_label", "choose reason", dialog)
        if await control.evaluate("el => el.tagName") == "SELECT":
            value = await control.evaluate(_OPTION_VALUE, squeeze(reason_label))
            if value is None:
                offered = await control.evaluate(
                    "el => [...el.options].map(o => o.textContent.trim()).filter(t => t)")
                raise ProfileMismatch(f"profile key {reason_key} ({reason_label}): the reason "
                                      f"list offers no such option (it offers "
                                      f"{', '.join(offered) or 'nothing'})",
                                      step="choose reason", page=self.page_name,
                                      key=reason_key, looked_for=reason_label)
            await control.select_option(value=value)
        else:
            await self._choose_custom(control, reason_label, reason_key)
        note_box = await self.require("dialog.note_label", "fill note", dialog)
        await note_box.fill(note)

    async def _choose_custom(self, control: Locator, reason_label: str,
                             reason_key: str) -> None:
        """A custom dropdown: click it open, click the option, check that it took."""
        await control.click()
        options = self.target("dialog.reason_options")
        scope = options.shown.first if options is not None else self.container()
        option = scope.get_by_text(text_pattern(reason_label)).filter(visible=True)
        try:
            await option.first.wait_for(state="visible", timeout=self.element_timeout_ms)
        except PlaywrightTimeoutError as exc:
            raise ProfileMismatch(f"profile key {reason_key} ({reason_label}): the reason "
                                  "dropdown shows no such option", step="choose reason",
                                  page=self.page_name, key=reason_key,
                                  looked_for=reason_label) from exc
        await option.first.click()
        chosen = squeeze(await control.inner_text())
        if squeeze(reason_label) not in chosen:
            raise ProfileMismatch(f"the reason dropdown shows {chosen!r} after choosing "
                                  f"{reason_label}", step="choose reason", page=self.page_name,
                                  key="dialog.reason_label", looked_for=reason_label)

    async def submit_and_confirm(self, before_send: Callable[[], object] = lambda: None
                                 ) -> None:
        """Press 提交, then confirm (确定, or the browser's confirm()); the portal answers
        with a new page. `before_send` runs right before the action that sends the form
        (a distributed worker checks there that it still holds the account)."""
        confirm = self.profile.dialog.confirm
        submit = await self.require("dialog.submit_button", "submit", self.container())
        if confirm is None:
            before_send()
            await self._navigate("submit", self.press(submit), safe=False)
            return
        if confirm.native:
            await self._submit_to_native_confirm(submit, before_send)
            return
        await self.press(submit)()
        box = await self._require_confirm()
        button = await self.require("dialog.confirm.button", "confirm", box)
        before_send()
        await self._navigate("confirm", self.press(button), safe=False)

    async def _submit_to_native_confirm(self, submit: Locator,
                                        before_send: Callable[[], object]) -> None:
        """Press 提交 with the page's confirm() answered OK in the page (see _ANSWER_CONFIRM);
        the form is sent by that click."""
        before_send()  # the last check, right before the click that sends the form
        await submit.evaluate(_ANSWER_CONFIRM)
        try:
            await self._navigate("confirm", self.press(submit), safe=False)
        except TransientError as exc:
            try:
                problem = await self.validation_error()
            except FlowError:  # the page is being replaced: the form went, not refused
                problem = None
            if problem:  # the form was refused before its confirm(): nothing was sent
                raise FlowError(f"the cancel dialog said {problem}", step="submit",
                                page=self.page_name) from exc
            raise
        with contextlib.suppress(PlaywrightError):
            asked = await self.page.evaluate(_ASKED)
            if asked:
                logger.debug("the portal asked {!r}; answered OK", asked)

    async def press_submit_only(self) -> Dialog | Locator:
        """Press 提交 and return the confirmation shown, without confirming (`dhbot check`)."""
        submit = await self.require("dialog.submit_button", "submit", self.container())
        confirm = self.profile.dialog.confirm
        if confirm is not None and confirm.native:
            return await self._native_confirm(submit)
        await self.press(submit)()
        return await self._require_confirm()

    async def _require_confirm(self) -> Locator:
        try:
            return await self.require("dialog.confirm.container", "confirm")
        except ProfileMismatch as exc:
            problem = await self.validation_error()
            if problem:
                raise FlowError(f"the cancel dialog said {problem}", step="submit",
                                page=self.page_name) from exc
            raise

    async def _native_confirm(self, submit: Locator) -> Dialog:
        """Press 提交 and wait for the browser's confirm() it opens.

        The click itself returns only once the confirm() is answered, so it runs beside
        the wait; `settle()` collects it after the answer. A click that has finished
        without a confirm() means the page has none; a click still under way (a loaded
        machine: Playwright has not dispatched it yet) may still open one, so it gets
        CLICK_PENDING_FACTOR times the element timeout before that is concluded.
        """
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[Dialog] = loop.create_future()

        def on_dialog(dialog: Dialog) -> None:
            if not opened.done():
                opened.set_result(dialog)

        self.page.once("dialog", on_dialog)
        click = self._click = asyncio.ensure_future(self.press(submit)())
        limit_s = self.element_timeout_ms / 1000
        either: set[asyncio.Future[Any]] = {opened, click}
        await asyncio.wait(either, timeout=limit_s * CLICK_PENDING_FACTOR,
                           return_when=asyncio.FIRST_COMPLETED)
        if not opened.done() and click.done():
            # The dialog event may trail the end of the click by a moment.
            await asyncio.wait({opened}, timeout=min(limit_s, 1.0))
        if opened.done():
            return opened.result()
        self.page.remove_listener("dialog", on_dialog)  # a late one is dismissed, not sent
        await self.settle()
        problem = await self.validation_error()
        if problem:
            raise FlowError(f"the cancel dialog said {problem}", step="submit",
                            page=self.page_name)
        raise ProfileMismatch("dialog.submit_button opened no confirm() of the browser",
                              step="confirm", page=self.page_name,
                              key="dialog.confirm.native", looked_for="confirm()")

    async def settle(self) -> None:
        """Wait for the click that opened a confirm() (answered by now) to finish."""
        click, self._click = self._click, None
        if click is not None:
            with contextlib.suppress(PlaywrightError):
                await asyncio.wait_for(click, self.element_timeout_ms / 1000)

    async def validation_error(self) -> str | None:
        """Text of an error the dialog shows after 提交, if any."""
        error = self.target("dialog.error", self.container())
        if error is None:
            return None
        texts = [t.strip() for t in await error.shown.all_inner_texts()]
        return " ".join(t for t in texts if t) or None
