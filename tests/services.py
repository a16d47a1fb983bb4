"""Private Redis and PostgreSQL servers for the distributed tests.

Each server runs on a free loopback port with its data in a temporary directory and is
stopped (and its data removed) when the ``with`` block ends. The binaries come from the
machine; ``bash scripts/ensure-services.sh`` (run by ``make test``) installs them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psycopg
import redis
from psycopg import sql

INSTALL_HINT = "run `bash scripts/ensure-services.sh` (or `make test`, which runs it)"
_LOG_TAIL_LINES = 30


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str:
    """Return the path of ``redis-server``, or raise RuntimeError saying how to install it."""
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(f"redis-server is not installed; {INSTALL_HINT}")
    return path


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin``: the version as numbers."""
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_postgres_bindir() -> Path:
    """Return the directory holding ``postgres`` and ``initdb``: the newest Debian one, else
    ``pg_config --bindir``; raise RuntimeError saying how to install them when none has both."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise RuntimeError(f"PostgreSQL (postgres, initdb) is not installed; {INSTALL_HINT}")


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines of a server's log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _Server:
    """A server process with its output in a log file; subclasses start and stop it."""

    def __init__(self, workdir: Path, log_name: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / log_name
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and wait until it answers."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server; calling it again does nothing."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Run ``argv`` in the work dir with stdout and stderr appended to the log file."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        try:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal goes to pytest, not the server
            )
        except OSError:
            self._reap()
            raise
        return self._proc

    def _check_alive(self, what: str) -> None:
        """Raise RuntimeError with the log's tail when the process has already exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {self._proc.returncode} while starting; "
                f"its output ends:\n{_log_tail(self.log_path)}"
            )

    def _timeout_error(self, what: str, seconds: float, last: BaseException | None) -> RuntimeError:
        """The error for a server that did not answer in time."""
        return RuntimeError(
            f"{what} did not answer within {seconds:.0f} s (last error: {last}); "
            f"its output ends:\n{_log_tail(self.log_path)}"
        )

    def _reap(self) -> None:
        """Forget the (exited) process and close the log file."""
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class RedisServer(_Server):
    """A private ``redis-server`` on a free loopback port, without persistence.

    ``tmpdir`` holds its working directory and log (``redis.log``)."""

    START_TIMEOUT = 15.0
    STOP_TIMEOUT = 5.0

    def __init__(self, tmpdir: Path) -> None:
        super().__init__(Path(tmpdir), "redis.log")

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start redis-server and wait (at most 15 s) until it answers PING."""
        if self._proc is not None:
            return
        binary = find_redis_server()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()  # a restart keeps the port
        self._spawn(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
                "--daemonize", "no",
            ]
        )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Poll with PING until it answers, the process dies or the time is up."""
        deadline = time.monotonic() + self.START_TIMEOUT
        last: BaseException | None = None
        while time.monotonic() < deadline:
            self._check_alive("redis-server")
            client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
            try:
                if client.ping():
                    return
            except redis.RedisError as err:
                last = err
            finally:
                client.close()
            time.sleep(0.05)
        self._check_alive("redis-server")
        raise self._timeout_error("redis-server", self.START_TIMEOUT, last)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down `down_s` seconds, start again on the same port: with no
        persistence, every key and queued message is gone."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        """Terminate redis-server; kill it when it has not exited after 5 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()


class PostgresServer(_Server):
    """A private PostgreSQL cluster on a free loopback port, tuned for speed, not safety.

    The cluster, its socket and its logs (``initdb.log``, ``postgres.log``) live in a fresh
    ``tempfile.mkdtemp(prefix="dhbot-pg-")`` directory, removed by ``stop()``. As root,
    initdb and postgres run as the ``postgres`` system user. The superuser is ``dhbot`` with
    trust authentication; ``url`` points at its database ``dhbot``, and ``new_database()``
    makes more."""

    START_TIMEOUT = 30.0
    STOP_TIMEOUT = 10.0
    SUPERUSER = "dhbot"
    SYSTEM_USER = "postgres"

    def __init__(self) -> None:
        super().__init__(Path(tempfile.gettempdir()), "postgres.log")
        self._as_root = os.geteuid() == 0
        self._tmp: Path | None = None  # the mkdtemp() directory, removed by stop()
        self._postmaster_pid: int | None = None

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.workdir / "data"

    @property
    def url(self) -> str:
        """``postgresql://dhbot@127.0.0.1:<port>/dhbot``."""
        return self.database_url(self.SUPERUSER)

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return f"postgresql://{self.SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        """Create the cluster, start postgres, wait (at most 30 s) until it accepts
        connections and create the database ``dhbot``."""
        if self._proc is not None:
            return
        bindir = find_postgres_bindir()
        self._tmp = self.workdir = Path(tempfile.mkdtemp(prefix="dhbot-pg-"))
        self.log_path = self.workdir / "postgres.log"
        try:
            if self._as_root:
                shutil.chown(self.workdir, user=self.SYSTEM_USER, group=self.SYSTEM_USER)
            self._initdb(bindir / "initdb")
            self.port = free_port()
            self._run_postgres(bindir)
            self.new_database(self.SUPERUSER)
        except BaseException:
            self.stop()
            raise

    def _run_postgres(self, bindir: Path) -> None:
        """Start the postmaster on the cluster and wait until it accepts connections."""
        self._spawn(
            self._as_user(
                [
                    str(bindir / "postgres"),
                    "-D", str(self.data_dir),
                    "-p", str(self.port),
                    "-h", "127.0.0.1",
                    "-k", str(self.workdir),
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                    "-c", "max_connections=200",
                ]
            )
        )  # fmt: skip
        self._wait_ready()
        self._postmaster_pid = self._read_postmaster_pid()

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the postmaster (fast shutdown: every connection is cut), stay down `down_s`
        seconds, start it again on the same port with the same data."""
        proc = self._proc
        assert proc is not None, "not running"
        pid = self._postmaster_pid or self._read_postmaster_pid()
        self._signal(pid, proc, signal.SIGINT)
        proc.wait(self.STOP_TIMEOUT)
        self._reap()
        time.sleep(down_s)
        self._run_postgres(find_postgres_bindir())

    def new_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        with psycopg.connect(self.database_url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, SIGKILL after 10 s); remove the directory."""
        proc = self._proc
        if proc is not None:
            pid = self._postmaster_pid or self._read_postmaster_pid()
            if proc.poll() is None:
                self._signal(pid, proc, signal.SIGINT)
                try:
                    proc.wait(self.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._signal(pid, proc, signal.SIGKILL)
                    proc.kill()
                    proc.wait()
            self._reap()
        self._postmaster_pid = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _as_user(self, argv: list[str]) -> list[str]:
        """``argv`` run as the postgres system user when we are root."""
        return ["runuser", "-u", self.SYSTEM_USER, "--", *argv] if self._as_root else argv

    def _initdb(self, initdb: Path) -> None:
        """Run initdb with the C.UTF-8 locale, or plain C where that one is missing."""
        base = [str(initdb), "-D", str(self.data_dir), "-A", "trust", "-U", self.SUPERUSER]
        base += ["-E", "UTF8", "--no-sync"]
        returncode = -1
        log_path = self.workdir / "initdb.log"
        for locale in ("C.UTF-8", "C"):
            shutil.rmtree(self.data_dir, ignore_errors=True)
            with open(log_path, "ab") as log:
                done = subprocess.run(
                    self._as_user([*base, f"--locale={locale}"]),
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=120,
                    check=False,
                )
            returncode = done.returncode
            if returncode == 0:
                return
        raise RuntimeError(
            f"initdb failed (code {returncode}); its output ends:\n{_log_tail(log_path)}"
        )

    def _wait_ready(self) -> None:
        """Try to connect until it works, the process dies or the time is up."""
        deadline = time.monotonic() + self.START_TIMEOUT
        last: BaseException | None = None
        while time.monotonic() < deadline:
            self._check_alive("postgres")
            try:
                with psycopg.connect(self.database_url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as err:
                last = err
            time.sleep(0.1)
        self._check_alive("postgres")
        raise self._timeout_error("postgres", self.START_TIMEOUT, last)

    def _read_postmaster_pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid`` (under runuser it is not our child)."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _signal(pid: int | None, proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """Send ``sig`` to the postmaster, or to our child when its pid is unknown."""
        with contextlib.suppress(ProcessLookupError):
            if pid is not None:
                os.kill(pid, sig)
            else:
                proc.send_signal(sig)
