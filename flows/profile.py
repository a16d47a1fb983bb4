"""The portal profile: every label, selector, reason and status name the flows use.

Keys that name an element take the locator grammar of `flows.locators` (plain text or a
mapping); a key written `null` tells the flows and `dhbot check` that the portal has no such
element. `Profile.elements()` lists every element key with its kind: the page objects build
their locators from it, and `dhbot check` walks the same list.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bot.errors import ProfileError
from bot.inputs import decode_text, load_yaml, read_regular
from flows.locators import Kind, Loc, LocField, squeeze

PROFILES_DIR = Path(__file__).parent / "profiles"

StatusMeaning = Literal[
    "cancellable", "pending_review", "cancelled", "shipped", "completed", "not_cancellable"
]
# What a notice after the cancel submit means:
#   submitted           accepted, waiting for the platform's review
#   cancelled           the order is cancelled
#   duplicate           a cancellation was already asked for
#   refused             the portal will not cancel this order (e.g. 该订单当前状态不可取消)
#   insufficient_funds  the fine cannot be paid from the seller's funds account
NoticeMeaning = Literal["submitted", "cancelled", "duplicate", "refused", "insufficient_funds"]

# The kind of each element key (how plain text is read), by annotation.
Clickable = Annotated[LocField, "clickable"]
Field_ = Annotated[LocField, "field"]
Text = Annotated[LocField, "text"]
Heading = Annotated[LocField, "heading"]
Dialog = Annotated[LocField, "dialog"]
_KINDS: tuple[Kind, ...] = ("clickable", "field", "text", "heading", "dialog")

# Keys of earlier profile versions, and what replaced them (for a clear error).
RENAMED = {
    "nav.my_dhgate": "nav.to_orders (a list of steps)",
    "nav.order_management": "nav.to_orders (a list of steps)",
    "list.table_css": "list.table ({css: ...})",
    "detail.field_term_css": "detail.fields (label: value pairs are found by their labels)",
    "detail.field_value_xpath": "detail.fields",
    "detail.notice_css": "detail.notice ({css: ...})",
    "detail.alert_css": "detail.alert ({css: ...})",
    "dialog.name": "dialog.container",
    "dialog.confirm_name": "dialog.confirm.container",
    "dialog.confirm_button": "dialog.confirm.button",
    "dialog.open_css": "dialog.any_open ({css: ...})",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Section):
    """Paths relative to the portal's base URL."""

    entry: str = "/"
    login: str = "/login"
    cancel_submit_glob: str


class LoginLabels(_Section):
    """Login page."""

    open_link: Clickable | None  # null: the entry page is (or redirects to) the login form
    username_label: Field_
    password_label: Field_
    submit_button: Clickable
    error_text: Text | None
    captcha_text: Text | None
    signed_in_marker: Clickable


class NavStep(_Section):
    """One step towards the order list: click a link, or hover a menu to open it."""

    click: Clickable | None = None
    hover: Clickable | None = None

    @model_validator(mode="after")
    def _one(self) -> NavStep:
        if (self.click is None) == (self.hover is None):
            raise ValueError("a step is either {click: <locator>} or {hover: <locator>}")
        return self

    @property
    def action(self) -> Literal["click", "hover"]:
        """What the step does."""
        return "click" if self.click is not None else "hover"

    @property
    def target(self) -> Loc:
        """What the step acts on."""
        found = self.click if self.click is not None else self.hover
        assert found is not None
        return found


class NavLabels(_Section):
    """The way from the signed-in entry page to the order list, step by step."""

    to_orders: builtins.list[NavStep] = Field(min_length=1)


class HomeLabels(_Section):
    """The page after signing in (我的敦煌, 我的摘要)."""

    heading: Heading | None


class ListLabels(_Section):
    """The order list and its search form."""

    heading: Heading | None
    search_label: Field_
    search_button: Clickable | None  # null: the search form is sent with Enter
    empty_text: Text
    next_page: Clickable | None
    table: Text  # the container of the order rows; each order number is a link in it
    # Shown once the list has drawn its rows or its empty text (default: an order link in
    # `table`, or `empty_text`). Until then the list is not read.
    ready: Text | None = None
    # The header of the column that shows each order's status (e.g. 订单状态), found inside
    # `table`. With it an order's status is read from its row, and the detail page is opened
    # only when that status may be cancellable (or is not in `statuses`). None: every order
    # found is read on its detail page.
    status_column: Text | None = None


class DetailFields(_Section):
    """Field labels of the detail page, as shown (a trailing colon is optional).

    A label is found by its own text; its value is the rest of the same element
    (`<li>订单状态：<span>等待您发货</span></li>`) or else the next element
    (`<dt>…</dt><dd>…</dd>`, `<th>…</th><td>…</td>`).
    """

    within: Text | None = None  # only read fields inside this container
    order_no: str | None
    status: str
    review_result: str | None = None
    review_comment: str | None = None
    cancel_date: str | None = None
    amount: str | None = None  # what the buyer paid (实付金额): the fine is a share of it

    def labels(self) -> dict[str, str]:
        """Field name -> label, for the fields this portal has."""
        return {name: label for name in ("order_no", "status", "review_result",
                                         "review_comment", "cancel_date", "amount")
                if (label := getattr(self, name))}


class FineRule(_Section):
    """What the platform charges the seller for cancelling an order: `rate` of what the
    buyer paid (down to the cent), at least `minimum` and at most `maximum` (in the
    amount's currency), for orders in one of `statuses` (the paid ones; an unpaid order is
    cancelled free)."""

    rate: float = Field(ge=0, le=1)
    minimum: float = Field(0, ge=0)
    maximum: float | None = Field(None, ge=0)
    statuses: builtins.list[str] = Field(min_length=1)

    def estimate(self, status: str, amount: str | None) -> str | None:
        """The fine for an order showing `status` and `amount` (e.g. "US $123.45"), in the
        amount's own notation; "none" when the status is not fined; None when the amount
        is not shown or not a number (unknown)."""
        if squeeze(status) not in {squeeze(s) for s in self.statuses}:
            return "none"
        found = re.search(r"\d[\d,]*(?:\.\d+)?", amount or "")
        if found is None:
            return None
        paid = Decimal(found.group().replace(",", ""))
        fine = max(paid * Decimal(str(self.rate)), Decimal(str(self.minimum)))
        if self.maximum is not None:
            fine = min(fine, Decimal(str(self.maximum)))
        fine = fine.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        assert amount is not None
        return f"{amount[:found.start()]}{fine}{amount[found.end():]}".strip()


class DetailLabels(_Section):
    """Order detail page."""

    heading: Heading | None
    fields: DetailFields
    cancel_button: Clickable
    contact_button: Clickable | None
    notice: Text | None  # the success notice after a redirect
    alert: Text | None  # the error notice after a redirect


class ConfirmLabels(_Section):
    """The confirmation after 提交: the browser's own confirm(), or an in-page dialog."""

    native: bool = False
    container: Dialog | None = None
    button: Clickable | None = None

    @model_validator(mode="after")
    def _shape(self) -> ConfirmLabels:
        if self.native and (self.container is not None or self.button is not None):
            raise ValueError("a native confirm() has no container or button to describe")
        if not self.native and (self.container is None or self.button is None):
            raise ValueError("an in-page confirmation needs container and button "
                             "(or native: true for the browser's confirm())")
        return self


class DialogLabels(_Section):
    """The cancel dialog and its confirmation."""

    container: Dialog  # an in-page modal; legacy ones without ARIA need {css: ...}
    reason_label: Field_  # a <select>, or the control that opens a custom dropdown
    reason_options: Text | None = None  # where a custom dropdown's options appear
    note_label: Field_
    submit_button: Clickable
    error: Text | None = None  # the dialog's own validation message
    confirm: ConfirmLabels | None  # null: 提交 sends the form at once
    # Any open dialog, whatever its name (tells "did not open" from "renamed").
    any_open: Text | None = None


class MessageLabels(_Section):
    """联系买家 message form."""

    heading: Heading | None
    body_label: Field_
    send_button: Clickable
    sent_text: str
    rate_limited_text: str


class ErrorLabels(_Section):
    """Words of the portal's error pages."""

    server_error_text: str
    rate_limited_text: str


# Section -> the page object (page name) that shows its elements.
ELEMENT_SECTIONS = ("login", "nav", "home", "list", "detail", "dialog", "message")


class Profile(_Section):
    """A portal layout: what the flows look for and what the portal's words mean."""

    name: str
    description: str = ""
    paths: Paths
    login: LoginLabels
    nav: NavLabels
    home: HomeLabels
    list: ListLabels
    detail: DetailLabels
    dialog: DialogLabels
    message: MessageLabels | None = None
    errors: ErrorLabels
    reasons: dict[str, str] = Field(min_length=1)
    note_required_for: builtins.list[str] = []
    note_max_length: int = Field(500, gt=0)
    order_no_pattern: str = r"^[0-9]{6,32}$"
    statuses: dict[str, StatusMeaning] = Field(min_length=1)
    notices: dict[str, NoticeMeaning] = {}
    fine: FineRule | None = None  # shown in dry runs; None: the portal charges none
    _elements: dict[str, tuple[Loc | None, Kind]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Index the element keys once; page objects look them up for every locator."""
        self._elements.update((key, (spec, kind)) for key, spec, kind in self.elements())

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [f"{key} is now {new}" for key, new in RENAMED.items()
                   if isinstance(data.get(key.split(".")[0]), dict)
                   and key.split(".")[1] in data[key.split(".")[0]]]
            if old:
                raise ValueError("renamed keys: " + "; ".join(old))
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        unknown = [r for r in self.note_required_for if r not in self.reasons]
        if unknown:
            raise ValueError(f"note_required_for names unknown reasons: {unknown}")
        if self.detail.contact_button is not None and self.message is None:
            raise ValueError("detail.contact_button is set but the message section is missing "
                             "(write message: null and contact_button: null if the portal "
                             "has no 联系买家)")
        try:
            re.compile(self.order_no_pattern)
        except re.error as exc:
            raise ValueError(f"order_no_pattern is not a regular expression: {exc}") from exc
        return self

    @property
    def can_message(self) -> bool:
        """True when the portal has a 联系买家 form the flows can use."""
        return self.detail.contact_button is not None and self.message is not None

    def lists_status(self, status: str) -> bool:
        """True when `statuses` names this status (whitespace ignored)."""
        wanted = squeeze(status)
        return any(squeeze(name) == wanted for name in self.statuses)

    def status_meaning(self, status: str) -> StatusMeaning:
        """What a status name means; a name the profile does not list is not cancellable."""
        wanted = squeeze(status)
        for name, meaning in self.statuses.items():
            if squeeze(name) == wanted:
                return meaning
        return "not_cancellable"

    def notice_meaning(self, *texts: str | None) -> tuple[NoticeMeaning, str] | None:
        """What the first known notice in `texts` means, and which notice it was."""
        shown = squeeze(" ".join(t for t in texts if t))
        for notice, meaning in self.notices.items():
            if squeeze(notice) in shown:
                return meaning, notice
        return None

    def reason_label(self, code: str) -> str:
        """The dropdown label of a reason code."""
        return self.reasons[code]

    def elements(self) -> Iterator[tuple[str, Loc | None, Kind]]:
        """Every key that names an element: (key, locator or None when absent, kind)."""
        for section in ELEMENT_SECTIONS:
            value = getattr(self, section)
            if value is None:
                continue
            yield from _elements(section, value)


def _elements(prefix: str, model: BaseModel) -> Iterator[tuple[str, Loc | None, Kind]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{name}"
        kinds = [m for m in (*info.metadata, *_metadata(info.annotation)) if m in _KINDS]
        if isinstance(value, builtins.list):
            for i, item in enumerate(value):
                if isinstance(item, NavStep):
                    yield f"{key}.{i}", item.target, "clickable"
        elif kinds:
            yield key, value, kinds[0]
        elif isinstance(value, BaseModel):
            yield from _elements(key, value)


def _metadata(annotation: Any) -> tuple[Any, ...]:
    """Annotated metadata of a type, looking inside `X | None`."""
    found: tuple[Any, ...] = getattr(annotation, "__metadata__", ())
    for arg in get_args(annotation):
        found += getattr(arg, "__metadata__", ())
    return found


def element(profile: Profile, key: str) -> tuple[Loc | None, Kind]:
    """The locator and kind of one element key (KeyError if the profile has no such key)."""
    found = profile._elements.get(key)
    if found is None:
        if key.startswith("message.") and profile.message is None:
            return None, "text"
        raise KeyError(key)
    return found


def profile_path(name_or_path: str) -> Path:
    """The file of a bundled profile name (`mock`), or the path itself."""
    path = Path(name_or_path)
    return PROFILES_DIR / f"{name_or_path}.yaml" if not path.suffix else path


def load_profile(name_or_path: str) -> Profile:
    """Load a bundled profile by name (`mock`) or any profile YAML by path."""
    path = profile_path(name_or_path)
    if not path.exists():
        bundled = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ProfileError(f"portal profile {name_or_path!r} not found "
                           f"(bundled: {', '.join(bundled)}; or give a path to a .yaml)")
    text = decode_text(read_regular(path, "portal profile", 1024 * 1024, ProfileError), path,
                       ProfileError)
    raw = load_yaml(text, str(path), ProfileError)
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(f"{path}: {explain(exc)}") from exc


def explain(exc: ValidationError) -> str:
    """Pydantic's errors as `key.path: what is wrong`, one per key, in file order."""
    problems: dict[str, str] = {}
    for err in exc.errors():
        # Union members repeat the key with their own names in the path: keep the key.
        path = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "PlainText",
                                                                     "LocatorSpec"))]
        where = ".".join(path) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "missing (write null if the portal has no such element)"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.setdefault(where, msg)
    return "; ".join(f"{where}: {msg}" for where, msg in problems.items())

