"""moto as one local AWS endpoint (S3, SQS, DynamoDB, Step Functions), made faithful enough to
judge the sale: serialised DynamoDB, executed ASL with StartSyncExecution, S3 sequencers."""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import Any

from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler
from moto.moto_api._internal.models import moto_api_backend
from moto.s3 import notifications
from moto.server import ThreadedMotoServer

from offline import moto_sfn

_dynamodb_lock = threading.RLock()
_moto_call_action = DynamoHandler.call_action


def _serialised_call_action(self: DynamoHandler) -> Any:
    # moto's DynamoDB has no locks: under concurrent requests it loses acknowledged writes, and a
    # failed transaction restores tables from a copy, undoing writes made meanwhile. One request
    # at a time makes every operation atomic, as DynamoDB's are; it does not make a read followed
    # by a write atomic, so a naive read-then-write can still oversell here, as on AWS.
    with _dynamodb_lock:
        return _moto_call_action(self)


_moto_s3_event = notifications._get_s3_event
_sequence = itertools.count(1)


def _s3_event_with_sequencer(*args: Any, **kwargs: Any) -> dict[str, Any]:
    # AWS puts a per-key, increasing hex `sequencer` in every record; moto leaves it out, and the
    # flyer function orders uploads by it.
    event: dict[str, Any] = _moto_s3_event(*args, **kwargs)
    for record in event["Records"]:
        record["s3"]["object"]["sequencer"] = f"{next(_sequence):016X}"
    return event


def install() -> None:
    """Apply every fix to moto in this process (idempotent)."""
    moto_sfn.install()
    DynamoHandler.call_action = _serialised_call_action  # type: ignore[method-assign]
    notifications._get_s3_event = _s3_event_with_sequencer
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


def start(host: str, port: int) -> ThreadedMotoServer:
    """Serve moto on host:port in this process, with the fixes installed."""
    os.environ["MOTO_PORT"] = str(port)
    # One log line per AWS request would drown the functions' own logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    install()
    # In-process interception too: the state machine's own DynamoDB calls then reach the same
    # backends without an HTTP round trip through the server (several times faster). Clients
    # with an endpoint_url, such as the functions', still go through the server.
    mock_aws(config={"stepfunctions": {"execute_state_machine": True}}).start()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server
