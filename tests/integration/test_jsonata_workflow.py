"""A JSONata state machine on the offline stack: an optimised DynamoDB read, an SDK transaction
built by one JSONata expression, a Choice on an Assign'd variable and a Catch that reads
$states.errorOutput, run by StartSyncExecution; and the history the cost model reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import PurchaseStack

SHOW = "Rock en el Parque"

# A sale in miniature, in the shape the purchase workflow will take once it is written in JSONata.
SALE = {
    "QueryLanguage": "JSONata",
    "StartAt": "CheckStock",
    "States": {
        "CheckStock": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Arguments": {
                "TableName": "ShowTickets",
                "Key": {"showId": {"S": "{% $states.input.showId %}"}},
                "ConsistentRead": True,
            },
            "Assign": {
                "showId": "{% $states.input.showId %}",
                "quantity": "{% $states.input.quantity %}",
                "available": (
                    "{% $exists($states.result.Item)"
                    " ? $number($states.result.Item.ticketsAvailable.N) : null %}"
                ),
            },
            "Next": "EnoughTickets",
        },
        "EnoughTickets": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $available = null %}", "Next": "ShowNotFound"},
                {"Condition": "{% $available >= $quantity %}", "Next": "SellTickets"},
            ],
            "Default": "SoldOut",
        },
        "SellTickets": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:dynamodb:transactWriteItems",
            "Arguments": {
                "TransactItems": (
                    "{% [{'Update': {'TableName': 'ShowTickets',"
                    " 'Key': {'showId': {'S': $showId}},"
                    " 'UpdateExpression': 'SET ticketsAvailable = ticketsAvailable - :q',"
                    " 'ConditionExpression': 'ticketsAvailable >= :q',"
                    " 'ExpressionAttributeValues': {':q': {'N': $string($quantity)}}}},"
                    " {'Put': {'TableName': 'TicketSales',"
                    " 'Item': {'showId': {'S': $showId},"
                    " 'saleId': {'S': $states.context.Execution.Name},"
                    " 'quantity': {'N': $string($quantity)}},"
                    " 'ConditionExpression': 'attribute_not_exists(saleId)'}}] %}"
                )
            },
            "Output": {
                "sold": "{% $quantity %}",
                "ticketsAvailable": "{% $available - $quantity %}",
                "saleId": "{% $states.context.Execution.Name %}",
            },
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Output": {
                        "error": "{% $states.errorOutput.Error %}",
                        "cause": "{% $states.errorOutput.Cause %}",
                    },
                    "Next": "SaleFailed",
                }
            ],
            "End": True,
        },
        "ShowNotFound": {"Type": "Fail", "Error": "ShowNotFound", "Cause": "{% $showId %}"},
        "SoldOut": {
            "Type": "Pass",
            "Output": {"soldOut": True, "ticketsAvailable": "{% $available %}"},
            "End": True,
        },
        "SaleFailed": {"Type": "Pass", "End": True},
    },
}


@pytest.fixture
def sale(purchase_stack: PurchaseStack) -> Callable[..., dict[str, Any]]:
    """Runs the sale for a show and a quantity by StartSyncExecution; its answer."""
    arn = purchase_stack.stepfunctions.create_state_machine(
        name="JsonataSale",
        definition=json.dumps(SALE),
        roleArn="arn:aws:iam::123456789012:role/offline",
        type="EXPRESS",
    )["stateMachineArn"]

    def run(show_id: str, quantity: int, name: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = purchase_stack.stepfunctions.start_sync_execution(
            stateMachineArn=arn,
            name=name or uuid.uuid4().hex,
            input=json.dumps({"showId": show_id, "quantity": quantity}),
        )
        return result

    return run


def history(stack: PurchaseStack, result: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = stack.stepfunctions.get_execution_history(
        executionArn=result["executionArn"]
    )["events"]
    return events


def sale_record(stack: PurchaseStack, sale_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = stack.dynamodb.get_item(
        TableName="TicketSales", Key={"showId": {"S": SHOW}, "saleId": {"S": sale_id}}
    ).get("Item")
    return item


def test_jsonata_sale_with_stock_sells_and_records_the_sale(
    purchase_stack: PurchaseStack, sale: Callable[..., dict[str, Any]]
) -> None:
    purchase_stack.add_show(SHOW, 10)
    result = sale(SHOW, 2, "sale-1")
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"sold": 2, "ticketsAvailable": 8, "saleId": "sale-1"}
    assert purchase_stack.tickets_left(SHOW) == 8
    assert sale_record(purchase_stack, "sale-1") == {
        "showId": {"S": SHOW},
        "saleId": {"S": "sale-1"},
        "quantity": {"N": "2"},
    }


def test_jsonata_sale_of_an_unknown_show_fails_and_writes_nothing(
    purchase_stack: PurchaseStack, sale: Callable[..., dict[str, Any]]
) -> None:
    result = sale("Nobody Plays", 1)
    assert (result["status"], result["error"], result["cause"]) == (
        "FAILED",
        "ShowNotFound",
        "Nobody Plays",
    )
    assert purchase_stack.dynamodb.scan(TableName="TicketSales")["Items"] == []


def test_jsonata_sale_of_more_than_is_left_is_sold_out(
    purchase_stack: PurchaseStack, sale: Callable[..., dict[str, Any]]
) -> None:
    purchase_stack.add_show(SHOW, 10)
    result = sale(SHOW, 11)
    assert json.loads(result["output"]) == {"soldOut": True, "ticketsAvailable": 10}
    assert purchase_stack.tickets_left(SHOW) == 10


def test_jsonata_sale_whose_transaction_is_cancelled_is_caught_with_its_error(
    purchase_stack: PurchaseStack, sale: Callable[..., dict[str, Any]]
) -> None:
    # A sale record of the same id already there: the transaction's Put condition fails.
    purchase_stack.add_show(SHOW, 10)
    purchase_stack.dynamodb.put_item(
        TableName="TicketSales",
        Item={"showId": {"S": SHOW}, "saleId": {"S": "sale-1"}, "quantity": {"N": "1"}},
    )
    result = sale(SHOW, 2, "sale-1")
    assert result["status"] == "SUCCEEDED"
    caught = json.loads(result["output"])
    assert caught["error"] == "DynamoDb.TransactionCanceledException"
    assert "ConditionalCheckFailed" in caught["cause"]
    assert purchase_stack.tickets_left(SHOW) == 10
    failed = [e for e in history(purchase_stack, result) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == [
        "DynamoDb.TransactionCanceledException"
    ]


def test_jsonata_sale_history_has_what_the_cost_model_reads(
    purchase_stack: PurchaseStack, sale: Callable[..., dict[str, Any]]
) -> None:
    # bench/cost_model.py walks the states entered, and logs every event with its details.
    purchase_stack.add_show(SHOW, 10)
    events = history(purchase_stack, sale(SHOW, 2, "sale-1"))
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
    ]
    exited = [
        e["stateExitedEventDetails"]["name"] for e in events if e["type"].endswith("StateExited")
    ]
    assert entered == exited == ["CheckStock", "EnoughTickets", "SellTickets"]
    scheduled = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
    assert [(s["resourceType"], s["resource"]) for s in scheduled] == [
        ("dynamodb", "getItem"),
        ("aws-sdk:dynamodb", "transactWriteItems"),
    ]
    # The parameters are the Arguments evaluated: the expression became two transaction items.
    read, write = (json.loads(s["parameters"]) for s in scheduled)
    assert read == {
        "TableName": "ShowTickets",
        "Key": {"showId": {"S": SHOW}},
        "ConsistentRead": True,
    }
    assert [next(iter(item)) for item in write["TransactItems"]] == ["Update", "Put"]
    succeeded = [
        e["taskSucceededEventDetails"]["resource"] for e in events if e["type"] == "TaskSucceeded"
    ]
    assert succeeded == ["getItem", "transactWriteItems"]
    check_stock_exit = next(e for e in events if e["type"] == "TaskStateExited")
    assert check_stock_exit["stateExitedEventDetails"]["assignedVariables"] == {
        "showId": json.dumps(SHOW),
        "quantity": "2",
        "available": "10",
    }


def test_jsonata_expressions_parsed_once_keep_each_executions_own_values(
    purchase_stack: PurchaseStack, sale: Callable[..., dict[str, Any]]
) -> None:
    # GIVEN 30 shows with 20 tickets each
    shows = [f"{SHOW} {n}" for n in range(30)]
    for show in shows:
        purchase_stack.add_show(show, 20)

    # WHEN 30 executions of the same expressions run at once, each with its own show and quantity
    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(lambda n: sale(shows[n], 1 + n % 7), range(30)))

    # THEN each sold its own quantity of its own show: no execution saw another's values
    for n, result in enumerate(results):
        assert result["status"] == "SUCCEEDED"
        assert json.loads(result["output"])["sold"] == 1 + n % 7
        assert purchase_stack.tickets_left(shows[n]) == 20 - (1 + n % 7)
