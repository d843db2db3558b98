"""Runs one purchase attempt on the state machine and turns its end into an outcome."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnectionError

from card_validation import Card
from purchase_outcomes import (
    BY_ERROR_NAME,
    OUTCOME_UNKNOWN,
    SOLD,
    WORKFLOW_THROTTLED,
    Outcome,
)

# Finished claims are kept a week for support questions, then TTL deletes them for free.
CLAIM_RETENTION_SECONDS = 7 * 24 * 3600
# A claim that sold holds the buyer's tally for the show's per-buyer cap: it is kept two years
# after the buyer's last purchase of the show, longer than any show stays on sale.
TALLY_RETENTION_SECONDS = 2 * 365 * 24 * 3600
# Starts refused before anything ran (throttled, or no connection made) are tried this often.
START_ATTEMPTS = 3
# Step Functions' own refusals to start: nothing was started, so a retry cannot run it twice.
START_REFUSED = frozenset({"ThrottlingException", "ExecutionLimitExceeded"})
# A show's sale records are spread over this many TicketSales partition keys, so that no key takes
# more than its partition's 1,000 write units a second: 10,000 sales a second (2 units each in
# the transaction) is 625 a key. tools/show.py counts a show's sales over the same keys.
SALE_SHARDS = 32


class WorkflowError(Exception):
    """The workflow ended in a way no buyer-facing answer explains (a DynamoDB error, a timeout)."""


class RetryableError(Exception):
    """The attempt has no final answer: its outcome (in progress, busy, unknown) invites a retry.

    Never stored for an Idempotency-Key's replays.
    """

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.metric)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class Settings:
    state_machine_arn: str
    lease_seconds: int


@cache
def settings() -> Settings:
    """Read the environment once; a missing variable fails loudly, with its name."""
    return Settings(
        state_machine_arn=os.environ["STATE_MACHINE_ARN"],
        lease_seconds=int(os.environ["LEASE_SECONDS"]),
    )


@cache
def sfn_client() -> BaseClient:
    """One client per execution environment, created on first use (tests replace it)."""
    # A sync execution lasts up to the state machine's 20 s timeout: wait a little longer. No
    # automatic retries: a retried StartSyncExecution whose first request was received runs the
    # sale a second time (Express executions are at most once, not de-duplicated by name).
    config = Config(read_timeout=25, retries={"total_max_attempts": 1})
    return boto3.client("stepfunctions", config=config)


@dataclass(frozen=True, slots=True)
class Sale:
    """What a sale needs, and all that is ever stored of a request: never the card number."""

    user_id: str
    show_id: str
    quantity: int
    card: Card

    @property
    def execution_id(self) -> str:
        """The seed's `userId-showId`, as the answer gives it."""
        return f"{self.user_id}-{self.show_id}"

    @property
    def claim_key(self) -> str:
        """The claim's key in LambdaExecutionLog: one purchase per user and show at a time.

        `userId-showId` with every `\\` and `-` of the user id escaped by a `\\`, so that the first
        unescaped `-` ends the user id: (`vic-AC`, `DC`) and (`vic`, `AC-DC`) never share a
        claim, while a user id without either character keeps the seed's plain form.
        """
        user = self.user_id.replace("\\", "\\\\").replace("-", "\\-")
        return f"{user}-{self.show_id}"


@dataclass(frozen=True, slots=True)
class SaleResult:
    """How a finished attempt ended, and the stock it left when it sold."""

    outcome_metric: str
    tickets_available: int | None = None
    # Set when the answer comes from an Idempotency-Key's record rather than from a sale.
    replayed: bool = False


def attempt_id(sale: Sale, key: str | None) -> str:
    """The attempt's id: the claim's owner and the sale record's id (one sale per attempt).

    With an Idempotency-Key every retry of the request is the same attempt, so a retry after a
    lost answer finds the first one's sale instead of making a second. The id digests the buyer,
    the show, the quantity and the key as one JSON list, which no two different requests share
    whatever characters their ids hold.
    """
    if key is None:
        return uuid.uuid4().hex
    request = json.dumps([sale.user_id, sale.show_id, sale.quantity, key], ensure_ascii=False)
    return hashlib.sha256(request.encode()).hexdigest()[:32]


def sales_key(show_id: str, attempt: str) -> str:
    """The sale record's partition key: one of the show's SALE_SHARDS keys, fixed by the attempt
    id, so that every execution of one attempt looks for its sale under the same key."""
    shard = int(hashlib.sha256(attempt.encode()).hexdigest()[:8], 16) % SALE_SHARDS
    return f"{show_id}#s{shard:02d}"


def workflow_input(sale: Sale, attempt: str, now: int) -> dict[str, Any]:
    """The execution input: everything the steps need, and of the card only brand and last 4."""
    return {
        "executionId": sale.claim_key,
        "attemptId": attempt,
        "salesKey": sales_key(sale.show_id, attempt),
        "userId": sale.user_id,
        "showId": sale.show_id,
        "quantity": sale.quantity,
        "card": {"brand": sale.card.brand, "last4": sale.card.last4},
        "now": now,
        "leaseExpiresAt": now + settings().lease_seconds,
        "expiresAt": now + CLAIM_RETENTION_SECONDS,
        "tallyExpiresAt": now + TALLY_RETENTION_SECONDS,
    }


def run_purchase(sale: Sale, attempt: str) -> SaleResult:
    """Run one purchase attempt to its end and say how it ended, if that is final.

    Raises RetryableError when it is not (in progress, show busy, the workflow not started or its
    answer lost), WorkflowError when it ended in a way no buyer-facing answer explains.
    """
    execution_input = json.dumps(workflow_input(sale, attempt, int(time.time())))
    for start in range(1, START_ATTEMPTS + 1):
        try:
            result = sfn_client().start_sync_execution(
                stateMachineArn=settings().state_machine_arn,
                # Unique per execution; the attempt id inside the input is what repeats.
                name=uuid.uuid4().hex,
                input=execution_input,
            )
            return result_of(dict(result), sale.quantity)
        except ClientError as error:
            if error.response["Error"]["Code"] not in START_REFUSED:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) >= 500:
                    # A server error may come after the execution started: outcome unknown.
                    raise RetryableError(OUTCOME_UNKNOWN) from error
                raise  # the request was refused as invalid: nothing ran, nothing to retry
        except NoConnectionError:
            pass  # botocore's ConnectionError family: no connection made, nothing sent
        except HTTPClientError as error:
            # Sent, and maybe received: a dropped connection or a read timeout.
            raise RetryableError(OUTCOME_UNKNOWN) from error
        # Refused before anything ran: worth another try.
        if start < START_ATTEMPTS:
            time.sleep(random.uniform(0, 0.1 * 2**start))  # noqa: S311 - jitter, not secrecy
    raise RetryableError(WORKFLOW_THROTTLED)


def result_of(result: dict[str, Any], quantity: int) -> SaleResult:
    """Map a StartSyncExecution result to how the attempt ended."""
    status = result["status"]
    if status == "SUCCEEDED":
        return SaleResult(SOLD.metric, tickets_left(json.loads(result["output"]), quantity))
    error_name = result.get("error")
    if status == "FAILED" and error_name in BY_ERROR_NAME:
        outcome = BY_ERROR_NAME[error_name]
        if not outcome.final:
            raise RetryableError(outcome)
        return SaleResult(outcome.metric)
    raise WorkflowError(
        f"execution {result.get('executionArn')} ended {status}: "
        f"{error_name} ({result.get('cause')})"
    )


def tickets_left(output: dict[str, Any], quantity: int) -> int | None:
    """What the sale left: the stock read just before its commit, less its tickets; None when
    the sale was made by an earlier execution of the attempt, whose stock is not known."""
    before = output.get("ticketsBeforeSale")
    return None if before is None else int(before) - quantity
