"""A show whose stock is in buckets: the sale's rules hold, through the real ASL on the contention
engine; a short rush and a rush with faults run as `make flash-sale` does, on a small stock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import purchase_workflow
from bench import flash_sale
from card_validation import Card
from offline.dynamodb_engine import ENGINE, Fault
from offline.throttle import ThrottleLimits
from tests.conftest import PurchaseStack
from tools import preflight
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


def test_flash_sale_through_a_deployed_path_sends_buyers_back_and_keeps_every_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a path whose throttle and function concurrency are far below the rush: a burst of 6,
    # 20 requests a second, 3 invocations at once (buyers back off at most 0.5 s, to keep it short)
    monkeypatch.setattr(flash_sale, "BACKOFF_CAP_S", 0.5)
    path = flash_sale.Deployment(
        "tight", ThrottleLimits(rate_per_second=20, burst=6), concurrency=3, scale=3
    )

    # WHEN 30 buyers arrive at 50 a second for 45 tickets in 3 buckets
    run = flash_sale.run_sale(
        "test", stock=45, buckets=3, buyers=30, rate_per_s=RUSH_RATE, deployment=path
    )

    # THEN the throttle answered 429s and the function's limit API Gateway's 500s, never more
    # than 3 ran at once, the buyers came back, the show sold out and every rule held
    assert run.requests_answered(flash_sale.API_THROTTLED) > 0
    assert run.requests_answered(flash_sale.FUNCTION_THROTTLED) > 0
    assert 0 < run.peak_concurrency <= 3
    assert sum(count for _, count in run.requests) > run.buyers
    assert_rules(run)


def test_flash_sale_deployed_paths_come_from_the_template_and_the_preflight() -> None:
    shipped, new_account, on_sale = flash_sale.deployments(800).values()
    # As shipped: the template's ApiRateLimit and ApiBurstLimit defaults
    assert shipped.api_limits == new_account.api_limits == ThrottleLimits(100, 200)
    assert (shipped.concurrency, new_account.concurrency) == (1000, 10)
    # On sale: what `make preflight RATE=800` asks for
    assert on_sale.api_limits == ThrottleLimits(800, 800)
    assert on_sale.concurrency == preflight.concurrency_needed(800) == 400


# ------------------------------------------- the flash sale's oracle: what "false sold out" counts


def moto_show_table() -> Any:
    """ShowTickets as moto holds it now, looked up without moto's lock (as the flash sale's oracle
    once did)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table("ShowTickets")


def test_flash_sale_oracle_counts_no_ticket_of_a_cancelled_drain(
    purchase_stack: PurchaseStack, faults: None
) -> None:
    # GIVEN a show's last ticket in the first of its two buckets
    purchase_stack.add_show(SHOW, 1, buckets=2)
    assert purchase_stack.bucket_levels(SHOW) == (1, 0)
    answers: dict[str, str] = {}
    looked_up: list[Any] = []

    def while_ana_drains() -> None:
        # Ana, asking for 2, found the bucket short and is about to move its ticket to the pool.
        # Bob buys that ticket first; Carl then hears sold out, rightly: the show has none. The
        # oracle as it stood looked the table up after Carl's answer and read it once it had
        # moto's lock, which Ana's drain, cancelled by its condition, took first.
        answers["bob"] = buy("bob", 1)
        answers["carl"] = buy("carl", 1)
        looked_up.append(moto_show_table())

    # WHEN Ana's drain runs after that (the engine's hook stops it just before)
    ENGINE.inject(Fault("TransactWriteItems", table="ShowTickets", hook=while_ana_drains, times=1))
    answers["ana"] = buy("ana", 2)

    # THEN the sale is right: one ticket sold, to Bob, and no ticket anywhere
    assert answers == {"bob": "PurchaseCompleted", "carl": "SoldOut", "ana": "SoldOut"}
    assert purchase_stack.tickets_left(SHOW) == 0 and purchase_stack.tickets_sold(SHOW) == 1
    # but the table looked up before the drain is the one moto discarded when it cancelled it,
    # with the drain's write to the pool and not its bucket's: a ticket that never existed, which
    # made Carl's rightful sold out count as false
    (stale,) = looked_up
    assert stale is not moto_show_table()
    assert flash_sale.show_levels(stale, SHOW) == [1, 0, 0]
    # The oracle now looks the table up under moto's lock, and reads what is there.
    assert flash_sale.tickets_left(SHOW) == (0, 0)


def without_draining_round(definition: str) -> str:
    """The ASL with the bucket walk's draining round taken out: a buyer who finds every bucket
    short goes straight to the pool, so leftovers spread over buckets are never gathered."""
    asl = json.loads(definition)
    walk = asl["States"]["IsBucketEnough"]
    walk["Choices"] = [
        choice for choice in walk["Choices"] if choice.get("Assign", {}).get("draining") is not True
    ]
    return json.dumps(asl)


@pytest.mark.parametrize(("definition", "false_sold_outs"), [("as is", 0), ("no drain", 1)])
def test_flash_sale_oracle_counts_a_false_sold_out_it_is_shown(
    monkeypatch: pytest.MonkeyPatch, definition: str, false_sold_outs: int
) -> None:
    # GIVEN 12 tickets in 2 buckets (6 and 6), and one buyer of 1 in the rush; then, as every
    # run ends, a buyer of 10 (no bucket has 10, the show 11), then buyers of 1 until sold out
    monkeypatch.setattr(flash_sale, "SCALE", RUSH_SCALE)
    if definition == "no drain":
        # the control: a walk that never drains, which tells the buyer of 10 sold out
        scaled = flash_sale.scaled_definition
        monkeypatch.setattr(
            flash_sale,
            "scaled_definition",
            lambda text, scale: without_draining_round(scaled(text, scale)),
        )

    # WHEN the flash sale runs them
    run = flash_sale.run_sale("test", stock=12, buckets=2, buyers=1, rate_per_s=RUSH_RATE)

    # THEN its oracle counts the false sold out exactly when the sale told one, and fails the run
    assert run.false_sold_out == false_sold_outs
    assert run.broken_rules() == ([] if false_sold_outs == 0 else ["false_sold_out=1"])
    assert run.oversold == 0 and run.lost == 0 and run.left == 0


def test_flash_sale_fails_when_any_run_breaks_a_rule(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sweep whose first run kept every rule and whose second told a false sold out
    def run(label: str, false_sold_out: int) -> flash_sale.Run:
        return flash_sale.Run(
            label, 4, 8, 20, 400.0, sold=8, sales=5, sold_out=15, errors=0, errors_while_stock=0,
            false_sold_out=false_sold_out, recorded=8, left=0, negative_items=0, rush_sales=5,
            selling_s=1.0,
        )  # fmt: skip

    monkeypatch.setattr(flash_sale, "sweep", lambda _: [run("kept", 0), run("broke", 1)])

    # WHEN make flash-sale runs one combination THEN it exits non-zero, and its last lines give
    # every run's counts and name the run that broke the rule
    assert flash_sale.main(["--stock", "8"]) == 1
    lines = capsys.readouterr().out.splitlines()
    runs = [line.split(":")[0] for line in lines[:2]]
    assert runs == [
        f"{label} at 400/s, 8 tickets (2 a bucket), 20 buyers" for label in ("kept", "broke")
    ]
    assert lines[2] == "RULE BROKEN: broke at 400/s: false_sold_out=1"
    assert lines[3] == "flash-sale: 2 runs, 1 broke a rule (oversold=0, false_sold_out=1)"
