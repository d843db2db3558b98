"""Failures injected at every step of the purchase workflow: the sale's rules still hold.

Faults are injected into moto's DynamoDB API, for the calls the workflow makes (moto runs each
execution on a thread of its own), so the real ASL sees them exactly as DynamoDB errors, or a
stopped workflow, at that step:
- ClaimExecution   -> PutItem on LambdaExecutionLog
- SellTickets      -> TransactWriteItems
- CheckStock / ReadTicketsLeft -> GetItem on ShowTickets
- MarkExecutionFailed -> UpdateItem on LambdaExecutionLog
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

import purchase_handler
from offline import cfn_template
from tests import reliability
from tests.conftest import PurchaseStack
from tests.events import load_event

SHOW = "Rock en el Parque"
ANA = f"ana-{SHOW}"
STOCK = 10


def dynamodb_error(code: str) -> Exception:
    status = 500 if code == "InternalServerError" else 400
    error = JsonRESTError(f"com.amazonaws.dynamodb.v20120810#{code}", f"injected {code}")
    error.code = status
    return error


def stop_running_workflow() -> None:
    """The workflow dies here: its execution is stopped, as a timeout or a crash would, and
    the call in flight never reaches the table."""
    stepfunctions = boto3.client("stepfunctions")
    (machine,) = stepfunctions.list_state_machines()["stateMachines"]
    running = stepfunctions.list_executions(
        stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
    )["executions"]
    for execution in running:
        stepfunctions.stop_execution(executionArn=execution["executionArn"])
    raise dynamodb_error("InternalServerError")


@dataclass
class Fault:
    operation: str  # the API action, as moto names it: put_item, transact_write_items...
    table: str | None  # for single-item operations; None matches any
    before: Callable[[], None] | None = None  # runs before the call (raise: the write is lost)
    after: Callable[[], None] | None = None  # runs after the call (raise: the answer is lost)
    times: int = 1_000  # how many calls it hits; afterwards the operation works again
    hits: int = 0


@dataclass
class Faults:
    active: list[Fault] = field(default_factory=list)
    retry_waits: list[float] = field(default_factory=list)

    def add(self, fault: Fault) -> Fault:
        self.active.append(fault)
        return fault


@pytest.fixture
def faults(purchase_stack: PurchaseStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    injected = Faults()

    def wrap(operation: str) -> None:
        original = getattr(DynamoHandler, operation)

        def faulty(self: DynamoHandler) -> Any:
            from_workflow = threading.current_thread() is not threading.main_thread()
            table = self.body.get("TableName")
            for fault in injected.active:
                hit = fault.operation == operation and fault.table in (None, table)
                if from_workflow and hit and fault.hits < fault.times:
                    fault.hits += 1
                    if fault.before:
                        fault.before()
                    result = original(self)
                    if fault.after:
                        fault.after()
                    return result
            return original(self)

        monkeypatch.setattr(DynamoHandler, operation, faulty)

    for operation in ("put_item", "update_item", "get_item", "transact_write_items"):
        wrap(operation)
    # Retry waits are recorded instead of slept: the policy is checked, the suite stays fast.
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=injected.retry_waits.append))
    yield injected


def raise_(error: Exception) -> Callable[[], None]:
    def fail() -> None:
        raise error

    return fail


def buy(context: Any) -> tuple[int, dict[str, Any]]:
    response = purchase_handler.lambda_handler(load_event("purchase_visa"), context)
    return response["statusCode"], json.loads(response["body"])


def assert_sale_rules_hold(stack: PurchaseStack) -> None:
    """No oversell, no lost ticket: stock never negative; initial stock = left + sold."""
    left = stack.tickets_left(SHOW)
    assert left >= 0
    assert left + stack.tickets_sold(SHOW) == STOCK
    reliability.add("faults_survived")


def claim_status(stack: PurchaseStack) -> str | None:
    claim = stack.claim(ANA)
    return None if claim is None else str(claim["status"]["S"])


INTERNAL_ERROR = 500, {"message": "Internal server error."}


@pytest.fixture
def show(purchase_stack: PurchaseStack) -> PurchaseStack:
    purchase_stack.add_show(SHOW, STOCK)
    return purchase_stack


def test_fault_claim_throttled_once_is_retried_and_sells(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    error = dynamodb_error("ProvisionedThroughputExceededException")
    faults.add(Fault("put_item", "LambdaExecutionLog", before=raise_(error), times=1))
    assert buy(lambda_context)[0] == 200
    assert len(faults.retry_waits) == 1
    # Full jitter: the wait is drawn from [0, IntervalSeconds].
    assert 0 <= faults.retry_waits[0] <= 1
    assert_sale_rules_hold(show)


def test_fault_claim_throttled_throughout_answers_500_and_writes_nothing(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    error = dynamodb_error("ProvisionedThroughputExceededException")
    faults.add(Fault("put_item", "LambdaExecutionLog", before=raise_(error)))
    assert buy(lambda_context) == INTERNAL_ERROR
    assert len(faults.retry_waits) == 3  # MaxAttempts
    assert claim_status(show) is None
    assert show.tickets_left(SHOW) == STOCK
    assert_sale_rules_hold(show)


def test_fault_claim_written_but_answer_lost_is_retried_as_ours(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the claim is stored but DynamoDB's answer is an internal error
    error = dynamodb_error("InternalServerError")
    faults.add(Fault("put_item", "LambdaExecutionLog", after=raise_(error), times=1))
    # THEN the retried claim finds its own attempt id and the sale goes through
    assert buy(lambda_context)[0] == 200
    assert claim_status(show) == "COMPLETED"
    assert_sale_rules_hold(show)


def test_fault_sale_throttled_once_is_retried_and_sells(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    error = dynamodb_error("ProvisionedThroughputExceededException")
    faults.add(Fault("transact_write_items", None, before=raise_(error), times=1))
    assert buy(lambda_context)[0] == 200
    assert show.tickets_left(SHOW) == STOCK - 2
    assert_sale_rules_hold(show)


def test_fault_sale_failing_throughout_marks_failed_and_sells_nothing(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    faults.add(
        Fault("transact_write_items", None, before=raise_(dynamodb_error("InternalServerError")))
    )
    assert buy(lambda_context) == INTERNAL_ERROR
    claim = show.claim(ANA)
    assert claim is not None
    assert claim["status"]["S"] == "FAILED"
    assert claim["failureReason"]["S"] == "DynamoDb.InternalServerErrorException"
    assert show.tickets_left(SHOW) == STOCK and show.sales(SHOW) == []
    # FAILED frees the buyer at once (finished claims free the buyer).
    faults.active.clear()
    assert buy(lambda_context)[0] == 200
    assert_sale_rules_hold(show)


def test_fault_sale_losing_a_race_tries_again_and_sells(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the first commit is cancelled by a concurrent writer (tickets remain)
    conflict = TransactionCanceledException([("TransactionConflict", "conflict", None)])
    faults.add(Fault("transact_write_items", None, before=raise_(conflict), times=1))
    # THEN the workflow reads the stock, sees enough, and commits on its second attempt
    assert buy(lambda_context)[0] == 200
    assert show.tickets_left(SHOW) == STOCK - 2
    assert_sale_rules_hold(show)


def test_fault_sale_losing_every_race_gives_up_cleanly(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    conflict = TransactionCanceledException([("TransactionConflict", "conflict", None)])
    fault = faults.add(Fault("transact_write_items", None, before=raise_(conflict)))
    assert buy(lambda_context) == INTERNAL_ERROR
    assert fault.hits == 5  # bounded: the workflow never loops forever
    claim = show.claim(ANA)
    assert claim is not None and claim["failureReason"]["S"] == "PurchaseFailed"
    assert show.tickets_left(SHOW) == STOCK
    assert_sale_rules_hold(show)


def test_fault_sale_committed_but_answer_lost_keeps_exactly_one_sale(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the transaction commits but its answer is lost (moto ignores the request token,
    # so every retry is refused by the sale's own conditions)
    error = dynamodb_error("InternalServerError")
    faults.add(Fault("transact_write_items", None, after=raise_(error), times=1))
    # THEN the buyer hears of an error (on AWS the commit's ClientRequestToken turns the retry
    # into a success), but exactly one sale exists and the claim says so
    assert buy(lambda_context) == INTERNAL_ERROR
    assert len(show.sales(SHOW)) == 1
    assert claim_status(show) == "COMPLETED"
    assert_sale_rules_hold(show)


def test_fault_workflow_dies_after_the_claim_sells_nothing_and_lease_frees_the_buyer(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN the workflow dies between ClaimExecution and SellTickets
    faults.add(Fault("transact_write_items", None, before=stop_running_workflow, times=1))
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
    # GIVEN the workflow dies right after the commit, before reading the stock back
    faults.add(Fault("get_item", "ShowTickets", before=stop_running_workflow, times=1))
    assert buy(lambda_context) == INTERNAL_ERROR
    # THEN the sale is whole: decremented, recorded and COMPLETED, so the buyer is not blocked
    assert show.tickets_left(SHOW) == STOCK - 2
    assert claim_status(show) == "COMPLETED"
    assert_sale_rules_hold(show)


def test_fault_stock_unreadable_after_the_sale_still_answers_200(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    error = dynamodb_error("InternalServerError")
    faults.add(Fault("get_item", "ShowTickets", before=raise_(error)))
    status, body = buy(lambda_context)
    assert (status, body["message"], body["ticketsAvailable"]) == (200, "Purchase completed.", None)
    assert_sale_rules_hold(show)


def test_fault_marking_failed_fails_keeps_the_answer_and_the_lease_frees_the_claim(
    show: PurchaseStack, faults: Faults, lambda_context: Any
) -> None:
    # GIVEN a sold-out show and a failing MarkExecutionFailed
    show.add_show(SHOW, 0)
    error = dynamodb_error("InternalServerError")
    faults.add(Fault("update_item", "LambdaExecutionLog", before=raise_(error)))
    # THEN the buyer still hears "sold out"; the claim stays IN_PROGRESS under its lease
    status, body = buy(lambda_context)
    assert (status, body["message"]) == (400, "Tickets are sold out or purchase already processed.")
    assert claim_status(show) == "IN_PROGRESS"
    claim = show.claim(ANA)
    assert claim is not None and int(claim["leaseExpiresAt"]["N"]) <= time.time() + 60


# ---------------------------------------------------------------- the whole matrix
# Every DynamoDB step of the workflow, each failing throughout with each kind of error, and the
# workflow timing out while that step hangs. A step's path: the purchase that reaches it.
STEPS = {
    "ClaimExecution": ("put_item", "LambdaExecutionLog", "sale"),
    "SellTickets": ("transact_write_items", None, "sale"),
    "ReadTicketsLeft": ("get_item", "ShowTickets", "sale"),
    "CheckStock": ("get_item", "ShowTickets", "sold-out"),
    "MarkExecutionFailed": ("update_item", "LambdaExecutionLog", "sold-out"),
}
ERRORS = {
    "throttling": "ProvisionedThroughputExceededException",
    "internal": "InternalServerError",
    "conditional": "ConditionalCheckFailedException",
}
COMPLETED = "Purchase completed."
SOLD_OUT = "Tickets are sold out or purchase already processed."
IN_PROGRESS = "Purchase already in progress."
# What the buyer hears when a step fails throughout (docs/design.md, The sale, step by step).
EXPECTED = {
    ("ClaimExecution", "conditional"): (400, IN_PROGRESS),
    ("ReadTicketsLeft", "throttling"): (200, COMPLETED),
    ("ReadTicketsLeft", "internal"): (200, COMPLETED),
    ("ReadTicketsLeft", "conditional"): (200, COMPLETED),
    ("MarkExecutionFailed", "throttling"): (400, SOLD_OUT),
    ("MarkExecutionFailed", "internal"): (400, SOLD_OUT),
    ("MarkExecutionFailed", "conditional"): (400, SOLD_OUT),
}


def prepare(stack: PurchaseStack, path: str) -> None:
    # The sold-out path: two tickets asked for, one left.
    stack.add_show(SHOW, STOCK if path == "sale" else 1)


def rules_hold_then_the_buyer_is_free(
    stack: PurchaseStack, faults: Faults, context: Any, path: str
) -> None:
    """No oversell, no lost ticket; once the faults stop and any stale claim's lease has run out
    (claims expire), the same buyer gets an ordinary answer again."""
    left = stack.tickets_left(SHOW)
    stock = STOCK if path == "sale" else 1
    assert left >= 0 and left + stack.tickets_sold(SHOW) == stock
    faults.active.clear()
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
    operation, table, path = STEPS[step]
    prepare(purchase_stack, path)
    faults.add(Fault(operation, table, before=raise_(dynamodb_error(ERRORS[error]))))
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
    operation, table, path = STEPS[step]
    prepare(purchase_stack, path)
    faults.add(Fault(operation, table, before=lambda: time.sleep(2.5), times=1))
    # THEN the buyer hears of an internal error...
    assert buy(lambda_context) == INTERNAL_ERROR
    time.sleep(0.6)  # the hung call finishes its late write
    # ...and the sale's rules hold, the claim freeing itself after its lease
    rules_hold_then_the_buyer_is_free(purchase_stack, faults, lambda_context, path)
