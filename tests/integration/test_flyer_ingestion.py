"""Flyer ingestion end to end: sample S3 events through the handler into a real MySQL catalog."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest

import flyer_handler
from events_db import EventsDb, FlyerOutcome, open_connection
from events_schema import MIGRATIONS_DIR, apply_migrations
from flyer_config import DbSettings, db_environ_from_url
from flyer_records import FlyerUpload, MalformedRecordError, normalise_sequencer
from offline.mariadb_server import free_port
from tests.events import load_event
from tests.integration.conftest import Catalog, FlyerLogs, Server, pipe

BUCKET = "s3://ticketera-flyers-example"
Metrics = Callable[[], dict[str, float]]

# Every sample S3 event of the flyer function.
FLYER_EVENTS = sorted(
    path.stem
    for path in (Path(__file__).resolve().parents[2] / "events").glob("s3_flyer_*.json")
    if path.stem != "s3_flyer_malformed_record"
)


def invoke(name: str, context: Any) -> dict[str, int]:
    result: dict[str, int] = flyer_handler.lambda_handler(load_event(name), context)
    return result


def seed(catalog: Catalog) -> None:
    for name in (
        "Rock in Rio",
        "C++ Conf 2026",
        "Café del Mar 🎸",
        # Differs from the one above only in the accent: a different event.
        "Cafe del Mar 🎸",
        "Metallica",
        "Coldplay",
    ):
        catalog.add_event(name)


# ------------------------------------------------------------------------- key decoding


@pytest.mark.parametrize(
    ("event", "event_name", "flyer"),
    [
        ("s3_flyer_spaces", "Rock in Rio", f"{BUCKET}/Rock in Rio.jpg"),
        ("s3_flyer_literal_plus", "C++ Conf 2026", f"{BUCKET}/C++ Conf 2026.png"),
        ("s3_flyer_accents_emoji", "Café del Mar 🎸", f"{BUCKET}/Café del Mar 🎸.jpeg"),
        # The key keeps its decomposed accent; the name is matched in NFC.
        (
            "s3_flyer_decomposed_accent",
            "Café del Mar 🎸",
            f"{BUCKET}/Cafe\u0301 del Mar 🎸.webp",
        ),
        ("s3_flyer_nested_folder", "Metallica", f"{BUCKET}/flyers/2026/march/Metallica.gif"),
    ],
)
def test_handler_encoded_key_stores_decoded_uri_on_named_event(
    flyer_function: Catalog,
    lambda_context: Any,
    flyer_metrics: Metrics,
    event: str,
    event_name: str,
    flyer: str,
) -> None:
    # GIVEN the catalog's events
    seed(flyer_function)

    # WHEN the flyer's upload is notified
    result = invoke(event, lambda_context)

    # THEN exactly that event has the flyer, as its decoded S3 URI
    assert result == {"stored": 1}
    assert flyer_function.flyer(event_name) == flyer
    others = [row for row in flyer_function.rows() if row["name"] != event_name]
    assert all(row["flyer"] is None for row in others)
    assert flyer_metrics() == {"FlyerStored": 1}


def test_handler_several_records_stores_each(
    flyer_function: Catalog, lambda_context: Any, flyer_metrics: Metrics
) -> None:
    seed(flyer_function)

    result = invoke("s3_flyer_several_records", lambda_context)

    assert result == {"stored": 3}
    assert flyer_function.flyer("Rock in Rio") == f"{BUCKET}/Rock in Rio.jpg"
    assert flyer_function.flyer("Metallica") == f"{BUCKET}/flyers/Metallica.PNG"
    assert flyer_function.flyer("C++ Conf 2026") == f"{BUCKET}/C++ Conf 2026.webp"
    assert flyer_metrics() == {"FlyerStored": 3}


# ----------------------------------------------------------------- repeats and ordering


def test_handler_same_record_twice_changes_nothing(
    flyer_function: Catalog, lambda_context: Any, flyer_metrics: Metrics
) -> None:
    # GIVEN a flyer already stored from a record
    seed(flyer_function)
    invoke("s3_flyer_spaces", lambda_context)
    before = flyer_function.row("Rock in Rio")
    flyer_metrics()

    # WHEN S3 delivers the same record again
    result = invoke("s3_flyer_spaces", lambda_context)

    # THEN the row is exactly as it was
    assert result == {"unchanged": 1}
    assert flyer_function.row("Rock in Rio") == before
    assert flyer_metrics() == {"FlyerUnchanged": 1}


@pytest.mark.parametrize(
    "older", ["s3_flyer_older_upload", "s3_flyer_older_upload_other_key"], ids=["same", "other"]
)
def test_handler_older_upload_after_newer_keeps_newer(
    flyer_function: Catalog, lambda_context: Any, older: str
) -> None:
    # GIVEN the newer upload's flyer stored first
    seed(flyer_function)
    invoke("s3_flyer_newer_upload", lambda_context)
    newer = flyer_function.row("Metallica")

    # WHEN an older upload (same key or another key of the same event) arrives late
    result = invoke(older, lambda_context)

    # THEN the newer flyer stays
    assert result == {"unchanged": 1}
    assert flyer_function.row("Metallica") == newer
    assert flyer_function.flyer("Metallica") == f"{BUCKET}/Metallica.jpg"


@pytest.mark.parametrize(
    "older", ["s3_flyer_older_upload", "s3_flyer_older_upload_other_key"], ids=["same", "other"]
)
def test_handler_newer_upload_after_older_replaces_it(
    flyer_function: Catalog, lambda_context: Any, older: str
) -> None:
    seed(flyer_function)
    invoke(older, lambda_context)

    result = invoke("s3_flyer_newer_upload", lambda_context)

    assert result == {"stored": 1}
    row = flyer_function.row("Metallica")
    assert row is not None
    assert row["flyer"] == f"{BUCKET}/Metallica.jpg"
    assert row["flyer_event_time"] == dt.datetime(2026, 3, 2, 9, 30)
    assert row["flyer_sequencer"] == normalise_sequencer("0062A1B2C3D4E5F802")


@pytest.mark.parametrize(
    "arrival",
    [
        ["s3_flyer_same_time_short_sequencer", "s3_flyer_same_time_long_sequencer"],
        ["s3_flyer_same_time_long_sequencer", "s3_flyer_same_time_short_sequencer"],
    ],
    ids=["in-order", "reversed"],
)
def test_handler_same_millisecond_uploads_padded_sequencer_decides(
    flyer_function: Catalog, lambda_context: Any, arrival: list[str]
) -> None:
    # GIVEN two uploads of one key in the same millisecond: sequencer "FF" then "0100".
    # Compared as plain strings "FF" would win; padded ("00FF" < "0100") the later one does.
    seed(flyer_function)

    for event in arrival:
        invoke(event, lambda_context)

    row = flyer_function.row("Coldplay")
    assert row is not None
    assert row["flyer_sequencer"] == normalise_sequencer("0100")


# ------------------------------------------------------------------- nothing to store


def test_handler_unknown_event_warns_counts_and_inserts_nothing(
    flyer_function: Catalog, lambda_context: Any, flyer_logs: FlyerLogs, flyer_metrics: Metrics
) -> None:
    seed(flyer_function)
    before = flyer_function.rows()

    result = invoke("s3_flyer_unknown_event", lambda_context)

    assert result == {"unknown_event": 1}
    assert flyer_function.rows() == before
    assert flyer_metrics() == {"FlyerForUnknownEvent": 1}
    [warning] = flyer_logs.warnings()
    assert warning["message"] == "Flyer for an unknown event; nothing stored"
    assert warning["event_name"] == "Not In The Catalog"
    assert warning["service"] == "flyer"


def test_handler_key_with_dot_segments_refused_with_warning_and_metric(
    flyer_function: Catalog,
    lambda_context: Any,
    flyer_logs: FlyerLogs,
    flyer_metrics: Metrics,
) -> None:
    # GIVEN a flyer uploaded as ../../Rock en el Parque.png, for a show that exists
    seed(flyer_function)
    before = flyer_function.rows()

    result = invoke("s3_flyer_dot_segments", lambda_context)

    # THEN nothing is stored: its s3:// URI would resolve to another object
    assert result == {"skipped": 1}
    assert flyer_function.rows() == before
    assert flyer_metrics() == {"FlyerKeyRefused": 1, "FlyerSkipped": 1}
    [warning] = flyer_logs.warnings()
    assert warning["message"] == "Refused a flyer key that would alias another object"


@pytest.mark.parametrize("event", ["s3_flyer_not_an_image", "s3_flyer_wrong_content_type"])
def test_handler_record_not_an_image_skipped_with_warning(
    flyer_function: Catalog,
    lambda_context: Any,
    flyer_logs: FlyerLogs,
    flyer_metrics: Metrics,
    event: str,
) -> None:
    seed(flyer_function)
    before = flyer_function.rows()

    result = invoke(event, lambda_context)

    assert result == {"skipped": 1}
    assert flyer_function.rows() == before
    assert flyer_metrics() == {"FlyerSkipped": 1}
    [warning] = flyer_logs.warnings()
    assert warning["message"] == "Skipped a record that is not a flyer"


@pytest.mark.parametrize("event", FLYER_EVENTS)
def test_handler_any_sample_event_never_inserts(
    flyer_function: Catalog, lambda_context: Any, event: str
) -> None:
    seed(flyer_function)
    names_before = [row["name"] for row in flyer_function.rows()]

    invoke(event, lambda_context)

    assert [row["name"] for row in flyer_function.rows()] == names_before


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_malformed_record_fails_before_writing(
    flyer_function: Catalog, lambda_context: Any
) -> None:
    # GIVEN an event whose second record has an invalid sequencer
    seed(flyer_function)

    # WHEN it is handled, THEN it fails whole (to be retried, then dead-lettered)...
    with pytest.raises(MalformedRecordError):
        invoke("s3_flyer_malformed_record", lambda_context)

    # ...without storing its first, valid record
    assert flyer_function.flyer("Rock in Rio") is None


# ------------------------------------------------------------------ database failures


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_database_down_raises_and_writes_nothing(
    flyer_function: Catalog, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function configured for a server that does not answer
    seed(flyer_function)
    monkeypatch.setenv("DB_PORT", str(free_port()))

    # WHEN a flyer arrives, THEN the invocation fails so that Lambda retries it
    with pytest.raises(pymysql.err.OperationalError):
        invoke("s3_flyer_several_records", lambda_context)

    assert all(row["flyer"] is None for row in flyer_function.rows())


def test_handler_every_invocation_closes_its_connection(
    flyer_function: Catalog, lambda_context: Any
) -> None:
    # GIVEN a warm execution environment
    seed(flyer_function)

    # WHEN flyers arrive one invocation after another
    for event in ("s3_flyer_spaces", "s3_flyer_literal_plus", "s3_flyer_nested_folder"):
        invoke(event, lambda_context)
        # THEN after each one the server holds no connection of the function's: an idle
        # connection of a frozen execution environment would keep Aurora from pausing
        assert flyer_function.connections_left_after_close() == []

    assert flyer_function.flyer("Metallica") == f"{BUCKET}/flyers/2026/march/Metallica.gif"


def test_handler_failed_invocation_closes_its_connection(
    flyer_function: Catalog, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a connection that breaks on the second record's UPDATE
    seed(flyer_function)
    real_store = EventsDb._store_flyer
    calls = 0

    def store_then_fail(connection: Any, upload: FlyerUpload) -> FlyerOutcome:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise pymysql.err.IntegrityError(1062, "simulated failure")
        return real_store(connection, upload)

    monkeypatch.setattr(EventsDb, "_store_flyer", staticmethod(store_then_fail))

    # WHEN the invocation fails THEN its connection is closed all the same
    with pytest.raises(pymysql.err.IntegrityError):
        invoke("s3_flyer_several_records", lambda_context)
    assert flyer_function.connections_left_after_close() == []


def test_events_db_connection_killed_between_records_reconnects(
    flyer_function: Catalog, flyer_logs: FlyerLogs
) -> None:
    # GIVEN an open catalog connection that the server then kills (restart, failover, KILL)
    seed(flyer_function)
    events_db = EventsDb(DbSettings.from_env(db_environ_from_url(flyer_function.url)))
    first = FlyerUpload("Rock in Rio", f"{BUCKET}/Rock in Rio.jpg", dt.datetime(2026, 3, 1), "1")
    second = FlyerUpload("Metallica", f"{BUCKET}/Metallica.jpg", dt.datetime(2026, 3, 1), "2")
    try:
        assert events_db.store_flyer(first) is FlyerOutcome.STORED
        [first_connection] = flyer_function.function_connection_ids()
        flyer_function.kill(first_connection)

        # WHEN the next record of the same invocation is stored
        outcome = events_db.store_flyer(second)

        # THEN it is stored over a new connection
        assert outcome is FlyerOutcome.STORED
        [second_connection] = flyer_function.function_connection_ids()
        assert second_connection != first_connection
    finally:
        events_db.close()
    assert flyer_function.flyer("Metallica") == f"{BUCKET}/Metallica.jpg"
    assert "Lost the database connection; reconnecting" in [
        warning["message"] for warning in flyer_logs.warnings()
    ]


# ---------------------------------------------------------------------------- schema


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_database_without_schema_fails_and_changes_no_schema(
    flyer_function_on_empty_database: Catalog, lambda_context: Any
) -> None:
    # GIVEN a database nobody has migrated (the deployment migrates, not the flyer function)
    assert flyer_function_on_empty_database.tables() == set()

    # WHEN a flyer arrives THEN the invocation fails (Lambda retries it) and creates nothing
    with pytest.raises(pymysql.err.ProgrammingError):
        invoke("s3_flyer_spaces", lambda_context)
    assert flyer_function_on_empty_database.tables() == set()


def test_apply_migrations_up_to_date_applies_nothing(catalog: Catalog) -> None:
    connection = catalog.server.connect(catalog.name)
    try:
        assert apply_migrations(connection) == []
    finally:
        connection.close()


def test_apply_migrations_new_file_applied_after_existing(
    empty_database: Catalog, tmp_path: Path
) -> None:
    # GIVEN a database at 001 and a new 002 migration
    connection = empty_database.server.connect(empty_database.name)
    for existing in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / existing.name).write_text(existing.read_text(encoding="utf-8"), "utf-8")
    try:
        assert apply_migrations(connection, tmp_path) == ["001_events"]
        (tmp_path / "002_event_venue.sql").write_text(
            "-- Where the event takes place.\n"
            "ALTER TABLE events ADD COLUMN venue VARCHAR(255) NULL;\n"
            "CREATE INDEX events_venue ON events (venue);\n",
            "utf-8",
        )

        # WHEN migrations are applied twice
        first = apply_migrations(connection, tmp_path)
        second = apply_migrations(connection, tmp_path)
    finally:
        connection.close()

    # THEN only 002 ran, once
    assert (first, second) == (["002_event_venue"], [])
    empty_database.add_event("Rock in Rio")
    row = empty_database.row("Rock in Rio")
    assert row is not None
    assert "venue" in row


def test_events_name_unicode_variants_are_distinct_events(catalog: Catalog) -> None:
    for name in ("Café", "Cafe", "cafe", "CAFÉ"):
        catalog.add_event(name)

    with pytest.raises(pymysql.err.IntegrityError):
        catalog.add_event("Café")
    assert len(catalog.rows()) == 4


# ---------------------------------------------------------------------------- TLS


def _tls_settings(server: Server, database: str, ca: Path) -> DbSettings:
    environ = db_environ_from_url(server.url(database)) | {"DB_SSL_CA": str(ca)}
    return DbSettings.from_env(environ)


def _require_own_ca(server: Server) -> Path:
    if server.ca_cert is None:
        pytest.skip("TLS is only checked against the server the tests start themselves")
    return server.ca_cert


def test_open_connection_with_ca_bundle_uses_verified_tls(catalog: Catalog) -> None:
    ca = _require_own_ca(catalog.server)

    connection = open_connection(_tls_settings(catalog.server, catalog.name, ca))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            (_, version) = cursor.fetchone()
    finally:
        connection.close()

    assert version.startswith("TLS")


def test_open_connection_with_other_ca_bundle_refuses_server(
    catalog: Catalog, tmp_path: Path
) -> None:
    _require_own_ca(catalog.server)
    from offline.mariadb_server import make_tls_files

    other_ca = make_tls_files(tmp_path).ca_cert

    with pytest.raises(pymysql.err.OperationalError):
        open_connection(_tls_settings(catalog.server, catalog.name, other_ca))


def test_events_db_over_verified_tls_stores_flyer(catalog: Catalog) -> None:
    ca = _require_own_ca(catalog.server)
    catalog.add_event("Rock in Rio")
    events_db = EventsDb(_tls_settings(catalog.server, catalog.name, ca))
    upload = FlyerUpload(
        event_name="Rock in Rio",
        flyer=f"{BUCKET}/Rock in Rio.jpg",
        event_time=dt.datetime(2026, 3, 1, 10),
        sequencer=normalise_sequencer("01"),
    )
    try:
        assert events_db.store_flyer(upload) is FlyerOutcome.STORED
    finally:
        events_db.close()


class DatabaseLink:
    """A TCP relay to the database that can be cut and restored, as a network or server outage
    would: cut, it drops every open connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.up = True
        self.open_sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.open_sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        self.up = False
        for end in self.open_sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.open_sockets.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_database_down_then_back_loses_nothing_and_keeps_order(
    flyer_function: Catalog,
    mysql_server: Server,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a warm function whose database link then goes down
    from events_db import default_events_db

    seed(flyer_function)
    link = DatabaseLink(mysql_server.host, mysql_server.port)
    monkeypatch.setenv("DB_PORT", str(link.port))
    default_events_db.cache_clear()
    try:
        invoke("s3_flyer_spaces", lambda_context)
        link.cut()
        # WHEN the newer flyer arrives during the outage, THEN the invocation fails (Lambda
        # retries it) and nothing is written
        with pytest.raises(pymysql.err.MySQLError):
            invoke("s3_flyer_newer_upload", lambda_context)
        assert flyer_function.flyer("Metallica") is None
        # WHEN the database is back: Lambda's retry, a duplicate, and an older upload arriving late
        link.restore()
        assert invoke("s3_flyer_newer_upload", lambda_context) == {"stored": 1}
        assert invoke("s3_flyer_newer_upload", lambda_context) == {"unchanged": 1}
        assert invoke("s3_flyer_older_upload", lambda_context) == {"unchanged": 1}
        # THEN the newest flyer is the one kept, and the earlier one is intact
        assert flyer_function.flyer("Metallica") == f"{BUCKET}/Metallica.jpg"
        assert flyer_function.flyer("Rock in Rio") == f"{BUCKET}/Rock in Rio.jpg"
    finally:
        link.close()
