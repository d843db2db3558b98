"""A catalog that is asleep: the flyer still lands, once, and no connection is left behind.

Aurora Serverless v2 at 0 ACU resumes when a connection arrives and answers it once awake, about
15 s later. `WakingDatabase` plays that in front of the real MariaDB, in seconds rather than
tens of seconds: until it wakes it either refuses connections or accepts and holds them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

import events_db
import flyer_handler
from tests.events import load_event
from tests.integration.conftest import Catalog, FlyerLogs, Server, pipe

FLYER = "s3://ticketera-flyers-example/Rock in Rio.jpg"
WAKE_AFTER_SECONDS = 2.5


class WakingDatabase:
    """A TCP relay to the real server that starts relaying `wake_after` seconds from now.

    `refuse`: until then the port is bound but not listening, so connections are refused.
    `hold`: connections are accepted at once and get the server's greeting only once awake.
    """

    def __init__(self, server: Server, wake_after: float, *, mode: str) -> None:
        self.target = (server.host, server.port)
        self.wakes_at = time.monotonic() + wake_after
        self.mode = mode
        self.connections_before_waking = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        if self.mode == "refuse":
            time.sleep(max(0.0, self.wakes_at - time.monotonic()))
        try:
            self.listener.listen()
        except OSError:
            return  # closed by the test before it woke
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.wakes_at:
                self.connections_before_waking += 1
            self._sockets.append(client)
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        time.sleep(max(0.0, self.wakes_at - time.monotonic()))
        server = socket.create_connection(self.target)
        self._sockets.append(server)
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self.listener.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def asleep(
    flyer_function: Catalog, mysql_server: Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The flyer function pointed at a relay that wakes WAKE_AFTER_SECONDS after it is made."""
    made: list[WakingDatabase] = []

    def make(mode: str, wake_after: float = WAKE_AFTER_SECONDS) -> WakingDatabase:
        database = WakingDatabase(mysql_server, wake_after, mode=mode)
        made.append(database)
        monkeypatch.setenv("DB_PORT", str(database.port))
        events_db.default_events_db.cache_clear()
        return database

    # The function's own resume wait (40 s) scaled down to these seconds-long resumes.
    monkeypatch.setattr(events_db, "RESUME_WAIT_SECONDS", 10)
    monkeypatch.setattr(events_db, "RETRY_PAUSE_SECONDS", 0.2)
    yield make
    for database in made:
        database.close()


def invoke(context: Any) -> dict[str, int]:
    result: dict[str, int] = flyer_handler.lambda_handler(load_event("s3_flyer_spaces"), context)
    return result


@pytest.mark.parametrize("mode", ["refuse", "hold"])
def test_handler_catalog_resuming_still_stores_the_flyer_once(
    flyer_function: Catalog, asleep: Any, lambda_context: Any, flyer_logs: FlyerLogs, mode: str
) -> None:
    # GIVEN an event in a catalog that is asleep: it refuses or holds connections for a while
    flyer_function.add_event("Rock in Rio")
    database = asleep(mode)

    # WHEN the flyer arrives
    result = invoke(lambda_context)

    # THEN the one invocation waited for the database and stored the flyer, once
    assert result == {"stored": 1}
    assert flyer_function.flyer("Rock in Rio") == FLYER
    assert len(flyer_function.rows()) == 1
    if mode == "hold":
        assert database.connections_before_waking >= 1
    else:
        assert "Database not answering yet; trying again" in [
            record["message"] for record in flyer_logs.records()
        ]
    # AND it left no connection behind, so the catalog may go back to sleep
    assert flyer_function.connections_left_after_close() == []
    # AND Lambda delivering the same notification again changes nothing
    assert invoke(lambda_context) == {"unchanged": 1}


def test_handler_catalog_holding_past_one_attempt_is_tried_again(
    flyer_function: Catalog, asleep: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a catalog that holds connections longer than one attempt waits for the greeting
    flyer_function.add_event("Rock in Rio")
    monkeypatch.setattr(events_db, "QUERY_TIMEOUT_SECONDS", 1)
    database = asleep("hold")

    # WHEN the flyer arrives THEN a later attempt within the same invocation stores it
    assert invoke(lambda_context) == {"stored": 1}
    assert database.connections_before_waking >= 2
    assert flyer_function.flyer("Rock in Rio") == FLYER
    assert flyer_function.connections_left_after_close() == []


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_catalog_asleep_beyond_the_wait_fails_and_writes_nothing(
    flyer_function: Catalog, asleep: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a catalog that stays unreachable longer than the function waits
    flyer_function.add_event("Rock in Rio")
    asleep("refuse", wake_after=30)
    monkeypatch.setattr(events_db, "RESUME_WAIT_SECONDS", 1)

    # WHEN the flyer arrives THEN the invocation fails, for Lambda to retry it later
    with pytest.raises(pymysql.err.OperationalError):
        invoke(lambda_context)
    assert flyer_function.flyer("Rock in Rio") is None


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_handler_wrong_password_fails_without_waiting(
    flyer_function: Catalog,
    lambda_context: Any,
    flyer_logs: FlyerLogs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a catalog that is awake but refuses the function's password
    flyer_function.add_event("Rock in Rio")
    monkeypatch.setenv("DB_USER", "nobody")
    monkeypatch.setattr(events_db, "RESUME_WAIT_SECONDS", 30)
    events_db.default_events_db.cache_clear()

    # WHEN the flyer arrives THEN the invocation fails at once: no resume explains that error
    with pytest.raises(pymysql.err.OperationalError) as error:
        invoke(lambda_context)
    assert error.value.args[0] == 1045  # access denied
    assert "Database not answering yet; trying again" not in [
        record["message"] for record in flyer_logs.records()
    ]
