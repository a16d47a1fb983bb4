"""The portal profile: every label, selector, reason and status name the flows use."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROFILES_DIR = Path(__file__).parent / "profiles"

StatusMeaning = Literal[
    "cancellable", "pending_review", "cancelled", "shipped", "completed", "not_cancellable"
]
NoticeMeaning = Literal["submitted", "cancelled", "duplicate"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Section):
    """Paths relative to the portal's base URL."""

    entry: str = "/"
    login: str = "/login"
    cancel_submit_glob: str


class LoginLabels(_Section):
    """Login page."""

    open_link: str
    username_label: str
    password_label: str
    submit_button: str
    error_text: str
    captcha_text: str
    signed_in_marker: str


class NavLabels(_Section):
    """Top navigation and the personal-centre menu."""

    my_dhgate: str
    order_management: str


class HomeLabels(_Section):
    """我的敦煌 personal centre."""

    heading: str


class ListLabels(_Section):
    """订单管理 order list."""

    heading: str
    search_label: str
    search_button: str
    empty_text: str
    next_page: str
    table_css: str


class DetailFields(_Section):
    """Field labels on the order detail page."""

    order_no: str
    status: str
    review_result: str
    review_comment: str
    cancel_date: str


class DetailLabels(_Section):
    """Order detail page."""

    heading: str
    field_term_css: str
    field_value_xpath: str
    fields: DetailFields
    cancel_button: str
    contact_button: str
    notice_css: str
    alert_css: str


class DialogLabels(_Section):
    """Cancel dialog and its confirmation."""

    name: str
    reason_label: str
    note_label: str
    submit_button: str
    confirm_name: str
    confirm_button: str
    # Any open dialog, whatever its name (tells "did not open" from "renamed").
    open_css: str = "dialog[open], [role=dialog]"


class MessageLabels(_Section):
    """联系买家 message form."""

    heading: str
    body_label: str
    send_button: str
    sent_text: str
    rate_limited_text: str


class ErrorLabels(_Section):
    """Error pages."""

    server_error_text: str
    rate_limited_text: str


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
    message: MessageLabels
    errors: ErrorLabels
    reasons: dict[str, str] = Field(min_length=1)
    note_required_for: builtins.list[str] = []
    note_max_length: int = Field(500, gt=0)
    order_no_pattern: str = r"^[0-9]{6,32}$"
    statuses: dict[str, StatusMeaning] = Field(min_length=1)
    notices: dict[str, NoticeMeaning] = {}

    @model_validator(mode="after")
    def _reasons_known(self) -> Profile:
        unknown = [r for r in self.note_required_for if r not in self.reasons]
        if unknown:
            raise ValueError(f"note_required_for names unknown reasons: {unknown}")
        return self

    def status_meaning(self, status: str) -> StatusMeaning:
        """What a status name means; a name the profile does not list is not cancellable."""
        return self.statuses.get(status.strip(), "not_cancellable")

    def reason_label(self, code: str) -> str:
        """The dropdown label of a reason code."""
        return self.reasons[code]


class ProfileError(Exception):
    """A profile file is missing or invalid."""


def load_profile(name_or_path: str) -> Profile:
    """Load a bundled profile by name (`mock`) or any profile YAML by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        bundled = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ProfileError(f"portal profile {name_or_path!r} not found "
                           f"(bundled: {', '.join(bundled)}; or give a path to a .yaml)") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ProfileError(f"{path}: {problems}") from exc
