"""POST /purchases: validate the request and the card, then run the purchase state machine.

The HTTP API routes only `POST /purchases` here, so the handler reads the API Gateway event
itself: a Powertools resolver and Tracer for one route cost the cold start more than a third
(BENCHMARKS.md). The X-Ray trace still goes API -> Lambda -> Step Functions: Lambda's active
tracing records the function, and botocore forwards the function's trace header to
StartSyncExecution.
"""

from __future__ import annotations

import gc

# The imports below make only what lives as long as the execution environment (modules, classes,
# Powertools' and boto3's objects): a collection during them scans it all for nothing, a fifth of
# this function's cold start (BENCHMARKS.md, Cold start proxy). Collection resumes once they are
# done, and no longer scans what they made (gc.freeze).
gc.disable()

import base64
import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from card_validation import InvalidCardError, check_card
from purchase_idempotency import answer_once, idempotency_key
from purchase_outcomes import (
    BUYER_MISMATCH,
    BY_METRIC,
    INTERNAL_ERROR,
    INVALID_CARD,
    INVALID_REQUEST,
    SOLD,
    UNAUTHORIZED,
    Outcome,
)
from purchase_request import (
    BuyerMismatchError,
    InvalidRequestError,
    UnauthorizedError,
    parse_buyer,
    parse_purchase,
)
from purchase_workflow import RetryableError, Sale, SaleResult, attempt_id, run_purchase

logger = Logger()
metrics = Metrics()
gc.freeze()
gc.enable()


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the card number.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome, body = purchase(event, context)
    headers = {"Content-Type": "application/json"}
    if outcome.retry_after_seconds is not None:
        headers["Retry-After"] = str(outcome.retry_after_seconds)
    return {"statusCode": outcome.status.value, "headers": headers, "body": json.dumps(body)}


def purchase(event: dict[str, Any], context: LambdaContext) -> tuple[Outcome, dict[str, Any]]:
    """The outcome of the request and the body that tells it; counts it once, in its metric."""
    try:
        buyer = None if anonymous_buyers() else parse_buyer(token_claims(event))
        request = parse_purchase(request_body(event), buyer)
        card = check_card(request.card_number)
        key = idempotency_key(event.get("headers") or {})
        sale = Sale(request.user_id, request.show_id, request.quantity, card)
        result = sell(sale, None) if key is None else answer_once(key, sale, sell, context)
    except UnauthorizedError:
        return counted(UNAUTHORIZED), {"message": UNAUTHORIZED.message}
    except BuyerMismatchError:
        return counted(BUYER_MISMATCH), {"message": BUYER_MISMATCH.message}
    except InvalidRequestError as error:
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
        return counted(INVALID_REQUEST), {"message": INVALID_REQUEST.message, "errors": errors}
    except InvalidCardError:
        return counted(INVALID_CARD), {"message": INVALID_CARD.message}
    except RetryableError as retryable:
        if retryable.__cause__ is not None:  # a start refused or an answer lost: worth a look
            logger.warning("Purchase workflow not started or its answer lost", exc_info=True)
        return counted(retryable.outcome), {"message": retryable.outcome.message}
    except Exception:
        # The request body is never logged: it holds the card number.
        logger.exception("Purchase failed unexpectedly")
        return counted(INTERNAL_ERROR), {"message": INTERNAL_ERROR.message}
    outcome = counted(BY_METRIC[result.outcome_metric], replayed=result.replayed)
    if outcome is not SOLD:
        return outcome, {"message": outcome.message}
    return outcome, {
        "message": SOLD.message,
        "executionId": sale.execution_id,
        "showId": sale.show_id,
        "quantity": sale.quantity,
        "ticketsAvailable": result.tickets_available,
        "card": {"brand": card.brand, "last4": card.last4},
    }


def counted(outcome: Outcome, *, replayed: bool = False) -> Outcome:
    """Count the answer in its metric, once: a replayed answer as a replay, not a second sale."""
    metric = "PurchaseReplayed" if replayed else outcome.metric
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    if outcome is not SOLD:
        logger.info("Purchase not completed", extra={"outcome": metric})
    return outcome


@cache
def anonymous_buyers() -> bool:
    """BUYER_AUTH: `jwt`, the buyer is the token's subject; `none`, the body's userId (the seed's
    anonymous contract, for demos)."""
    mode = os.environ["BUYER_AUTH"]
    if mode not in ("jwt", "none"):
        raise ValueError(f"BUYER_AUTH must be jwt or none, not {mode!r}")
    return mode == "none"


def token_claims(event: dict[str, Any]) -> dict[str, Any] | None:
    """The claims the HTTP API's JWT authorizer verified (payload format 2.0), None without."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


def request_body(event: dict[str, Any]) -> bytes | str | None:
    """The body as API Gateway sent it: text, or the bytes of a body it base64-encoded (one
    that is not UTF-8, for instance), for the parser to judge."""
    body: str | None = event.get("body")
    if event.get("isBase64Encoded") and body:
        return base64.b64decode(body)
    return body


def sell(sale: Sale, key: str | None) -> SaleResult:
    """Run the sale as the attempt of `key` (the buyer's Idempotency-Key, None: a new one)."""
    return run_purchase(sale, attempt_id(sale, key))
