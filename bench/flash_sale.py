"""A flash sale: one hot show's rush of buyers, its stock in one ShowTickets item against the same
stock in buckets, through the real purchase function's workflow call and the real ASL on the
offline DynamoDB engine's contention model (hold windows, per-item ceilings, throttling).

Buyers arrive open-loop at a fixed rate, each a new user asking for 1 to 3 tickets once; after
the last arrival, buyers come one at a time (ten tickets each, then one each) until a buyer of
one ticket hears sold out, so that every run ends sold out and shows whether any ticket was left
behind. This machine cannot run a thousand executions a second, so the model runs slower by
SCALE: every hold window is SCALE times DynamoDB's, every per-item ceiling SCALE times lower,
every arrival SCALE times further apart, and every duration the ASL sets (its timeout, each
Retry's waits) SCALE times longer. Contention depends only on arrivals per hold window and
units per window, so the figures are given at DynamoDB's own time scale (measured rate x
SCALE).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from bench.measurement import BenchContext, Section, table, verdict

SHOW = "Flash"
SCALE = 64
DEFAULT_STOCK = 900
DEFAULT_BUYERS = 600
# Buyers a second at DynamoDB's time scale: 14.4 times one item's ceiling (1000 / 18 ms), 12.5
# executions a second here, what this machine runs without falling behind the arrivals.
DEFAULT_RATE = 800.0
# Busy buckets a buyer may draw: N = ceil(rate x hold window x SAFETY) keeps each bucket held a
# third of the time or less at the peak rate.
SAFETY = 3.0
TARGET_TICKETS_PER_S = 1000
SECTION = "Flash sale"
PICTURE = Path("docs") / "flash-sale.svg"
REPORT = Path("BENCHMARKS.md")


def buckets_for(rate_per_s: float, window_ms: float) -> int:
    """The bucket count a show needs to sell at `rate_per_s`: buyers per hold window x SAFETY."""
    return max(1, math.ceil(rate_per_s * window_ms / 1000 * SAFETY))


@dataclass(frozen=True)
class Run:
    """One flash sale: what was offered and how every buyer's answer came out."""

    label: str
    buckets: int
    stock: int
    buyers: int
    offered_per_s: float  # at DynamoDB's time scale
    sold: int  # tickets, from the answers
    sales: int  # purchases completed
    sold_out: int
    errors: int  # any other answer
    errors_while_stock: int  # of those, answered while tickets remained
    false_sold_out: int
    recorded: int  # tickets in TicketSales
    left: int  # tickets left in every item when the run ended sold out
    negative_items: int
    rush_sales: int  # purchases completed by the open-loop buyers
    selling_s: float  # from their first sale to their last, at DynamoDB's time scale
    busy: int = 0  # of the errors, 503s: the show too contended to commit now
    faults: str = ""
    fault_hits: int = 0  # requests the injected faults struck
    # Requests the engine cancelled for a held item, and refused over an item's ceiling.
    conflicts: int = 0
    throttles: int = 0
    answers: tuple[tuple[str, int], ...] = ()  # every answer's metric and how many got it
    # Sales and tickets a second until 90% of the stock was sold, at DynamoDB's time scale.
    sales_per_s: float = 0.0
    tickets_per_s: float = 0.0

    @property
    def oversold(self) -> int:
        return max(0, self.recorded - self.stock) + self.negative_items

    @property
    def lost(self) -> int:
        """Tickets neither left nor recorded as sold (negative: sold twice)."""
        return self.stock - self.left - self.recorded

    @property
    def whole_sales_per_s(self) -> float:
        return (self.rush_sales - 1) / self.selling_s if self.selling_s else 0.0

    def broken_rules(self) -> list[str]:
        """The sale's rules this run broke, each with its count: none is the only pass."""
        counts = {
            "oversold": self.oversold,
            "lost": self.lost,
            "false_sold_out": self.false_sold_out,
            "stranded": self.left,
        }
        return [f"{rule}={count}" for rule, count in counts.items() if count]

    def summary(self) -> str:
        return (
            f"{self.label} at {self.offered_per_s:g}/s, {self.stock} tickets"
            f" ({self.stock / self.buckets:.3g} a bucket), {self.buyers} buyers:"
            f" sold={self.sold} oversold={self.oversold} lost={self.lost}"
            f" false_sold_out={self.false_sold_out} stranded={self.left} errors={self.errors}"
            f" sales_per_s={self.sales_per_s:.0f} tickets_per_s={self.tickets_per_s:.0f}"
        )


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: list[tuple[str, int, int, float]] = field(default_factory=list)
    # When the first and the last sale of the open-loop buyers were answered.
    first_rush_sale: float = math.inf
    last_rush_sale: float = 0.0

    def add(self, outcome: str, quantity: int, left_after: int, at: float, rush: bool) -> None:
        with self.lock:
            self.outcomes.append((outcome, quantity, left_after, at))
            if rush and outcome == "PurchaseCompleted":
                self.first_rush_sale = min(self.first_rush_sale, at)
                self.last_rush_sale = max(self.last_rush_sale, at)
                self.rush_sales += 1

    rush_sales: int = 0


def scaled_definition(definition: str) -> str:
    """The ASL with every duration it sets SCALE times longer, like the engine's: the workflow's
    timeout, and each Retry's interval and longest wait."""
    asl = json.loads(definition)
    asl["TimeoutSeconds"] *= SCALE
    for state in asl["States"].values():
        for retrier in state.get("Retry", ()):
            for duration in ("IntervalSeconds", "MaxDelaySeconds"):
                if duration in retrier:
                    retrier[duration] *= SCALE
    return json.dumps(asl)


@contextmanager
def stack() -> Iterator[None]:
    """The template's tables and state machine on moto, the engine and the ASL at SCALE."""
    from bench.execution_logs import offline_purchase_stack
    from offline import cfn_template
    from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS

    engine = {
        "LOCAL_DYNAMODB_TRANSACTION_MS": f"{DEFAULT_TRANSACTION_MS * SCALE:g}",
        "LOCAL_DYNAMODB_ITEM_WCU": f"{1000 / SCALE:g}",
        "LOCAL_DYNAMODB_ITEM_RCU": f"{3000 / SCALE:g}",
    }
    # The engine's scaled settings must not reach whatever runs next in this process.
    with (
        mock.patch.dict(os.environ, engine),
        offline_purchase_stack(cfn_template.load_template()) as (_, stepfunctions, arn),
    ):
        definition = stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"]
        stepfunctions.update_state_machine(
            stateMachineArn=arn, definition=scaled_definition(definition)
        )
        yield


def show_levels(table: Any, show: str) -> list[int]:
    """The show's item (the pool) and each of its buckets, as `table`, a moto table, holds them."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    def item(key: str) -> dict[str, Any]:
        found = table.get_item(DynamoType({"S": key}))
        return {} if found is None else dict(found.to_json()["Attributes"])

    pool = item(show)
    buckets = int(pool["buckets"]["N"]) if "buckets" in pool else 0
    keys = [f"{show}#{index}" for index in range(buckets)]
    return [int(found["ticketsAvailable"]["N"]) for found in map(item, [show, *keys]) if found]


def tickets_left(show: str) -> tuple[int, int]:
    """(tickets left in the show's items, items below zero) at one instant: under moto's lock,
    where every write is applied, straight from its tables (a read through the API would spend
    the items' read units and change the run).

    The table is looked up under the lock too. moto cancels a transaction by putting a copy of
    the table taken before it in the original's place, after it applied to the original the
    writes whose conditions held: a table looked up before the lock may be that discarded
    original, holding a cancelled drain's write to the pool without its bucket's, a ticket that
    never existed (tests/integration/test_flash_sale.py shows it)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from offline.dynamodb_engine import ENGINE

    with ENGINE.moto_lock:
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table("ShowTickets")
        levels = show_levels(table, show)
    return sum(levels), sum(1 for level in levels if level < 0)


def run_sale(
    label: str,
    *,
    stock: int,
    buckets: int,
    buyers: int,
    rate_per_s: float,
    inject: Callable[[], str] | None = None,
) -> Run:
    """Sell `stock` tickets in `buckets` items to `buyers` arriving at `rate_per_s` (at DynamoDB's
    time scale), then to single-ticket buyers until sold out; `inject` switches faults on."""
    from decimal import Decimal

    import boto3

    import purchase_workflow
    from card_validation import Card
    from offline.dynamodb_engine import ENGINE
    from purchase_outcomes import SHOW_BUSY, SOLD, SOLD_OUT
    from show_catalog import ShowSpec
    from tools import show as show_command

    with stack():
        dynamodb = boto3.client("dynamodb")
        spec = ShowSpec(SHOW, Decimal(50), stock)
        # As `make show` lays out a new show: with the stack's per-buyer cap on its item.
        cap = show_command.template_max_per_buyer()
        show_command.set_stock(dynamodb, show_command.LOCAL_TABLES, spec, buckets, cap)
        faults = inject() if inject else ""
        tally = _Tally()
        started = time.monotonic()

        def buy(number: int, quantity: int, rush: bool = True) -> str:
            sale = purchase_workflow.Sale(f"fan{number}", SHOW, quantity, Card("visa", "1111"))
            try:
                result = purchase_workflow.run_purchase(
                    sale, purchase_workflow.attempt_id(sale, None)
                )
                outcome = result.outcome_metric
            except purchase_workflow.RetryableError as retryable:
                outcome = retryable.outcome.metric
            except purchase_workflow.WorkflowError as error:
                # "execution ... ended TIMED_OUT: ...": how it ended is the error's kind.
                outcome = "error: " + str(error).split(" ended ", 1)[-1].split(":", 1)[0]
            except Exception as error:
                outcome = f"error: {type(error).__name__}"
            tally.add(outcome, quantity, tickets_left(SHOW)[0], time.monotonic() - started, rush)
            return outcome

        measured_rate = rate_per_s / SCALE
        # A thread a buyer: a buyer waiting out a retry must not hold up the next arrival.
        with ThreadPoolExecutor(max_workers=buyers) as pool:
            for number in range(buyers):
                # Open loop: each buyer arrives on schedule, whatever the others are doing.
                time.sleep(max(0.0, started + number / measured_rate - time.monotonic()))
                pool.submit(buy, number, 1 + number % 3)
        fault_hits = sum(fault.hits for fault in ENGINE.faults)
        ENGINE.faults.clear()
        # The last buyers, one at a time: ten tickets each until the show says sold out for
        # ten, then one each until it says sold out for one.
        number = buyers
        for quantity in (10, 1):
            while number < buyers + 2 * stock + 20:
                number += 1
                if buy(number, quantity, rush=False) == SOLD_OUT.metric:
                    break
        recorded = show_command.tickets_sold(dynamodb, show_command.LOCAL_TABLES, SHOW)
        left, negative = tickets_left(SHOW)
        counts = dict(ENGINE.counts)

    outcomes = tally.outcomes
    sales = [entry for entry in outcomes if entry[0] == SOLD.metric]
    sales_per_s, tickets_per_s = steady_rates(sales, stock)
    sold_outs = [entry for entry in outcomes if entry[0] == SOLD_OUT.metric]
    others = [entry for entry in outcomes if entry[0] not in (SOLD.metric, SOLD_OUT.metric)]
    return Run(
        label=label,
        buckets=buckets,
        stock=stock,
        buyers=buyers,
        offered_per_s=rate_per_s,
        sold=sum(quantity for _, quantity, _, _ in sales),
        sales=len(sales),
        sold_out=len(sold_outs),
        errors=len(others),
        busy=sum(1 for entry in others if entry[0] == SHOW_BUSY.metric),
        errors_while_stock=sum(1 for _, _, left_after, _ in others if left_after > 0),
        # Stock only falls: tickets enough for the buyer after the answer were there before it.
        false_sold_out=sum(1 for _, quantity, left_after, _ in sold_outs if left_after >= quantity),
        recorded=recorded,
        left=left,
        negative_items=negative,
        rush_sales=tally.rush_sales,
        selling_s=max(0.0, tally.last_rush_sale - tally.first_rush_sale) / SCALE,
        faults=faults,
        fault_hits=fault_hits,
        conflicts=counts.get("transaction_conflicts", 0) + counts.get("write_conflicts", 0),
        throttles=sum(count for name, count in counts.items() if name.endswith("_throttles")),
        answers=tuple(Counter(outcome for outcome, *_ in outcomes).most_common()),
        sales_per_s=sales_per_s,
        tickets_per_s=tickets_per_s,
    )


def steady_rates(sales: Sequence[tuple[str, int, int, float]], stock: int) -> tuple[float, float]:
    """Sales and tickets a second from the first sale until 90% of the stock was sold: the rate
    the show sells at while its buckets have stock. The last tickets lie in fewer and fewer
    buckets, and sell at fewer and fewer hold windows at once; the whole run's rate is reported
    beside it."""
    ordered = sorted(sales, key=lambda sale: sale[3])
    sold = 0
    for count, (_, quantity, _, at) in enumerate(ordered, start=1):
        sold += quantity
        if sold >= 0.9 * stock and count > 1:
            seconds = (at - ordered[0][3]) / SCALE
            # The first sale opens the span: its tickets are not counted in it.
            return (count - 1) / seconds, (sold - ordered[0][1]) / seconds
    return 0.0, 0.0


def inject_faults() -> str:
    """Throttled and lost commit answers, and workflows dying after their claim and after a
    commit, through the engine's switches; says which."""
    import boto3

    from offline.dynamodb_engine import ENGINE, Fault

    def stop_one_workflow() -> None:
        stepfunctions = boto3.client("stepfunctions")
        (machine,) = stepfunctions.list_state_machines()["stateMachines"]
        running = stepfunctions.list_executions(
            stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
        )["executions"]
        if running:
            victim = random.choice(running)  # noqa: S311 - which one dies, not a secret
            stepfunctions.stop_execution(executionArn=victim["executionArn"])

    faults = [
        Fault(
            "TransactWriteItems", error="ProvisionedThroughputExceededException", skip=5, times=15
        ),
        Fault("TransactWriteItems", error="InternalServerError", after=True, skip=30, times=15),
        Fault("PutItem", table="LambdaExecutionLog", hook=stop_one_workflow, skip=10, times=5),
        Fault("TransactWriteItems", after=True, hook=stop_one_workflow, skip=60, times=5),
    ]
    for fault in faults:
        ENGINE.inject(fault)
    return (
        "15 commits throttled, 15 commit answers lost after the write, 5 workflows stopped"
        " after their claim and 5 after a commit"
    )


@dataclass(frozen=True)
class Scenario:
    """One run of the sweep: a show of `stock` tickets in `buckets` items, `buyers` arriving at
    `rate_per_s` (at DynamoDB's time scale), with the engine's faults or without."""

    stock: int
    buyers: int
    rate_per_s: float
    buckets: int
    faults: bool = False

    @property
    def label(self) -> str:
        layout = "one item" if self.buckets == 1 else f"{self.buckets} buckets"
        return layout + (", faults" if self.faults else "")


# What `make flash-sale` runs, about 25 minutes on two cores (22 measured). The one-item control
# at half and all of the target rate; the bucketed show at its target rate with 20 tickets a
# bucket (the headline); the run of issue 21 (5 a bucket at half the rate); then the endgame, 1 to
# 3 tickets a bucket, where buyers drain buckets into the pool while others sell from them, at
# three rates and bucket counts, the last with faults.
SWEEP = (
    Scenario(stock=150, buyers=200, rate_per_s=400, buckets=1),
    Scenario(stock=300, buyers=300, rate_per_s=800, buckets=1),
    Scenario(stock=218, buyers=350, rate_per_s=400, buckets=44),
    Scenario(stock=880, buyers=600, rate_per_s=800, buckets=44),
    Scenario(stock=88, buyers=300, rate_per_s=800, buckets=44),
    Scenario(stock=22, buyers=150, rate_per_s=400, buckets=22),
    Scenario(stock=33, buyers=100, rate_per_s=200, buckets=11),
    Scenario(stock=132, buyers=300, rate_per_s=800, buckets=44, faults=True),
)


def sweep(scenarios: Sequence[Scenario]) -> list[Run]:
    runs = []
    for scenario in scenarios:
        print(f"flash-sale: {scenario}...", file=sys.stderr, flush=True)
        run = run_sale(
            scenario.label,
            stock=scenario.stock,
            buckets=scenario.buckets,
            buyers=scenario.buyers,
            rate_per_s=scenario.rate_per_s,
            inject=inject_faults if scenario.faults else None,
        )
        print(f"flash-sale: {run.summary()}", file=sys.stderr, flush=True)
        runs.append(run)
    return runs


def headline(runs: Sequence[Run]) -> Run:
    """The bucketed show's run at the highest rate with the most tickets a bucket, no faults."""
    plain = [run for run in runs if not run.faults and run.buckets > 1]
    return max(plain, key=lambda run: (run.offered_per_s, run.stock / run.buckets))


def section(runs: Sequence[Run]) -> str:
    from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS

    ceiling = 1000 / DEFAULT_TRANSACTION_MS
    rows = [
        [
            run.label,
            run.stock,
            f"{run.stock / run.buckets:.3g}",
            f"{run.offered_per_s:g}",
            f"{run.offered_per_s / ceiling:.1f}",
            run.buyers,
            run.sales,
            run.sold,
            f"{run.sales_per_s:.0f}",
            f"{run.sales_per_s / ceiling:.1f}",
            f"{run.tickets_per_s:.0f}",
            f"{run.whole_sales_per_s:.0f}",
            run.sold_out,
            run.busy,
            ", ".join(
                f"{count} {answer.removeprefix('error: ')}"
                for answer, count in run.answers
                if answer.startswith("error")
            )
            or "0",
            f"{run.errors_while_stock / run.buyers:.1%}",
            run.false_sold_out,
            f"{run.conflicts} / {run.throttles}",
            run.oversold,
            run.lost,
            run.left,
        ]
        for run in runs
    ]
    faulted = [run for run in runs if run.faults]
    bucketed = headline(runs)
    broken = [run for run in runs if run.broken_rules()]
    return "\n".join(
        [
            __doc__.strip().split("\n\n")[1].replace("\n", " "),
            "",
            f"Written by `make flash-sale` (SCALE = {SCALE:g}: hold window"
            f" {DEFAULT_TRANSACTION_MS * SCALE:g} ms, item ceilings {1000 / SCALE:g} WCU and"
            f" {3000 / SCALE:g} RCU a second; figures below at DynamoDB's scale). One item's"
            f" ceiling is {ceiling:.1f} sales a second. A bucketed show needs"
            f" N = ceil(rate x {DEFAULT_TRANSACTION_MS:g} ms x {SAFETY:g}) buckets"
            " (docs/design.md, A hot show); the sweep runs that N at each rate, and 44 at half"
            " the target rate (issue 21's run). Rerun it with `make flash-sale` (about 25"
            " minutes on two cores), one combination with `make flash-sale STOCK= BUYERS= RATE="
            " BUCKETS=` (printed, not written here).",
            "",
            f"**Target: a bucketed show sells {TARGET_TICKETS_PER_S:,} tickets a second or more**"
            f" with every rule holding: {bucketed.tickets_per_s:,.0f} tickets"
            f" ({bucketed.sales_per_s:,.0f} sales) a second from {bucketed.buckets} buckets at"
            f" {bucketed.offered_per_s:g} buyers a second,"
            f" {verdict(bucketed.tickets_per_s >= TARGET_TICKETS_PER_S)}.",
            "",
            "**Every run keeps every rule** (nothing oversold, lost or stranded, no false sold"
            f" out): {verdict(not broken)}"
            + "".join(f"; broken in {run.label} at {run.offered_per_s:g}/s" for run in broken)
            + ".",
            "",
            f"![sales/s and error share against offered buyers/s]({PICTURE.as_posix()})",
            "",
            table(
                [
                    "stock in",
                    "stock",
                    "a bucket",
                    "offered/s",
                    "x ceiling",
                    "buyers",
                    "sales",
                    "tickets",
                    "sales/s",
                    "x ceiling",
                    "tickets/s",
                    "whole rush sales/s",
                    "sold out",
                    "503",
                    "other errors",
                    "errors while stock",
                    "false sold out",
                    "conflicts / throttles",
                    "oversold",
                    "lost",
                    "stranded",
                ],
                rows,
            ),
            "",
            "Sales/s and tickets/s count the rush's sales from the first until 90% of the stock "
            "was sold; whole-rush sales/s runs to its last sale, when the last tickets lie in "
            "fewer and fewer buckets (the single-ticket buyers after the rush are left out of "
            "both). 503: the show too contended to commit now (`Retry-After: 1`); other errors "
            "are 500s, by how the execution ended (FAILED, in the fault run: a commit throttled "
            "throughout, or a workflow stopped on purpose; TIMED_OUT: past the workflow's "
            "timeout). Errors while stock: the share of buyers answered anything but a sale or "
            "sold out while tickets remained. A false sold out is a buyer told sold out while the"
            " show still had as many tickets as it asked for, counted from the show's total read "
            "in one instant just after the answer (under moto's lock, from the table moto holds "
            "then: issue 21's 7 came from a table moto had discarded with a cancelled drain's "
            "write in it); the total never rises, so a count after the answer that is enough "
            "was enough when the buyer was told sold out. Stranded is what was left once a "
            "single-ticket buyer heard sold out. Conflicts / throttles: the requests the engine "
            "cancelled because another transaction held an item, and refused over an item's "
            "ceiling." + (f" Faults: {faulted[0].faults}." if faulted else ""),
            "",
            "What a sale from a bucket costs beside a one-item show's sale, whose path every show"
            " with N = 1 keeps unchanged: [Cost model](#cost-model).",
        ]
    )


def svg(runs: Sequence[Run]) -> str:
    """Sales/s (solid) and the share of buyers answered an error (dashed) against offered
    buyers/s, one colour per layout, in multiples of one item's ceiling: the runs without faults
    whose buckets hold 5 tickets or more, enough for a rate (the endgame runs sell out at once)."""
    from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS

    ceiling = 1000 / DEFAULT_TRANSACTION_MS
    plain = [run for run in runs if not run.faults and run.stock >= 5 * run.buckets]
    width, height, pad = 640, 360, 50
    x_max = max(run.offered_per_s / ceiling for run in plain) * 1.1
    y_max = max(1.2, max(run.sales_per_s / ceiling for run in plain) * 1.1)

    def xy(x: float, y: float) -> str:
        left = pad + x / x_max * (width - 2 * pad)
        return f"{left:.1f},{height - pad - y / y_max * (height - 2 * pad):.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<polyline points="{xy(0, 0)} {xy(x_max, 0)}" stroke="black" fill="none"/>',
        f'<polyline points="{xy(0, 0)} {xy(0, y_max)}" stroke="black" fill="none"/>',
        f'<polyline points="{xy(0, 1)} {xy(x_max, 1)}" stroke="grey" stroke-dasharray="2,4" '
        'fill="none"/>',
        f'<text x="{width - pad}" y="{xy(0, 1).split(",")[1]}" text-anchor="end" dy="-4">'
        "one item's ceiling</text>",
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">offered buyers/s, in '
        "multiples of one item's ceiling</text>",
        f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
        'text-anchor="middle">sales/s of the ceiling (solid), error share (dashed)</text>',
    ]
    for label, colour in zip(
        dict.fromkeys(run.label for run in plain), ("#d62728", "#1f77b4"), strict=False
    ):
        series = sorted((run for run in plain if run.label == label), key=lambda r: r.offered_per_s)
        sold = " ".join(xy(r.offered_per_s / ceiling, r.sales_per_s / ceiling) for r in series)
        errors = " ".join(xy(r.offered_per_s / ceiling, r.errors / r.buyers) for r in series)
        last = series[-1]
        parts += [
            f'<polyline points="{sold}" stroke="{colour}" stroke-width="2" fill="none"/>',
            f'<polyline points="{errors}" stroke="{colour}" stroke-dasharray="6,4" fill="none"/>',
            f'<text x="{xy(last.offered_per_s / ceiling, 0).split(",")[0]}" '
            f'y="{xy(0, last.sales_per_s / ceiling).split(",")[1]}" dy="-6" '
            f'text-anchor="end" fill="{colour}">{label}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def splice(report: str, body: str) -> str:
    """The report with its flash-sale section replaced by `body` (appended when it has none)."""
    heading = f"## {SECTION}\n"
    start = report.find(heading)
    if start < 0:
        return report.rstrip("\n") + f"\n\n{heading}\n{body}\n"
    end = report.find("\n## ", start + len(heading))
    rest = "" if end < 0 else report[end:]
    return report[:start] + f"{heading}\n{body}\n" + rest


def recorded_section(root: Path) -> str | None:
    """The flash-sale section `make flash-sale` last wrote, for `make bench` to keep."""
    path = root / REPORT
    if not path.is_file():
        return None
    report = path.read_text(encoding="utf-8")
    heading = f"## {SECTION}\n"
    start = report.find(heading)
    if start < 0:
        return None
    end = report.find("\n## ", start + len(heading))
    return report[start + len(heading) : None if end < 0 else end].strip("\n")


def measure(context: BenchContext) -> Section:
    """`make bench` keeps the section `make flash-sale` wrote: the sweep takes minutes of its
    own, and its figures do not depend on what else changed."""
    body = recorded_section(context.root) or "Not measured yet: run `make flash-sale`."
    return Section(SECTION, body)


def _count(text: str, name: str, default: float, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text) if text.strip() else default
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SystemExit(f"make flash-sale: {name} must be a number > 0, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make flash-sale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stock", default="", help=f"tickets (default {DEFAULT_STOCK})")
    parser.add_argument("--buyers", default="", help=f"buyers (default {DEFAULT_BUYERS})")
    parser.add_argument(
        "--rate", default="", help=f"buyers a second at DynamoDB's scale (default {DEFAULT_RATE:g})"
    )
    parser.add_argument(
        "--buckets", default="", help="bucket items (default: as many as the rate needs)"
    )
    arguments = parser.parse_args(argv)
    from bench.measurement import scrub
    from offline.cfn_template import ROOT
    from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS

    chosen = (arguments.stock, arguments.buyers, arguments.rate, arguments.buckets)
    if any(text.strip() for text in chosen):
        # One combination, printed only: BENCHMARKS.md keeps the whole sweep's figures.
        rate = _count(arguments.rate, "RATE", DEFAULT_RATE, float)
        scenario = Scenario(
            stock=int(_count(arguments.stock, "STOCK", DEFAULT_STOCK, int)),
            buyers=int(_count(arguments.buyers, "BUYERS", DEFAULT_BUYERS, int)),
            rate_per_s=rate,
            buckets=int(
                _count(arguments.buckets, "BUCKETS", buckets_for(rate, DEFAULT_TRANSACTION_MS), int)
            ),
        )
        runs = sweep([scenario])
    else:
        runs = sweep(SWEEP)
        (ROOT / PICTURE).write_text(svg(runs), encoding="utf-8")
        report_path = ROOT / REPORT
        report = (
            report_path.read_text(encoding="utf-8") if report_path.is_file() else "# Benchmarks\n"
        )
        report_path.write_text(scrub(splice(report, section(runs)), ROOT), encoding="utf-8")
    # The last lines: every run's counts against the rules, then the verdict (the exit status).
    for run in runs:
        print(f"{run.summary()} {dict(run.answers)}")
    broken = [run for run in runs if run.broken_rules()]
    for run in broken:
        print(
            f"RULE BROKEN: {run.label} at {run.offered_per_s:g}/s: {', '.join(run.broken_rules())}"
        )
    print(
        f"flash-sale: {len(runs)} runs, {len(broken)} broke a rule"
        f" (oversold={sum(run.oversold for run in runs)},"
        f" false_sold_out={sum(run.false_sold_out for run in runs)})"
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.path[:0] = ["functions/purchase", "functions/flyer", "layers/card_validation"]
    sys.exit(main())
