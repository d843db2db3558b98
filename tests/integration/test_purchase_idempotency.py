"""Idempotency-Key: a repeated key replays the first answer and never sells twice."""

from __future__ import annotations

import json
from typing import Any

import pytest

import purchase_handler
import purchase_workflow
from tests.conftest import PurchaseStack
from tests.events import load_event, with_body

SHOW = "Rock en el Parque"
BODY = {"userId": "ana", "showId": SHOW, "cardNumber": "4111111111111111", "quantity": 2}


def buy(context: Any, key: str | None, body: dict[str, Any] = BODY) -> tuple[int, dict[str, Any]]:
    event = with_body(load_event("purchase_visa"), body)
    if key is not None:
        event["headers"] = {**event["headers"], "idempotency-key": key}
    response = purchase_handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def show(purchase_stack: PurchaseStack) -> PurchaseStack:
    purchase_stack.add_show(SHOW, 10)
    return purchase_stack


def test_idempotency_repeated_key_replays_the_sale_without_selling_again(
    show: PurchaseStack, lambda_context: Any
) -> None:
    first = buy(lambda_context, "order-1")
    assert first[0] == 200
    # WHEN the client retries with the same key (after a lost answer, say)
    assert buy(lambda_context, "order-1") == first
    # THEN one sale, one decrement
    assert len(show.sales(SHOW)) == 1
    assert show.tickets_left(SHOW) == 8


def test_idempotency_without_key_every_request_is_a_purchase(
    show: PurchaseStack, lambda_context: Any
) -> None:
    assert buy(lambda_context, None)[0] == 200
    assert buy(lambda_context, None)[0] == 200
    assert len(show.sales(SHOW)) == 2


def test_idempotency_new_key_is_a_new_purchase(show: PurchaseStack, lambda_context: Any) -> None:
    assert buy(lambda_context, "order-1")[0] == 200
    assert buy(lambda_context, "order-2")[0] == 200
    assert show.tickets_left(SHOW) == 6


def test_idempotency_same_key_different_body_is_an_invalid_request(
    show: PurchaseStack, lambda_context: Any
) -> None:
    assert buy(lambda_context, "order-1")[0] == 200
    status, body = buy(lambda_context, "order-1", {**BODY, "quantity": 3})
    assert (status, body["message"]) == (400, "Invalid request.")
    assert body["errors"] == [
        {"field": "Idempotency-Key", "message": "was already used for a different request"}
    ]
    assert show.tickets_left(SHOW) == 8


def test_idempotency_keys_of_different_users_do_not_collide(
    show: PurchaseStack, lambda_context: Any
) -> None:
    assert buy(lambda_context, "order-1")[0] == 200
    assert buy(lambda_context, "order-1", {**BODY, "userId": "luis"})[0] == 200
    assert show.tickets_left(SHOW) == 6


def test_idempotency_refusal_is_replayed_too(show: PurchaseStack, lambda_context: Any) -> None:
    # GIVEN a first answer "sold out"
    show.add_show(SHOW, 1)
    first = buy(lambda_context, "order-1")
    assert first[1]["message"] == "Tickets are sold out or purchase already processed."
    # WHEN stock comes back and the same request is repeated, THEN the first answer stands
    show.add_show(SHOW, 10)
    assert buy(lambda_context, "order-1") == first
    assert show.tickets_left(SHOW) == 10


def metric_names(output: str) -> list[str]:
    """The metrics of the Embedded Metric Format lines printed."""
    return [
        metric["Name"]
        for line in output.splitlines()
        if line.startswith("{") and '"_aws"' in line
        for metric in json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    ]


def test_idempotency_replay_counts_as_a_replay_not_a_second_sale(
    show: PurchaseStack, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    buy(lambda_context, "order-1")
    assert metric_names(capsys.readouterr().out) == ["PurchaseCompleted"]
    buy(lambda_context, "order-1")
    assert metric_names(capsys.readouterr().out) == ["PurchaseReplayed"]


def test_idempotency_internal_error_is_not_stored_so_a_retry_sells(
    show: PurchaseStack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the workflow cannot be started for the first attempt
    real_arn = show.state_machine_arn
    monkeypatch.setenv("STATE_MACHINE_ARN", real_arn + "-missing")
    purchase_workflow.settings.cache_clear()
    assert buy(lambda_context, "order-1") == (500, {"message": "Internal server error."})
    # WHEN the client retries with the same key once things are back
    monkeypatch.setenv("STATE_MACHINE_ARN", real_arn)
    purchase_workflow.settings.cache_clear()
    # THEN the retry really runs and sells
    assert buy(lambda_context, "order-1")[0] == 200
    assert len(show.sales(SHOW)) == 1


@pytest.mark.parametrize("key", ["", "x" * 129, "has space", "ñandú", "tab\tkey"])
def test_idempotency_malformed_key_is_an_invalid_request(
    show: PurchaseStack, lambda_context: Any, key: str
) -> None:
    status, body = buy(lambda_context, key)
    assert (status, body["errors"][0]["field"]) == (400, "Idempotency-Key")
    assert show.sales(SHOW) == []


def test_idempotency_records_hold_no_card_number(show: PurchaseStack, lambda_context: Any) -> None:
    buy(lambda_context, "order-1")
    records = show.dynamodb.scan(TableName="IdempotencyRecords")["Items"]
    assert len(records) == 1
    assert "4111111111111111" not in json.dumps(records)
    assert "order-1" not in json.dumps(records)  # the key itself is stored hashed
