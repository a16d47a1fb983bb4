"""What every command starts from: its shared options (--config, -v), the settings and the
portal profile, loaded once, with one way of refusing bad ones (ConfigError, exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.config import LoadedSettings, Settings, load_settings
from bot.log import setup_logging, use_display_zone
from flows.profile import Profile, load_profile

F = TypeVar("F", bound=Callable[..., Any])


def config_options(func: F) -> F:
    """--config and --verbose, shared by every command."""
    func = click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Configuration file (default: $DHBOT_CONFIG or ./config.yaml).")(func)
    func = click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")(func)
    return func


@dataclass(frozen=True)
class Context:
    """The effective settings (with where each value came from) and the portal profile."""

    loaded: LoadedSettings
    profile: Profile

    @property
    def settings(self) -> Settings:
        return self.loaded.settings


def load_context(config_file: Path | None, cli: dict[str, Any] | None = None,
                 verbose: bool = False) -> Context:
    """Set up logging, then load and validate the settings and the profile they name. A bad
    file is a ConfigError (a ProfileError for the profile) naming what is wrong."""
    setup_logging(verbose)
    loaded = load_settings(config_file, cli)
    use_display_zone(loaded.settings.display.timezone)
    return Context(loaded, load_profile(loaded.settings.portal.profile))
