"""POST /purchases: validate the request and the card, then run the purchase state machine."""

from __future__ import annotations

import base64
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

# From the module itself: the package's __init__ imports every resolver (AppSync pulls in
# asyncio), which a cold start would pay for.
from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, Response
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
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()

# Every answer other than a sale: status, the contract's message, and the metric it counts.
# Anything not listed here is unexpected and answered by `unexpected_failure`.
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


COMPLETED = "Purchase completed."
# The metric counting each answer, found from its message.
METRICS = {message: metric for _, message, metric in ANSWERS.values()} | {
    COMPLETED: "PurchaseCompleted"
}


@app.post("/purchases")
@tracer.capture_method
def purchase() -> Response[dict[str, Any]]:
    request = parse_purchase(request_body())
    card = check_card(request.card_number)
    key = idempotency_key(app.current_event.headers)
    # What the sale needs, and all an idempotency record may hold: never the card number.
    sale = {
        "userId": request.user_id,
        "showId": request.show_id,
        "quantity": request.quantity,
        "card": {"brand": card.brand, "last4": card.last4},
    }
    answer = sell(sale) if key is None else answer_once(key, sale, sell, app.lambda_context)
    metrics.add_metric(name=METRICS[answer["body"]["message"]], unit=MetricUnit.Count, value=1)
    return _answer(HTTPStatus(answer["status"]), answer["body"])


def request_body() -> bytes | str | None:
    """The body as API Gateway sent it: text, or the bytes of a body it base64-encoded (one
    that is not UTF-8, for instance), for the parser to judge."""
    event = app.current_event
    if event.is_base64_encoded and event.body:
        return base64.b64decode(event.body)
    return event.body


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


@app.exception_handler(list(ANSWERS))
def expected_failure(error: Exception) -> Response[dict[str, Any]]:
    status, message, metric = ANSWERS[type(error)]
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    logger.info("Purchase refused", extra={"outcome": metric})
    body: dict[str, Any] = {"message": message}
    if isinstance(error, InvalidRequestError):
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    return _answer(status, body)


@app.not_found
def no_such_route(error: Exception) -> Response[dict[str, Any]]:
    metrics.add_metric(name="RouteNotFound", unit=MetricUnit.Count, value=1)
    return _answer(HTTPStatus.NOT_FOUND, {"message": "Not found."})


@app.exception_handler(Exception)
def unexpected_failure(error: Exception) -> Response[dict[str, Any]]:
    # The request body is never logged: it holds the card number.
    logger.exception("Purchase failed unexpectedly")
    metrics.add_metric(name="PurchaseError", unit=MetricUnit.Count, value=1)
    return _answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal server error."})


def _answer(status: HTTPStatus, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(
        status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
