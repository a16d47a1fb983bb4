"""Shared fixtures: a clean environment and a Chromium the machine has."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from bot.browser import find_chromium, launch_args


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Keep the developer's DHBOT_* variables out of every test."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("DHBOT_")}
    for key in saved:
        del os.environ[key]
    yield
    for key in [k for k in os.environ if k.startswith("DHBOT_")]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches the same Chromium the bot would."""
    args = dict(browser_type_launch_args)
    executable = find_chromium()
    if executable:
        args["executable_path"] = executable
    args["args"] = launch_args()
    return args
