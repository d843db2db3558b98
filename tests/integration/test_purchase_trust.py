"""Trust at the door, on the real ASL: the per-buyer cap, keys that never alias, no answer that
confirms a sale that did not happen, junk that writes nothing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import purchase_handler
import purchase_workflow
from card_validation import Card
from offline.dynamodb_engine import ENGINE, Fault
from tests.conftest import PurchaseStack
from tests.events import load_event, with_body

SHOW = "Rock en el Parque"
LIMIT = "Ticket limit per buyer reached for this show."
IN_PROGRESS = "Purchase already in progress."
BUSY = "Too many buyers right now: try again shortly."


def buy(context: Any, key: str | None = None, **body: Any) -> tuple[int, dict[str, Any]]:
    event = load_event("purchase_visa")
    event = with_body(event, {**json.loads(event["body"]), **body})
    if key is not None:
        event["headers"] = {**event["headers"], "idempotency-key": key}
    response = purchase_handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def sold_to(stack: PurchaseStack, user: str, show: str = SHOW) -> int:
    return sum(int(s["quantity"]["N"]) for s in stack.sales(show) if s["userId"]["S"] == user)


def every_answer_has_its_sale(
    stack: PurchaseStack, answers: list[tuple[int, dict[str, Any]]]
) -> None:
    """The oracle of rule 7: each 200 names a buyer, show and quantity a sale record holds."""
    sales = {
        (s["userId"]["S"], s["show"]["S"], int(s["quantity"]["N"]))
        for show in {body["showId"] for status, body in answers if status == 200}
        for s in stack.sales(show)
    }
    for status, body in answers:
        if status == 200:
            user = body["executionId"].removesuffix(f"-{body['showId']}")
            assert (user, body["showId"], body["quantity"]) in sales


@pytest.mark.parametrize("buckets", [1, 3], ids=["one-item", "bucketed"])
def test_cap_counts_every_purchase_of_the_buyer_and_refuses_past_it(
    purchase_stack: PurchaseStack, lambda_context: Any, buckets: int
) -> None:
    # GIVEN a show of 30 tickets capped at 4 a buyer
    purchase_stack.add_show(SHOW, 30, buckets=buckets, max_per_buyer=4)
    # WHEN ana buys 2, then 2 more under other keys, then 1 more
    assert buy(lambda_context, "k1", quantity=2)[0] == 200
    assert buy(lambda_context, "k2", quantity=2)[0] == 200
    answer = buy(lambda_context, "k3", quantity=1)
    # THEN the fifth ticket is refused with the cap's own answer, never "sold out"
    assert answer == (409, {"message": LIMIT})
    assert sold_to(purchase_stack, "ana") == 4
    assert purchase_stack.tickets_left(SHOW) == 26
    claim = purchase_stack.claim(f"ana-{SHOW}")
    assert claim is not None
    assert (claim["status"]["S"], claim["failureReason"]["S"]) == ("FAILED", "BuyerLimitReached")
    # AND another buyer still buys; ana's replayed key answers as before
    assert buy(lambda_context, "k1", userId="bob", quantity=4)[0] == 200
    assert buy(lambda_context, "k3", quantity=1) == answer


def test_cap_of_the_stack_applies_to_a_show_without_its_own(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    # GIVEN a show without a cap of its own: the template's MaxTicketsPerBuyer (10) applies
    purchase_stack.add_show(SHOW, 30)
    assert buy(lambda_context, quantity=10)[0] == 200
    assert buy(lambda_context, quantity=1) == (409, {"message": LIMIT})
    assert purchase_stack.tickets_left(SHOW) == 20


@pytest.mark.parametrize("buckets", [1, 4], ids=["one-item", "bucketed"])
def test_cap_holds_for_one_buyers_concurrent_requests_over_many_keys(
    purchase_stack: PurchaseStack, lambda_context: Any, buckets: int
) -> None:
    # GIVEN a capped show, and one buyer sending 40 requests at once over 5 keys and mixed
    # quantities (every key's requests carry the same quantity, as a client's retries do); the
    # first sale's commit lets one more request of another key in while it holds the claim, so
    # that the requests surely meet, however the threads happen to run
    purchase_stack.add_show(SHOW, 100, buckets=buckets, max_per_buyer=5)
    requests = [(f"key-{n % 5}", 1 + n % 5) for n in range(40)]
    answers: list[tuple[int, dict[str, Any]]] = []
    ENGINE.inject(
        Fault(
            "TransactWriteItems",
            table="TicketSales",
            hook=lambda: answers.append(buy(lambda_context, "key-held", quantity=1)),
            times=1,
        )
    )
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers += pool.map(lambda r: buy(lambda_context, r[0], quantity=r[1]), requests)
    finally:
        ENGINE.faults.clear()
    # THEN the buyer holds at most the cap, and the stock adds up
    assert 1 <= sold_to(purchase_stack, "ana") <= 5
    # ...on an engine where the requests met: some found the buyer's claim held
    assert (400, IN_PROGRESS) in {(status, body["message"]) for status, body in answers}
    assert purchase_stack.tickets_left(SHOW) + purchase_stack.tickets_sold(SHOW) == 100
    assert {(status, body["message"]) for status, body in answers} <= {
        (200, "Purchase completed."),
        (400, IN_PROGRESS),
        (409, LIMIT),
        (503, BUSY),
    }
    every_answer_has_its_sale(purchase_stack, answers)


def test_user_and_key_that_once_shared_an_attempt_each_get_their_own_sale(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    # GIVEN user "a:b" bought 5 with key "c", and that key's record has expired
    purchase_stack.add_show(SHOW, 20)
    first = buy(lambda_context, "c", userId="a:b", quantity=5)
    assert first[0] == 200
    for record in purchase_stack.dynamodb.scan(TableName="IdempotencyRecords")["Items"]:
        purchase_stack.dynamodb.delete_item(
            TableName="IdempotencyRecords", Key={"id": record["id"]}
        )
    # WHEN user "a" buys 5 with key "b:c" (f"{user}:{key}" of both was "a:b:c")
    second = buy(lambda_context, "b:c", userId="a", quantity=5)
    # THEN it is a sale of its own: the stock moved and both sales are recorded
    assert second[0] == 200
    assert purchase_stack.tickets_left(SHOW) == 10
    assert (sold_to(purchase_stack, "a:b"), sold_to(purchase_stack, "a")) == (5, 5)
    every_answer_has_its_sale(purchase_stack, [first, second])


def test_claims_of_pairs_that_once_aliased_are_two_items(
    purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    # GIVEN the shows "DC" and "AC-DC"
    purchase_stack.add_show("DC", 5)
    purchase_stack.add_show("AC-DC", 5)
    # WHEN (vic-AC, DC) and (vic, AC-DC) buy, once each
    assert buy(lambda_context, userId="vic-AC", showId="DC")[0] == 200
    status, body = buy(lambda_context, userId="vic", showId="AC-DC")
    # THEN each has a claim of its own; the answer keeps the seed's userId-showId
    assert (status, body["executionId"]) == (200, "vic-AC-DC")
    claims = purchase_stack.dynamodb.scan(TableName="LambdaExecutionLog")["Items"]
    assert sorted(c["executionId"]["S"] for c in claims) == ["vic-AC-DC", "vic\\-AC-DC"]


def test_sale_record_of_another_request_under_the_attempts_key_never_confirms(
    purchase_stack: PurchaseStack,
) -> None:
    # GIVEN a sale record under this attempt's key that is not this request's (another buyer
    # and quantity): what a key collision would look like
    purchase_stack.add_show(SHOW, 20)
    sale = purchase_workflow.Sale("ana", SHOW, 5, Card("visa", "1111"))
    attempt = purchase_workflow.attempt_id(sale, "order-1")
    purchase_stack.dynamodb.put_item(
        TableName="TicketSales",
        Item={
            "showId": {"S": purchase_workflow.sales_key(SHOW, attempt)},
            "saleId": {"S": attempt},
            "userId": {"S": "mallory"},
            "show": {"S": SHOW},
            "quantity": {"N": "1"},
        },
    )
    # WHEN the attempt runs: its commit is refused by the sale's own condition
    with pytest.raises(purchase_workflow.RetryableError) as raised:
        purchase_workflow.run_purchase(sale, attempt)
    # THEN it is never answered as sold: the show is busy, nothing moved
    assert raised.value.outcome.metric == "ShowBusy"
    assert purchase_stack.tickets_left(SHOW) == 20


@pytest.mark.parametrize(
    ("field", "value"),
    [("userId", "4111 1111 1111 1111"), ("showId", "Big#0"), ("userId", "ana\u202e")],
)
def test_id_that_could_alias_or_leak_writes_nothing(
    purchase_stack: PurchaseStack, lambda_context: Any, field: str, value: str
) -> None:
    purchase_stack.add_show("Big", 6, buckets=3)
    before = {
        table: purchase_stack.dynamodb.scan(TableName=table)["Items"]
        for table in ("ShowTickets", "LambdaExecutionLog", "TicketSales", "IdempotencyRecords")
    }
    status, body = buy(
        lambda_context, "order-1", **{field: value, "showId": "Big"} | {field: value}
    )
    assert (status, body["message"]) == (400, "Invalid request.")
    for table, items in before.items():
        assert purchase_stack.dynamodb.scan(TableName=table)["Items"] == items


def test_bucket_named_as_a_show_by_the_workflow_is_unknown_and_writes_nothing(
    purchase_stack: PurchaseStack,
) -> None:
    # GIVEN a bucketed show, and a request naming one of its buckets that got past the parser
    purchase_stack.add_show("Big", 6, buckets=3)
    sale = purchase_workflow.Sale("ana", "Big#0", 1, Card("visa", "1111"))
    # THEN the workflow answers show not found before any claim
    result = purchase_workflow.run_purchase(sale, purchase_workflow.attempt_id(sale, None))
    assert result.outcome_metric == "ShowNotFound"
    assert purchase_stack.dynamodb.scan(TableName="LambdaExecutionLog")["Items"] == []


def test_retry_of_an_attempt_that_sold_up_to_the_cap_reports_its_sale(
    purchase_stack: PurchaseStack,
) -> None:
    # GIVEN ana's attempt sold 3 of a show capped at 4, and its answer was lost
    purchase_stack.add_show(SHOW, 20, max_per_buyer=4)
    sale = purchase_workflow.Sale("ana", SHOW, 3, Card("visa", "1111"))
    attempt = purchase_workflow.attempt_id(sale, "order-1")
    assert purchase_workflow.run_purchase(sale, attempt).outcome_metric == "PurchaseCompleted"
    # WHEN the client retries the same attempt: 3 more would pass the cap
    again = purchase_workflow.run_purchase(sale, attempt)
    # THEN the retry reports the sale it made, not the cap; nothing more is sold
    assert again.outcome_metric == "PurchaseCompleted"
    assert (sold_to(purchase_stack, "ana"), purchase_stack.tickets_left(SHOW)) == (3, 17)


def strip_cap_condition(definition: str) -> str:
    """The ASL with the sale's transaction no longer checking the cap: the naive control."""
    asl = json.loads(definition)
    claim_update = asl["States"]["SellTickets"]["Arguments"]["TransactItems"][2]["Update"]
    condition = claim_update["ConditionExpression"]
    claim_update["ConditionExpression"] = condition.replace(" AND ticketsIfSold <= maxPerBuyer", "")
    assert claim_update["ConditionExpression"] != condition
    return json.dumps(asl)


@pytest.mark.parametrize("naive", [False, True], ids=["asl", "naive-control"])
def test_cap_is_checked_by_the_sales_own_transaction(
    purchase_stack: PurchaseStack, naive: bool
) -> None:
    # GIVEN a show capped at 4, and ana's purchase of 3 whose commit is delayed; just before it
    # commits, the buyer's tally grows past what the claim read (as another of their sales
    # landing in that gap would make it)
    from offline.dynamodb_engine import ENGINE, Fault

    sfn = purchase_stack.stepfunctions
    arn = purchase_stack.state_machine_arn
    if naive:
        definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        sfn.update_state_machine(stateMachineArn=arn, definition=strip_cap_condition(definition))
    purchase_stack.add_show(SHOW, 20, max_per_buyer=4)
    claim_key = {"executionId": {"S": f"ana-{SHOW}"}}

    def another_sale_lands() -> None:
        purchase_stack.dynamodb.update_item(
            TableName="LambdaExecutionLog",
            Key=claim_key,
            UpdateExpression="SET ticketsIfSold = ticketsIfSold + :two",
            ExpressionAttributeValues={":two": {"N": "2"}},
        )

    ENGINE.inject(Fault("TransactWriteItems", hook=another_sale_lands, times=1))
    sale = purchase_workflow.Sale("ana", SHOW, 3, Card("visa", "1111"))
    try:
        outcome = purchase_workflow.run_purchase(sale, purchase_workflow.attempt_id(sale, None))
        metric = outcome.outcome_metric
    except purchase_workflow.RetryableError as retryable:
        metric = retryable.outcome.metric
    finally:
        ENGINE.faults.clear()
    claim = purchase_stack.claim(f"ana-{SHOW}")
    assert claim is not None
    if naive:
        # THEN without the transaction's check the buyer's tally passes the cap
        assert metric == "PurchaseCompleted"
        assert int(claim["ticketsBought"]["N"]) > 4
    else:
        # THEN the commit is refused, the sale never made, the stock untouched
        assert metric != "PurchaseCompleted"
        assert "ticketsBought" not in claim
        assert purchase_stack.tickets_left(SHOW) == 20
