"""Every relative link in README.md and docs/*.md reaches a file, and every #anchor a
heading of its target (GitHub's rules: lowercase, punctuation dropped, spaces to hyphens,
repeats numbered)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\][]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def slug(text: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in "_ -"
                   or unicodedata.category(ch).startswith("M"))
    return kept.replace(" ", "-")


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def anchors(path: Path) -> set[str]:
    """Every anchor the page's headings make."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose(path):
        if (match := HEADING.match(line)) is None:
            continue
        name = slug(match.group(2))
        repeat = seen.get(name, 0)
        found.add(name if repeat == 0 else f"{name}-{repeat}")
        seen[name] = repeat + 1
    return found


def test_slugs_follow_githubs_rules() -> None:
    assert slug("Outcomes, exit codes, report.json") == "outcomes-exit-codes-reportjson"
    assert slug("`make bench`: one machine") == "make-bench-one-machine"
    assert slug("中文快速上手：五分钟") == "中文快速上手五分钟"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_reaches_its_file_and_heading(page: Path) -> None:
    broken = []
    for number, line in _prose(page):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:, file:
                continue
            path_part, _, fragment = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            if not dest.exists():
                broken.append(f"{page.name}:{number}: no file {target}")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                broken.append(f"{page.name}:{number}: no heading for #{fragment} in {dest.name}")
    assert broken == []


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300
