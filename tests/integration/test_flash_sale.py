"""A show whose stock is in buckets: the sale's rules hold, through the real ASL on the contention
engine; a short rush and a rush with faults run as `make flash-sale` does, on a small stock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import purchase_workflow
from bench import flash_sale
from card_validation import Card
from offline.dynamodb_engine import ENGINE, Fault
from tests.conftest import PurchaseStack
from tools import show as show_command

SHOW = "Hot"


def buy(user: str, quantity: int, show: str = SHOW) -> str:
    sale = purchase_workflow.Sale(user, show, quantity, Card("visa", "1111"))
    try:
        result = purchase_workflow.run_purchase(sale, purchase_workflow.attempt_id(sale, None))
    except purchase_workflow.RetryableError as retryable:
        return retryable.outcome.metric
    return result.outcome_metric


def set_levels(stack: PurchaseStack, levels: list[int]) -> None:
    """Bucket levels as a rush leaves them (the pool empty)."""
    for index, level in enumerate(levels):
        stack.dynamodb.update_item(
            TableName="ShowTickets",
            Key={"showId": {"S": show_command.bucket_key(SHOW, index)}},
            UpdateExpression="SET ticketsAvailable = :level",
            ExpressionAttributeValues={":level": {"N": str(level)}},
        )


def test_bucketed_show_sells_every_ticket_then_sold_out(purchase_stack: PurchaseStack) -> None:
    # GIVEN 7 tickets over 3 buckets
    purchase_stack.add_show(SHOW, 7, buckets=3)
    assert purchase_stack.bucket_levels(SHOW) == (3, 2, 2)

    # WHEN buyers ask for 2, 2, 1, 1, 1, then 1 more
    answers = [buy(f"fan{n}", quantity) for n, quantity in enumerate([2, 2, 1, 1, 1, 1])]

    # THEN the first five buy all 7 (No oversell, No lost ticket), the last hears sold out
    assert answers == ["PurchaseCompleted"] * 5 + ["SoldOut"]
    assert purchase_stack.tickets_left(SHOW) == 0
    assert purchase_stack.tickets_sold(SHOW) == 7


def test_bucketed_show_leftovers_spread_over_buckets_sell_together(
    purchase_stack: PurchaseStack,
) -> None:
    # GIVEN a show whose last 3 tickets lie one in each of 3 buckets
    purchase_stack.add_show(SHOW, 3, buckets=4)
    set_levels(purchase_stack, [1, 0, 1, 1])

    # WHEN a buyer asks for 3 THEN they are sold (never a false sold out): the buckets were
    # emptied into the pool and the sale taken from there
    assert buy("ana", 3) == "PurchaseCompleted"
    assert purchase_stack.bucket_levels(SHOW) == (0, 0, 0, 0)
    assert purchase_stack.tickets_left(SHOW) == 0 and purchase_stack.tickets_sold(SHOW) == 3


def test_bucketed_show_short_bucket_is_left_while_another_has_enough(
    purchase_stack: PurchaseStack,
) -> None:
    # GIVEN one bucket with 1 ticket and one with 5
    purchase_stack.add_show(SHOW, 6, buckets=2)
    set_levels(purchase_stack, [1, 5])

    # WHEN a buyer asks for 3, whichever bucket they draw first
    assert buy("ana", 3) == "PurchaseCompleted"

    # THEN the 3 come from the bucket with enough; the short bucket keeps its ticket for a buyer
    # of one, and the pool, one item every short bucket would otherwise be drained into, is
    # untouched
    assert purchase_stack.bucket_levels(SHOW) == (1, 2)
    assert purchase_stack.tickets_left(SHOW) == 3


def test_bucketed_show_short_of_the_quantity_is_sold_out_and_keeps_its_tickets(
    purchase_stack: PurchaseStack,
) -> None:
    # GIVEN 2 tickets left, in 2 buckets
    purchase_stack.add_show(SHOW, 2, buckets=3)
    set_levels(purchase_stack, [1, 1, 0])

    # WHEN a buyer asks for 3 THEN sold out; the 2 tickets stay, now in the pool, and sell
    assert buy("ana", 3) == "SoldOut"
    assert purchase_stack.tickets_left(SHOW) == 2
    assert buy("bob", 2) == "PurchaseCompleted"
    assert purchase_stack.tickets_left(SHOW) == 0 and purchase_stack.tickets_sold(SHOW) == 2


def test_bucketed_show_bucket_name_is_not_a_show(purchase_stack: PurchaseStack) -> None:
    # A bucket item's key is not a show anyone can buy under: it is another show's stock.
    purchase_stack.add_show(SHOW, 4, buckets=2)
    assert buy("ana", 1, show=show_command.bucket_key(SHOW, 0)) == "ShowNotFound"
    assert purchase_stack.tickets_left(SHOW) == 4


@pytest.fixture
def faults() -> Iterator[None]:
    yield
    ENGINE.faults.clear()


@pytest.mark.parametrize(
    "fault",
    [
        Fault("TransactWriteItems", error="InternalServerError", after=True, times=1),
        Fault("TransactWriteItems", error="InternalServerError", times=1),
        Fault("TransactWriteItems", error="TransactionConflict", times=2),
    ],
    ids=["drain-answer-lost", "drain-refused", "drain-conflicts"],
)
def test_bucketed_show_drain_faults_move_nothing_twice(
    purchase_stack: PurchaseStack, faults: None, fault: Fault
) -> None:
    # GIVEN leftovers in two buckets, and the first drain's transaction failing
    purchase_stack.add_show(SHOW, 2, buckets=2)
    set_levels(purchase_stack, [1, 1])
    ENGINE.inject(fault)

    # WHEN a buyer asks for 2
    answer = buy("ana", 2)

    # THEN whatever the answer, no ticket was moved twice or lost: left + sold is the stock
    ENGINE.faults.clear()
    assert answer in {"PurchaseCompleted", "ShowBusy"}
    left, sold = purchase_stack.tickets_left(SHOW), purchase_stack.tickets_sold(SHOW)
    assert left >= 0 and left + sold == 2
    assert min(purchase_stack.bucket_levels(SHOW)) >= 0


def test_sale_shards_match_the_show_command() -> None:
    # The organiser counts a show's sales over the keys the function writes them under.
    assert show_command.SALE_SHARDS == purchase_workflow.SALE_SHARDS
    keys = {purchase_workflow.sales_key(SHOW, f"{n:032x}") for n in range(500)}
    assert keys == set(show_command.sales_keys(SHOW))


# ------------------------------------------------------- a short rush, as make flash-sale runs it


# A rush whose buckets are as busy as make flash-sale's (N chosen from the rate the same way),
# slowed less: its retries wait seconds, not minutes.
RUSH_SCALE = 5
RUSH_RATE = 50.0


def rush(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> flash_sale.Run:
    monkeypatch.setattr(flash_sale, "SCALE", RUSH_SCALE)
    buckets = flash_sale.buckets_for(RUSH_RATE, 18)
    return flash_sale.run_sale(
        "test", stock=60, buyers=45, rate_per_s=RUSH_RATE, buckets=buckets, **kwargs
    )


def assert_rules(run: flash_sale.Run) -> None:
    assert run.oversold == 0 and run.lost == 0
    assert run.false_sold_out == 0
    assert run.left == 0 and run.recorded == run.stock  # ends sold out, the last ticket sold


def test_flash_sale_bucketed_rush_keeps_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    run = rush(monkeypatch)
    assert_rules(run)
    # The rules held on an engine that made buyers collide.
    assert ENGINE.counts["transaction_conflicts"] > 0


def test_flash_sale_rush_with_faults_oversells_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = rush(monkeypatch, inject=flash_sale.inject_faults)
    assert run.fault_hits > 0
    assert_rules(run)
