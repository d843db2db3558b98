"""The offline DynamoDB shows what DynamoDB does under contention: each behaviour, produced.

These are the behaviours the sale's proofs rely on the engine to show; if one stopped happening,
a green reliability test would mean nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from offline.dynamodb_engine import ENGINE, Fault, SettingError, Settings
from tests.conftest import PurchaseStack

SHOW = {"showId": {"S": "Contended"}}


def decrement(stack: PurchaseStack, token: str | None = None, quantity: int = 1) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransactItems": [
            {
                "Update": {
                    "TableName": "ShowTickets",
                    "Key": SHOW,
                    "UpdateExpression": "SET ticketsAvailable = ticketsAvailable - :q",
                    "ConditionExpression": "ticketsAvailable >= :q",
                    "ExpressionAttributeValues": {":q": {"N": str(quantity)}},
                }
            }
        ]
    }
    if token:
        request["ClientRequestToken"] = token
    response: dict[str, Any] = stack.dynamodb.transact_write_items(**request)
    return response


@pytest.fixture
def engine(purchase_stack: PurchaseStack) -> Iterator[PurchaseStack]:
    """A show with 100 tickets, behind an engine whose transactions hold items for 300 ms, seen
    through a client that does not retry (botocore would retry throttles and in-progress
    tokens, hiding the engine's answers)."""
    ENGINE.reset(Settings(transaction_seconds=0.3, item_wcu=1000, item_rcu=3000))
    purchase_stack.add_show("Contended", 100)
    purchase_stack.dynamodb = boto3.client(
        "dynamodb", config=Config(retries={"total_max_attempts": 1})
    )
    yield purchase_stack
    ENGINE.reset()


def in_background(call: Any) -> threading.Thread:
    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.1)  # well inside the first transaction's 300 ms hold
    return thread


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    response: dict[str, Any] = raised.value.response
    return response


def test_engine_transaction_on_a_held_item_is_cancelled_with_transaction_conflict(
    engine: PurchaseStack,
) -> None:
    # GIVEN a transaction holding the show's item
    first = in_background(lambda: decrement(engine))
    # WHEN a second transaction reaches it
    response = error_of(lambda: decrement(engine))
    first.join()
    # THEN it is cancelled for that item, and only the first one sold
    assert response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in response["CancellationReasons"]] == ["TransactionConflict"]
    assert engine.tickets_left("Contended") == 99
    assert ENGINE.counts["transaction_conflicts"] == 1


def test_engine_single_item_write_on_a_held_item_fails_with_transaction_conflict_exception(
    engine: PurchaseStack,
) -> None:
    first = in_background(lambda: decrement(engine))
    response = error_of(
        lambda: engine.dynamodb.update_item(
            TableName="ShowTickets",
            Key=SHOW,
            UpdateExpression="SET ticketsAvailable = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )
    )
    first.join()
    assert response["Error"]["Code"] == "TransactionConflictException"
    assert engine.tickets_left("Contended") == 99


def test_engine_get_item_never_conflicts_and_reads_the_last_committed_value(
    engine: PurchaseStack,
) -> None:
    first = in_background(lambda: decrement(engine))
    during = engine.dynamodb.get_item(TableName="ShowTickets", Key=SHOW, ConsistentRead=True)
    first.join()
    assert during["Item"]["ticketsAvailable"]["N"] in {"100", "99"}
    assert engine.tickets_left("Contended") == 99


def test_engine_throttles_transactions_beyond_one_items_write_ceiling(
    engine: PurchaseStack,
) -> None:
    # GIVEN an item that takes 10 write units a second, and no hold window to wait for
    ENGINE.reset(Settings(transaction_seconds=0, item_wcu=10, item_rcu=3000))
    # WHEN 7 one-item transactions (2 units each) arrive at once
    outcomes = []
    for _ in range(7):
        try:
            decrement(engine)
            outcomes.append("sold")
        except ClientError as error:
            outcomes.append(error.response["CancellationReasons"][0]["Code"])
    # THEN 5 fit in the second's 10 units and the rest are cancelled as throttled
    assert outcomes == ["sold"] * 5 + ["ThrottlingError"] * 2
    assert engine.tickets_left("Contended") == 95


def test_engine_throttles_single_item_writes_as_on_a_hot_key(engine: PurchaseStack) -> None:
    ENGINE.reset(Settings(transaction_seconds=0, item_wcu=1, item_rcu=3000))

    def put() -> None:
        engine.dynamodb.put_item(
            TableName="ShowTickets", Item={**SHOW, "ticketsAvailable": {"N": "1"}}
        )

    put()
    response = error_of(put)
    assert response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert response["ThrottlingReasons"][0]["reason"] == "TableWriteKeyRangeThroughputExceeded"
    assert ENGINE.counts["write_throttles"] == 1


def test_engine_capacity_refills_with_time(engine: PurchaseStack) -> None:
    ENGINE.reset(Settings(transaction_seconds=0, item_wcu=10, item_rcu=3000))
    for _ in range(5):
        decrement(engine)
    time.sleep(0.25)  # 2.5 units come back: one more transaction
    decrement(engine)
    assert error_of(lambda: decrement(engine))["CancellationReasons"][0]["Code"] == (
        "ThrottlingError"
    )


def test_engine_throttles_reads_beyond_one_items_read_ceiling(engine: PurchaseStack) -> None:
    ENGINE.reset(Settings(transaction_seconds=0, item_wcu=1000, item_rcu=2))
    for _ in range(2):
        engine.dynamodb.get_item(TableName="ShowTickets", Key=SHOW, ConsistentRead=True)
    response = error_of(
        lambda: engine.dynamodb.get_item(TableName="ShowTickets", Key=SHOW, ConsistentRead=True)
    )
    assert response["ThrottlingReasons"][0]["reason"] == "TableReadKeyRangeThroughputExceeded"


def test_engine_repeated_client_request_token_replays_without_writing_again(
    engine: PurchaseStack,
) -> None:
    decrement(engine, token="sale-1")
    decrement(engine, token="sale-1")
    assert engine.tickets_left("Contended") == 99
    assert ENGINE.counts["token_replays"] == 1


def test_engine_same_token_with_another_request_is_a_parameter_mismatch(
    engine: PurchaseStack,
) -> None:
    decrement(engine, token="sale-1")
    response = error_of(lambda: decrement(engine, token="sale-1", quantity=2))
    assert response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert engine.tickets_left("Contended") == 99


def test_engine_same_token_while_the_first_runs_is_in_progress(engine: PurchaseStack) -> None:
    first = in_background(lambda: decrement(engine, token="sale-1"))
    response = error_of(lambda: decrement(engine, token="sale-1"))
    first.join()
    assert response["Error"]["Code"] == "TransactionInProgressException"
    assert engine.tickets_left("Contended") == 99


def test_engine_cancelled_transactions_token_is_not_remembered(engine: PurchaseStack) -> None:
    # AWS documents the replay of a transaction that succeeded; one that was cancelled wrote
    # nothing, and its token may be used again once the condition holds.
    engine.add_show("Contended", 0)
    assert error_of(lambda: decrement(engine, token="sale-1"))["CancellationReasons"][0][
        "Code"
    ] == ("ConditionalCheckFailed")
    engine.add_show("Contended", 5)
    decrement(engine, token="sale-1")
    assert engine.tickets_left("Contended") == 4


def test_engine_fault_after_the_write_loses_only_the_answer(engine: PurchaseStack) -> None:
    ENGINE.inject(
        Fault("TransactWriteItems", "ShowTickets", error="InternalServerError", after=True, times=1)
    )
    response = error_of(lambda: decrement(engine))
    assert response["Error"]["Code"] == "InternalServerError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert engine.tickets_left("Contended") == 99


def test_engine_fault_before_the_write_writes_nothing(engine: PurchaseStack) -> None:
    ENGINE.inject(Fault("TransactWriteItems", error="ThrottlingException", times=1))
    assert error_of(lambda: decrement(engine))["Error"]["Code"] == "ThrottlingException"
    decrement(engine)
    assert engine.tickets_left("Contended") == 99


def test_engine_conditional_decrements_never_oversell_under_concurrency(
    engine: PurchaseStack,
) -> None:
    # GIVEN 50 tickets and a short hold window, WHEN 200 concurrent buyers each retry their
    # conditional decrement until it sells or the stock is gone
    ENGINE.reset(Settings(transaction_seconds=0.005, item_wcu=1000, item_rcu=3000))
    engine.add_show("Contended", 50)

    def buy(_: int) -> bool:
        while True:
            try:
                decrement(engine)
                return True
            except ClientError as error:
                if error.response["CancellationReasons"][0]["Code"] == "ConditionalCheckFailed":
                    return False
                time.sleep(0.002)

    with ThreadPoolExecutor(max_workers=16) as pool:
        sold = sum(pool.map(buy, range(200)))
    # THEN exactly the stock sold, and the engine really made them collide
    assert sold == 50
    assert engine.tickets_left("Contended") == 0
    assert ENGINE.counts["transaction_conflicts"] > 0


def test_engine_settings_refuse_values_it_cannot_use() -> None:
    with pytest.raises(SettingError, match="LOCAL_DYNAMODB_ITEM_WCU must be a number > 0"):
        Settings.from_env({"LOCAL_DYNAMODB_ITEM_WCU": "0"})
    with pytest.raises(SettingError, match="LOCAL_DYNAMODB_TRANSACTION_MS"):
        Settings.from_env({"LOCAL_DYNAMODB_TRANSACTION_MS": "fast"})
    assert Settings.from_env({"LOCAL_DYNAMODB_TRANSACTION_MS": "180"}).transaction_seconds == 0.18
