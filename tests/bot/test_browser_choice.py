"""Which browser a run launches: the configured one, Playwright's own, then the machine's,
with the lighter headless shell first for headless runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import browser


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine whose browsers are files in tmp_path (none installed at first)."""
    monkeypatch.setattr(browser, "HEADLESS_SHELL_CANDIDATES",
                        (str(tmp_path / "chromium-headless-shell"),))
    monkeypatch.setattr(browser, "SYSTEM_CANDIDATES", (str(tmp_path / "chromium"),))
    return tmp_path


def nothing_own() -> str | None:
    return None


def test_headless_runs_prefer_the_headless_shell(machine: Path) -> None:
    (machine / "chromium").touch()
    assert browser.find_chromium(own=nothing_own) == str(machine / "chromium")
    (machine / "chromium-headless-shell").touch()
    assert browser.find_chromium(own=nothing_own) == str(machine / "chromium-headless-shell")
    # Headed runs (dhbot login --headed) need the full browser.
    assert browser.find_chromium(headless=False, own=nothing_own) == str(machine / "chromium")


def test_configured_path_and_playwrights_own_come_first(machine: Path) -> None:
    (machine / "chromium-headless-shell").touch()
    assert browser.find_chromium("/opt/chrome", own=nothing_own) == "/opt/chrome"
    # Playwright's own installed: None lets Playwright pick it (and its own headless shell).
    assert browser.find_chromium(own=lambda: "/ms-playwright/chrome") is None


def test_no_browser_at_all_is_none(machine: Path) -> None:
    assert browser.find_chromium(own=nothing_own) is None
    assert browser.find_chromium(headless=False, own=nothing_own) is None


def test_only_the_headless_shell_leaves_headed_runs_without_a_browser(machine: Path) -> None:
    (machine / "chromium-headless-shell").touch()
    assert browser.find_chromium(headless=False, own=nothing_own) is None
