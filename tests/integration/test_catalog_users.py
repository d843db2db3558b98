"""The catalog's database users on a real MariaDB: each may do only its job, the flyer function
logs in with its IAM token over verified TLS, and a server that is not the catalog is refused."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.auth
import pymysql
import pytest
from pymysql.constants import ER

import events_db
from catalog_users import (
    FLYER_USER,
    MIGRATIONS_USER,
    SHOWS_USER,
)
from events_db import EventsDb, FlyerOutcome, iam_auth_token, open_connection
from flyer_config import DbSettings
from flyer_records import FlyerUpload, normalise_sequencer
from tests.integration.conftest import USER_PASSWORDS, Catalog, Server, set_up_users

PASSWORDS = USER_PASSWORDS
UPLOAD = FlyerUpload(
    event_name="Rock in Rio",
    flyer="s3://flyers/Rock in Rio.jpg",
    event_time=dt.datetime(2026, 3, 1, 10),
    sequencer=normalise_sequencer("01"),
)
SIGNED_AT = dt.datetime(2026, 3, 1, 12, 0, 0)


def master_settings(database: Catalog) -> DbSettings:
    server = database.server
    return DbSettings(server.host, server.port, database.name, server.user, server.password)


def set_up(database: Catalog, passwords: dict[str, str] = PASSWORDS) -> list[str]:
    return set_up_users(database, passwords)


def login(database: Catalog, user: str, password: str | None = None) -> Any:
    settings = replace(master_settings(database), user=user, password=password or PASSWORDS[user])
    return open_connection(settings)


def refused(connection: Any, sql: str) -> bool:
    """Whether the server refuses `sql` to this user for lack of a privilege."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as error:
        denied = {
            ER.TABLEACCESS_DENIED_ERROR,
            ER.DBACCESS_DENIED_ERROR,
            ER.SPECIFIC_ACCESS_DENIED_ERROR,
        }
        return error.args[0] in denied
    return False


@pytest.fixture
def catalog_with_users(empty_database: Catalog) -> Catalog:
    """A database set up as the deployment does it, users logging in with passwords."""
    assert set_up(empty_database) == ["001_events"]
    empty_database.add_event("Rock in Rio")
    return empty_database


def test_set_up_catalog_migrates_as_the_migrations_user(catalog_with_users: Catalog) -> None:
    assert catalog_with_users.tables() == {"events", "schema_migrations"}
    # Nothing left to apply the second time, and nothing breaks.
    assert set_up(catalog_with_users) == []


def test_flyer_user_may_read_and_update_events_only(catalog_with_users: Catalog) -> None:
    connection = login(catalog_with_users, FLYER_USER)
    with contextlib.closing(connection):
        assert EventsDb._store_flyer(connection, UPLOAD) is FlyerOutcome.STORED
        assert refused(
            connection,
            "INSERT INTO events (name, ticket_price, tickets_available) VALUES ('x', 1, 1)",
        )
        assert refused(connection, "DELETE FROM events")
        assert refused(connection, "SELECT * FROM schema_migrations")
        assert refused(connection, "CREATE TABLE t (i INT)")
        assert refused(connection, "DROP TABLE events")


def test_shows_user_may_create_and_update_shows_only(catalog_with_users: Catalog) -> None:
    connection = login(catalog_with_users, SHOWS_USER)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events (name, ticket_price, tickets_available) VALUES ('x', 1, 1)"
        )
        cursor.execute("UPDATE events SET tickets_available = 2 WHERE name = 'x'")
        assert refused(connection, "DELETE FROM events")
        assert refused(connection, "ALTER TABLE events ADD COLUMN venue INT")
        assert refused(connection, "DROP TABLE events")


def test_migrations_user_may_change_the_schema_but_not_delete(catalog_with_users: Catalog) -> None:
    connection = login(catalog_with_users, MIGRATIONS_USER)
    with contextlib.closing(connection), connection.cursor() as cursor:
        cursor.execute("CREATE TABLE venues (id INT PRIMARY KEY)")
        cursor.execute("ALTER TABLE venues ADD COLUMN name VARCHAR(10)")
        assert refused(connection, "DELETE FROM events")
        assert refused(connection, "UPDATE events SET flyer = NULL")
        assert refused(connection, "DROP TABLE venues")
        assert refused(connection, "CREATE USER 'intruder'@'%'")


def test_set_up_catalog_again_takes_back_a_privilege_added_by_hand(
    catalog_with_users: Catalog,
) -> None:
    # GIVEN someone granted the flyer user more than it needs
    catalog_with_users.execute(
        f"GRANT DELETE ON `{catalog_with_users.name}`.* TO '{FLYER_USER}'@'%'"
    )

    # WHEN the deployment sets the users up again THEN the flyer user is back to its grants
    set_up(catalog_with_users)
    with contextlib.closing(login(catalog_with_users, FLYER_USER)) as connection:
        assert refused(connection, "DELETE FROM events")


# ----------------------------------------------------------------------- IAM tokens and TLS


def own_ca(server: Server) -> Path:
    if server.ca_cert is None:
        pytest.skip("TLS is only checked against the server the tests start themselves")
    return server.ca_cert


@pytest.fixture
def signing_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """botocore signs at SIGNED_AT, so that the token the function signs can be known first."""

    def signed_at(remove_tzinfo: bool = True) -> dt.datetime:
        return SIGNED_AT if remove_tzinfo else SIGNED_AT.replace(tzinfo=dt.UTC)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", signed_at)
    events_db._rds_client.cache_clear()
    yield
    events_db._rds_client.cache_clear()


def test_flyer_function_logs_in_with_its_iam_token_over_verified_tls(
    empty_database: Catalog, signing_clock: None
) -> None:
    # GIVEN the flyer user, whose only accepted password is the token the function will sign
    # (MariaDB has no AWSAuthenticationPlugin: this stands in for IAM's check of the token)
    server = empty_database.server
    settings = DbSettings(
        server.host,
        server.port,
        empty_database.name,
        FLYER_USER,
        password=None,
        ssl_ca=own_ca(server),
        region="us-east-1",
    )
    token = iam_auth_token(settings)
    set_up(empty_database, PASSWORDS | {FLYER_USER: token})
    empty_database.add_event("Rock in Rio")

    # WHEN the function stores a flyer with settings that carry no password
    events = EventsDb(settings)
    try:
        assert events.store_flyer(UPLOAD) is FlyerOutcome.STORED
        with events._connection.cursor() as cursor:
            cursor.execute("SELECT CURRENT_USER()")
            (current_user,) = cursor.fetchone()
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            (_, tls_version) = cursor.fetchone()
    finally:
        events.close()

    # THEN it logged in as the flyer user with the token, over TLS
    assert current_user == f"{FLYER_USER}@%"
    assert tls_version.startswith("TLS")
    assert empty_database.flyer("Rock in Rio") == UPLOAD.flyer


def test_token_signed_for_another_user_is_refused(
    empty_database: Catalog, signing_clock: None
) -> None:
    server = empty_database.server
    settings = DbSettings(
        server.host, server.port, empty_database.name, FLYER_USER, None, own_ca(server), "us-east-1"
    )
    shows_token = iam_auth_token(replace(settings, user=SHOWS_USER))
    set_up(
        empty_database, PASSWORDS | {FLYER_USER: iam_auth_token(settings), SHOWS_USER: shows_token}
    )

    with pytest.raises(pymysql.err.OperationalError) as error:
        open_connection(replace(settings, password=shows_token))
    assert error.value.args[0] == ER.ACCESS_DENIED_ERROR


def test_certificate_for_another_host_name_is_refused_at_once(catalog: Catalog) -> None:
    # The server's certificate names 127.0.0.1; "localhost" reaches the same server.
    ca = own_ca(catalog.server)
    settings = DbSettings(
        "localhost", catalog.server.port, catalog.name, catalog.server.user, "", ca
    )

    with pytest.raises(pymysql.err.OperationalError) as error:
        events_db.connect_waiting_out_a_resume(settings)
    assert "certificate verify failed" in str(error.value)


class NoTlsServer:
    """A loopback server that greets like MySQL but offers no TLS, and keeps what it receives."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.sendall(self._greeting())
            connection.settimeout(5)
            with contextlib.suppress(OSError):
                while data := connection.recv(4096):
                    self.received += data

    @staticmethod
    def _greeting() -> bytes:
        # Protocol 41, secure connection, plugin auth; no CLIENT_SSL (0x800).
        capabilities = 0x0001 | 0x0008 | 0x0200 | 0x8000 | 0x00080000
        payload = (
            b"\x0a8.0.36\x00"
            + struct.pack("<I", 7)
            + b"abcdefgh\x00"
            + struct.pack("<H", capabilities & 0xFFFF)
            + b"\x2d"
            + struct.pack("<H", 2)
            + struct.pack("<H", capabilities >> 16)
            + bytes([21])
            + b"\x00" * 10
            + b"ijklmnopqrst\x00"
            + b"mysql_native_password\x00"
        )
        return struct.pack("<I", len(payload))[:3] + b"\x00" + payload


def test_server_without_tls_is_refused_before_any_credential_is_sent(tmp_path: Path) -> None:
    from offline.mariadb_server import make_tls_files

    server = NoTlsServer()
    settings = DbSettings(
        "127.0.0.1",
        server.port,
        "ticketera",
        FLYER_USER,
        "a-secret",
        make_tls_files(tmp_path).ca_cert,
    )

    with pytest.raises(pymysql.err.OperationalError, match="SSL is required"):
        open_connection(settings)
    server.thread.join(timeout=10)
    assert server.received == b""
