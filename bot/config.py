"""Layered configuration: defaults < config.yaml < DHBOT_* environment < command line.

Validated once into frozen pydantic models; every value remembers where it came from so
`dhbot config show` can explain it, and every error names its source and key path.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError
from bot.inputs import decode_text, load_yaml, read_regular
from bot.log import mask_notify_url, mask_url

ENV_PREFIX = "DHBOT_"
DEFAULT_CONFIG_FILE = "config.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountConfig(_Frozen):
    """A seller account: the password itself never lives in configuration."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    username: str = Field(min_length=1)
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_secret_source(self) -> AccountConfig:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env (the NAME of an environment "
                             "variable) or password_file (a file with 0600 permissions)")
        return self

    def key(self, base_url: str) -> str:
        """The portal identity (portal host + user name) as a file-safe name: locks and saved
        sessions are keyed by it, so two names for one seller can never run at once."""
        parts = urlsplit(base_url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        identity = f"{host}:{port}/{self.username.strip().casefold()}"
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{host}_{port}-{self.username.strip()}")
        digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
        return f"{readable[:80]}-{digest}"

    def password(self) -> str:
        """Read the password from its environment variable or 0600 file."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigError(f"account {self.name!r}: environment variable "
                                  f"{self.password_env} is not set; export it with the "
                                  "account's password")
            return value
        assert self.password_file is not None
        path = self.password_file
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError as exc:
            raise ConfigError(f"account {self.name!r}: cannot read password_file {path}: "
                              f"{exc.strerror}") from exc
        if mode & 0o077:
            raise ConfigError(f"account {self.name!r}: password_file {path} is readable by "
                              f"others (mode {mode:o}); run: chmod 600 {path}")
        data = read_regular(path, "password_file", 4096, ConfigError)
        value = decode_text(data, path, ConfigError).strip()
        if not value:
            raise ConfigError(f"account {self.name!r}: password_file {path} is empty")
        return value


class PortalConfig(_Frozen):
    """Where the portal is and who logs in."""

    base_url: str = "http://127.0.0.1:8000/"
    profile: str = "mock"
    accounts: list[AccountConfig] = Field(
        default_factory=lambda: [
            AccountConfig(name="main", username="demo_seller", password_env="DHBOT_PASSWORD_MAIN")
        ],
        min_length=1,
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Only URLs that Python and Chromium read alike: Chromium takes "\\" for "/" and
        # drops user-info, so http://a.com\\@127.0.0.1/ is a.com to it but 127.0.0.1 here.
        if any(c in value for c in "\\\t\r\n ") or any(ord(c) < 32 for c in value):
            raise ValueError("the URL contains a backslash, a space or a control character")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")
        if "@" in parts.netloc:
            raise ValueError("a user name or password in the URL is refused (give accounts "
                             "under portal.accounts)")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _unique_names(self) -> PortalConfig:
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"account names must be unique; repeated: {', '.join(dupes)}")
        # One portal user is one seller: two entries for it would run two sessions at once
        # and defeat the one-run-per-account lock.
        seen: dict[str, str] = {}
        for acc in self.accounts:
            user = acc.username.strip().casefold()
            if user in seen:
                raise ValueError(f"accounts {seen[user]!r} and {acc.name!r} both log in as "
                                 f"{acc.username!r}; configure each portal user once")
            seen[user] = acc.name
        return self

    def key(self, name: str) -> str:
        """The portal identity key of the account called `name` (see AccountConfig.key)."""
        return self.account(name).key(self.base_url)

    def account(self, name: str | None) -> AccountConfig:
        """The account called `name`, or the only one when `name` is None."""
        if name is None:
            if len(self.accounts) == 1:
                return self.accounts[0]
            raise ConfigError("several accounts are configured ("
                              + ", ".join(a.name for a in self.accounts)
                              + "); name one with --account or `account:` in the job")
        for acc in self.accounts:
            if acc.name == name:
                return acc
        raise ConfigError(f"unknown account {name!r}; configured: "
                          + ", ".join(a.name for a in self.accounts))

    @property
    def is_loopback(self) -> bool:
        """True when the portal runs on this machine (the mock), not a real site."""
        return loopback_host(urlsplit(self.base_url).hostname or "")


def loopback_host(host: str) -> bool:
    """True for a name or address of this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class BrowserConfig(_Frozen):
    """How Chromium is found and driven."""

    headless: bool = True
    executable_path: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=600)
    navigation_timeout_s: float = Field(30.0, gt=0, le=600)
    slow_mo_ms: int = Field(0, ge=0, le=10_000)
    # Images are switched off in Chromium itself; fonts and media need request interception,
    # which also turns off the HTTP cache, so they are not blocked by default.
    block_resources: list[Literal["image", "font", "media"]] = ["image"]
    trace: Literal["off", "on-failure", "always"] = "off"
    # Screenshots: of every failed order's page; with "always", also of the page after each
    # submit (the portal's notice; one viewport, about 100 KB).
    evidence: Literal["failures", "always"] = "failures"
    # All tabs show the same site: one renderer process for them all costs ~40 MB per extra
    # tab instead of ~200 and less CPU (bench/). 0 = Chromium's own limit.
    renderer_processes: int = Field(1, ge=0, le=64)
    # The tabs' shared renderer keeps a little of every page it has shown (V8 is lazy to
    # give memory back), so peak memory grows with the orders done; a fresh context, with
    # the same signed-in session, starts the renderer afresh (bench/).
    recycle_after_orders: int = Field(
        200, ge=0, le=100_000,
        description="orders of an account after which its browser context (all its tabs) "
                    "is replaced by a fresh one with the same signed-in session, between "
                    "orders; bounds memory on long runs; 0 = never")
    extra_args: list[str] = Field(default_factory=list,
                                  description="more Chromium command-line flags")


class PathsConfig(_Frozen):
    """Where state and run output live (relative paths: to the config file's folder)."""

    state_dir: Path = Path("state")
    runs_dir: Path = Path("runs")


class ConcurrencyConfig(_Frozen):
    """How hard dhbot drives the portal."""

    pages_per_account: int = Field(4, ge=1, le=32)
    total_pages: int = Field(8, ge=1, le=64)
    requests_per_minute: int = Field(0, ge=0, description="per account; 0 = no cap")
    on_busy_account: Literal["fail", "wait"] = "fail"
    busy_wait_s: float = Field(600.0, ge=0)


class RetryConfig(_Frozen):
    """Retries of one step after a transient failure."""

    attempts: int = Field(3, ge=1, le=20)
    backoff_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(10.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    # The portal limits buyer messages: first pause (doubling, at most 30 s each), and the
    # most waited in total before the message is left for the next run.
    message_wait_s: float = Field(5.0, gt=0, le=60)
    message_wait_max_s: float = Field(180.0, ge=0, le=3600)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, 1 = Monday; names; ranges, lists,
    steps) as the day names APScheduler reads: its own numbers start at Monday = 0, so
    `1-5` handed over as it is would mean Tuesday to Saturday."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1

        def day(text: str) -> int:
            if text.isdigit() and int(text) <= 7:
                return int(text) % 7 if int(text) == 7 else int(text)
            if text[:3] in _DAY_NAMES:
                return _DAY_NAMES.index(text[:3])
            raise ValueError(f"day of week {text!r}: expected 0-7 or sun..sat")

        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = day(low), int(high) if high == "7" else day(high)
        else:
            first = last = day(span)
            if step_text:
                last = 6
        if step < 1 or last < first:
            raise ValueError(f"day of week {part!r}: not a range crontab understands")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(expression: str) -> Any:
    """An APScheduler trigger for a crontab expression (5 fields, or 6 with seconds first),
    days of the week counted as crontab counts them."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    second = fields.pop(0) if len(fields) == 6 else "0"
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (or 6 with seconds first), got {len(fields)}")
    minute, hour, day, month, dow = fields
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_crontab_days(dow))


class ScheduleConfig(_Frozen):
    """One entry of `dhbot schedule`: run an inbox of job files, or sync, on a cron."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    cron: str = Field(description="crontab expression, e.g. */15 * * * *; six fields = "
                                  "seconds first")
    inbox: Path | None = None
    sync: bool = False
    account: str | None = None
    submit: bool = Field(False, description="inbox jobs go to workers (`dhbot submit`) "
                                            "instead of running here")
    # A run may take this long (`dhbot run --deadline`); one still going `grace_s` after
    # that (its orders in flight get 15 s, then the report is written) is killed and its job
    # filed as failed. 0 = no limit.
    max_minutes: float = Field(0, ge=0)
    grace_s: float = Field(45, ge=1)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            cron_trigger(value)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc})") from exc
        return value

    @model_validator(mode="after")
    def _one_task(self) -> ScheduleConfig:
        if (self.inbox is None) == (not self.sync):
            raise ValueError("give either inbox: FOLDER or sync: true")
        if self.submit and self.inbox is None:
            raise ValueError("submit: true needs inbox: FOLDER")
        return self


class DistributedConfig(_Frozen):
    """Scale-out over many machines: `dhbot submit` and `dhbot worker` (Celery on Redis)."""

    broker_url: str = Field("redis://127.0.0.1:6379/0",
                            description="Celery broker and account locks (Redis)")
    queue: str = Field("dhbot", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    part_size: int = Field(25, ge=1, le=1000, description="orders per task")
    lock_ttl_s: float = Field(30.0, ge=2, description="account lock expiry; renewed at 1/3")
    busy_retry_s: float = Field(2.0, ge=0.1, description="retry delay when an account is busy")
    ledger_patience_s: float = Field(
        60.0, ge=0, description="submit and wait retry a database that cannot be reached "
                                "this long, then exit 5")
    takeover_grace_s: float = Field(
        5.0, ge=0, description="a new holder of an account waits lock_ttl_s + the browser's "
                               "navigation timeout + this after an older holder's unfinished "
                               "submit before it reads the order back")
    visibility_timeout_s: int = Field(
        600, ge=10, description="a task whose worker died is handed out again after this")
    session_key_env: str = Field("DHBOT_SESSION_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                 description="environment variable with the key that "
                                             "encrypts saved sessions in the database")


class RunLimits(_Frozen):
    """Bounds of one run: it never waits for ever."""

    # Stop the run (like SIGTERM: report written, every order an outcome) after this long.
    max_minutes: float = Field(0, ge=0, description="0 = no limit; `run --deadline` sets it")
    # A Chromium that dies mid-run is started again this often per run, then the run stops.
    browser_restarts: int = Field(2, ge=0, le=10)
    # Starting Chromium may take this long; a start that fails is tried once more.
    launch_timeout_s: float = Field(60, gt=0, le=600)


NotifyOn = Literal["needs_person", "failed", "always", "never"]


class NotifyConfig(_Frozen):
    """Messages through apprise (DingTalk, WeCom, Feishu, email, Slack, JSON webhooks) when a
    run, a scheduled job or a sync leaves orders that need a person."""

    urls: list[str] = Field(default_factory=list, description="apprise URLs (they hold "
                            "tokens: prefer urls_env)")
    urls_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                 description="environment variable holding more URLs, "
                                             "separated by spaces or commas")
    on: NotifyOn = Field("needs_person", description="needs_person | failed | always | never")


class MetricsConfig(_Frozen):
    """A Prometheus textfile (node_exporter's textfile collector) written after every run."""

    textfile: Path | None = Field(None, description="e.g. /var/lib/node_exporter/dhbot.prom; "
                                                    "relative: to the config file's folder")


class RetentionConfig(_Frozen):
    """How long run folders are kept (the ledger is never pruned)."""

    runs_days: int = Field(0, ge=0, description="0 = keep every run folder")


class DisplayConfig(_Frozen):
    """How times are shown to people (stored times stay UTC)."""

    timezone: str = Field("Asia/Shanghai", description="an IANA time zone")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai, UTC)") from exc
        return value


class ConsoleConfig(_Frozen):
    """The web console (`dhbot serve`) for ops staff."""

    approval_threshold: int = Field(
        1, ge=0, description="a job with more orders than this needs a second person (role "
                             "approver) to approve it before it runs")
    secret_key_env: str = Field(
        "DHBOT_CONSOLE_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="environment variable with the key that signs sign-in cookies (needed "
                    "with --host; on 127.0.0.1 a key kept in the state folder is used)")
    max_upload_kb: int = Field(2048, ge=1, le=100_000, description="largest upload accepted")
    session_hours: float = Field(12, gt=0, le=24 * 30, description="a sign-in lasts this long")
    login_attempts: int = Field(5, ge=1, description="failed sign-ins per user name (and per "
                                                     "address) allowed in login_window_min")
    login_window_min: float = Field(15, gt=0)
    run_with: Literal["local", "workers"] = Field(
        "local", description="local: `dhbot run` on this machine; workers: `dhbot submit` to "
                             "the distributed workers")
    language: Literal["zh", "en"] = Field("zh", description="pages' language until a user "
                                                            "picks one")


class Settings(_Frozen):
    """The whole effective configuration."""

    ledger: str | None = Field(None, description="sqlite:///state/ledger.sqlite (default) or "
                                                 "postgresql://user@host/db")
    distributed: DistributedConfig = DistributedConfig()

    portal: PortalConfig = PortalConfig()
    browser: BrowserConfig = BrowserConfig()
    paths: PathsConfig = PathsConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    retry: RetryConfig = RetryConfig()
    run: RunLimits = RunLimits()
    max_orders_per_run: int = Field(500, ge=1)
    schedules: list[ScheduleConfig] = []
    notify: NotifyConfig = NotifyConfig()
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    display: DisplayConfig = DisplayConfig()
    console: ConsoleConfig = ConsoleConfig()

    @field_validator("ledger")
    @classmethod
    def _ledger_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:///", "postgresql://",
                                                       "postgresql+psycopg://",
                                                       "postgres://")):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB")
        return value

    @property
    def ledger_url(self) -> str:
        """The ledger's URL: the configured one, or the SQLite file in the state folder."""
        return self.ledger or f"sqlite:///{self.paths.state_dir / 'ledger.sqlite'}"

    @property
    def distributed_ledger(self) -> bool:
        """True when the ledger is a database server shared by many machines."""
        return not self.ledger_url.startswith("sqlite:")

    @model_validator(mode="after")
    def _unique_schedules(self) -> Settings:
        names = [s.name for s in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError("schedule names must be unique")
        return self


# A configuration is a few KB; anything much larger is not one.
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LoadedSettings:
    """Validated settings plus where each value came from."""

    settings: Settings
    sources: dict[str, str]
    config_file: Path | None


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _deep_update(base: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def _merge(base: dict[str, Any], layer: dict[str, Any], source: str,
           sources: dict[str, str]) -> None:
    # Sources are recorded once, with full dotted keys: recording inside the recursion
    # would file nested keys under their bare names ("headless" instead of "browser.headless").
    _deep_update(base, layer)
    for dotted in _flatten(layer):
        sources[dotted] = source


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    text = decode_text(read_regular(path, "config file", MAX_CONFIG_BYTES, ConfigError), path,
                       ConfigError)
    data = load_yaml(text, str(path), ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    portal = data.get("portal")
    accounts = portal.get("accounts") if isinstance(portal, dict) else None
    # Anything but a list is left to validation, which names the key and the expected type.
    for i, acc in enumerate(accounts if isinstance(accounts, list) else []):
        if isinstance(acc, dict) and "password" in acc:
            raise ConfigError(f"{path}: portal.accounts.{i}.password: plain passwords are "
                              "refused in configuration files; use password_env: NAME and "
                              "export NAME, or password_file: a file with 0600 permissions")
    return data


def _env_layer(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """DHBOT_SECTION__KEY=value pairs for known sections (secrets like DHBOT_PASSWORD_* skip)."""
    layer: dict[str, Any] = {}
    names: dict[str, str] = {}
    sections = set(Settings.model_fields)
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX):].lower().split("__")
        if parts[0] not in sections:
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw  # not YAML (e.g. "@work" or "a: b: c"): take the text as written
        node = layer
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        names[".".join(parts)] = var
    return layer, names


def _explain(exc: ValidationError, sources: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        source = sources.get(key) or next(
            (s for k, s in sources.items() if key.startswith(k + ".") or k.startswith(key + ".")),
            "default",
        )
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {key}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(config_file: Path | str | None = None,
                  cli: dict[str, Any] | None = None,
                  environ: dict[str, str] | None = None) -> LoadedSettings:
    """Build the effective settings from all layers, or raise ConfigError naming the culprit."""
    environ = dict(os.environ if environ is None else environ)
    if config_file is None and environ.get("DHBOT_CONFIG"):
        config_file = environ["DHBOT_CONFIG"]
    path: Path | None = Path(config_file) if config_file is not None else None
    if path is None and Path(DEFAULT_CONFIG_FILE).exists():
        path = Path(DEFAULT_CONFIG_FILE)

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        _merge(merged, _read_config_file(path), f"file:{path}", sources)
    env_layer, env_names = _env_layer(environ)
    _merge(merged, env_layer, "env", sources)
    for dotted, var in env_names.items():
        sources[dotted] = f"env:{var}"
    cli_layer: dict[str, Any] = {}
    for dotted, value in (cli or {}).items():
        if value is None:
            continue
        node = cli_layer
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    _merge(merged, cli_layer, "command line", sources)

    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, sources)) from exc

    if path is not None:
        base = path.resolve().parent
        paths = settings.paths
        resolved = PathsConfig(
            state_dir=paths.state_dir if paths.state_dir.is_absolute() else base / paths.state_dir,
            runs_dir=paths.runs_dir if paths.runs_dir.is_absolute() else base / paths.runs_dir,
        )
        schedules = [
            s.model_copy(update={"inbox": base / s.inbox})
            if s.inbox is not None and not s.inbox.is_absolute() else s
            for s in settings.schedules
        ]
        ledger = settings.ledger
        if ledger is not None and ledger.startswith("sqlite:///"):
            file = Path(ledger.removeprefix("sqlite:///"))
            ledger = f"sqlite:///{file if file.is_absolute() else base / file}"
        textfile = settings.metrics.textfile
        metrics = settings.metrics if textfile is None or textfile.is_absolute() else \
            settings.metrics.model_copy(update={"textfile": base / textfile})
        settings = settings.model_copy(update={"paths": resolved, "schedules": schedules,
                                               "ledger": ledger, "metrics": metrics})
    return LoadedSettings(settings=settings, sources=sources, config_file=path)


def describe(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """(key, value, source) for every effective value, secrets masked."""
    rows = []
    for key, value in sorted(_flatten(loaded.settings.model_dump(mode="json")).items()):
        source = loaded.sources.get(key, "default")
        if source == "default":
            source = next((s for k, s in loaded.sources.items() if key.startswith(k + ".")),
                          "default")
        shown = "***" if any(w in key for w in ("password", "secret", "token")) and not \
            key.endswith(("password_env", "password_file")) else value
        if key in ("ledger", "distributed.broker_url") and isinstance(value, str):
            shown = mask_url(value)
        if key.startswith("notify.urls.") and isinstance(value, str):
            shown = mask_notify_url(value)
        if key == "notify.urls" and isinstance(value, list):  # lists are not flattened
            shown = [mask_notify_url(str(url)) for url in value]
        rows.append((key, "" if shown is None else str(shown), source))
    return rows
