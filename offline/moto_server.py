"""moto as one local AWS endpoint (S3, SQS, DynamoDB, Step Functions), made faithful enough to
judge the sale: DynamoDB's contention behaviour, executed ASL with StartSyncExecution and AWS's
error names, S3 sequencers."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterator
from typing import Any

import boto3
from moto import mock_aws
from moto.moto_api._internal.models import moto_api_backend
from moto.s3 import notifications
from moto.server import ThreadedMotoServer

from offline import cfn_template, dynamodb_engine, moto_sfn

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
    dynamodb_engine.install()
    notifications._get_s3_event = _s3_event_with_sequencer
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


def start(host: str, port: int) -> ThreadedMotoServer:
    """Serve moto on host:port in this process, with the fixes installed."""
    os.environ["MOTO_PORT"] = str(port)
    # One log line per AWS request would drown the functions' own logs.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    install()
    # Settings read now, so that a bad LOCAL_DYNAMODB_* value stops the start with its name.
    dynamodb_engine.ENGINE.reset(dynamodb_engine.Settings.from_env())
    # In-process interception too: the state machine's own DynamoDB calls then reach the same
    # backends without an HTTP round trip through the server (several times faster). Clients
    # with an endpoint_url, such as the functions', still go through the server.
    mock_aws(config={"stepfunctions": {"execute_state_machine": True}}).start()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


@contextlib.contextmanager
def in_process(template: dict[str, Any]) -> Iterator[str]:
    """moto intercepting this process's AWS calls, with the fixes installed, the template's
    tables and its purchase state machine, whose ARN it yields. The engine reads its settings
    from the environment (tests and benchmarks)."""
    install()
    dynamodb_engine.ENGINE.reset()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        cfn_template.create_tables(boto3.client("dynamodb"), template)
        yield cfn_template.create_state_machine(
            boto3.client("stepfunctions"), template, "PurchaseStateMachine"
        )
