"""The purchase path end to end offline: handler -> StartSyncExecution -> the real ASL on moto."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

import purchase_handler
from tests.conftest import PurchaseStack
from tests.events import load_event, with_body

SHOW = "Rock en el Parque"
ANA = f"ana-{SHOW}"  # the executionId of the sample event's buyer
PAN = "4111111111111111"


def buy(context: Any, event: str = "purchase_visa", **changes: Any) -> tuple[int, dict[str, Any]]:
    sample = load_event(event)
    if changes:
        sample = with_body(sample, {**json.loads(sample["body"]), **changes})
    response = purchase_handler.lambda_handler(sample, context)
    return response["statusCode"], json.loads(response["body"])


def put_claim(stack: PurchaseStack, status: str, lease_expires_at: float) -> None:
    stack.dynamodb.put_item(
        TableName="LambdaExecutionLog",
        Item={
            "executionId": {"S": ANA},
            "attemptId": {"S": "someone-else"},
            "status": {"S": status},
            "timestamp": {"S": "2026-11-29T10:00:00.000Z"},
            "leaseExpiresAt": {"N": str(int(lease_expires_at))},
        },
    )


def test_purchase_scenario_1_new_buyer_completes_the_sale(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    # GIVEN a show with 10 tickets and no claim for ana
    purchase_stack.add_show(SHOW, 10)
    # WHEN ana buys 2
    status, body = buy(lambda_context)
    # THEN the sale completes, the stock drops by 2, the claim is COMPLETED and the sale recorded
    assert status == 200
    assert body == {
        "message": "Purchase completed.",
        "executionId": ANA,
        "showId": SHOW,
        "quantity": 2,
        "ticketsAvailable": 8,
        "card": {"brand": "visa", "last4": "1111"},
    }
    assert purchase_stack.tickets_left(SHOW) == 8
    claim = purchase_stack.claim(ANA)
    assert claim is not None and claim["status"]["S"] == "COMPLETED"
    (sale,) = purchase_stack.sales(SHOW)
    assert sale["userId"]["S"] == "ana" and sale["quantity"]["N"] == "2"
    assert (sale["cardBrand"]["S"], sale["cardLast4"]["S"]) == ("visa", "1111")
    assert sale["saleId"] == claim["attemptId"]


def test_purchase_scenario_2_unexpired_claim_blocks_the_buyer(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    purchase_stack.add_show(SHOW, 10)
    put_claim(purchase_stack, "IN_PROGRESS", time.time() + 60)
    assert buy(lambda_context) == (400, {"message": "Purchase already in progress."})
    assert purchase_stack.tickets_left(SHOW) == 10
    claim = purchase_stack.claim(ANA)
    # The other attempt's claim is left exactly as it was: not ours to mark FAILED.
    assert claim is not None
    assert (claim["status"]["S"], claim["attemptId"]["S"]) == ("IN_PROGRESS", "someone-else")


@pytest.mark.parametrize("previous", ["COMPLETED", "FAILED"], ids=["scenario-3", "scenario-4"])
def test_purchase_scenarios_3_and_4_finished_claim_allows_a_new_purchase(
    purchase_stack: PurchaseStack, lambda_context: Any, previous: str
) -> None:
    purchase_stack.add_show(SHOW, 10)
    put_claim(purchase_stack, previous, time.time() + 60)
    assert buy(lambda_context)[0] == 200
    claim = purchase_stack.claim(ANA)
    assert claim is not None and claim["status"]["S"] == "COMPLETED"
    assert purchase_stack.tickets_left(SHOW) == 8


def test_purchase_repeat_after_completion_records_each_sale(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    purchase_stack.add_show(SHOW, 10)
    assert buy(lambda_context)[0] == 200
    assert buy(lambda_context)[0] == 200
    # The log item is overwritten by the second purchase; the sale records are not.
    assert len(purchase_stack.sales(SHOW)) == 2
    assert purchase_stack.tickets_left(SHOW) + purchase_stack.tickets_sold(SHOW) == 10


def test_purchase_expired_claim_is_taken_over(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    # GIVEN an IN_PROGRESS claim whose lease ran out (its workflow died)
    purchase_stack.add_show(SHOW, 10)
    put_claim(purchase_stack, "IN_PROGRESS", time.time() - 1)
    # THEN a new attempt takes it over and sells
    assert buy(lambda_context)[0] == 200
    claim = purchase_stack.claim(ANA)
    assert claim is not None and claim["status"]["S"] == "COMPLETED"
    assert claim["attemptId"]["S"] != "someone-else"


def test_purchase_last_tickets_then_sold_out(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    purchase_stack.add_show(SHOW, 2)
    status, body = buy(lambda_context)
    assert (status, body["ticketsAvailable"]) == (200, 0)
    assert buy(lambda_context) == (
        400,
        {"message": "Tickets are sold out or purchase already processed."},
    )
    assert purchase_stack.tickets_left(SHOW) == 0
    claim = purchase_stack.claim(ANA)
    assert claim is not None
    assert (claim["status"]["S"], claim["failureReason"]["S"]) == ("FAILED", "SoldOut")


def test_purchase_quantity_above_stock_sells_nothing(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    purchase_stack.add_show(SHOW, 1)
    status, body = buy(lambda_context, quantity=2)
    assert (status, body["message"]) == (400, "Tickets are sold out or purchase already processed.")
    assert purchase_stack.tickets_left(SHOW) == 1
    assert purchase_stack.sales(SHOW) == []


def test_purchase_unknown_show_answers_404_and_writes_nothing(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    assert buy(lambda_context, "purchase_unknown_show") == (404, {"message": "Show not found."})
    # Junk costs a read, never a write: no show, no claim, no sale.
    for table in ("ShowTickets", "LambdaExecutionLog", "TicketSales"):
        assert purchase_stack.dynamodb.scan(TableName=table)["Items"] == []


def test_purchase_mastercard_with_dashes_sells_one_ticket_by_default(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    purchase_stack.add_show(SHOW, 5)
    status, body = buy(lambda_context, "purchase_mastercard")
    assert (status, body["quantity"], body["ticketsAvailable"]) == (200, 1, 4)
    assert body["card"] == {"brand": "mastercard", "last4": "4444"}


def test_purchase_card_number_is_stored_and_logged_nowhere(
    purchase_stack: PurchaseStack, lambda_context: Any, purchase_logs: io.StringIO
) -> None:
    # GIVEN purchases that succeed, sell out, miss the show and fail validation
    purchase_stack.add_show(SHOW, 3)
    for event in ("purchase_visa", "purchase_visa", "purchase_unknown_show", "purchase_amex_card"):
        buy(lambda_context, event)
    buy(lambda_context, cardNumber="4111-1111-1111-1111", quantity=1)
    # THEN no table item, execution input, output or history event, and no log line, has it
    stored = purchase_stack.everything_stored() + purchase_logs.getvalue()
    assert "ana" in stored and "1111" in stored  # the scan really saw the data
    for form in (PAN, "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"):
        assert form not in stored
