"""Every way a purchase can end, in one table: the state machine's error name that means it, the
HTTP status and message the buyer gets, and the metric that counts it."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True, slots=True)
class Outcome:
    metric: str
    status: HTTPStatus
    message: str
    # The Fail error name the state machine ends with for this outcome, if it decides it.
    error_name: str | None = None
    # Final outcomes are kept for an Idempotency-Key's replays; the others invite a retry.
    final: bool = False
    retry_after_seconds: int | None = None


BUSY = "Too many buyers right now: try again shortly."

SOLD = Outcome("PurchaseCompleted", HTTPStatus.OK, "Purchase completed.", final=True)
SOLD_OUT = Outcome(
    "SoldOut",
    HTTPStatus.BAD_REQUEST,
    "Tickets are sold out or purchase already processed.",
    "SoldOut",
    final=True,
)
SHOW_NOT_FOUND = Outcome(
    "ShowNotFound", HTTPStatus.NOT_FOUND, "Show not found.", "ShowNotFound", final=True
)
# The sale would take the buyer past the show's per-buyer cap: tickets may remain for others.
BUYER_LIMIT_REACHED = Outcome(
    "BuyerLimitReached",
    HTTPStatus.CONFLICT,
    "Ticket limit per buyer reached for this show.",
    "BuyerLimitReached",
    final=True,
)
# The body names a buyer other than the signed-in one: nothing is judged, nothing is written.
BUYER_MISMATCH = Outcome(
    "BuyerMismatch", HTTPStatus.FORBIDDEN, "userId is not the signed-in buyer."
)
# Tokens are checked by the API's JWT authorizer; an event without its claims never reaches a
# deployed function. This is API Gateway's own answer, for a route left without the authorizer.
UNAUTHORIZED = Outcome("Unauthorized", HTTPStatus.UNAUTHORIZED, "Unauthorized")
IN_PROGRESS = Outcome(
    "PurchaseInProgress",
    HTTPStatus.BAD_REQUEST,
    "Purchase already in progress.",
    "PurchaseInProgress",
)
INVALID_REQUEST = Outcome("InvalidRequest", HTTPStatus.BAD_REQUEST, "Invalid request.")
INVALID_CARD = Outcome("InvalidCard", HTTPStatus.BAD_REQUEST, "Invalid credit card.")
# Tickets remain, but every commit lost its race on the show's item within the workflow's bound.
SHOW_BUSY = Outcome(
    "ShowBusy", HTTPStatus.SERVICE_UNAVAILABLE, BUSY, "SaleContended", retry_after_seconds=1
)
# Step Functions refused to start the workflow (throttled): nothing was started.
WORKFLOW_THROTTLED = Outcome(
    "WorkflowThrottled", HTTPStatus.SERVICE_UNAVAILABLE, BUSY, retry_after_seconds=1
)
# The workflow may have run, but its answer was lost on the way back.
OUTCOME_UNKNOWN = Outcome(
    "PurchaseOutcomeUnknown",
    HTTPStatus.GATEWAY_TIMEOUT,
    "Purchase outcome unknown: retry with the same Idempotency-Key.",
)
INTERNAL_ERROR = Outcome(
    "PurchaseError", HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error."
)

OUTCOMES = (
    SOLD,
    SOLD_OUT,
    SHOW_NOT_FOUND,
    BUYER_LIMIT_REACHED,
    BUYER_MISMATCH,
    UNAUTHORIZED,
    IN_PROGRESS,
    INVALID_REQUEST,
    INVALID_CARD,
    SHOW_BUSY,
    WORKFLOW_THROTTLED,
    OUTCOME_UNKNOWN,
    INTERNAL_ERROR,
)
BY_ERROR_NAME = {outcome.error_name: outcome for outcome in OUTCOMES if outcome.error_name}
BY_METRIC = {outcome.metric: outcome for outcome in OUTCOMES}
