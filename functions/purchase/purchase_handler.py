"""POST /purchases: validate the request and the card, then run the purchase state machine.

The HTTP API routes only `POST /purchases` here, so the handler reads the API Gateway event
itself: a Powertools resolver and Tracer for one route cost the cold start more than a third
(BENCHMARKS.md). The X-Ray trace still goes API -> Lambda -> Step Functions: Lambda's active
tracing records the function, and botocore forwards the function's trace header to
StartSyncExecution.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from card_validation import Card, InvalidCardError, check_card
from purchase_idempotency import Answer, answer_once, idempotency_key
from purchase_request import InvalidRequestError, parse_purchase
from purchase_workflow import (
    PurchaseInProgressError,
    ShowNotFoundError,
    SoldOutError,
    run_purchase,
)

logger = Logger()
metrics = Metrics()

# Every answer other than a sale: status, the contract's message, and the metric it counts.
# Any other exception is unexpected: a 500.
ANSWERS: dict[type[Exception], tuple[HTTPStatus, str, str]] = {
    InvalidRequestError: (HTTPStatus.BAD_REQUEST, "Invalid request.", "InvalidRequest"),
    InvalidCardError: (HTTPStatus.BAD_REQUEST, "Invalid credit card.", "InvalidCard"),
    PurchaseInProgressError: (
        HTTPStatus.BAD_REQUEST,
        "Purchase already in progress.",
        "PurchaseInProgress",
    ),
    SoldOutError: (
        HTTPStatus.BAD_REQUEST,
        "Tickets are sold out or purchase already processed.",
        "SoldOut",
    ),
    ShowNotFoundError: (HTTPStatus.NOT_FOUND, "Show not found.", "ShowNotFound"),
}
REFUSALS = tuple(ANSWERS)

COMPLETED = "Purchase completed."
# The metric counting each answer, found from its message.
METRICS = {message: metric for _, message, metric in ANSWERS.values()} | {
    COMPLETED: "PurchaseCompleted"
}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        status, body = purchase(event, context)
    except REFUSALS as refusal:
        status, body = refused(refusal)
    except Exception:
        # The request body is never logged: it holds the card number.
        logger.exception("Purchase failed unexpectedly")
        metrics.add_metric(name="PurchaseError", unit=MetricUnit.Count, value=1)
        status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal server error."}
    return {
        "statusCode": status.value,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def purchase(event: dict[str, Any], context: LambdaContext) -> tuple[HTTPStatus, dict[str, Any]]:
    request = parse_purchase(request_body(event))
    card = check_card(request.card_number)
    key = idempotency_key(event.get("headers") or {})
    # What the sale needs, and all an idempotency record may hold: never the card number.
    sale = {
        "userId": request.user_id,
        "showId": request.show_id,
        "quantity": request.quantity,
        "card": {"brand": card.brand, "last4": card.last4},
    }
    answer = sell(sale) if key is None else answer_once(key, sale, sell, context)
    metrics.add_metric(name=METRICS[answer["body"]["message"]], unit=MetricUnit.Count, value=1)
    return HTTPStatus(answer["status"]), answer["body"]


def request_body(event: dict[str, Any]) -> bytes | str | None:
    """The body as API Gateway sent it: text, or the bytes of a body it base64-encoded (one
    that is not UTF-8, for instance), for the parser to judge."""
    body: str | None = event.get("body")
    if event.get("isBase64Encoded") and body:
        return base64.b64decode(body)
    return body


def sell(sale: dict[str, Any]) -> Answer:
    """Run the sale; its final answer (sold, sold out, no such show) as {"status", "body"}.

    An answer that is not final (in progress, unexpected failure) is raised instead, so that
    it is never stored for an idempotent replay.
    """
    try:
        result = run_purchase(
            sale["userId"], sale["showId"], sale["quantity"], Card(**sale["card"])
        )
    except (SoldOutError, ShowNotFoundError) as refusal:
        status, message, _ = ANSWERS[type(refusal)]
        return {"status": status.value, "body": {"message": message}}
    return {
        "status": HTTPStatus.OK.value,
        "body": {
            "message": COMPLETED,
            "executionId": result.execution_id,
            "showId": result.show_id,
            "quantity": result.quantity,
            "ticketsAvailable": result.tickets_available,
            "card": {"brand": result.card.brand, "last4": result.card.last4},
        },
    }


def refused(error: Exception) -> tuple[HTTPStatus, dict[str, Any]]:
    status, message, metric = ANSWERS[type(error)]
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    logger.info("Purchase refused", extra={"outcome": metric})
    body: dict[str, Any] = {"message": message}
    if isinstance(error, InvalidRequestError):
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    return status, body
