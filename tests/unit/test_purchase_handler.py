"""The purchase handler's answers for every outcome, with the Step Functions client replaced."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

import purchase_handler
import purchase_workflow
from tests.events import load_event, with_body

PAN = "4111111111111111"
SUCCEEDED_OUTPUT = {
    "executionId": "ana-Rock en el Parque",
    "showId": "Rock en el Parque",
    "quantity": 2,
    "ticketsAvailable": 8,
    "card": {"brand": "visa", "last4": "1111"},
}


class FakeStepFunctions:
    """Answers StartSyncExecution with a canned result and remembers what it was asked."""

    def __init__(self, result: dict[str, Any] | Exception) -> None:
        self.result = result
        self.calls: list[dict[str, Any]] = []

    def start_sync_execution(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if isinstance(self.result, Exception):
            raise self.result
        return {"executionArn": "arn:aws:states:us-east-1:123456789012:express:sm:x", **self.result}


@pytest.fixture
def fake_sfn(monkeypatch: pytest.MonkeyPatch) -> FakeStepFunctions:
    fake = FakeStepFunctions({"status": "SUCCEEDED", "output": json.dumps(SUCCEEDED_OUTPUT)})
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:sm")
    purchase_workflow.settings.cache_clear()
    monkeypatch.setattr(purchase_workflow, "sfn_client", lambda: fake)
    return fake


def call(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = purchase_handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def emitted_metrics(output: str) -> list[str]:
    names = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            names += [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    return names


def test_handler_succeeded_execution_answers_200_with_the_sale(
    fake_sfn: FakeStepFunctions, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = call(load_event("purchase_visa"), lambda_context)
    assert status == 200
    assert body == {"message": "Purchase completed.", **SUCCEEDED_OUTPUT}
    assert emitted_metrics(capsys.readouterr().out) == ["PurchaseCompleted"]


def test_handler_execution_input_has_brand_and_last4_but_never_the_card_number(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    call(load_event("purchase_visa"), lambda_context)
    (request,) = fake_sfn.calls
    execution_input = json.loads(request["input"])
    assert PAN not in request["input"] and "4111 1111" not in request["input"]
    assert execution_input["card"] == {"brand": "visa", "last4": "1111"}
    assert execution_input["executionId"] == "ana-Rock en el Parque"
    assert execution_input["quantity"] == 2
    assert execution_input["leaseExpiresAt"] == execution_input["now"] + 60
    assert request["name"] == execution_input["attemptId"]


def test_handler_each_attempt_gets_its_own_execution_name(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    for _ in range(3):
        call(load_event("purchase_visa"), lambda_context)
    assert len({request["name"] for request in fake_sfn.calls}) == 3


@pytest.mark.parametrize(
    ("error", "status", "message", "metric"),
    [
        ("PurchaseInProgress", 400, "Purchase already in progress.", "PurchaseInProgress"),
        ("SoldOut", 400, "Tickets are sold out or purchase already processed.", "SoldOut"),
        ("ShowNotFound", 404, "Show not found.", "ShowNotFound"),
        ("PurchaseFailed", 500, "Internal server error.", "PurchaseError"),
        ("DynamoDB.AmazonDynamoDBException", 500, "Internal server error.", "PurchaseError"),
        ("States.Timeout", 500, "Internal server error.", "PurchaseError"),
    ],
)
def test_handler_failed_execution_maps_its_error_name(
    fake_sfn: FakeStepFunctions,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    error: str,
    status: int,
    message: str,
    metric: str,
) -> None:
    fake_sfn.result = {"status": "FAILED", "error": error, "cause": "details"}
    assert call(load_event("purchase_visa"), lambda_context) == (status, {"message": message})
    assert emitted_metrics(capsys.readouterr().out) == [metric]


def test_handler_timed_out_execution_answers_500(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    fake_sfn.result = {"status": "TIMED_OUT"}
    assert call(load_event("purchase_visa"), lambda_context) == (
        500,
        {"message": "Internal server error."},
    )


def test_handler_throttled_start_answers_500_and_logs_without_the_body(
    fake_sfn: FakeStepFunctions, lambda_context: Any, purchase_logs: io.StringIO
) -> None:
    fake_sfn.result = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
        "StartSyncExecution",
    )
    event = load_event("purchase_visa")
    assert call(event, lambda_context) == (500, {"message": "Internal server error."})
    logged = purchase_logs.getvalue()
    error_lines = [json.loads(line) for line in logged.splitlines() if '"level":"ERROR"' in line]
    assert error_lines, "the failure is logged"
    # The correlation id ties the log line to the API request.
    assert error_lines[0]["correlation_id"] == event["requestContext"]["requestId"]
    assert "ThrottlingException" in error_lines[0]["exception"]
    assert PAN not in logged and "4111 1111 1111 1111" not in logged


@pytest.mark.parametrize("name", ["purchase_invalid_card", "purchase_amex_card"])
def test_handler_invalid_card_answers_400_without_starting_the_workflow(
    fake_sfn: FakeStepFunctions,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    assert call(load_event(name), lambda_context) == (400, {"message": "Invalid credit card."})
    assert fake_sfn.calls == []
    assert emitted_metrics(capsys.readouterr().out) == ["InvalidCard"]


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("purchase_missing_fields", ["userId", "cardNumber"]),
        ("purchase_malformed_json", ["body"]),
        ("purchase_quantity_out_of_range", ["quantity"]),
    ],
)
def test_handler_invalid_request_answers_400_with_the_errors(
    fake_sfn: FakeStepFunctions,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fields: list[str],
) -> None:
    status, body = call(load_event(name), lambda_context)
    assert (status, body["message"]) == (400, "Invalid request.")
    assert [error["field"] for error in body["errors"]] == fields
    assert fake_sfn.calls == []
    assert emitted_metrics(capsys.readouterr().out) == ["InvalidRequest"]


def test_handler_invalid_request_wins_over_invalid_card(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    event = with_body(load_event("purchase_visa"), {"cardNumber": "1234", "showId": "Rock"})
    status, body = call(event, lambda_context)
    assert (status, body["message"]) == (400, "Invalid request.")


def test_handler_base64_body_is_decoded(fake_sfn: FakeStepFunctions, lambda_context: Any) -> None:
    import base64

    event = load_event("purchase_visa")
    event = {**event, "body": base64.b64encode(event["body"].encode()).decode()}
    event["isBase64Encoded"] = True
    assert call(event, lambda_context)[0] == 200


class RequestCaptured(Exception):
    """Stops a real client's request before it leaves the process."""


def test_lambda_trace_header_reaches_start_sync_execution(
    monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    # Without Powertools Tracer, the state machine joins the function's X-Ray trace only because
    # botocore forwards the trace id Lambda sets for each invocation.
    trace_id = "Root=1-6763a0f1-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "PurchaseFunction")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", trace_id)
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:sm")
    purchase_workflow.settings.cache_clear()
    purchase_workflow.sfn_client.cache_clear()
    client = purchase_workflow.sfn_client()
    headers: dict[str, bytes] = {}

    def capture(request: Any, **_: Any) -> None:
        headers.update(request.headers)
        raise RequestCaptured()

    client.meta.events.register("before-send.sfn.StartSyncExecution", capture)
    try:
        status, _ = call(load_event("purchase_visa"), lambda_context)
    finally:
        purchase_workflow.sfn_client.cache_clear()
    assert status == 500
    assert headers["X-Amzn-Trace-Id"] == trace_id.encode()
