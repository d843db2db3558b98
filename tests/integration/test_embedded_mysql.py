"""The embedded MySQL server running the flyer function's own schema, SQL and PyMySQL calls."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import pymysql
import pytest

from events_db import CONNECTION_ERRORS, EventsDb, FlyerOutcome, open_connection
from events_schema import apply_migrations
from flyer_config import DbSettings, db_environ_from_url
from flyer_records import FlyerUpload, normalise_sequencer
from offline.embedded_mysql import HOST, EmbeddedMysql

Connect = Callable[[], Any]

INSERT_EVENT = "INSERT INTO events (name, ticket_price, tickets_available) VALUES (%s, %s, %s)"
# How the local stack loads its shows: insert new ones, refresh the others.
UPSERT_EVENT = (
    INSERT_EVENT + " ON DUPLICATE KEY UPDATE ticket_price = VALUES(ticket_price),"
    " tickets_available = VALUES(tickets_available)"
)
READ_EVENTS = "SELECT name, ticket_price, tickets_available, flyer FROM events ORDER BY id"
UPLOADED_AT = dt.datetime(2026, 5, 1, 12, 0, 0, 123000)


def settings_for(server: EmbeddedMysql) -> DbSettings:
    """The flyer function's settings for `server`, from its DATABASE_URL as the stack gives it."""
    return DbSettings.from_env(db_environ_from_url(server.url))


def execute(connection: Any, sql: str, args: Any = None) -> int:
    with connection.cursor() as cursor:
        affected: int = cursor.execute(sql, args)
        return affected


def fetch_all(connection: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def flyer_upload(
    name: str, *, at: dt.datetime = UPLOADED_AT, file: str = "flyer.jpg", sequencer: str = "1A"
) -> FlyerUpload:
    return FlyerUpload(
        event_name=name,
        flyer=f"s3://ticketera-flyers/{name}/{file}",
        event_time=at,
        sequencer=normalise_sequencer(sequencer),
    )


def flyer_columns(connection: Any, name: str) -> tuple[Any, ...]:
    rows = fetch_all(
        connection,
        "SELECT flyer, flyer_event_time, flyer_sequencer FROM events WHERE name = %s",
        (name,),
    )
    assert len(rows) == 1, f"expected one event named {name!r}, got {rows}"
    return rows[0]


@pytest.fixture
def embedded_mysql() -> Iterator[EmbeddedMysql]:
    with EmbeddedMysql() as server:
        yield server


@pytest.fixture
def connect(embedded_mysql: EmbeddedMysql) -> Iterator[Connect]:
    """Opens connections exactly as the flyer function does; closes them after the test."""
    opened: list[Any] = []

    def connect() -> Any:
        connection = open_connection(settings_for(embedded_mysql))
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        if connection.open:
            connection.close()


@pytest.fixture
def admin(connect: Connect) -> Any:
    """A connection to a catalog that has the flyer function's schema."""
    connection = connect()
    apply_migrations(connection)
    return connection


@pytest.fixture
def events_db(embedded_mysql: EmbeddedMysql, admin: Any) -> Iterator[EventsDb]:
    events_db = EventsDb(settings_for(embedded_mysql))
    yield events_db
    events_db.close()


# ------------------------------------------------------------------------------ schema


def test_apply_migrations_new_database_applies_once_then_nothing(connect: Connect) -> None:
    # GIVEN an empty database
    connection = connect()

    # WHEN the flyer function's migrations run twice, the second time from another client
    first = apply_migrations(connection)
    second = apply_migrations(connect())

    # THEN the first run applies the migration and records it, the second applies nothing
    assert first == ["001_events"]
    assert second == []
    assert fetch_all(connection, "SELECT version FROM schema_migrations") == [("001_events",)]
    assert fetch_all(connection, "SHOW TABLES") == [("events",), ("schema_migrations",)]


def test_select_missing_table_raises_programming_error_1146(connect: Connect) -> None:
    # GIVEN a database without the events table
    connection = connect()

    # WHEN it is read THEN MySQL's "no such table" error reaches PyMySQL, as the migrations expect
    with pytest.raises(pymysql.err.ProgrammingError) as raised:
        execute(connection, "SELECT version FROM schema_migrations")
    assert raised.value.args[0] == pymysql.constants.ER.NO_SUCH_TABLE


# ------------------------------------------------------------------------- store_flyer


def test_store_flyer_new_upload_is_stored_with_its_version(admin: Any, events_db: EventsDb) -> None:
    # GIVEN an event without a flyer
    execute(admin, INSERT_EVENT, ("Rock in Rio", Decimal("50.00"), 100))
    upload = flyer_upload("Rock in Rio")

    # WHEN the flyer function stores an upload for it
    outcome = events_db.store_flyer(upload)

    # THEN the row holds the flyer and the version that guards it
    assert outcome is FlyerOutcome.STORED
    assert flyer_columns(admin, "Rock in Rio") == (
        upload.flyer,
        upload.event_time,
        upload.sequencer,
    )


def test_store_flyer_same_upload_twice_is_unchanged(admin: Any, events_db: EventsDb) -> None:
    # GIVEN an event whose flyer came from an upload
    execute(admin, INSERT_EVENT, ("Metallica", Decimal("80.00"), 10))
    upload = flyer_upload("Metallica")
    assert events_db.store_flyer(upload) is FlyerOutcome.STORED

    # WHEN the same notification arrives again THEN nothing changes
    assert events_db.store_flyer(upload) is FlyerOutcome.UNCHANGED
    assert flyer_columns(admin, "Metallica")[0] == upload.flyer


def test_store_flyer_older_upload_after_newer_is_unchanged(admin: Any, events_db: EventsDb) -> None:
    # GIVEN an event whose flyer came from the newer of two uploads
    execute(admin, INSERT_EVENT, ("Coldplay", Decimal("95.50"), 10))
    newer = flyer_upload("Coldplay", at=UPLOADED_AT + dt.timedelta(seconds=1), file="new.png")
    older = flyer_upload("Coldplay", file="old.png")
    assert events_db.store_flyer(newer) is FlyerOutcome.STORED

    # WHEN the older upload's notification arrives late
    outcome = events_db.store_flyer(older)

    # THEN the newer flyer stays
    assert outcome is FlyerOutcome.UNCHANGED
    assert flyer_columns(admin, "Coldplay")[0] == newer.flyer


def test_store_flyer_same_time_higher_sequencer_replaces_flyer(
    admin: Any, events_db: EventsDb
) -> None:
    # GIVEN an event whose flyer came from an upload of one key
    execute(admin, INSERT_EVENT, ("Coldplay", Decimal("95.50"), 10))
    assert events_db.store_flyer(flyer_upload("Coldplay", sequencer="9")) is FlyerOutcome.STORED

    # WHEN the same key is uploaded again in the same millisecond (a longer sequencer)
    later = flyer_upload("Coldplay", sequencer="10")

    # THEN the padded sequencer orders it after the first, so it replaces the flyer
    assert events_db.store_flyer(later) is FlyerOutcome.STORED
    assert flyer_columns(admin, "Coldplay")[2] == later.sequencer


def test_store_flyer_unknown_event_reports_unknown_and_inserts_nothing(
    admin: Any, events_db: EventsDb
) -> None:
    # GIVEN a catalog without the event
    execute(admin, INSERT_EVENT, ("Rock in Rio", Decimal("50.00"), 100))

    # WHEN a flyer for another name arrives THEN it is reported and no row appears
    assert events_db.store_flyer(flyer_upload("Rock in Lisboa")) is FlyerOutcome.UNKNOWN_EVENT
    assert fetch_all(admin, "SELECT name FROM events") == [("Rock in Rio",)]


def test_update_changing_nothing_reports_zero_affected_rows(admin: Any) -> None:
    # GIVEN an event
    execute(admin, INSERT_EVENT, ("Rock in Rio", Decimal("50.00"), 100))
    sql = "UPDATE events SET tickets_available = %s WHERE name = %s"

    # WHEN it is updated to a new value and then to the same value again
    changed = execute(admin, sql, (99, "Rock in Rio"))
    unchanged = execute(admin, sql, (99, "Rock in Rio"))

    # THEN, as with MySQL, cursor.execute counts the rows that changed, not those matched
    assert (changed, unchanged) == (1, 0)


# ---------------------------------------------------------------------- names and rows


def test_events_names_with_accents_and_emoji_round_trip_unchanged(
    admin: Any, events_db: EventsDb
) -> None:
    # GIVEN names that need more than ASCII, or quoting
    names = ["Café del Mar 🎸", "Ñandú & Zoë", "東京ドーム", 'O\'Brien \\ "Live"', "a\tb"]
    for name in names:
        execute(admin, INSERT_EVENT, (name, Decimal("10.00"), 1))

    # WHEN they are read back and a flyer is stored for one of them
    stored = [name for (name, *_rest) in fetch_all(admin, READ_EVENTS)]
    outcome = events_db.store_flyer(flyer_upload("Café del Mar 🎸", file="🎸 flyer.jpg"))

    # THEN every character survived, in names and in the flyer's URI
    assert stored == names
    assert outcome is FlyerOutcome.STORED
    assert flyer_columns(admin, "Café del Mar 🎸")[0] == (
        "s3://ticketera-flyers/Café del Mar 🎸/🎸 flyer.jpg"
    )


def test_events_names_differing_by_accent_or_case_are_different_rows(
    admin: Any, events_db: EventsDb
) -> None:
    # GIVEN names that only a binary collation tells apart
    for name in ("Café", "Cafe", "CAFE"):
        execute(admin, INSERT_EVENT, (name, Decimal("10.00"), 1))

    # WHEN a flyer is stored for one of them
    outcome = events_db.store_flyer(flyer_upload("Cafe"))

    # THEN they are three rows and only the named one changed
    assert outcome is FlyerOutcome.STORED
    assert fetch_all(admin, "SELECT name, flyer IS NOT NULL FROM events ORDER BY id") == [
        ("Café", 0),
        ("Cafe", 1),
        ("CAFE", 0),
    ]


def test_events_name_with_trailing_space_is_a_duplicate(admin: Any) -> None:
    # GIVEN an event
    execute(admin, INSERT_EVENT, ("Rock", Decimal("10.00"), 1))

    # WHEN the same name with a trailing space is inserted THEN utf8mb4_bin (PAD SPACE) rejects it
    with pytest.raises(pymysql.err.IntegrityError) as raised:
        execute(admin, INSERT_EVENT, ("Rock ", Decimal("10.00"), 1))
    assert raised.value.args[0] == pymysql.constants.ER.DUP_ENTRY


def test_events_duplicate_name_raises_integrity_error_1062(admin: Any) -> None:
    # GIVEN an event
    execute(admin, INSERT_EVENT, ("Metallica", Decimal("80.00"), 10))

    # WHEN another row with the same name is inserted THEN the unique key rejects it
    with pytest.raises(pymysql.err.IntegrityError) as raised:
        execute(admin, INSERT_EVENT, ("Metallica", Decimal("70.00"), 5))
    assert raised.value.args[0] == pymysql.constants.ER.DUP_ENTRY
    assert fetch_all(admin, "SELECT COUNT(*) FROM events") == [(1,)]


def test_events_upsert_inserts_new_names_and_updates_existing(admin: Any) -> None:
    # GIVEN one show already in the catalog
    inserted = execute(admin, UPSERT_EVENT, ("Metallica", Decimal("80.00"), 10))

    # WHEN the shows are loaded again with a new price, next to a new show
    updated = execute(admin, UPSERT_EVENT, ("Metallica", Decimal("85.50"), 7))
    added = execute(admin, UPSERT_EVENT, ("Coldplay", Decimal("95.00"), 20))
    repeated = execute(admin, UPSERT_EVENT, ("Coldplay", Decimal("95.00"), 20))

    # THEN the existing row is updated in place, the new one inserted, a repeat changes nothing
    assert fetch_all(admin, READ_EVENTS) == [
        ("Metallica", Decimal("85.50"), 7, None),
        ("Coldplay", Decimal("95.00"), 20, None),
    ]
    assert (inserted, added, repeated) == (1, 1, 0)
    assert updated > 0


def test_select_price_and_upload_time_return_decimal_and_datetime(
    admin: Any, events_db: EventsDb
) -> None:
    # GIVEN an event with a price in cents and a flyer
    execute(admin, INSERT_EVENT, ("Rock in Rio", Decimal("19.90"), 3))
    events_db.store_flyer(flyer_upload("Rock in Rio"))

    # WHEN it is read with plain PyMySQL
    rows = fetch_all(admin, "SELECT ticket_price, flyer_event_time FROM events")

    # THEN the column types convert as from MySQL: DECIMAL(10, 2) and DATETIME(6)
    assert rows == [(Decimal("19.90"), UPLOADED_AT)]
    assert str(rows[0][0]) == "19.90"


def test_insert_reports_new_ids_per_client(connect: Connect, admin: Any) -> None:
    # GIVEN two clients
    other = connect()

    # WHEN each inserts an event, one after the other
    with admin.cursor() as cursor:
        cursor.execute(INSERT_EVENT, ("Metallica", Decimal("80.00"), 10))
        first_id = cursor.lastrowid
    with other.cursor() as cursor:
        cursor.execute(INSERT_EVENT, ("Coldplay", Decimal("95.00"), 20))
        second_id = cursor.lastrowid

    # THEN each gets its row's id, and LAST_INSERT_ID() stays per client as in MySQL
    assert (first_id, second_id) == (1, 2)
    assert fetch_all(admin, "SELECT LAST_INSERT_ID()") == [(1,)]
    assert fetch_all(admin, "SELECT id, name, name FROM events WHERE id = %s", (2,)) == [
        (2, "Coldplay", "Coldplay")
    ]


# ---------------------------------------------------------------------------- clients


def test_connect_any_user_and_password_is_accepted(embedded_mysql: EmbeddedMysql) -> None:
    # WHEN a client logs in with a made-up user and password THEN it is let in
    connection = pymysql.connect(
        host=HOST, port=embedded_mysql.port, user="someone", password="anything", database="catalog"
    )
    try:
        assert fetch_all(connection, "SELECT DATABASE()") == [("catalog",)]
    finally:
        connection.close()


def test_query_on_other_database_raises_unknown_database(embedded_mysql: EmbeddedMysql) -> None:
    # GIVEN a client of a database the server does not have
    connection = pymysql.connect(
        host=HOST, port=embedded_mysql.port, user="root", password="", database="other"
    )
    try:
        # WHEN it queries a table THEN the server says so, as MySQL would
        with pytest.raises(pymysql.err.OperationalError) as raised:
            execute(connection, "SELECT name FROM events")
        assert raised.value.args[0] == pymysql.constants.ER.BAD_DB_ERROR
    finally:
        connection.close()


def test_named_lock_held_by_other_client_is_granted_after_release(connect: Connect) -> None:
    # GIVEN a client holding the migrations' named lock
    holder, waiter = connect(), connect()
    assert fetch_all(holder, "SELECT GET_LOCK('schema_migrations:catalog', 5)") == [(1,)]
    assert fetch_all(waiter, "SELECT GET_LOCK('schema_migrations:catalog', 0)") == [(0,)]

    # WHEN another client waits for it
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(fetch_all, waiter, "SELECT GET_LOCK('schema_migrations:catalog', 10)")
        time.sleep(0.2)
        # THEN the holder can still run statements meanwhile, and the waiter gets the lock once
        # it is released
        assert not waiting.done()
        assert fetch_all(holder, "SELECT 2 + 2") == [(4,)]
        assert fetch_all(holder, "SELECT RELEASE_LOCK('schema_migrations:catalog')") == [(1,)]
        assert waiting.result(timeout=5) == [(1,)]
    assert fetch_all(holder, "SELECT RELEASE_LOCK('schema_migrations:catalog')") == [(0,)]


def test_named_lock_holder_disconnects_lock_is_freed(connect: Connect) -> None:
    # GIVEN a client holding a named lock
    holder, waiter = connect(), connect()
    assert fetch_all(holder, "SELECT GET_LOCK('loader', 5)") == [(1,)]

    # WHEN it disconnects without releasing it THEN another client gets it
    holder.close()
    assert fetch_all(waiter, "SELECT GET_LOCK('loader', 5)") == [(1,)]


def test_concurrent_clients_apply_every_update_and_newest_flyer_wins(
    embedded_mysql: EmbeddedMysql, admin: Any
) -> None:
    # GIVEN one event, and 8 clients that each sell 25 tickets and store 5 flyer uploads
    execute(admin, INSERT_EVENT, ("Stadium", Decimal("30.00"), 1000))
    clients, sales, uploads = 8, 25, 5
    sell = "UPDATE events SET tickets_available = tickets_available - 1 WHERE name = %s"

    def client(number: int) -> int:
        sold = 0
        events_db = EventsDb(settings_for(embedded_mysql))
        connection = open_connection(settings_for(embedded_mysql))
        try:
            for attempt in range(sales):
                sold += execute(connection, sell, ("Stadium",))
                if attempt < uploads:
                    moment = UPLOADED_AT + dt.timedelta(seconds=number * uploads + attempt)
                    events_db.store_flyer(flyer_upload("Stadium", at=moment, file=f"{number}.png"))
        finally:
            connection.close()
            events_db.close()
        return sold

    # WHEN they all run at once
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        sold = list(pool.map(client, range(clients)))

    # THEN no sale is lost and the flyer is the newest upload
    assert sold == [sales] * clients
    assert fetch_all(admin, "SELECT tickets_available FROM events") == [(1000 - clients * sales,)]
    newest = UPLOADED_AT + dt.timedelta(seconds=clients * uploads - 1)
    assert flyer_columns(admin, "Stadium")[:2] == (
        f"s3://ticketera-flyers/Stadium/{clients - 1}.png",
        newest,
    )


# --------------------------------------------------------------------------- lifecycle


def test_stop_with_client_connected_leaves_no_socket_or_thread() -> None:
    # GIVEN a running server with a client still connected
    threads_before = set(threading.enumerate())
    server = EmbeddedMysql()
    server.start()
    port = server.port
    client = open_connection(settings_for(server))

    # WHEN the server stops
    started = time.monotonic()
    server.stop()
    stopping = time.monotonic() - started

    # THEN it stops at once, nothing listens on its port, none of its sockets or threads remain,
    # and the client sees a lost connection (which the flyer function answers by reconnecting)
    assert stopping < 2
    with pytest.raises(ConnectionRefusedError), socket.create_connection((HOST, port), timeout=1):
        pass
    server_sockets = [
        connection
        for connection in psutil.Process().net_connections(kind="inet")
        if connection.laddr and connection.laddr.port == port
    ]
    assert server_sockets == []
    assert set(threading.enumerate()) - threads_before == set()
    with pytest.raises(CONNECTION_ERRORS):
        execute(client, "SELECT 1")
    client.close()
    server.stop()  # a second stop does nothing


def test_start_port_in_use_raises_os_error(embedded_mysql: EmbeddedMysql) -> None:
    # GIVEN a server on a port WHEN another one is asked for the same port THEN it fails to start
    with pytest.raises(OSError), EmbeddedMysql(port=embedded_mysql.port):
        pass


def test_embedded_mysql_with_file_keeps_rows_across_restarts(tmp_path: Path) -> None:
    # GIVEN a server on a database file, with the schema and one event
    path = tmp_path / "catalog.sqlite3"
    with EmbeddedMysql(path) as server:
        connection = open_connection(settings_for(server))
        apply_migrations(connection)
        execute(connection, INSERT_EVENT, ("Rock in Rio", Decimal("50.00"), 100))
        connection.close()

    # WHEN a new server opens the same file
    with EmbeddedMysql(path) as server:
        connection = open_connection(settings_for(server))
        applied = apply_migrations(connection)
        rows = fetch_all(connection, READ_EVENTS)
        connection.close()

    # THEN the schema and the rows are still there
    assert applied == []
    assert rows == [("Rock in Rio", Decimal("50.00"), 100, None)]
