"""make e2e: the sale and the flyer path end to end, over the stack's own HTTP API and endpoints,
against `make local` or a deployed stack (conftest.py says which). Every show, claim, sale
record, flyer and user the suite makes is its own, and removed at the end."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from offline.moto_sfn import optimised_dynamodb_error_name
from tests.e2e.e2e_stack import FINDINGS, E2EStack

pytestmark = pytest.mark.e2e

RUN = secrets.token_hex(3)
ONE_ITEM, TWO_TICKETS, BUCKETED = (f"e2e {RUN} {kind}" for kind in ("one", "two", "buckets"))
SOLD = "Purchase completed."
SOLD_OUT = {"message": "Tickets are sold out or purchase already processed."}
# If a draw of 2 were as likely as the others, 40 draws would miss it with probability (2/3)^40.
RANDOM_DRAWS = 40


@pytest.fixture(scope="module")
def shows(stack: E2EStack) -> None:
    """The suite's shows, laid out as `make show` lays out a new one."""
    stack.create_show(ONE_ITEM, 40)
    stack.create_show(TWO_TICKETS, 2)
    stack.create_show(BUCKETED, 40, buckets=4)


def test_e2e_seed_scenarios_1_to_4_in_turn(stack: E2EStack, shows: None) -> None:
    # Scenario 1: GIVEN no claim WHEN the buyer buys 2 THEN the sale completes, and the claim
    status, body = stack.purchase(ONE_ITEM, 2)
    assert (status, body["message"], body["ticketsAvailable"]) == (200, SOLD, 38)
    assert body["card"] == {"brand": "visa", "last4": "1111"}
    claim = stack.claim(ONE_ITEM)
    assert claim is not None and claim["status"]["S"] == "COMPLETED"
    assert stack.tickets_left(ONE_ITEM) == 38

    # Scenario 2: GIVEN another attempt's unexpired IN_PROGRESS claim THEN refused, nothing sold
    stack.put_claim(ONE_ITEM, "IN_PROGRESS", lease_seconds=60)
    assert stack.purchase(ONE_ITEM, 2) == (400, {"message": "Purchase already in progress."})
    assert stack.tickets_left(ONE_ITEM) == 38

    # Scenarios 3 and 4: GIVEN a COMPLETED, then a FAILED claim THEN a new purchase sells
    for previous, left in (("COMPLETED", 36), ("FAILED", 34)):
        stack.put_claim(ONE_ITEM, previous, lease_seconds=60)
        status, body = stack.purchase(ONE_ITEM, 2)
        assert (status, body["ticketsAvailable"]) == (200, left), previous
        claim = stack.claim(ONE_ITEM)
        assert claim is not None and claim["status"]["S"] == "COMPLETED"


def test_e2e_last_tickets_then_sold_out(stack: E2EStack, shows: None) -> None:
    status, body = stack.purchase(TWO_TICKETS, 2)
    assert (status, body["ticketsAvailable"]) == (200, 0)
    assert stack.purchase(TWO_TICKETS, 1) == (400, SOLD_OUT)
    assert stack.tickets_left(TWO_TICKETS) == 0


def test_e2e_unknown_show_is_404_and_writes_no_claim(stack: E2EStack, shows: None) -> None:
    unknown = f"e2e {RUN} never created"
    assert stack.purchase(unknown, 1) == (404, {"message": "Show not found."})
    assert stack.claim(unknown) is None


def test_e2e_idempotency_key_replays_the_first_answer_without_selling_again(
    stack: E2EStack, shows: None
) -> None:
    before = stack.tickets_left(ONE_ITEM)
    key = f"e2e-{RUN}-replay"
    first = stack.purchase(ONE_ITEM, 1, idempotency_key=key)
    assert first[0] == 200
    assert stack.purchase(ONE_ITEM, 1, idempotency_key=key) == first
    assert stack.tickets_left(ONE_ITEM) == before - 1


def test_e2e_bucketed_show_sells_from_its_buckets(stack: E2EStack, shows: None) -> None:
    status, body = stack.purchase(BUCKETED, 2)
    assert (status, body["message"]) == (200, SOLD)
    assert stack.tickets_left(BUCKETED) == 38


def test_e2e_flyer_upload_reaches_the_catalog(stack: E2EStack, shows: None) -> None:
    # GIVEN the show's row in the catalog WHEN its flyer is uploaded to the stack's bucket
    key = f"e2e/{ONE_ITEM}.png"
    stack.upload_flyer(key)
    # THEN the flyer function stores it on the row (locally read from the catalog; on AWS from
    # the function's "Stored flyer" line, since the catalog is private)
    assert stack.flyer_stored(ONE_ITEM, key) == f"s3://{stack.bucket}/{key}"


def test_e2e_a_sales_trace_is_readable_where_the_console_reads_it(
    stack: E2EStack, shows: None
) -> None:
    since = time.time()
    assert stack.purchase(BUCKETED, 1)[0] == 200
    trace = stack.sale_trace(since - 1, time.time() + 1)
    positions = [trace.find(state) for state in ("CheckStock", "CheckBucket", "SellTickets")]
    assert -1 not in positions and positions == sorted(positions), trace
    assert "ticketsBeforeSale" in trace
    assert "4111" not in trace


@pytest.mark.aws_only
def test_e2e_aws_bucket_draw_stays_below_the_bucket_count(stack: E2EStack) -> None:
    """The ASL draws a bucket as $floor($random() * N): AWS documents $random() in [0, 1), so
    the draw is never N, as the offline evaluator's is not. This records AWS's draws of N = 2."""
    sfn = stack.client("stepfunctions")
    state = {
        "Type": "Pass",
        "QueryLanguage": "JSONata",
        "Output": {"draw": "{% $floor($random() * 2) %}"},
        "End": True,
    }
    draws = [
        json.loads(sfn.test_state(definition=json.dumps(state), input="{}")["output"])["draw"]
        for _ in range(RANDOM_DRAWS)
    ]
    FINDINGS.append(f"$floor($random() * 2), {len(draws)} draws by TestState: {sorted(set(draws))}")
    assert set(draws) <= {0, 1}


@pytest.mark.aws_only
def test_e2e_aws_failing_dynamodb_call_error_name(stack: E2EStack) -> None:
    """The error name Step Functions gives a DynamoDB call that fails: the stack's own CheckStock
    task, run alone by TestState with its role, on a key DynamoDB refuses (an empty string)."""
    sfn = stack.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)
    check_stock = json.loads(machine["definition"])["States"]["CheckStock"]
    # Without its Retry and Catch the state fails with the call's own error name: TestState
    # would otherwise answer RETRIABLE or CAUGHT_ERROR.
    alone = {k: v for k, v in check_stock.items() if k not in ("Retry", "Catch")}
    answer = sfn.test_state(
        definition=json.dumps(alone),
        roleArn=machine["roleArn"],
        input=json.dumps({"showId": ""}),
    )
    offline_name = optimised_dynamodb_error_name("ValidationException")
    FINDINGS.append(
        f"CheckStock on an empty key: status {answer['status']}, error {answer.get('error')}"
        f" (the offline stack names it {offline_name}); cause: {answer.get('cause', '')[:200]}"
    )
    assert answer["status"] == "FAILED"
    # The ASL's Retry lists and the offline engine spell it this way.
    assert answer.get("error") == offline_name
