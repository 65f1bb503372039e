"""A real PostgreSQL server for the tests: initdb'd in a temporary folder, listening on
127.0.0.1 on a free port, its unix socket in that folder, stopped and removed afterwards.

The binaries are Debian's (`/usr/lib/postgresql/<version>/bin`, the newest version there; or
the folder named by HEDGEGRID_PG_BIN, or `pg_ctl` on PATH). `make test` installs the
`postgresql` package where they are missing; without them the tests that need a server skip.
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (or
`nobody`), in a folder owned by that user. Login is by password (scram-sha-256, a random one
per session) over TCP, as a production instance connects.

Use the `postgres_server` fixture (session-scoped) and `postgres_server.create_database(name)`
for a fresh database per test module.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "hedgegrid"


def find_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: HEDGEGRID_PG_BIN, else the newest
    /usr/lib/postgresql/<version>/bin, else the one of `pg_ctl` on PATH."""
    wanted = ("initdb", "pg_ctl", "postgres")
    candidates = []
    if os.environ.get("HEDGEGRID_PG_BIN"):
        candidates.append(Path(os.environ["HEDGEGRID_PG_BIN"]))
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if re.fullmatch(r"\d+(\.\d+)?", p.parent.name)]
    candidates += sorted(versions, key=lambda p: float(p.parent.name), reverse=True)
    if shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).resolve().parent)
    return next((c for c in candidates if all(os.access(c / w, os.X_OK) for w in wanted)), None)


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root (PostgreSQL refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = USER

    @property
    def version(self) -> str:
        return self.bin_dir.parent.name

    def url(self, dbname: str = "postgres") -> str:
        """An SQLAlchemy URL with the password, for DAGSTER_POSTGRES_URL (never print it). The
        driver is named: SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which
        dagster-postgres does not install (it brings psycopg2)."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if it exists); returns its URL."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def query(self, dbname: str, sql: str, params=()) -> list[tuple]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


def _as_server_user(ids):
    return {} if ids is None else {"user": ids[0], "group": ids[1], "extra_groups": []}


def start_server(bin_dir: Path) -> PostgresServer:
    ids = _run_as()
    # Not under pytest's tmp_path: its parents are 0700 root, which the server user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="hedgegrid-pg-"))
    password = secrets.token_urlsafe(24)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if ids is not None:
        os.chown(root, *ids)
        os.chown(pwfile, *ids)
    as_user = _as_server_user(ids)
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8",
         "--locale=C", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-sync"],
        check=True, capture_output=True, text=True, **as_user,
    )  # fmt: skip
    pwfile.unlink()
    last_error = ""
    for _ in range(5):  # a free port can be taken between choosing it and binding it
        port = _free_port()
        # Test settings: durability off (fsync, synchronous commit), nothing else changed.
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
        proc = subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "server.log"),
             "-w", "-t", "60", "start"],
            capture_output=True, text=True, **as_user,
        )  # fmt: skip
        if proc.returncode == 0:
            return PostgresServer(bin_dir=bin_dir, root=root, port=port, password=password)
        log = root / "server.log"
        last_error = proc.stderr + (log.read_text()[-2000:] if log.exists() else "")
        time.sleep(0.2)
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL from {bin_dir} did not start:\n{last_error}")


def stop_server(server: PostgresServer) -> None:
    subprocess.run(
        [str(server.bin_dir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "fast", "-w", "-t", "30", "stop"],
        capture_output=True, text=True, **_as_server_user(_run_as()),
    )  # fmt: skip
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A running PostgreSQL server for the whole session (stopped and removed at its end)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin, "
            "HEDGEGRID_PG_BIN or PATH; `make test` installs Debian's postgresql package where it may (root or sudo -n)"
        )
    server = start_server(bin_dir)
    try:
        yield server
    finally:
        stop_server(server)
