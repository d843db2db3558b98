"""The purchase handler's answers for every outcome, with the Step Functions client replaced."""

from __future__ import annotations

import gc
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import purchase_handler
import purchase_workflow
from card_numbers import find_card_numbers
from tests.events import load_event, with_body

PAN = "4111111111111111"
# What a sale's execution outputs: the stock it read just before committing the sale.
SUCCEEDED_OUTPUT = {"ticketsBeforeSale": 10}
SOLD_BODY = {
    "message": "Purchase completed.",
    "executionId": "ana-Rock en el Parque",
    "showId": "Rock en el Parque",
    "quantity": 2,
    "ticketsAvailable": 8,
    "card": {"brand": "visa", "last4": "1111"},
}
BUSY = "Too many buyers right now: try again shortly."


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
    # Starts refused by Step Functions are retried after a jittered wait: no wait in tests.
    monkeypatch.setattr(purchase_workflow.random, "uniform", lambda low, high: 0.0)
    return fake


def call(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = purchase_handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def headers_of(event: dict[str, Any], context: Any) -> dict[str, str]:
    headers: dict[str, str] = purchase_handler.lambda_handler(event, context)["headers"]
    return headers


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
    assert body == SOLD_BODY
    assert emitted_metrics(capsys.readouterr().out) == ["PurchaseCompleted"]


def test_handler_sale_made_by_an_earlier_execution_answers_200_without_the_stock(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    fake_sfn.result = {"status": "SUCCEEDED", "output": "{}"}
    assert call(load_event("purchase_visa"), lambda_context) == (
        200,
        {**SOLD_BODY, "ticketsAvailable": None},
    )


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


def test_handler_each_request_without_a_key_is_a_new_attempt_and_execution(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    for _ in range(3):
        call(load_event("purchase_visa"), lambda_context)
    attempts = {json.loads(request["input"])["attemptId"] for request in fake_sfn.calls}
    assert len(attempts) == 3
    assert len({request["name"] for request in fake_sfn.calls}) == 3


@pytest.mark.parametrize(
    ("error", "status", "message", "metric"),
    [
        ("PurchaseInProgress", 400, "Purchase already in progress.", "PurchaseInProgress"),
        ("SoldOut", 400, "Tickets are sold out or purchase already processed.", "SoldOut"),
        ("ShowNotFound", 404, "Show not found.", "ShowNotFound"),
        ("SaleContended", 503, BUSY, "ShowBusy"),
        ("StockUnreadable", 500, "Internal server error.", "PurchaseError"),
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


def test_handler_contended_show_answers_503_with_retry_after(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    fake_sfn.result = {"status": "FAILED", "error": "SaleContended", "cause": "4 attempts"}
    assert headers_of(load_event("purchase_visa"), lambda_context)["Retry-After"] == "1"


def test_handler_throttled_start_is_retried_then_answers_503(
    fake_sfn: FakeStepFunctions, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN Step Functions refusing every start: a refused start ran nothing
    fake_sfn.result = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
        "StartSyncExecution",
    )
    # THEN the start is tried 3 times, and the buyer is told to retry
    assert call(load_event("purchase_visa"), lambda_context) == (503, {"message": BUSY})
    assert len(fake_sfn.calls) == 3
    assert emitted_metrics(capsys.readouterr().out) == ["WorkflowThrottled"]


def test_handler_unreachable_endpoint_is_retried_since_nothing_was_sent(
    fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    fake_sfn.result = EndpointConnectionError(endpoint_url="https://states.invalid")
    assert call(load_event("purchase_visa"), lambda_context)[0] == 503
    assert len(fake_sfn.calls) == 3


@pytest.mark.parametrize(
    "lost",
    [
        ReadTimeoutError(endpoint_url="https://states.invalid"),
        ClientError(
            {
                "Error": {"Code": "InternalServerError", "Message": "oops"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            "StartSyncExecution",
        ),
    ],
)
def test_handler_start_whose_answer_is_lost_is_never_retried_and_answers_504(
    fake_sfn: FakeStepFunctions,
    lambda_context: Any,
    purchase_logs: io.StringIO,
    lost: Exception,
) -> None:
    # GIVEN a start that may have been received: the execution may be running
    fake_sfn.result = lost
    event = load_event("purchase_visa")
    # THEN it is not started a second time, and the buyer is told the outcome is unknown
    assert call(event, lambda_context) == (
        504,
        {"message": "Purchase outcome unknown: retry with the same Idempotency-Key."},
    )
    assert len(fake_sfn.calls) == 1
    logged = purchase_logs.getvalue()
    warning = next(json.loads(line) for line in logged.splitlines() if '"WARNING"' in line)
    # The correlation id ties the log line to the API request.
    assert warning["correlation_id"] == event["requestContext"]["requestId"]
    assert PAN not in logged and "4111 1111 1111 1111" not in logged


@pytest.fixture
def dropping_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback endpoint that reads each request whole, then closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                data = connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(body) < length:
                    body += connection.recv(65536)
                received.append(body)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    listener.close()


def test_handler_start_dropped_after_the_request_sends_it_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    dropping_endpoint: tuple[str, list[bytes]],
) -> None:
    # GIVEN the real client, against an endpoint that receives the request and drops the line
    url, received = dropping_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", url)
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:sm")
    purchase_workflow.settings.cache_clear()
    purchase_workflow.sfn_client.cache_clear()
    try:
        status, _ = call(load_event("purchase_visa"), lambda_context)
    finally:
        purchase_workflow.sfn_client.cache_clear()
    # THEN one StartSyncExecution reached it (botocore's retries would have sent 4), and the
    # buyer hears the outcome is unknown, not an error that invites buying again
    assert status == 504
    assert len(received) == 1


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


def test_purchase_handler_import_leaves_garbage_collection_on() -> None:
    # The handler pauses the collector for its imports only (docs/cost.md): a warm execution
    # environment must still collect its cycles.
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


# ------------------------------------------------------------------ the signed-in buyer
SUBJECT = "7d3f2a4c-0000-4ab8-9de1-000000000001"


@pytest.fixture
def signed_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The function as the template deploys it by default: buyers signed in with a token."""
    monkeypatch.setenv("BUYER_AUTH", "jwt")
    purchase_handler.anonymous_buyers.cache_clear()
    yield
    purchase_handler.anonymous_buyers.cache_clear()


def test_handler_signed_in_buyer_is_the_tokens_subject(
    fake_sfn: FakeStepFunctions, lambda_context: Any, signed_in: None
) -> None:
    # GIVEN a request whose token's subject is the buyer, with no userId in the body
    status, body = call(load_event("purchase_signed_in"), lambda_context)
    # THEN the sale is the subject's, in the answer and in the workflow's input
    assert (status, body["executionId"]) == (200, f"{SUBJECT}-Rock en el Parque")
    (start,) = fake_sfn.calls
    assert json.loads(start["input"])["userId"] == SUBJECT


def test_handler_body_naming_another_buyer_answers_403_and_starts_nothing(
    fake_sfn: FakeStepFunctions,
    lambda_context: Any,
    signed_in: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = load_event("purchase_signed_in")
    event = with_body(event, {**json.loads(event["body"]), "userId": "victim"})
    assert call(event, lambda_context) == (403, {"message": "userId is not the signed-in buyer."})
    assert fake_sfn.calls == []
    assert emitted_metrics(capsys.readouterr().out) == ["BuyerMismatch"]


def test_handler_signed_in_mode_without_the_authorizers_claims_answers_401(
    fake_sfn: FakeStepFunctions, lambda_context: Any, signed_in: None
) -> None:
    # GIVEN a route reached without the JWT authorizer (a misconfigured stack): the body's
    # userId must not be trusted instead
    assert call(load_event("purchase_visa"), lambda_context) == (401, {"message": "Unauthorized"})
    assert fake_sfn.calls == []


def test_handler_unknown_buyer_auth_mode_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, fake_sfn: FakeStepFunctions, lambda_context: Any
) -> None:
    monkeypatch.setenv("BUYER_AUTH", "cognito")
    purchase_handler.anonymous_buyers.cache_clear()
    try:
        assert call(load_event("purchase_visa"), lambda_context)[0] == 500
    finally:
        purchase_handler.anonymous_buyers.cache_clear()
    assert fake_sfn.calls == []


@pytest.mark.parametrize(
    "switches",
    [
        {"POWERTOOLS_LOGGER_LOG_EVENT": "true"},
        {"POWERTOOLS_LOGGER_LOG_EVENT": "true", "POWERTOOLS_LOG_LEVEL": "DEBUG"},
        {"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_DEBUG": "true"},
    ],
    ids=["log-event", "log-event-debug", "debug"],
)
def test_handler_debugging_switches_never_log_the_card_number(switches: dict[str, str]) -> None:
    # GIVEN a cold function started with Powertools' debugging switches on (they are read when
    # the handler module is imported, so it runs in a process of its own)
    script = """
import json, sys
import purchase_workflow
from tests.events import FakeLambdaContext, load_event, with_body

class Client:
    def start_sync_execution(self, **request):
        return {"status": "SUCCEEDED", "output": json.dumps({"ticketsBeforeSale": 5})}

purchase_workflow.sfn_client = lambda: Client()
import purchase_handler
for body in ({"cardNumber": "4111 1111 1111 1111"}, {"cardNumber": "4111111111111112"},
             {"userId": "4111111111111111"}, "not json 4111111111111111"):
    event = load_event("purchase_visa")
    sent = body if isinstance(body, str) else {**json.loads(event["body"]), **body}
    event = with_body(event, sent)
    purchase_handler.lambda_handler(event, FakeLambdaContext())
"""
    env = {
        **os.environ,
        **switches,
        "BUYER_AUTH": "none",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:sm",
        "PYTHONPATH": os.pathsep.join(
            ["functions/purchase", "layers/card_validation", "functions/flyer", "."]
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # WHEN it answered a sale, an invalid card, a card number as userId and broken JSON
    logged = done.stdout + done.stderr
    assert '"level":"INFO"' in logged or '"level":"DEBUG"' in logged  # it did log
    # THEN no line holds a card number
    assert find_card_numbers(logged) == []
