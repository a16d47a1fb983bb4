"""`dhbot serve` (the web console) and `dhbot user` (its users)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click
from loguru import logger

from bot.config import loopback_host
from bot.console.store import ConsoleStore
from bot.context import config_options, load_context
from bot.errors import ConfigError, UsageError

SECRET_FILE = "secret.key"
MIN_SECRET = 32


def secret_key(state_dir: Path, env_name: str, host: str) -> str:
    """The key that signs sign-in cookies: from the environment; on a loopback address
    without one, a key kept in the state folder (0600, made once)."""
    value = os.environ.get(env_name, "")
    if value:
        if len(value) < MIN_SECRET:
            raise ConfigError(f"{env_name} is shorter than {MIN_SECRET} characters; make one "
                              "with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        return value
    if not loopback_host(host):
        raise ConfigError(f"--host {host} serves the console beyond this machine: set "
                          f"{env_name} to a secret key of at least {MIN_SECRET} characters "
                          "(console.secret_key_env names the variable)")
    path = state_dir / "console" / SECRET_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by others; chmod 600 it")
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


@click.command(name="serve")
@config_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another than 127.0.0.1 needs the secret key in "
                   "the environment (console.secret_key_env) and belongs behind HTTPS.")
@click.option("--port", default=8300, show_default=True, type=click.IntRange(0, 65535))
@click.option("--https", "https_only", is_flag=True,
              help="Behind a reverse proxy with HTTPS: sign-in cookies are sent over HTTPS only.")
def serve_command(config_file: Path | None, verbose: bool, host: str, port: int,
                  https_only: bool) -> None:
    """Serve the web console: upload, preview, approve, watch, read (docs/console.md)."""
    import uvicorn

    from bot.console.app import create_app

    context = load_context(config_file, {}, verbose)
    settings = context.settings
    key = secret_key(settings.paths.state_dir, settings.console.secret_key_env, host)
    if not loopback_host(host) and not https_only:
        logger.warning("serving on {} without --https: put a reverse proxy with TLS in front "
                       "(docs/console.md); passwords and session cookies otherwise cross the "
                       "network in clear", host)
    app = create_app(context.loaded, context.profile, key, https_only=https_only)
    click.echo(f"dhbot console on http://{host}:{port}/ (Ctrl-C stops it; work under way "
               "finishes its orders in flight first)")
    uvicorn.run(app, host=host, port=port, log_level="info" if verbose else "warning",
                proxy_headers=True, server_header=False)


@click.group(name="user")
def user_group() -> None:
    """Manage the web console's users (stored in the ledger, passwords hashed)."""


def _store(config_file: Path | None, verbose: bool) -> ConsoleStore:
    from bot.ledger import open_ledger

    context = load_context(config_file, {}, verbose)
    return ConsoleStore(open_ledger(context.settings))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise UsageError("--password-stdin: nothing was read")
        return value
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask the password on: give it with --password-stdin")
    typed: str = click.prompt("Password", hide_input=True, confirmation_prompt="Again")
    return typed


@user_group.command(name="add")
@click.argument("name")
@config_options
@click.option("--role", type=click.Choice(["operator", "approver", "admin"]), required=True,
              help="operator: upload and start small jobs; approver: also approve others' "
                   "jobs; admin: an approver.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line "
              "of standard input instead of asking twice on the terminal.")
def user_add(name: str, config_file: Path | None, verbose: bool, role: str,
             password_stdin: bool) -> None:
    """Add a console user."""
    from bot.console.store import Role, check_password

    password = _password(password_stdin)
    check_password(password)
    store = _store(config_file, verbose)
    try:
        store.add_user(name, Role(role), password)
    finally:
        store.ledger.close()
    click.echo(f"user {name} added ({role})")


@user_group.command(name="password")
@click.argument("name")
@config_options
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
def user_password(name: str, config_file: Path | None, verbose: bool,
                  password_stdin: bool) -> None:
    """Give a console user a new password."""
    password = _password(password_stdin)
    store = _store(config_file, verbose)
    try:
        store.set_password(name, password)
    finally:
        store.ledger.close()
    click.echo(f"user {name}: password changed")


@user_group.command(name="remove")
@click.argument("name")
@config_options
def user_remove(name: str, config_file: Path | None, verbose: bool) -> None:
    """Remove a console user (their jobs and the audit trail stay)."""
    store = _store(config_file, verbose)
    try:
        store.remove_user(name)
    finally:
        store.ledger.close()
    click.echo(f"user {name} removed")


@user_group.command(name="list")
@config_options
def user_list(config_file: Path | None, verbose: bool) -> None:
    """List the console's users."""
    store = _store(config_file, verbose)
    try:
        users = store.users()
    finally:
        store.ledger.close()
    for user in users:
        click.echo(f"{user.name}\t{user.role.value}\t{user.created_at}")
    if not users:
        click.echo("no users yet: dhbot user add NAME --role approver")
