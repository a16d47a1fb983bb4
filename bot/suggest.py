"""`dhbot check --suggest`: for a profile key the page does not show, the elements it
probably means, and a suggested profile for a person to review.

Deterministic and explainable: candidates are the visible elements of the key's kind
(buttons and links for a clickable key, form controls for a field, …), ranked by how alike
their text is to the profile's (difflib's ratio on the text without spaces), ties broken by
document order. Every candidate says why it was chosen.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from playwright.async_api import Page

from flows.locators import Kind, Loc, LocatorSpec, PlainText, squeeze
from flows.profile import profile_path


class KeyResult(Protocol):
    """How `dhbot check` found one key (bot.check.KeyCheck): what a suggestion builds on."""

    @property
    def key(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def looked_for(self) -> str: ...
    @property
    def shown_as(self) -> str: ...
    @property
    def suggestions(self) -> list[Candidate]: ...

# Candidates below this similarity are not worth a person's time.
MIN_SCORE = 0.3
MAX_CANDIDATES = 3

# Visible elements of a kind, with the text a person would call them by, in document order.
_COLLECT = r"""(kind) => {
    const shown = el => el.checkVisibility && el.checkVisibility();
    const text = el => (el.innerText || el.value || el.getAttribute('aria-label') || '').trim();
    const ownText = el => [...el.childNodes].filter(n => n.nodeType === 3)
        .map(n => n.textContent).join('').trim();
    const before = el => {
        // The text a person reads before a control: its <label>, else the text in front.
        if (el.labels && el.labels.length) return el.labels[0].innerText.trim();
        let node = el.previousSibling;
        while (node) {
            const t = (node.nodeType === 3 ? node.textContent : node.innerText || '').trim();
            if (t) return t;
            node = node.previousSibling;
        }
        return el.parentElement ? ownText(el.parentElement) : '';
    };
    const selectors = {
        clickable: 'a, button, input[type=submit], input[type=button], [role=button]',
        field: 'input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea',
        heading: 'h1, h2, h3, h4, h5, h6, [role=heading], .title',
        dialog: 'dialog, [role=dialog], .mask, .modal, .pop, .dialog',
        text: 'p, div, span, td, li, dd, em, strong, b',
    };
    const out = [];
    for (const el of document.querySelectorAll(selectors[kind] || selectors.text)) {
        if (!shown(el)) continue;
        let said = kind === 'field' ? before(el) : kind === 'text' ? ownText(el) : text(el);
        if (kind === 'dialog') said = said.split('\n')[0];
        if (!said || said.length > 60) continue;
        const a = el.closest('a[href]');
        const button = el.matches('button, input[type=submit], input[type=button], [role=button]')
            || /\b(btn|button)\b/i.test(typeof el.className === 'string' ? el.className : '');
        out.push({text: said, tag: el.tagName.toLowerCase(), href: a ? a.href : '', button});
    }
    return out;
}"""


@dataclass(frozen=True)
class Candidate:
    """An element the page shows that a missing key probably means."""

    text: str
    tag: str
    score: float
    why: str
    href: str = ""


def wanted_text(spec: Loc) -> str | None:
    """The words a locator looks for (None for css/xpath, which carry no words)."""
    if isinstance(spec, PlainText):
        return spec.text_plain
    assert isinstance(spec, LocatorSpec)
    if spec.any is not None:
        return wanted_text(spec.any[0])
    for value in (spec.name, spec.label, spec.text, spec.placeholder, spec.near):
        if value:
            return value
    return None


def rank(wanted: str, found: Sequence[dict[str, Any]], key: str = "") -> list[Candidate]:
    """The closest texts to `wanted`, best first, each with its reason.

    Among equally close texts, a key named `…_button` prefers what looks like a button, a
    navigation step or `…_link` what does not; then document order.
    """
    target = squeeze(wanted)
    want_button: bool | None = True if key.endswith("_button") else (
        False if key.startswith("nav.") or key.endswith("_link") else None)
    best: dict[str, Candidate] = {}
    fits: dict[str, bool] = {}
    for item in found:
        text = item["text"]
        have = squeeze(text)
        if not have:
            continue
        matcher = difflib.SequenceMatcher(None, target, have, autojunk=False)
        score = 1.0 if have == target else round(matcher.ratio(), 2)
        if score < MIN_SCORE:
            continue
        if have == target:
            why = "the same text apart from spaces"
        else:
            shared = "".join(target[b.a:b.a + b.size] for b in matcher.get_matching_blocks())
            why = f"{score:.2f} alike, shares {shared!r}"
        fit = want_button is not None and bool(item.get("button")) == want_button
        if fit:
            why += "; looks like a button" if want_button else "; a link"
        cand = Candidate(text, item.get("tag", ""), score, why, item.get("href", ""))
        if have not in best or (best[have].score, fits[have]) < (score, fit):
            best[have], fits[have] = cand, fit
    ranked = sorted(best, key=lambda have: (-best[have].score, not fits[have]))
    return [best[have] for have in ranked][:MAX_CANDIDATES]


async def candidates(page: Page, key: str, kind: Kind, spec: Loc) -> list[Candidate]:
    """The best candidates on the page for a key that was not found."""
    wanted = wanted_text(spec)
    if wanted is None:
        return []
    found: list[dict[str, Any]] = await page.evaluate(_COLLECT, kind)
    return rank(wanted, found, key)


def prefer_href(found: list[Candidate], url: str, why: str) -> list[Candidate]:
    """Candidates linking to `url` first (e.g. the order list the check reached anyway)."""
    leads = [Candidate(c.text, c.tag, c.score, f"{c.why}; {why}", c.href)
             for c in found if c.href.split("#")[0] == url.split("#")[0]]
    rest = [c for c in found if c.href.split("#")[0] != url.split("#")[0]]
    return leads + rest


def suggested_profile(source: str, results: Sequence[KeyResult]) -> str:
    """The profile file with every suggestion applied, the changes listed at the top."""
    raw: dict[str, Any] = yaml.safe_load(profile_path(source).read_text(encoding="utf-8"))
    notes: list[str] = []
    for result in results:
        new: str | None = None
        why = ""
        if result.status == "missing" and result.suggestions:
            new, why = result.suggestions[0].text, result.suggestions[0].why
        elif result.status == "found" and result.shown_as:
            new, why = result.shown_as, "written as the portal shows it"
        if new is None or not _set(raw, result.key, new):
            continue
        notes.append(f"#   {result.key}: {result.looked_for} -> {new}  ({why})")
    header = [
        "# SUGGESTED by `dhbot check --suggest`: review before use, never used unreviewed.",
        f"# Based on {profile_path(source)}; suggested changes:",
        *(notes or ["#   (none: every key was found, or no candidate was close enough)"]),
        "",
    ]
    body = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False, width=100)
    return "\n".join(header) + body


def _set(raw: dict[str, Any], key: str, text: str) -> bool:
    """Put plain text at a profile key (`nav.to_orders.1` keeps its click/hover)."""
    parts = key.split(".")
    node: Any = raw
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.get(part)
        if node is None:
            return False
    last = parts[-1]
    if isinstance(node, list):
        step = node[int(last)]
        action = "hover" if "hover" in step else "click"
        node[int(last)] = {action: text}
        return True
    if not isinstance(node, dict) or last not in node:
        return False
    node[last] = text
    return True
