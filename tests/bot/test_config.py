"""Configuration layers, their sources, and the errors an operator sees for bad values."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.config import LoadedSettings, cron_trigger, describe, load_settings
from bot.errors import ConfigError


@pytest.fixture(autouse=True)
def no_config_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a file argument the loader looks for ./config.yaml: start where there is none."""
    monkeypatch.chdir(tmp_path)


def write(folder: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(path: Path | None, environ: dict[str, str] | None = None,
         cli: dict[str, object] | None = None) -> LoadedSettings:
    return load_settings(path, dict(cli or {}), dict(environ or {}))


def refused(path: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(path, environ)
    return str(info.value)


# -- layering ------------------------------------------------------------------------------


def test_file_beats_default_env_beats_file_command_line_beats_env(tmp_path: Path) -> None:
    path = write(tmp_path, "browser:\n  headless: false\n  timeout_s: 3\n"
                           "concurrency:\n  pages_per_account: 5\n")

    from_file = load(path)
    assert from_file.settings.browser.headless is False
    assert from_file.settings.browser.timeout_s == 3
    assert from_file.settings.browser.slow_mo_ms == 0  # default
    assert from_file.sources["browser.headless"] == f"file:{path}"

    env = {"DHBOT_BROWSER__HEADLESS": "true", "DHBOT_CONCURRENCY__PAGES_PER_ACCOUNT": "2"}
    from_env = load(path, env)
    assert from_env.settings.browser.headless is True
    assert from_env.settings.concurrency.pages_per_account == 2
    assert from_env.settings.browser.timeout_s == 3  # untouched by env: still the file's
    assert from_env.sources["browser.headless"] == "env:DHBOT_BROWSER__HEADLESS"
    assert from_env.sources["concurrency.pages_per_account"] == (
        "env:DHBOT_CONCURRENCY__PAGES_PER_ACCOUNT")
    assert from_env.sources["browser.timeout_s"] == f"file:{path}"

    from_cli = load(path, env, {"browser.headless": False,
                                "concurrency.pages_per_account": None})
    assert from_cli.settings.browser.headless is False
    assert from_cli.sources["browser.headless"] == "command line"
    # An option the user did not give (None) leaves the env value in place.
    assert from_cli.settings.concurrency.pages_per_account == 2


def test_env_false_turns_headless_off_without_a_file() -> None:
    loaded = load(None, {"DHBOT_BROWSER__HEADLESS": "false"})
    assert loaded.settings.browser.headless is False
    assert loaded.config_file is None


def test_sources_use_full_key_paths_only(tmp_path: Path) -> None:
    path = write(tmp_path, "browser:\n  headless: false\n")
    loaded = load(path, {"DHBOT_BROWSER__TIMEOUT_S": "7"}, {"browser.slow_mo_ms": 5})
    assert loaded.sources == {
        "browser.headless": f"file:{path}",
        "browser.timeout_s": "env:DHBOT_BROWSER__TIMEOUT_S",
        "browser.slow_mo_ms": "command line",
    }


def test_describe_shows_sources_and_never_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  base_url: http://127.0.0.1:9/\n  accounts:\n"
                           "    - {name: main, username: demo_seller, password_env: SHOP_PW}\n")
    loaded = load(path, {"DHBOT_BROWSER__TIMEOUT_S": "4", "SHOP_PW": "hunter2-secret",
                         "DHBOT_PASSWORD_MAIN": "other-secret"},
                  {"concurrency.pages_per_account": 3})
    rows = {key: (value, source) for key, value, source in describe(loaded)}
    assert rows["portal.base_url"] == ("http://127.0.0.1:9/", f"file:{path}")
    assert rows["browser.timeout_s"] == ("4.0", "env:DHBOT_BROWSER__TIMEOUT_S")
    assert rows["concurrency.pages_per_account"] == ("3", "command line")
    assert rows["retry.attempts"] == ("3", "default")
    assert "SHOP_PW" in rows["portal.accounts"][0]  # the variable's name, to explain it
    everything = repr(describe(loaded))
    assert "hunter2-secret" not in everything and "other-secret" not in everything


def test_password_variables_are_not_config_keys() -> None:
    loaded = load(None, {"DHBOT_PASSWORD_MAIN": "x", "DHBOT_PASSWORD_SHOP2": "y",
                         "DHBOT_CONFIG_UNUSED": "z"})
    assert not any("password" in key for key in loaded.sources)
    assert loaded.sources == {}


def test_dhbot_config_selects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "max_orders_per_run: 7\n", name="elsewhere.yaml")
    loaded = load(None, {"DHBOT_CONFIG": str(path)})
    assert loaded.config_file == path
    assert loaded.settings.max_orders_per_run == 7
    assert loaded.sources["max_orders_per_run"] == f"file:{path}"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    write(folder, "paths:\n  state_dir: st\n  runs_dir: /abs/runs\nschedules:\n"
                  "  - {name: hourly, cron: '0 * * * *', inbox: inbox}\n")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    settings = load(Path("conf/config.yaml")).settings
    assert settings.paths.state_dir == folder.resolve() / "st"
    assert settings.paths.runs_dir == Path("/abs/runs")
    assert settings.schedules[0].inbox == folder.resolve() / "inbox"


# -- errors: each names the source, the key path and what was expected ---------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "brwoser:\n  headless: false\n")
    assert f"file:{path}: brwoser: unknown key" in refused(path)


def test_unknown_nested_key(tmp_path: Path) -> None:
    path = write(tmp_path, "browser:\n  headles: false\n")
    assert f"file:{path}: browser.headles: unknown key" in refused(path)


def test_unknown_key_from_env_names_the_variable() -> None:
    message = refused(None, {"DHBOT_BROWSER__HEADLES": "false"})
    assert "env:DHBOT_BROWSER__HEADLES: browser.headles: unknown key" in message


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "browser:\n  timeout_s: soon\n")
    message = refused(path)
    assert f"file:{path}: browser.timeout_s:" in message
    assert "valid number" in message


def test_wrong_type_from_env_names_the_variable() -> None:
    message = refused(None, {"DHBOT_BROWSER__TIMEOUT_S": "abc"})
    assert "env:DHBOT_BROWSER__TIMEOUT_S: browser.timeout_s:" in message
    assert "valid number" in message


def test_env_value_that_is_not_yaml_is_taken_as_text() -> None:
    # "@..." cannot start a YAML token; it used to crash the loader with a traceback.
    message = refused(None, {"DHBOT_PORTAL__BASE_URL": "@localhost:8000"})
    assert "env:DHBOT_PORTAL__BASE_URL: portal.base_url:" in message
    assert "http:// or https:// URL" in message
    loaded = load(None, {"DHBOT_BROWSER__EXECUTABLE_PATH": "@/opt/chrome: beta"})
    assert loaded.settings.browser.executable_path == "@/opt/chrome: beta"


def test_out_of_range_value(tmp_path: Path) -> None:
    path = write(tmp_path, "concurrency:\n  pages_per_account: 99\n")
    message = refused(path)
    assert f"file:{path}: concurrency.pages_per_account:" in message
    assert "less than or equal to 32" in message


def test_bad_url(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  base_url: ftp://example.com/\n")
    message = refused(path)
    assert f"file:{path}: portal.base_url:" in message
    assert "expected an http:// or https:// URL" in message


def test_duplicate_account_names(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  accounts:\n"
                           "    - {name: shop, username: a, password_env: PW_A}\n"
                           "    - {name: shop, username: b, password_env: PW_B}\n")
    message = refused(path)
    assert f"file:{path}: portal" in message
    assert "account names must be unique; repeated: shop" in message


def test_one_portal_user_configured_twice_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  accounts:\n"
                 "    - {name: main, username: demo_seller, password_env: A}\n"
                 "    - {name: shop-a, username: Demo_Seller, password_env: B}\n")
    message = refused(path)
    assert "accounts 'main' and 'shop-a' both log in as 'Demo_Seller'" in message


@pytest.mark.parametrize("url", ["http://seller.dhgate.com\\@127.0.0.1/",
                                 "http://user:secret@127.0.0.1/", "http://127.0.0.1 /"])
def test_a_base_url_python_and_chromium_would_read_apart_is_refused(tmp_path: Path,
                                                                    url: str) -> None:
    message = refused(write(tmp_path, f"portal:\n  base_url: '{url}'\n"))
    assert "portal.base_url" in message
    assert "backslash" in message or "user name or password" in message


@pytest.mark.parametrize("secret", ["", ", password_env: PW, password_file: pw.txt"])
def test_account_needs_exactly_one_secret_source(tmp_path: Path, secret: str) -> None:
    path = write(tmp_path, f"portal:\n  accounts:\n    - {{name: shop, username: a{secret}}}\n")
    message = refused(path)
    assert f"file:{path}: portal.accounts.0:" in message
    assert "give exactly one of password_env" in message and "password_file" in message


def test_plain_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  accounts:\n"
                           "    - {name: shop, username: a, password: hunter2}\n")
    message = refused(path)
    assert str(path) in message and "portal.accounts.0.password" in message
    assert "password_env" in message
    assert "hunter2" not in message


def test_accounts_not_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  accounts: 5\n")
    message = refused(path)  # used to be a TypeError traceback
    assert f"file:{path}: portal.accounts:" in message and "valid list" in message


def test_broken_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "browser:\n  headless: false\n   timeout_s: 3\n")
    message = refused(path)
    assert str(path) in message and "not valid YAML" in message
    assert "line 3" in message


def test_config_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "portal:\n  profile: 模拟\n".encode("gbk"))
    message = refused(path)
    assert str(path) in message and "not UTF-8" in message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- browser\n- portal\n")
    message = refused(path)
    assert str(path) in message and "expected a mapping of sections" in message


def test_section_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "browser: fast\n")
    message = refused(path)
    assert f"file:{path}: browser:" in message and "valid dictionary" in message


def test_bad_cron_in_schedules(tmp_path: Path) -> None:
    path = write(tmp_path, "schedules:\n  - {name: nightly, cron: 'every night', sync: true}\n")
    message = refused(path)
    assert f"file:{path}: schedules.0.cron:" in message
    assert "not a crontab expression" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    message = refused(path)
    assert str(path) in message and "not found" in message


def test_missing_file_named_by_dhbot_config(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    message = refused(None, {"DHBOT_CONFIG": str(path)})
    assert str(path) in message and "not found" in message


def test_config_path_is_a_folder(tmp_path: Path) -> None:
    message = refused(tmp_path)  # used to be an IsADirectoryError traceback
    assert str(tmp_path) in message and "cannot read the config file" in message


# -- passwords -----------------------------------------------------------------------------


def account_with_file(tmp_path: Path, mode: int) -> tuple[LoadedSettings, Path]:
    secret = tmp_path / "shop.pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    os.chmod(secret, mode)
    path = write(tmp_path, "portal:\n  accounts:\n"
                           f"    - {{name: shop, username: a, password_file: '{secret}'}}\n")
    return load(path), secret


def test_password_file_0600_is_read(tmp_path: Path) -> None:
    loaded, _ = account_with_file(tmp_path, 0o600)
    assert loaded.settings.portal.account("shop").password() == "s3cret"


def test_password_file_readable_by_others_is_refused_with_a_chmod_hint(tmp_path: Path) -> None:
    loaded, secret = account_with_file(tmp_path, 0o644)
    with pytest.raises(ConfigError) as info:
        loaded.settings.portal.account("shop").password()
    message = str(info.value)
    assert "readable by others" in message and f"chmod 600 {secret}" in message
    assert "s3cret" not in message


def test_missing_password_variable_is_named(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "portal:\n  accounts:\n"
                           "    - {name: shop, username: a, password_env: SHOP_PASSWORD}\n")
    account = load(path).settings.portal.account("shop")
    with pytest.raises(ConfigError) as info:
        account.password()
    assert "SHOP_PASSWORD is not set" in str(info.value)
    monkeypatch.setenv("SHOP_PASSWORD", "pw")  # password() reads the real environment
    assert account.password() == "pw"


# -- the ledger and the distributed settings -----------------------------------------------


def test_ledger_defaults_to_sqlite_in_the_state_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "paths:\n  state_dir: st\n")
    settings = load(path).settings
    assert settings.ledger_url == f"sqlite:///{tmp_path / 'st' / 'ledger.sqlite'}"
    assert not settings.distributed_ledger


def test_relative_sqlite_ledger_resolves_against_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "ledger: sqlite:///data/l.sqlite\n")
    assert load(path).settings.ledger_url == f"sqlite:///{tmp_path / 'data' / 'l.sqlite'}"


def test_postgresql_ledger_is_distributed_and_its_password_is_masked(tmp_path: Path) -> None:
    url = "postgresql://dhbot:s3cretpass@db.internal:5432/dhbot"
    loaded = load(None, {"DHBOT_LEDGER": url,
                         "DHBOT_DISTRIBUTED__BROKER_URL": "redis://:r3dispass@q:6379/0"})
    assert loaded.settings.distributed_ledger
    shown = {key: value for key, value, _ in describe(loaded)}
    assert shown["ledger"] == "postgresql://dhbot:***@db.internal:5432/dhbot"
    assert shown["distributed.broker_url"] == "redis://:***@q:6379/0"
    assert "s3cretpass" not in str(describe(loaded)) and "r3dispass" not in str(describe(loaded))


def test_unknown_ledger_scheme_is_refused(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "ledger: mysql://h/db\n"))
    assert "ledger: Value error, expected sqlite:///PATH or postgresql://" in message


def test_schedule_submit_needs_an_inbox(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "schedules:\n  - name: s\n    cron: '* * * * *'\n"
                                      "    sync: true\n    submit: true\n"))
    assert "schedules.0: Value error, submit: true needs inbox: FOLDER" in message


@pytest.mark.parametrize(("cron", "days"), [
    ("0 9 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),  # was Tuesday to Saturday
    ("0 9 * * 0", {"Sun"}),
    ("0 9 * * 7", {"Sun"}),
    ("0 9 * * 5-7", {"Fri", "Sat", "Sun"}),
    ("0 9 * * */2", {"Sun", "Tue", "Thu", "Sat"}),
    ("0 9 * * 1,3", {"Mon", "Wed"}),
    ("0 9 * * mon-fri", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
    ("30 0 9 * * 6", {"Sat"}),  # six fields: seconds first
    ("0 9 * * *", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
])
def test_cron_days_of_the_week_count_as_crontab_counts_them(cron: str, days: set[str]) -> None:
    trigger = cron_trigger(cron)
    moment = datetime(2026, 11, 29, 0, 0, tzinfo=trigger.timezone)  # a Sunday
    seen = set()
    for _ in range(14):
        moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
        seen.add(moment.strftime("%a"))
        assert (moment.hour, moment.minute) == (9, 0)
    assert seen == days


@pytest.mark.parametrize("cron", ["0 9 * * 8", "0 9 * * 5-1", "0 9 * * funday", "0 9 * *"])
def test_bad_cron_days_are_refused(cron: str) -> None:
    with pytest.raises(ValueError):
        cron_trigger(cron)
