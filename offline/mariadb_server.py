"""A throwaway MariaDB server in a temporary directory, for the tests and for `make local`."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

# Debian puts the server in /usr/sbin, which is not on every user's PATH.
DEFAULT_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
# The one line that says how to get the binaries where this module cannot install them.
INSTALL_HINT = "install the mariadb-server package (Debian, Ubuntu: apt-get install mariadb-server)"
_START_ATTEMPTS = 3


class MariaDBUnavailableError(RuntimeError):
    """The MariaDB server would not install its data directory or start."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a private CA and a server certificate it signed for 127.0.0.1."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass
class MariaDBServer:
    """A running server; root has no password and is reachable over TCP on 127.0.0.1."""

    base_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    tls: TlsFiles | None
    host: str = "127.0.0.1"
    user: str = "root"
    password: str = ""

    def url(self, database: str) -> str:
        """The DATABASE_URL of `database` on this server, as root (who has no password)."""
        return f"mysql://{self.user}@{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server and delete its data directory."""
        _terminate(self.process)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def find_binaries(search_path: str = DEFAULT_SEARCH_PATH) -> tuple[str, str] | None:
    """Paths of `mariadb-install-db` and `mariadbd`, or None when either is missing."""
    install_db = shutil.which("mariadb-install-db", path=search_path)
    server = shutil.which("mariadbd", path=search_path)
    if install_db is None or server is None:
        return None
    return install_db, server


def can_install() -> bool:
    """Whether `install` may work here: root on a machine with apt-get (Debian, Ubuntu)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def install() -> None:
    """Install mariadb-server with apt-get, non-interactively, as `.ci/run` does."""
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "mariadb-server"],
    ):
        subprocess.run(command, env=environ, stdout=subprocess.DEVNULL, check=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a private CA and a server certificate it signed for 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files = TlsFiles(
        directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem"
    )
    ca.cert_pem.write_to_path(str(files.ca_cert))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    server.private_key_pem.write_to_path(str(files.server_key))
    return files


def start_mariadb(
    binaries: tuple[str, str], *, tls: bool = False, timeout: float = 30.0
) -> MariaDBServer:
    """Install a fresh data directory in a temp dir and start a server on a free port.

    `binaries` are what `find_binaries` found. With `tls`, the server also offers TLS with a
    certificate from a private CA made for the occasion (`server.tls.ca_cert` verifies it).
    Raises MariaDBUnavailableError when the server does not accept connections within `timeout`
    seconds.
    """
    install_db, server_binary = binaries
    # The server refuses to run as root unless told which user to run as; this works for anyone.
    user = pwd.getpwuid(os.getuid()).pw_name

    base_dir = Path(tempfile.mkdtemp(prefix="mariadb-"))
    try:
        data_dir = base_dir / "data"
        installed = subprocess.run(
            [
                install_db,
                "--no-defaults",
                f"--user={user}",
                f"--datadir={data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            check=False,
        )
        if installed.returncode != 0:
            raise MariaDBUnavailableError(
                "mariadb-install-db failed: " + installed.stderr.decode(errors="replace")[-2000:]
            )
        tls_files = make_tls_files(base_dir) if tls else None

        # A port picked now may be taken before the server binds it: try a few.
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            process = _spawn(server_binary, user, base_dir, data_dir, port, tls_files)
            if _wait_until_ready(process, port, timeout):
                return MariaDBServer(base_dir=base_dir, port=port, process=process, tls=tls_files)
            _terminate(process)
        log = (base_dir / "error.log").read_text(errors="replace")[-2000:]
        raise MariaDBUnavailableError(f"mariadbd did not start; its log ends with:\n{log}")
    except BaseException:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise


def _spawn(
    server_binary: str,
    user: str,
    base_dir: Path,
    data_dir: Path,
    port: int,
    tls_files: TlsFiles | None,
) -> subprocess.Popen[bytes]:
    arguments = [
        server_binary,
        "--no-defaults",
        f"--user={user}",
        f"--datadir={data_dir}",
        f"--socket={base_dir / 'mariadb.sock'}",
        f"--pid-file={base_dir / 'mariadb.pid'}",
        f"--log-error={base_dir / 'error.log'}",
        f"--tmpdir={base_dir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        # Test data is disposable: skip the fsync on every commit.
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-buffer-pool-size=32M",
    ]
    if tls_files is not None:
        arguments += [
            f"--ssl-ca={tls_files.ca_cert}",
            f"--ssl-cert={tls_files.server_cert}",
            f"--ssl-key={tls_files.server_key}",
        ]
    return subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            pymysql.connect(
                host="127.0.0.1", port=port, user="root", password="", connect_timeout=1
            ).close()
            return True
        except pymysql.err.OperationalError:
            time.sleep(0.05)
    return False


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Ask the server to shut down cleanly; kill it if it is still running after 15 seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
