"""A throwaway PostgreSQL server from Debian's package, for tests and benchmarks.

``scripts/ensure-postgres.sh`` installs the package (``make test`` runs it);
this starts a private cluster in a temporary directory on a free port, with
its socket in that directory, and removes everything on stop. PostgreSQL
refuses to run as root, so as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import List, Optional


def find_bindir() -> Optional[Path]:
    """The newest /usr/lib/postgresql/<version>/bin with initdb, or $VETBOT_PG_BINDIR."""
    explicit = os.environ.get("VETBOT_PG_BINDIR")
    if explicit:
        return Path(explicit)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: pg.create_database()`` gives a URL."""

    def __init__(self, bindir: Optional[Path] = None):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found; run scripts/ensure-postgres.sh "
                "(Debian package postgresql) or set VETBOT_PG_BINDIR"
            )
        self.port = _free_port()
        self.user = "vetbot"
        self._dir = Path(tempfile.mkdtemp(prefix="vetbot-pg-"))
        self.datadir = self._dir / "data"
        self._as_root = os.geteuid() == 0

    def _run(self, args: List[str], **kwargs) -> subprocess.CompletedProcess:
        if self._as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> "TemporaryPostgres":
        if self._as_root:
            shutil.chown(self._dir, "postgres", "postgres")
            os.chmod(self._dir, 0o700)
        self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                   "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        options = (f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300")
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options,
                   "-l", str(self._dir / "server.log"), "-w", "-t", "60", "start"])
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: Optional[str] = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg2

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                           "-w", "stop"])
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "TemporaryPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
