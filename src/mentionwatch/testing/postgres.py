"""A throwaway PostgreSQL server for the tests, CI and the benchmarks: a new cluster in a
temporary folder, owned by an unprivileged user when run as root (PostgreSQL refuses to
run as root), listening on loopback only, trusting local connections, stopped and deleted
at the end. Needs the server's programs (Debian's `postgresql` package).

    python -m mentionwatch.testing.postgres start DIR   # prints the URL
    python -m mentionwatch.testing.postgres stop DIR
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

USER = "postgres"  # the cluster's superuser (not an OS account)


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name), reverse=True)  # fmt: skip
    return Path(versions[0]).parent if versions else None


class Cluster:
    """One server, its files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.data = self.root / "data"
        self.port_file = self.root / "port"

    @property
    def url(self) -> str:
        port = self.port_file.read_text().strip()
        return f"postgresql://{USER}@127.0.0.1:{port}/postgres"

    def start(self) -> str:
        """Create and start the cluster; returns its URL. Raises RuntimeError saying why
        when it cannot (no programs, no unprivileged user, initdb or pg_ctl failed)."""
        programs = bin_dir()
        if programs is None:
            raise RuntimeError("PostgreSQL's programs (initdb, pg_ctl) are not installed "
                               "(Debian: apt-get install postgresql)")  # fmt: skip
        self.root.mkdir(parents=True, exist_ok=True)
        owner = _unprivileged()
        if owner is not None:
            shutil.chown(self.root, owner)
            os.chmod(self.root, 0o700)
        port = _free_port()
        self.port_file.write_text(str(port))
        self._run(owner, [str(programs / "initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", USER, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])  # fmt: skip
        # Durability is not what a test server is for: no fsync makes it start and write fast.
        options = (f"-k {self.root} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")  # fmt: skip
        self._run(owner, [str(programs / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.root / "server.log"), "-o", options, "-w", "start"])  # fmt: skip
        return self.url

    def stop(self) -> None:
        programs = bin_dir()
        if programs is not None and (self.data / "postmaster.pid").exists():
            self._run(_unprivileged(), [str(programs / "pg_ctl"), "-D", str(self.data), "-m",
                                        "immediate", "-w", "stop"])  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, owner: str | None, argv: list[str]) -> None:
        proc = subprocess.run(argv, user=owner, capture_output=True, text=True, timeout=120,
                              cwd=self.root)  # fmt: skip
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise RuntimeError(f"{Path(argv[0]).name} failed: {proc.stderr.strip()[-800:]} {tail}")


def _unprivileged() -> str | None:
    """The user the server runs as: ourselves, or `nobody` when we are root."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    return "nobody"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, seconds: float = 30.0) -> None:
    import psycopg

    end = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = Cluster(Path(argv[1]))
    if argv[0] == "stop":
        cluster.stop()
        return 0
    try:
        print(cluster.start())
    except RuntimeError as exc:
        print(f"postgres: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
