"""A throw-away PostgreSQL cluster on one machine, for trying the DuckLake store without a server.

initdb in a temporary folder, a free local port, run as the postgres user when the caller is root
(initdb refuses root); needs Debian's postgresql binaries. The test suite and
benchmarks/store_compare.py use it; a deployment points GOVERN_STORE at its own PostgreSQL instead.

    cluster = Cluster()
    os.environ["GOVERN_STORE"] = f"ducklake:postgres:{cluster.new_database()}"
    ...
    cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it).")
    return found[-1].parent


class Cluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.folder = Path(tempfile.mkdtemp(prefix="govern-pg-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres")
        self.run("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")

    def run(self, program: str, *args: str) -> None:
        """One of the cluster's programs (createdb, psql, ...), as the postgres user when the caller is root."""
        command = [str(self.bin / program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def new_database(self) -> str:
        """A fresh database; its libpq connection string."""
        name = f"g{uuid.uuid4().hex[:12]}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"dbname={name} host=127.0.0.1 port={self.port} user=postgres"

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
