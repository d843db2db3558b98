"""Failures injected at every step of the purchase workflow: the sale's rules still hold.

Faults are switched on in the offline DynamoDB engine (offline/dynamodb_engine.py) for the calls
the workflow makes, so the real ASL sees them exactly as DynamoDB errors, lost answers, conflicts
or a stopped workflow, at that step:
- ClaimExecution   -> UpdateItem on LambdaExecutionLog (its first)
- CheckStock       -> GetItem on ShowTickets
- SellTickets      -> TransactWriteItems
- FindOwnSale      -> GetItem on TicketSales (after a cancelled commit)
- MarkExecutionFailed -> UpdateItem on LambdaExecutionLog (after the claim's)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

import purchase_handler
from offline import cfn_template
from offline.dynamodb_engine import ENGINE, Fault
from tests import reliability
from tests.conftest import PurchaseStack
from tests.events import load_event

SHOW = "Rock en el Parque"
ANA = f"ana-{SHOW}"
STOCK = 10


def stop_running_workflow() -> None:
    """The workflow dies here: its execution is stopped, as a timeout or a crash would. With
    error InternalServerError on the fault, the call in flight never reaches the table."""
    stepfunctions = boto3.client("stepfunctions")
    (machine,) = stepfunctions.list_state_machines()["stateMachines"]
    running = stepfunctions.list_executions(
        stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
    )["executions"]
    for execution in running:
        stepfunctions.stop_execution(executionArn=execution["executionArn"])


@dataclass
class Faults:
    retry_waits: list[float] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        return ENGINE.inject(fault)

    def clear(self) -> None:
        ENGINE.faults.clear()


@pytest.fixture
def faults(purchase_stack: PurchaseStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    injected = Faults()
    # Retry waits are recorded instead of slept: the policy is checked, the suite stays fast.
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=injected.retry_waits.append))
    yield injected
    injected.clear()


def buy(context: Any) -> tuple[int, dict[str, Any]]:
    response = purchase_handler.lambda_handler(load_event("purchase_visa"), context)
    return response["statusCode"], json.loads(response["body"])


def assert_sale_rules_hold(stack: PurchaseStack) -> None:
    """No oversell, no lost ticket: stock never negative; initial stock = left + sold."""
    ENGINE.faults.clear()  # the checks' own reads must not meet the faults
    left = stack.tickets_left(SHOW)
    assert left >= 0
    assert left + stack.tickets_sold(SHOW) == STOCK
    reliability.add("faults_survived")


def claim_status(stack: PurchaseStack) -> str | None:
    claim = stack.claim(ANA)
    return None if claim is None else str(claim["status"]["S"])


INTERNAL_ERROR = 500, {"message": "Internal server error."}
BUSY = "Too many buyers right now: try again shortly."


@pytest.fixture
def show(purchase_stack: PurchaseStack) -> PurchaseStack:
    purchase_stack.add_show(SHOW, STOCK)
    return purchase_stack


def test_fault_claim_throttled_once_is_retried_and_sells(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    faults.add(
        Fault("UpdateItem", "LambdaExecutionLog", "ProvisionedThroughputExceededException", times=1)
    )
    assert buy(lambda_context)[0] == 200
    assert len(faults.retry_waits) == 1
    # Full jitter: the wait is drawn from [0, IntervalSeconds].
    assert 0 <= faults.retry_waits[0] <= 1
    assert_sale_rules_hold(show)


def test_fault_claim_throttled_throughout_answers_500_and_writes_nothing(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    faults.add(Fault("UpdateItem", "LambdaExecutionLog", "ProvisionedThroughputExceededException"))
    assert buy(lambda_context) == INTERNAL_ERROR
    assert len(faults.retry_waits) == 3  # MaxAttempts
    assert claim_status(show) is None
    assert show.tickets_left(SHOW) == STOCK
    assert_sale_rules_hold(show)


def test_fault_claim_written_but_answer_lost_is_retried_as_ours(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the claim is stored but DynamoDB's answer is an internal error
    faults.add(
        Fault("UpdateItem", "LambdaExecutionLog", "InternalServerError", after=True, times=1)
    )
    # THEN the retried claim finds its own attempt id and the sale goes through
    assert buy(lambda_context)[0] == 200
    assert claim_status(show) == "COMPLETED"
    assert_sale_rules_hold(show)


def test_fault_sale_throttled_once_is_retried_and_sells(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    faults.add(Fault("TransactWriteItems", error="ProvisionedThroughputExceededException", times=1))
    assert buy(lambda_context)[0] == 200
    assert show.tickets_left(SHOW) == STOCK - 2
    assert_sale_rules_hold(show)


def test_fault_sale_failing_throughout_marks_failed_and_sells_nothing(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    faults.add(Fault("TransactWriteItems", error="InternalServerError"))
    assert buy(lambda_context) == INTERNAL_ERROR
    claim = show.claim(ANA)
    assert claim is not None
    assert claim["status"]["S"] == "FAILED"
    assert claim["failureReason"]["S"] == "DynamoDb.InternalServerErrorException"
    assert show.tickets_left(SHOW) == STOCK and show.sales(SHOW) == []
    # FAILED frees the buyer at once (finished claims free the buyer).
    faults.clear()
    assert buy(lambda_context)[0] == 200
    assert_sale_rules_hold(show)


def test_fault_sale_losing_a_race_tries_again_and_sells(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the first commit is cancelled by a concurrent transaction (tickets remain)
    faults.add(Fault("TransactWriteItems", error="TransactionConflict", times=1))
    # THEN it commits on its second attempt, after a jittered wait of up to a second
    assert buy(lambda_context)[0] == 200
    assert len(faults.retry_waits) == 1 and 0 <= faults.retry_waits[0] <= 1
    assert show.tickets_left(SHOW) == STOCK - 2
    assert_sale_rules_hold(show)


def test_fault_sale_losing_every_race_gives_up_cleanly(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    fault = faults.add(Fault("TransactWriteItems", error="TransactionConflict"))
    # THEN a retryable answer, never a 500 and never a false "sold out"
    assert buy(lambda_context) == (503, {"message": BUSY})
    # bounded: 4 passes of a commit and its jittered retry, inside the workflow's timeout
    assert fault.hits == 8
    assert len(faults.retry_waits) == 4 and sum(faults.retry_waits) <= 4
    claim = show.claim(ANA)
    assert claim is not None and claim["failureReason"]["S"] == "SaleContended"
    assert show.tickets_left(SHOW) == STOCK
    assert_sale_rules_hold(show)


def test_fault_sale_committed_but_answer_lost_keeps_exactly_one_sale(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the transaction commits but its answer is lost
    faults.add(Fault("TransactWriteItems", error="InternalServerError", after=True, times=1))
    # THEN the retry with the same ClientRequestToken is a replay: the buyer hears of the sale,
    # exactly one sale exists and the claim says so
    assert buy(lambda_context)[0] == 200
    assert ENGINE.counts["token_replays"] == 1
    assert len(show.sales(SHOW)) == 1
    assert claim_status(show) == "COMPLETED"
    assert_sale_rules_hold(show)


def test_fault_workflow_dies_after_the_claim_sells_nothing_and_lease_frees_the_buyer(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the workflow dies between ClaimExecution and SellTickets
    faults.add(
        Fault(
            "TransactWriteItems", error="InternalServerError", hook=stop_running_workflow, times=1
        )
    )
    assert buy(lambda_context) == INTERNAL_ERROR
    # THEN nothing was sold and the claim still blocks the buyer...
    assert claim_status(show) == "IN_PROGRESS"
    assert show.tickets_left(SHOW) == STOCK
    assert buy(lambda_context) == (400, {"message": "Purchase already in progress."})
    # ...until its lease runs out (claims expire)
    show.dynamodb.update_item(
        TableName="LambdaExecutionLog",
        Key={"executionId": {"S": ANA}},
        UpdateExpression="SET leaseExpiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert buy(lambda_context)[0] == 200
    assert_sale_rules_hold(show)


def test_fault_workflow_dies_after_the_sale_keeps_it_completed(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the workflow dies right after the commit, before it can answer
    faults.add(
        Fault(
            "TransactWriteItems",
            error="InternalServerError",
            after=True,
            hook=stop_running_workflow,
            times=1,
        )
    )
    assert buy(lambda_context) == INTERNAL_ERROR
    # THEN the sale is whole: decremented, recorded and COMPLETED, so the buyer is not blocked
    assert show.tickets_left(SHOW) == STOCK - 2
    assert claim_status(show) == "COMPLETED"
    assert buy(lambda_context)[0] == 200
    assert_sale_rules_hold(show)


def test_fault_marking_failed_fails_keeps_the_answer_and_the_lease_frees_the_claim(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN a sold-out show and a failing MarkExecutionFailed
    show.add_show(SHOW, 0)
    faults.add(Fault("UpdateItem", "LambdaExecutionLog", "InternalServerError", skip=1))
    # THEN the buyer still hears "sold out"; the claim stays IN_PROGRESS under its lease
    status, body = buy(lambda_context)
    assert (status, body["message"]) == (400, "Tickets are sold out or purchase already processed.")
    assert claim_status(show) == "IN_PROGRESS"
    claim = show.claim(ANA)
    assert claim is not None and int(claim["leaseExpiresAt"]["N"]) <= time.time() + 60


def test_fault_commit_cancelled_after_an_earlier_execution_sold_reports_that_sale(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN this attempt's sale already recorded by an earlier execution of it (a client's
    # retry of its Idempotency-Key after a lost answer), and this commit cancelled
    import purchase_workflow

    sale = purchase_workflow.Sale("ana", SHOW, 2, purchase_workflow.Card("visa", "1111"))
    attempt = purchase_workflow.attempt_id(sale, "order-1")
    first = purchase_workflow.run_purchase(sale, attempt)
    assert first.outcome_metric == "PurchaseCompleted"
    # WHEN the same attempt runs again: its commit is refused by the sale's own condition
    second = purchase_workflow.run_purchase(sale, attempt)
    # THEN it reports the sale that exists, sells nothing more, and settles the claim
    assert second.outcome_metric == "PurchaseCompleted"
    assert len(show.sales(SHOW)) == 1
    assert claim_status(show) == "COMPLETED"
    assert_sale_rules_hold(show)


# ---------------------------------------------------------------- the whole matrix
# Every DynamoDB step of the workflow, each failing throughout with each kind of error, and the
# workflow timing out while that step hangs. A step's path: the purchase that reaches it.
STEPS = {
    # step: (action, table, calls of that kind before it, path)
    "ClaimExecution": ("UpdateItem", "LambdaExecutionLog", 0, "sale"),
    "CheckStock": ("GetItem", "ShowTickets", 0, "sale"),
    "SellTickets": ("TransactWriteItems", None, 0, "sale"),
    "FindOwnSale": ("GetItem", "TicketSales", 0, "lost-race"),
    "MarkExecutionFailed": ("UpdateItem", "LambdaExecutionLog", 1, "sold-out"),
}
ERRORS = {
    "throttling": "ProvisionedThroughputExceededException",
    "internal": "InternalServerError",
    "conditional": "ConditionalCheckFailedException",
}
COMPLETED = "Purchase completed."
SOLD_OUT = "Tickets are sold out or purchase already processed."
IN_PROGRESS = "Purchase already in progress."
# What the buyer hears when a step fails throughout (documented in docs/design.md).
EXPECTED = {
    ("ClaimExecution", "conditional"): (400, IN_PROGRESS),
    ("MarkExecutionFailed", "throttling"): (400, SOLD_OUT),
    ("MarkExecutionFailed", "internal"): (400, SOLD_OUT),
    ("MarkExecutionFailed", "conditional"): (400, SOLD_OUT),
}


def prepare(stack: PurchaseStack, path: str) -> None:
    # The sold-out path: two tickets asked for, one left. The lost-race path: the first commit
    # is cancelled by a conflict, so the workflow looks for its own sale.
    stack.add_show(SHOW, 1 if path == "sold-out" else STOCK)
    if path == "lost-race":
        ENGINE.inject(Fault("TransactWriteItems", error="TransactionConflict", times=2))


def rules_hold_then_the_buyer_is_free(
    stack: PurchaseStack, faults: Faults, context: Any, path: str
) -> None:
    """No oversell and no lost ticket hold; once the faults stop and any stale claim's lease has
    run out, the same buyer gets an ordinary answer again (claims expire)."""
    faults.clear()
    left = stack.tickets_left(SHOW)
    stock = 1 if path == "sold-out" else STOCK
    assert left >= 0 and left + stack.tickets_sold(SHOW) == stock
    claim = stack.claim(ANA)
    if claim is not None and claim["status"]["S"] == "IN_PROGRESS":
        expires = int(claim["leaseExpiresAt"]["N"])
        if time.time() < expires - 1:
            assert buy(context)[1]["message"] == IN_PROGRESS  # still leased: blocked
        time.sleep(max(0.0, expires + 1.1 - time.time()))
    status, body = buy(context)
    assert body["message"] != IN_PROGRESS
    assert status in (200, 400)
    assert stack.tickets_left(SHOW) + stack.tickets_sold(SHOW) == stock
    reliability.add("faults_survived")


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3 s lease (the deployed default is 60 s), so that stale claims expire within a test."""
    import purchase_workflow

    monkeypatch.setenv("LEASE_SECONDS", "3")
    purchase_workflow.settings.cache_clear()


@pytest.mark.parametrize("error", list(ERRORS))
@pytest.mark.parametrize("step", list(STEPS))
def test_fault_matrix_step_failing_throughout_keeps_every_rule(
    purchase_stack: PurchaseStack,
    faults: Faults,
    short_lease: None,
    lambda_context: Any,
    step: str,
    error: str,
) -> None:
    action, table, skip, path = STEPS[step]
    prepare(purchase_stack, path)
    faults.add(Fault(action, table, ERRORS[error], skip=skip))
    status, body = buy(lambda_context)
    assert (status, body["message"]) == EXPECTED.get((step, error), (500, "Internal server error."))
    rules_hold_then_the_buyer_is_free(purchase_stack, faults, lambda_context, path)


@pytest.fixture
def short_timeout(purchase_stack: PurchaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ASL with a 2 s TimeoutSeconds, so that a hanging step times the workflow out."""
    import purchase_workflow

    definition = json.loads(
        cfn_template.state_machine_definition(cfn_template.load_template(), "PurchaseStateMachine")
    )
    definition["TimeoutSeconds"] = 2
    arn = purchase_stack.stepfunctions.create_state_machine(
        name="PurchaseStateMachineShortTimeout",
        definition=json.dumps(definition),
        roleArn=cfn_template.LOCAL_ROLE_ARN,
        type="EXPRESS",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    purchase_workflow.settings.cache_clear()


@pytest.mark.parametrize("step", list(STEPS))
def test_fault_matrix_workflow_timing_out_at_a_step_keeps_every_rule(
    purchase_stack: PurchaseStack,
    faults: Faults,
    short_timeout: None,
    short_lease: None,
    lambda_context: Any,
    step: str,
) -> None:
    # GIVEN a step that hangs past the workflow's timeout (its write, if any, lands late)
    action, table, skip, path = STEPS[step]
    prepare(purchase_stack, path)
    faults.add(Fault(action, table, delay_seconds=2.5, skip=skip, times=1))
    # THEN the buyer hears of an internal error...
    assert buy(lambda_context) == INTERNAL_ERROR
    time.sleep(0.6)  # the hung call finishes its late write
    # ...and the sale's rules hold, the claim freeing itself after its lease
    rules_hold_then_the_buyer_is_free(purchase_stack, faults, lambda_context, path)
