"""MySQL for the flyer tests: a throwaway MariaDB per session, a fresh database per test.

Set TEST_DATABASE_URL (`mysql://user:password@host:port/any`) to use an existing server
instead; its user must be allowed to create and drop databases. Without either, the tests fail
under CI and are skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymysql
import pytest

from offline.mariadb_server import INSTALL_HINT, find_binaries, start_mariadb


@dataclass(frozen=True)
class Server:
    """A MySQL-compatible server the tests may create databases on."""

    host: str
    port: int
    user: str
    password: str
    # Set when the tests started the server with TLS from a CA of their own.
    ca_cert: Path | None = None

    def url(self, database: str) -> str:
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        return f"mysql://{credentials}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None) -> Any:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
        )


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[Server]:
    external_url = os.environ.get("TEST_DATABASE_URL")
    if external_url:
        from flyer_config import db_environ_from_url

        settings = db_environ_from_url(external_url)
        host, port = settings["DB_HOST"], int(settings["DB_PORT"])
        yield Server(host, port, settings["DB_USER"], settings["DB_PASSWORD"])
        return
    binaries = find_binaries()
    if binaries is None:
        message = (
            "No MySQL server for the flyer tests: mariadbd and mariadb-install-db are not"
            f" installed ({INSTALL_HINT}, or set TEST_DATABASE_URL)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # Installed but not starting is a failure everywhere, not a reason to skip.
    server = start_mariadb(binaries, tls=True)
    try:
        ca_cert = server.tls.ca_cert if server.tls else None
        yield Server(server.host, server.port, server.user, server.password, ca_cert)
    finally:
        server.stop()


@dataclass
class Catalog:
    """One test's database, with the schema applied, seen through an admin connection."""

    server: Server
    name: str
    admin: Any

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def add_event(self, name: str, price: str = "50.00", tickets: int = 100) -> None:
        sql = "INSERT INTO events (name, ticket_price, tickets_available) VALUES (%s, %s, %s)"
        self.execute(sql, name, Decimal(price), tickets)

    def flyer(self, name: str) -> str | None:
        row = self.row(name)
        assert row is not None, f"no event named {name!r}"
        flyer: str | None = row["flyer"]
        return flyer

    def execute(self, sql: str, *arguments: object) -> list[dict[str, Any]]:
        """Run one statement on the admin connection; the rows it returns, if any."""
        with self.admin.cursor(pymysql.cursors.DictCursor) as cursor:
            # No arguments: the statement is sent as written, no %-formatting.
            cursor.execute(sql, arguments or None)
            return list(cursor.fetchall())

    def row(self, name: str) -> dict[str, Any] | None:
        return next(iter(self.execute("SELECT * FROM events WHERE name = %s", name)), None)

    def rows(self) -> list[dict[str, Any]]:
        return self.execute("SELECT * FROM events ORDER BY id")

    def tables(self) -> set[str]:
        return {str(table) for row in self.execute("SHOW TABLES") for table in row.values()}

    def function_connection_ids(self) -> list[int]:
        """Server-side ids of the other connections to this database: the function's."""
        rows = self.execute(
            "SELECT id FROM information_schema.PROCESSLIST"
            " WHERE db = %s AND id <> CONNECTION_ID() ORDER BY id",
            self.name,
        )
        return [int(row["id"]) for row in rows]

    def connections_left_after_close(self, within_seconds: float = 5.0) -> list[int]:
        """The function's connections still open once the server has had time to see them
        closed: a client's quit reaches the server's process list a moment after it returns."""
        deadline = time.monotonic() + within_seconds
        while (left := self.function_connection_ids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left

    def kill(self, connection_id: int) -> None:
        self.execute("KILL CONNECTION %s", connection_id)


@pytest.fixture
def empty_database(mysql_server: Server) -> Iterator[Catalog]:
    """A new, empty database, dropped after the test."""
    name = f"flyer_test_{uuid.uuid4().hex[:12]}"
    admin = mysql_server.connect()
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        cursor.execute(f"USE `{name}`")
    try:
        yield Catalog(server=mysql_server, name=name, admin=admin)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


# The catalog's database users, logging in with passwords: MariaDB has no IAM authentication.
USER_PASSWORDS = {
    "schema_migrator": "migrate-pw",
    "flyer_function": "flyer-pw",
    "show_writer": "shows-pw",
}


def set_up_users(database: Catalog, passwords: dict[str, str] = USER_PASSWORDS) -> list[str]:
    """Create the catalog's users and migrate as the deployment does; the migrations applied."""
    from catalog_users import MIGRATIONS_USER, migrator_settings, set_up_catalog
    from flyer_config import DbSettings

    server = database.server
    master = DbSettings(server.host, server.port, database.name, server.user, server.password)
    return set_up_catalog(master, migrator_settings(master, passwords[MIGRATIONS_USER]), passwords)


@pytest.fixture
def catalog(empty_database: Catalog) -> Catalog:
    """A fresh database with the schema applied the same way the function applies it."""
    from events_schema import apply_migrations

    connection = empty_database.server.connect(empty_database.name)
    try:
        apply_migrations(connection)
    finally:
        connection.close()
    return empty_database


@contextlib.contextmanager
def _function_environment(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[None]:
    import events_db
    from events_db import default_events_db
    from flyer_config import db_environ_from_url

    for variable, value in db_environ_from_url(url).items():
        monkeypatch.setenv(variable, value)
    # One connection attempt: a test of a database that is down should not wait out a resume.
    # The resume tests (test_flyer_resume.py) set their own wait.
    monkeypatch.setattr(events_db, "RESUME_WAIT_SECONDS", 0)
    # The connection is cached per execution environment: every test starts a cold one.
    default_events_db.cache_clear()
    try:
        yield
    finally:
        if default_events_db.cache_info().currsize:
            default_events_db().close()
        default_events_db.cache_clear()


@pytest.fixture
def flyer_function(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> Iterator[Catalog]:
    """The flyer function's environment pointed at `catalog`, as a cold execution environment."""
    with _function_environment(monkeypatch, catalog.url):
        yield catalog


@pytest.fixture
def flyer_function_on_empty_database(
    monkeypatch: pytest.MonkeyPatch, empty_database: Catalog
) -> Iterator[Catalog]:
    """The flyer function pointed at a database that has no schema yet."""
    with _function_environment(monkeypatch, empty_database.url):
        yield empty_database


@dataclass
class FlyerLogs:
    buffer: io.StringIO

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines() if line]

    def warnings(self) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["level"] == "WARNING"]


@pytest.fixture
def flyer_logs(monkeypatch: pytest.MonkeyPatch) -> FlyerLogs:
    """Everything the flyer function logs (JSON lines), as the Lambda runtime would see it."""
    import flyer_handler

    # Powertools binds its handler to the stdout of import time, which pytest does not capture
    # per test: point it at a buffer instead.
    buffer = io.StringIO()
    monkeypatch.setattr(flyer_handler.logger.registered_handler, "stream", buffer)
    return FlyerLogs(buffer)


@pytest.fixture
def flyer_metrics(capsys: pytest.CaptureFixture[str]) -> Callable[[], dict[str, float]]:
    """Metric name -> value from the Embedded Metric Format lines printed since the last call."""

    def read() -> dict[str, float]:
        metrics: dict[str, float] = {}
        for line in capsys.readouterr().out.splitlines():
            document = json.loads(line) if line.startswith("{") else {}
            for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    # One value or a list of values, depending on how many were added.
                    metrics[metric["Name"]] = sum(value) if isinstance(value, list) else value
        return metrics

    return read


def pipe(source: socket.socket, sink: socket.socket) -> None:
    """Relay one direction of a TCP connection until either end closes, then close both (the
    tests' relays in front of the database)."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
