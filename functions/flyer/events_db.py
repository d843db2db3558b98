"""The events catalog in MySQL: a verified, token-authenticated connection that waits out a
resume, and the flyer UPDATE."""

from __future__ import annotations

import contextlib
import enum
import functools
import ssl
import time
from typing import Any

import boto3
import pymysql
from aws_lambda_powertools import Logger
from pymysql.constants import CR, ER

from flyer_config import SERVICE_NAME, DbSettings
from flyer_records import FlyerUpload

logger = Logger(service=SERVICE_NAME, child=True)

# Errors after which a connection cannot be trusted any more: the server closed it (idle timeout,
# restart, failover, KILL) or the network dropped it.
CONNECTION_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError)

# Per attempt: the TCP connect, then (as PyMySQL's read timeout) the server's greeting and every
# query. Well below the function's timeout, so that a stuck query fails the invocation (and is
# retried) instead of timing it out.
CONNECT_ATTEMPT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 10
# A paused Aurora Serverless v2 instance resumes on the first connection attempt and answers it
# once awake: about 15 s, up to about 30 s after a day paused (Aurora user guide, "Scaling to
# zero ACUs with automatic pause and resume"). Attempts that time out or are refused meanwhile
# are retried until this much time has passed since the first, so that a resume costs one slow
# invocation rather than a failed one. The function's timeout covers it (template.yaml).
RESUME_WAIT_SECONDS = 40
RETRY_PAUSE_SECONDS = 1.0
# Errors a waking, restarting or unreachable server gives; anything else (a wrong password, an
# unknown database) fails at once.
_RETRIED_CONNECT_ERRORS = frozenset(
    {
        CR.CR_CONN_HOST_ERROR,
        CR.CR_SERVER_GONE_ERROR,
        CR.CR_SERVER_LOST,
        ER.CON_COUNT_ERROR,
        ER.SERVER_SHUTDOWN,
    }
)

_CERTIFICATE_ERROR = ssl.SSLCertVerificationError

# One statement: the flyer and its guard change together or not at all. The row tuple mirrors
# FlyerUpload.version: only a strictly newer upload replaces the flyer, so a repeated record
# matches nothing and an older one arriving late cannot overwrite a newer one. A flyer set
# without a guard (by hand) is replaced by any upload.
_STORE_FLYER = """
UPDATE events
SET flyer = %(flyer)s, flyer_event_time = %(event_time)s, flyer_sequencer = %(sequencer)s
WHERE name = %(name)s
  AND (flyer_event_time IS NULL
       OR (flyer_event_time, flyer, flyer_sequencer) < (%(event_time)s, %(flyer)s, %(sequencer)s))
"""
_EVENT_EXISTS = "SELECT 1 FROM events WHERE name = %(name)s"


class FlyerOutcome(enum.Enum):
    """What storing one upload did."""

    STORED = "stored"
    # The row already holds this upload or a newer one.
    UNCHANGED = "unchanged"
    UNKNOWN_EVENT = "unknown_event"


def open_connection(settings: DbSettings) -> Any:
    """A new autocommit connection, as `settings.user` with its password or an IAM token.

    With a CA bundle, TLS is required (PyMySQL refuses a server that does not offer it, before
    sending any credential), the certificate must chain to the bundle and name the host.
    """
    tls: dict[str, Any] = {}
    if settings.ssl_ca is not None:
        tls = {"ssl_ca": str(settings.ssl_ca), "ssl_verify_cert": True, "ssl_verify_identity": True}
    return pymysql.connect(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password if settings.password is not None else iam_auth_token(settings),
        database=settings.name,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=CONNECT_ATTEMPT_SECONDS,
        read_timeout=QUERY_TIMEOUT_SECONDS,
        write_timeout=QUERY_TIMEOUT_SECONDS,
        **tls,
    )


def iam_auth_token(settings: DbSettings) -> str:
    """An RDS IAM authentication token for `settings.user`, valid 15 minutes.

    Signed here with the function's own credentials (SigV4, no request to AWS): no endpoint, no
    NAT gateway. The database checks it with IAM; it travels as a cleartext password, which is
    why it is only ever sent over verified TLS (DbSettings refuses IAM without a CA bundle).
    """
    token: str = _rds_client(str(settings.region)).generate_db_auth_token(
        DBHostname=settings.host, Port=settings.port, DBUsername=settings.user
    )
    return token


@functools.cache
def _rds_client(region: str) -> Any:
    # Created on first use, once per execution environment: loading its model takes a moment.
    # A session of its own reads the credentials afresh (the default one caches them).
    return boto3.session.Session().client("rds", region_name=region)


def connect_waiting_out_a_resume(settings: DbSettings) -> Any:
    """`open_connection`, attempted again while the server is waking up (RESUME_WAIT_SECONDS)."""
    deadline = time.monotonic() + RESUME_WAIT_SECONDS
    attempts = 0
    while True:
        attempts += 1
        try:
            connection = open_connection(settings)
        except pymysql.err.OperationalError as error:
            code = error.args[0] if error.args else None
            # PyMySQL reports a certificate that fails verification as a connection error: no
            # wait makes an impostor (or a wrong CA bundle) pass.
            refused = isinstance(getattr(error, "original_exception", None), _CERTIFICATE_ERROR)
            if code not in _RETRIED_CONNECT_ERRORS or refused or time.monotonic() >= deadline:
                raise
            logger.info("Database not answering yet; trying again", extra={"error": repr(error)})
            time.sleep(RETRY_PAUSE_SECONDS)
            continue
        if attempts > 1:
            logger.info("Database answered", extra={"attempts": attempts})
        return connection


class EventsDb:
    """The events catalog, over a connection opened on first use and kept until `close()`.

    The handler closes it at the end of every invocation: a connection left open by a frozen
    execution environment would keep an Aurora Serverless v2 catalog from ever pausing. The
    schema is not this function's to change (its database user may only read and update
    `events`): the deployment migrates it (catalog_users).
    """

    def __init__(self, settings: DbSettings) -> None:
        self._settings = settings
        self._connection: Any = None

    def store_flyer(self, upload: FlyerUpload) -> FlyerOutcome:
        """Record `upload` as its event's flyer unless the row already has it or a newer one."""
        if self._connection is not None:
            try:
                return self._store_flyer(self._connection, upload)
            except CONNECTION_ERRORS as error:
                # The UPDATE is idempotent, so running it again on a new connection is safe.
                logger.warning(
                    "Lost the database connection; reconnecting", extra={"error": repr(error)}
                )
                self.close()
        return self._store_flyer(self._open(), upload)

    def close(self) -> None:
        """Close the connection, if any; the next call opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closing a connection the server already dropped raises: nothing is left to release.
            with contextlib.suppress(pymysql.err.Error):
                connection.close()

    def _open(self) -> Any:
        self._connection = connect_waiting_out_a_resume(self._settings)
        return self._connection

    @staticmethod
    def _store_flyer(connection: Any, upload: FlyerUpload) -> FlyerOutcome:
        parameters = {
            "name": upload.event_name,
            "flyer": upload.flyer,
            "event_time": upload.event_time,
            "sequencer": upload.sequencer,
        }
        with connection.cursor() as cursor:
            if cursor.execute(_STORE_FLYER, parameters):
                return FlyerOutcome.STORED
            # Nothing changed: tell an unknown event from an up-to-date row. A read only, so the
            # write itself stays one statement.
            if cursor.execute(_EVENT_EXISTS, {"name": upload.event_name}):
                return FlyerOutcome.UNCHANGED
            return FlyerOutcome.UNKNOWN_EVENT


@functools.cache
def default_events_db() -> EventsDb:
    """The execution environment's catalog, configured from the environment on first use."""
    return EventsDb(DbSettings.from_env())


def close_default_events_db() -> None:
    """Close the execution environment's connection, if one was ever configured and opened."""
    if default_events_db.cache_info().currsize:
        default_events_db().close()
