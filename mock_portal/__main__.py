"""Command line: ``python -m mock_portal --host 127.0.0.1 --port 8000 --seed 42 --orders 200``."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from pathlib import Path

import uvicorn
import yaml

from mock_portal.app import create_app
from mock_portal.faults import FaultError, Faults, load_faults_file
from mock_portal.state import DEMO_ACCOUNT, PortalState


class _DroppedConnectionFilter(logging.Filter):
    """Hide uvicorn's complaint about the connections the ``drop`` fault cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m mock_portal", description="Run the mock DHgate seller backend."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--faults", type=Path, help="YAML file of fault settings")
    parser.add_argument(
        "--accounts", type=Path, help="YAML file: accounts: [{username: x, password: y}, ...]"
    )
    parser.add_argument(
        "--admin-token",
        help="require this token (header X-Admin-Token) on every /__admin/ call; needed to "
        "listen on anything but a loopback address",
    )
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_accounts(path: Path) -> list[tuple[str, str]]:
    """Extra seller accounts from a YAML file; raises ValueError naming what is wrong."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = loaded.get("accounts") if isinstance(loaded, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a key 'accounts' with a list of accounts")
    accounts: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("username"), str)
            and isinstance(entry.get("password"), str)
            and entry["username"]
        ):
            raise ValueError(f"{path}: accounts[{i}] needs a username and a password (strings)")
        if entry["username"] != DEMO_ACCOUNT[0]:
            accounts.append((entry["username"], entry["password"]))
    return accounts


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that port 0 resolves to a real port before we print it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    """Start the portal and serve until interrupted."""
    args = parse_args(argv)
    if not is_loopback(args.host) and not args.admin_token:
        print(f"mock portal: refusing to listen on {args.host} without --admin-token: the "
              "admin API can reset data and switch faults on", file=sys.stderr)
        return 2
    try:
        faults = load_faults_file(args.faults) if args.faults else Faults()
        accounts = load_accounts(args.accounts) if args.accounts else []
    except (OSError, ValueError, FaultError, yaml.YAMLError) as exc:
        print(f"mock portal: {exc}", file=sys.stderr)
        return 2
    state = PortalState(seed=args.seed, order_count=args.orders, faults=faults, accounts=accounts)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"mock portal: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    config = uvicorn.Config(
        create_app(state, args.admin_token),
        access_log=False,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    print(f"mock portal running at http://{host}:{port}/", flush=True)
    print(f"demo credentials: {DEMO_ACCOUNT[0]} / {DEMO_ACCOUNT[1]}", flush=True)
    # uvicorn configures its loggers when it starts; the filter goes on its handler-less logger.
    logging.getLogger("uvicorn.error").addFilter(_DroppedConnectionFilter())
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
