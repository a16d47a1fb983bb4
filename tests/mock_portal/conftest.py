"""Fixtures for the mock portal's own tests: one server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mock_portal.pages import SellerClient
from tests.portal_server import PortalServer

OTHER_ACCOUNT = ("other_seller", "other-pass")


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    """The mock portal with two accounts: demo_seller and other_seller."""
    accounts: Path = tmp_path_factory.mktemp("portal") / "accounts.yaml"
    accounts.write_text(
        f"accounts:\n  - username: {OTHER_ACCOUNT[0]}\n    password: {OTHER_ACCOUNT[1]}\n",
        encoding="utf-8",
    )
    with PortalServer(seed=42, orders=200, accounts_file=accounts) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_portal(portal: PortalServer) -> None:
    """Every test starts from the seeded data, with no sessions, logs or faults."""
    portal.reset()


@pytest.fixture
def client(portal: PortalServer) -> Iterator[SellerClient]:
    """A browser-like HTTP client, signed out."""
    with SellerClient(portal.url) as c:
        yield c


@pytest.fixture
def seller(portal: PortalServer) -> Iterator[SellerClient]:
    """A browser-like HTTP client signed in as demo_seller."""
    with SellerClient(portal.url) as c:
        c.login("demo_seller", "demo-pass")
        yield c
