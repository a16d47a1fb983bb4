"""The locator grammar of portal profiles, and the one place that turns it into Playwright
locators.

A profile key that names an element holds either plain text or a mapping:

    搜索                                   plain text, read by the key's kind (see `Kind`)
    {role: button, name: 搜 索}            role and accessible name (or name_regex)
    {label: 订单号} / {placeholder: …}     a form field by its label or placeholder
    {text: 您暂时没有符合条件的订单}        an element by its visible text (a substring)
    {css: "div.mask"} / {xpath: "…"}       selectors, where the page offers nothing better
    {css: ".menu-title", text: 交易}        a selector's matches that show a text
    {near: 订单号：}                        the input or control that follows a visible text
    {…, within: <locator>}                 inside a container, itself a locator
    {…, frame: {css|name|url: …}}          inside an iframe
    {…, nth: 0}                            one of several matches (0 first, -1 last)
    {any: [<locator>, <locator>, …]}       alternatives: the first one visible wins

Visible text is compared with whitespace removed, so `搜 索`, `搜索` and `搜  索` match each
other, and a label's trailing colon (`订单号：`) is optional.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

# How plain text is read for a key:
#   clickable  what a person would call a button or a link: <button>, <input type=submit|
#              button>, <a> (styled as a button or not), anything with role=button
#   field      a form control by its <label>, or the control after the text (near)
#   text       an element showing the text
#   heading    a heading with that name
#   dialog     a dialog with that name (role=dialog); legacy modals need `css`
Kind = Literal["clickable", "field", "text", "heading", "dialog"]

if TYPE_CHECKING:  # loading a profile needs no browser library
    from playwright.async_api import Frame, FrameLocator, Locator, Page

Root: TypeAlias = "Page | Frame | Locator | FrameLocator"

_WHAT = ("role", "label", "text", "placeholder", "css", "xpath", "near")
_SPACES = " \t\n\r\u00a0\u3000"
_COLONS = ":："
# What "the control after a text" may be: anything a person types into or chooses from.
_CONTROL = ("self::input[not(@type='hidden')] or self::select or self::textarea"
            " or self::button or @role='combobox' or @role='listbox' or @role='textbox'"
            " or @contenteditable='true'")


class FrameSpec(BaseModel):
    """An iframe, by exactly one of: css selector, name attribute, part of its URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    css: str | None = None
    name: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one(self) -> FrameSpec:
        given = [k for k in ("css", "name", "url") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a frame is found by exactly one of css, name or url")
        return self

    def selector(self) -> str:
        """The CSS selector of the iframe element."""
        if self.css:
            return self.css
        if self.name:
            return f'iframe[name="{_css_string(self.name)}"]'
        return f'iframe[src*="{_css_string(self.url or "")}"]'


class LocatorSpec(BaseModel):
    """One way to find an element (see the module docstring for the grammar)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str | None = None
    name: str | None = None
    name_regex: str | None = None
    label: str | None = None
    text: str | None = None
    placeholder: str | None = None
    css: str | None = None
    xpath: str | None = None
    near: str | None = None
    within: LocField | None = None
    frame: FrameSpec | None = None
    nth: int | None = None
    any: list[LocField] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_way(self) -> LocatorSpec:
        given = [k for k in _WHAT if getattr(self, k) is not None]
        if self.text is not None and (self.css is not None or self.xpath is not None):
            given.remove("text")  # with a selector, text filters its matches
        if self.any is not None:
            if given or self.within or self.frame or self.nth is not None:
                raise ValueError("`any` lists whole alternatives; put within/frame/nth inside "
                                 "each alternative")
            return self
        if (self.name is not None or self.name_regex is not None) and self.role is None:
            raise ValueError("name and name_regex go with role")
        if len(given) != 1:
            shown = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of {', '.join(_WHAT)} (or any: [...]); "
                             f"got {shown}")
        if self.name is not None and self.name_regex is not None:
            raise ValueError("give name or name_regex, not both")
        if self.name_regex is not None:
            try:
                re.compile(self.name_regex)
            except re.error as exc:
                raise ValueError(f"name_regex is not a regular expression: {exc}") from exc
        return self

    def describe(self) -> str:
        """The spec as a person wrote it, for messages."""
        if self.any is not None:
            return " | ".join(alt.describe() for alt in self.any)
        parts = []
        for key in (*_WHAT, "name", "name_regex"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key}={value}")
        if self.nth is not None:
            parts.append(f"nth={self.nth}")
        text = ", ".join(parts)
        if self.within is not None:
            text += f" within ({self.within.describe()})"
        if self.frame is not None:
            text += f" in frame {self.frame.selector()}"
        return text


class PlainText(BaseModel):
    """A key given as plain text: its kind decides how it is found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text_plain: str

    def describe(self) -> str:
        """The text as written."""
        return self.text_plain


Loc = PlainText | LocatorSpec


def parse(value: Any) -> Loc:
    """A locator from a profile value (plain text or mapping); ValueError says what is wrong."""
    if isinstance(value, PlainText | LocatorSpec):
        return value
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("empty text: write the words as the portal shows them, or null "
                             "if the portal has no such element")
        return PlainText(text_plain=value)
    if not isinstance(value, dict):
        raise ValueError("a locator is plain text or a mapping such as {css: ...}, "
                         f"not {type(value).__name__}")
    try:
        return LocatorSpec.model_validate(value)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = (f"unknown locator key (known: {', '.join(_WHAT)}, name, name_regex, "
                       "within, frame, nth, any)")
            problems.append(f"{where}: {msg}" if where else msg)
        raise ValueError("; ".join(problems)) from None


# A profile value that names an element: plain text or a locator mapping.
LocField = Annotated[Loc, BeforeValidator(parse)]
LocatorSpec.model_rebuild()


def describe(spec: Loc | None) -> str:
    """How a key is written in the profile, for messages and `dhbot check`."""
    return "null (the portal has none)" if spec is None else spec.describe()


# --- text matching ----------------------------------------------------------------------

def squeeze(text: str) -> str:
    """Visible text without any whitespace, for comparing what the portal shows."""
    return re.sub(r"\s+", "", text.replace("\u3000", " "))


def text_pattern(text: str, *, exact: bool = True, colon: bool = False) -> re.Pattern[str]:
    """A pattern matching `text` with any whitespace between its characters.

    `colon` makes a trailing ':' or '：' optional (labels are written either way).
    """
    core = squeeze(text)
    if colon:
        core = core.rstrip(_COLONS)
    body = r"\s*".join(re.escape(c) for c in core)
    if colon:
        body += r"\s*[:：]?"
    return re.compile(rf"^\s*{body}\s*$" if exact else body)


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = text.split("'")
    return "concat(" + ", \"'\", ".join(f"'{p}'" for p in parts) + ")"


def _css_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def near_xpath(text: str) -> str:
    """XPath of the first control inside or after the element whose own text is `text`."""
    core = squeeze(text).rstrip(_COLONS)
    squeezed = f"translate(., {_xpath_literal(_SPACES)}, '')"
    cond = " or ".join(f"{squeezed}={_xpath_literal(core + c)}" for c in ("", "：", ":"))
    anchor = f".//*[text()[{cond}]]"
    return f"({anchor}//*[{_CONTROL}] | {anchor}/following::*[{_CONTROL}])[1]"


# --- building -----------------------------------------------------------------------------

def build(root: Root, spec: Loc, kind: Kind) -> list[Locator]:
    """The Playwright locators of a spec: one per alternative, in the profile's order."""
    if isinstance(spec, PlainText):
        return _plain(root, spec.text_plain, kind)
    if spec.any is not None:
        out: list[Locator] = []
        for alt in spec.any:
            out.extend(build(root, alt, kind))
        return out
    scope: Root = root
    if spec.frame is not None:
        scope = scope.frame_locator(spec.frame.selector())
    if spec.within is not None:
        containers = build(scope, spec.within, "text")
        scope = _either(containers)
    loc = _one(scope, spec)
    if spec.nth is not None:
        loc = loc.nth(spec.nth)
    return [loc]


def _plain(root: Root, text: str, kind: Kind) -> list[Locator]:
    # Alternatives in order of preference: a real button before a link of the same words
    # (a 登录 link at the top and the form's 登录 button), a <label> before nearby text.
    if kind == "clickable":
        name = text_pattern(text)
        return [root.get_by_role("button", name=name), root.get_by_role("link", name=name)]
    if kind == "field":
        return [root.get_by_label(text_pattern(text, colon=True)),
                root.locator(f"xpath={near_xpath(text)}")]
    if kind == "heading":
        return [root.get_by_role("heading", name=text_pattern(text))]
    if kind == "dialog":
        return [root.get_by_role("dialog", name=text_pattern(text))]
    return [root.get_by_text(text_pattern(text, exact=False))]


def _one(root: Root, spec: LocatorSpec) -> Locator:
    if spec.role is not None:
        name: str | re.Pattern[str] | None = None
        if spec.name is not None:
            name = text_pattern(spec.name)
        elif spec.name_regex is not None:
            name = re.compile(spec.name_regex)
        if name is None:
            return root.get_by_role(spec.role)  # type: ignore[arg-type]
        return root.get_by_role(spec.role, name=name)  # type: ignore[arg-type]
    if spec.label is not None:
        return root.get_by_label(text_pattern(spec.label, colon=True))
    if spec.placeholder is not None:
        return root.get_by_placeholder(text_pattern(spec.placeholder))
    if spec.css is not None or spec.xpath is not None:
        found = root.locator(spec.css if spec.css is not None else f"xpath={spec.xpath}")
        if spec.text is not None:
            found = found.filter(has_text=text_pattern(spec.text, exact=False))
        return found
    if spec.text is not None:
        return root.get_by_text(text_pattern(spec.text, exact=False))
    assert spec.near is not None
    return root.locator(f"xpath={near_xpath(spec.near)}")


def _either(locators: Sequence[Locator]) -> Locator:
    combined = locators[0]
    for loc in locators[1:]:
        combined = combined.or_(loc)
    return combined


class Target:
    """One profile key, built for one tab: what to wait for, count, and act on."""

    def __init__(self, key: str, spec: Loc, kind: Kind, root: Root) -> None:
        self.key = key
        self.spec = spec
        self.kind = kind
        self.alternatives = build(root, spec, kind)

    @property
    def looked_for(self) -> str:
        """The key's value as written in the profile."""
        return describe(self.spec)

    @property
    def anything(self) -> Locator:
        """Every match of every alternative (for counting and waiting)."""
        return _either(self.alternatives)

    @property
    def shown(self) -> Locator:
        """The visible matches of every alternative."""
        return _either([alt.filter(visible=True) for alt in self.alternatives])

    async def wait_shown(self, timeout_ms: float) -> None:
        """Wait until some alternative shows a visible match (Playwright's TimeoutError)."""
        await self.shown.first.wait_for(state="visible", timeout=timeout_ms)

    async def pick(self) -> tuple[Locator | None, int]:
        """The first alternative, in profile order, with visible matches, and their count."""
        for alt in self.alternatives:
            shown = alt.filter(visible=True)
            count = await shown.count()
            if count:
                return shown, count
        return None, 0
