"""Runs one purchase attempt on the state machine and turns its result into an outcome."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from card_validation import Card

# Finished claims are kept a week for support questions, then TTL deletes them for free.
CLAIM_RETENTION_SECONDS = 7 * 24 * 3600


class PurchaseInProgressError(Exception):
    """Another attempt of the same user for the same show holds an unexpired claim."""


class SoldOutError(Exception):
    """Fewer tickets are left than the quantity asked for."""


class ShowNotFoundError(Exception):
    """No stock is recorded for the show."""


class WorkflowError(Exception):
    """The workflow ended in a way no buyer-facing answer explains (throttled, timed out...)."""


# The state machine's Fail error names, mapped to the outcome they mean. Any other name is a
# WorkflowError: the handler answers 500 for it.
FAILURES_BY_ERROR_NAME: dict[str, type[Exception]] = {
    "PurchaseInProgress": PurchaseInProgressError,
    "SoldOut": SoldOutError,
    "ShowNotFound": ShowNotFoundError,
}


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
    # A sync execution lasts up to the state machine's 20 s timeout: wait a little longer.
    config = Config(read_timeout=25, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("stepfunctions", config=config)


@dataclass(frozen=True, slots=True)
class Sale:
    """What a completed execution reports: the body of the 200 answer."""

    execution_id: str
    show_id: str
    quantity: int
    tickets_available: int | None
    card: Card


def workflow_input(
    user_id: str, show_id: str, quantity: int, card: Card, attempt_id: str, now: int
) -> dict[str, Any]:
    """The execution input: everything the steps need, and of the card only brand and last 4."""
    return {
        "executionId": f"{user_id}-{show_id}",
        "attemptId": attempt_id,
        "userId": user_id,
        "showId": show_id,
        "quantity": quantity,
        "card": {"brand": card.brand, "last4": card.last4},
        "now": now,
        "leaseExpiresAt": now + settings().lease_seconds,
        "expiresAt": now + CLAIM_RETENTION_SECONDS,
    }


def run_purchase(user_id: str, show_id: str, quantity: int, card: Card) -> Sale:
    """Run one purchase attempt to its end; raise the outcome's error if it did not sell."""
    # A fresh name per attempt: it is the execution's name and the claim's owner id.
    attempt_id = uuid.uuid4().hex
    execution_input = workflow_input(user_id, show_id, quantity, card, attempt_id, int(time.time()))
    result = sfn_client().start_sync_execution(
        stateMachineArn=settings().state_machine_arn,
        name=attempt_id,
        input=json.dumps(execution_input),
    )
    return sale_from_result(dict(result))


def sale_from_result(result: dict[str, Any]) -> Sale:
    """Map a StartSyncExecution result to a Sale or to the error its failure names."""
    status = result["status"]
    if status == "SUCCEEDED":
        output = json.loads(result["output"])
        return Sale(
            execution_id=output["executionId"],
            show_id=output["showId"],
            quantity=output["quantity"],
            tickets_available=output["ticketsAvailable"],
            card=Card(**output["card"]),
        )
    error_name = result.get("error")
    if status == "FAILED" and error_name in FAILURES_BY_ERROR_NAME:
        raise FAILURES_BY_ERROR_NAME[error_name]()
    raise WorkflowError(
        f"execution {result.get('executionArn')} ended {status}: "
        f"{error_name} ({result.get('cause')})"
    )
