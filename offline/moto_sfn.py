"""Adds StartSyncExecution, which moto lacks, on top of moto's ASL interpreter, and names task
errors as Step Functions does on AWS.

moto runs an execution on a worker thread; the sync call starts one the ordinary way, waits
until it leaves RUNNING and answers with StartSyncExecution's fields, as AWS does for EXPRESS
state machines. Works in-process (mock_aws) and in moto's server alike.
"""

from __future__ import annotations

import datetime
import functools
import json
import threading
import uuid
from typing import Any

from jsonpath_ng.ext.parser import parse as parse_json_path
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk,
    state_task_service_dynamodb,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.responses import StepFunctionResponse

from offline import jsonata_eval

# The DynamoDB error codes the AWS Java SDK v1 has an exception class for (its DynamoDB model's
# data-plane errors). The optimised integration (arn:aws:states:::dynamodb:*) names an error
# "DynamoDB." + that class, the code with "Exception" appended where it lacks it; a code without a
# class (ValidationException, ThrottlingException) arrives as its base class,
# AmazonDynamoDBException. AWS-recorded snapshots (LocalStack's parity tests,
# test_task_service_dynamodb.snapshot.json) show ValidationException -> AmazonDynamoDBException
# and ConditionalCheckFailedException unchanged; the other names follow the same rule. moto names
# errors after the wire code instead ("DynamoDB.InternalServerError"). The SDK integration
# (aws-sdk:dynamodb:*) already follows AWS: "DynamoDb." + the botocore exception name.
_JAVA_SDK_V1_DYNAMODB_ERRORS = frozenset(
    {
        "ConditionalCheckFailedException",
        "IdempotentParameterMismatchException",
        "InternalServerError",
        "ItemCollectionSizeLimitExceededException",
        "ProvisionedThroughputExceededException",
        "ReplicatedWriteConflictException",
        "RequestLimitExceeded",
        "ResourceNotFoundException",
        "TransactionCanceledException",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


def optimised_dynamodb_error_name(code: str) -> str:
    """The Step Functions error name of DynamoDB error `code` in an optimised DynamoDB task."""
    if code not in _JAVA_SDK_V1_DYNAMODB_ERRORS:
        return "DynamoDB.AmazonDynamoDBException"
    return f"DynamoDB.{code}" if code.endswith("Exception") else f"DynamoDB.{code}Exception"


_moto_dynamodb_error_cause = (
    state_task_service_dynamodb.StateTaskServiceDynamoDB._error_cause_from_client_error
)


def _dynamodb_error_cause_as_on_aws(client_error: Any) -> tuple[str, str]:
    _, cause = _moto_dynamodb_error_cause(client_error)
    return optimised_dynamodb_error_name(client_error.response["Error"]["Code"]), cause


_moto_dynamodb_from_error = state_task_service_dynamodb.StateTaskServiceDynamoDB._from_error


def _dynamodb_task_failure_keeping_the_states_own(self: Any, env: Any, ex: Exception) -> Any:
    # moto's optimised DynamoDB task names every failure that is not a ClientError
    # DynamoDB.AmazonDynamoDBException, the state's own too: Arguments whose JSONata fails
    # (States.QueryEvaluationError, which a Catch can take) never reach DynamoDB on AWS. The SDK
    # integration (aws-sdk:dynamodb:*) already keeps them.
    if isinstance(ex, FailureEventException):
        return ex.failure_event
    return _moto_dynamodb_from_error(self, env, ex)


# AWS ends a sync execution after 5 minutes whatever the state machine says.
SYNC_LIMIT_SECONDS = 300
_SYNC_STATUS = {"SUCCEEDED": "SUCCEEDED", "TIMED_OUT": "TIMED_OUT"}  # anything else: FAILED

# One event per execution ARN, set once moto has recorded the execution's end completely:
# moto sets the status before the output, so polling the status alone can read a SUCCEEDED
# execution without its output.
_ended: dict[str, threading.Event] = {}
_ended_lock = threading.Lock()


def _ended_event(execution_arn: str) -> threading.Event:
    with _ended_lock:
        return _ended.setdefault(execution_arn, threading.Event())


_moto_terminated = BaseExecutionWorkerCommunication.terminated


def _terminated_and_signalled(self: BaseExecutionWorkerCommunication) -> None:
    try:
        _moto_terminated(self)
    finally:
        _ended_event(self.execution.execution_arn).set()


def _start_sync_execution(self: StepFunctionResponse) -> ActionResult:
    execution = self.stepfunction_backend.start_execution(
        self._get_param("stateMachineArn"),
        # AWS names an unnamed execution with a UUID; moto's interpreter would run it named None
        # ($$.Execution.Name null, an ARN ending in ":None").
        self._get_param("name") or str(uuid.uuid4()),
        self._get_param("input", if_none="{}"),
    )
    ended = _ended_event(execution.execution_arn).wait(SYNC_LIMIT_SECONDS)
    with _ended_lock:
        _ended.pop(execution.execution_arn, None)
    status = _status(execution) if ended else "TIMED_OUT"
    response: dict[str, Any] = {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date,
        "status": _SYNC_STATUS.get(status, "FAILED"),
        "input": execution.execution_input,
    }
    if status == "SUCCEEDED":
        # The output's value, in JSON: a state machine that ends with a string ends with a JSON
        # string, quotes included.
        response["output"] = json.dumps(execution.output)
    for field in ("error", "cause"):
        value = getattr(execution, field, None)
        if value is not None:
            response[field] = value
    return ActionResult(response)


def _status(execution: Any) -> str:
    status = execution.status
    return str(getattr(status, "value", status))


_moto_start_details = Execution.get_start_execution_details


def _start_details_with_iso_start_time(self: Execution) -> Any:
    # AWS gives $$.Execution.StartTime as an ISO-8601 string; moto passes a datetime, which
    # a DynamoDB task cannot send. Render it the way AWS does.
    details = _moto_start_details(self)
    start = details.start_time
    if isinstance(start, datetime.datetime):
        details.start_time = (
            start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        )
    return details


@functools.cache
def _parsed(definition: str) -> Any:
    return AmazonStateLanguageParser.parse(definition)[0]


def _cached_entrypoint(self: ExecutionWorker) -> Any:
    return _parsed(self._evaluation_details.state_machine_details.definition)


@functools.cache
def _client(region: str, service: str) -> Any:
    return boto_client.boto_client_for(region=region, service=service)


def _cached_client(region: str, service: str, state_credentials: Any = None) -> Any:
    # moto's boto_client_for ignores the state's credentials: one client per service will do.
    return _client(region, service)


def install() -> None:
    """Teach moto StartSyncExecution, AWS's StartTime format, AWS's DynamoDB error names and
    JSONata (offline/jsonata_eval.py), and make it fast enough.

    moto's interpreter parses the whole ASL with ANTLR for every execution, builds a JSONPath
    parser (PLY tables) for every path it evaluates and a boto3 client for every task: most of
    the CPU of an execution. The parsed program keeps each execution's state in that execution's
    environment, parsed paths are immutable and clients are thread-safe, so each is made once.
    """
    state_task_service_dynamodb.StateTaskServiceDynamoDB._error_cause_from_client_error = (  # type: ignore[method-assign]
        staticmethod(_dynamodb_error_cause_as_on_aws)
    )
    state_task_service_dynamodb.StateTaskServiceDynamoDB._from_error = (  # type: ignore[method-assign]
        _dynamodb_task_failure_keeping_the_states_own
    )
    StepFunctionResponse.start_sync_execution = _start_sync_execution  # type: ignore[attr-defined]
    Execution.get_start_execution_details = _start_details_with_iso_start_time  # type: ignore[method-assign]
    ExecutionWorker._get_evaluation_entrypoint = _cached_entrypoint  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = _terminated_and_signalled  # type: ignore[method-assign]
    json_path.parse = functools.cache(parse_json_path)  # type: ignore[attr-defined]
    for module in (state_task_service_aws_sdk, state_task_service_dynamodb):
        module.boto_client_for = _cached_client  # type: ignore[attr-defined]
    jsonata_eval.install()
