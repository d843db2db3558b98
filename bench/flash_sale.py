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

As deployed, the same rush meets the API's stage throttle and the purchase function's concurrency
first (offline/throttle.py and offline/lambda_pool.py's limit, on the same stretched clock): at
the template's defaults, at a new account's Lambda quota, and at the on-sale settings `make
preflight` prints. There buyers behave as the answer table (docs/design.md) tells clients to: a
429, API Gateway's 500 for a throttled function and a 503 are tried again after a backoff.
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
from offline.lambda_pool import ConcurrencyLimit, LambdaThrottledError
from offline.throttle import ThrottleLimits, TokenBucket

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
DEPLOYED_PICTURE = Path("docs") / "flash-sale-deployed.svg"
AS_SHIPPED = "as shipped"
NEW_ACCOUNT = "as shipped, new account"
ON_SALE = "on-sale settings"

# Lambda's concurrent executions: an account's documented default, which the purchase function
# shares (it reserves none), and what new accounts are commonly given instead
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: "new accounts might
# have reduced concurrency"; reports of 10 are common).
ACCOUNT_CONCURRENCY = 1000
NEW_ACCOUNT_CONCURRENCY = 10
# The answers of the path in front of the workflow: the stage throttle's 429 and API Gateway's
# 500 for a function throttled at its concurrency (offline/http_api.py cites both).
API_THROTTLED = "429 throttled"
FUNCTION_THROTTLED = "500 function throttled"
# A buyer told to come back tries again after a full-jitter backoff, base 0.25 s, at most 4 s,
# and never sooner than Retry-After (https://aws.amazon.com/builders-library/timeouts-retries-
# and-backoff-with-jitter/), at most this many times.
RETRIES = 10
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0


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
    deployment: str = ""  # the path in front of the workflow, "" for none (the DynamoDB model)
    api_limits: ThrottleLimits | None = None
    concurrency: int = 0  # the purchase function's
    requests: tuple[tuple[str, int], ...] = ()  # every request's answer, retries included
    peak_concurrency: int = 0  # the most invocations at once
    cost: RushCost | None = None  # what its executions cost as deployed, when priced
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

    def requests_answered(self, answer: str) -> int:
        return dict(self.requests).get(answer, 0)

    @property
    def server_errors(self) -> int:
        """Requests answered a 500: API Gateway's for a throttled function, or the function's."""
        return sum(
            count
            for answer, count in self.requests
            if answer == FUNCTION_THROTTLED or answer.startswith("error")
        )

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


@dataclass(frozen=True)
class Deployment:
    """The path in front of the workflow on AWS: the stage throttle and the purchase function's
    concurrency. `scale` replaces SCALE: a path that lets fewer executions a second through
    needs less stretching to run on this machine, and finishes sooner (contention depends only on
    arrivals per hold window, whatever the scale)."""

    name: str
    api_limits: ThrottleLimits
    concurrency: int
    scale: float


def deployments(rate_per_s: float) -> dict[str, Deployment]:
    """As shipped (the template's throttle, an account's concurrency), the same on a new account,
    and with the settings `make preflight RATE=rate_per_s` asks for."""
    from offline import cfn_template
    from offline.throttle import stage_limits
    from tools import preflight

    shipped = stage_limits(cfn_template.load_template(), {})
    on_sale = ThrottleLimits(rate_per_s, math.ceil(rate_per_s))
    found = (
        Deployment(AS_SHIPPED, shipped, ACCOUNT_CONCURRENCY, scale=32),
        Deployment(NEW_ACCOUNT, shipped, NEW_ACCOUNT_CONCURRENCY, scale=8),
        Deployment(ON_SALE, on_sale, preflight.concurrency_needed(rate_per_s), scale=SCALE),
    )
    return {deployment.name: deployment for deployment in found}


def come_back_answers() -> dict[str, float]:
    """The answers that tell a buyer to try again, each with its Retry-After in seconds (0: none):
    the stage throttle's 429, API Gateway's 500 for a throttled function, the workflow's 503."""
    from purchase_outcomes import SHOW_BUSY

    return {
        API_THROTTLED: 0.0,
        FUNCTION_THROTTLED: 0.0,
        SHOW_BUSY.metric: float(SHOW_BUSY.retry_after_seconds or 0),
    }


def backoff_s(attempt: int, retry_after_s: float) -> float:
    """How long a buyer waits before trying again, at DynamoDB's time scale."""
    jitter = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))  # noqa: S311
    return max(retry_after_s, jitter)


# What an invocation spends on AWS that the engine does not stretch: the handler, the
# StartSyncExecution round trip, the workflow's own overhead and the latency of a bucket sale's
# four DynamoDB calls (bench/assumptions.json). The function's concurrency is held for it too.
def unmodelled_s() -> float:
    from bench.cost_model import ASSUMPTIONS

    return (
        ASSUMPTIONS["handler_ms"]
        + ASSUMPTIONS["sync_call_overhead_ms"]
        + ASSUMPTIONS["workflow_overhead_ms"]
        + 4 * ASSUMPTIONS["dynamodb_task_ms"]
    ) / 1000


@dataclass(frozen=True)
class Pricing:
    """What prices a rush's executions: the cost model's inputs as deployed, and the bucketed
    sale's uncontended run (its function output, the same for every invocation, and its cost)."""

    design: Any  # bench.cost_model.Design
    machine: Any  # bench.cost_model.StateMachine
    prices: Any  # bench.cost_model.PriceTable
    uncontended: Any  # bench.execution_logs.OfflineRun of a sale from a bucket

    @classmethod
    def as_deployed(cls) -> Pricing:
        from bench import cost_model as cm
        from bench.execution_logs import BUCKET_SALE, run_offline_purchases
        from offline import cfn_template

        template = cfn_template.load_template()
        return cls(
            cm.design_from_template(template),
            cm.load_state_machine(template),
            cm.load_prices(),
            run_offline_purchases(template)[BUCKET_SALE],
        )

    def per_execution(self, path: Any, log_records: Any) -> float:
        """Dollars one execution costs, its API request and function invocation included."""
        from bench import cost_model as cm

        observed = cm.ObservedExecution(
            log_records, self.uncontended.observed.function_output_bytes
        )
        return (
            cm.cost_per_million(self.design, self.machine, path, observed, self.prices).total / 1e6
        )

    @property
    def uncontended_per_million(self) -> float:
        run = self.uncontended
        return self.per_execution(run.path, run.observed.log_records) * 1e6


@dataclass(frozen=True)
class RushCost:
    """A rush's executions priced from their histories: per million sales, everything the run
    started (sold-out and 503 answers too), and its sales' own executions alone."""

    executions: int
    per_million_sales: float
    sale_per_million: float
    failed_calls_per_sale: float  # DynamoDB calls that failed (cancelled commits, throttles)
    retry_wait_ms_per_sale: float
    states_per_sale: float


def rush_cost(pricing: Pricing, scale: float) -> RushCost | None:
    """Every execution of the rush so far, priced from its history at the run's time scale.
    Requests the throttle or the function's limit refused started nothing and are not priced."""
    import boto3

    from bench import cost_model as cm

    stepfunctions = boto3.client("stepfunctions")
    (machine,) = stepfunctions.list_state_machines()["stateMachines"]
    total = sale_total = 0.0
    executions = sales = failed_calls = states = 0
    waited_ms = 0.0
    pages = stepfunctions.get_paginator("list_executions").paginate(
        stateMachineArn=machine["stateMachineArn"]
    )
    for execution in (item for page in pages for item in page["executions"]):
        arn = execution["executionArn"]
        events = stepfunctions.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        path = cm.ExecutionPath.from_history(events, pricing.prices, time_scale=scale)
        usd = pricing.per_execution(path, cm.log_records_from_history(events, arn))
        total += usd
        executions += 1
        # A sale's execution succeeds; every other answer is a Fail state.
        if execution["status"] == "SUCCEEDED":
            sales += 1
            sale_total += usd
            failed_calls += sum(1 for event in events if event["type"] == "TaskFailed")
            waited_ms += path.retry_wait_ms
            states += path.states_entered
    if not sales:
        return None
    return RushCost(
        executions=executions,
        per_million_sales=total / sales * 1e6,
        sale_per_million=sale_total / sales * 1e6,
        failed_calls_per_sale=failed_calls / sales,
        retry_wait_ms_per_sale=waited_ms / sales,
        states_per_sale=states / sales,
    )


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: list[tuple[str, int, int, float]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
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

    def answered(self, answer: str) -> None:
        with self.lock:
            self.requests[answer] += 1

    @contextmanager
    def invocation(self) -> Iterator[None]:
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= 1


def scaled_definition(definition: str, scale: float) -> str:
    """The ASL with every duration it sets `scale` times longer, like the engine's: the
    workflow's timeout, and each Retry's interval and longest wait."""
    asl = json.loads(definition)
    asl["TimeoutSeconds"] = math.ceil(asl["TimeoutSeconds"] * scale)
    for state in asl["States"].values():
        for retrier in state.get("Retry", ()):
            for duration in ("IntervalSeconds", "MaxDelaySeconds"):
                if duration in retrier:
                    retrier[duration] = math.ceil(retrier[duration] * scale)
    return json.dumps(asl)


@contextmanager
def stack(scale: float) -> Iterator[None]:
    """The template's tables and state machine on moto, the engine and the ASL at `scale`."""
    from bench.execution_logs import offline_purchase_stack
    from offline import cfn_template
    from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS

    engine = {
        "LOCAL_DYNAMODB_TRANSACTION_MS": f"{DEFAULT_TRANSACTION_MS * scale:g}",
        "LOCAL_DYNAMODB_ITEM_WCU": f"{1000 / scale:g}",
        "LOCAL_DYNAMODB_ITEM_RCU": f"{3000 / scale:g}",
    }
    # The engine's scaled settings must not reach whatever runs next in this process.
    with (
        mock.patch.dict(os.environ, engine),
        offline_purchase_stack(cfn_template.load_template()) as (_, stepfunctions, arn),
    ):
        definition = stepfunctions.describe_state_machine(stateMachineArn=arn)["definition"]
        stepfunctions.update_state_machine(
            stateMachineArn=arn, definition=scaled_definition(definition, scale)
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
    deployment: Deployment | None = None,
    pricing: Pricing | None = None,
) -> Run:
    """Sell `stock` tickets in `buckets` items to `buyers` arriving at `rate_per_s` (at DynamoDB's
    time scale), then to single-ticket buyers until sold out; `inject` switches faults on. With
    a `deployment`, every request goes through its throttle and concurrency first, and buyers
    told to come back do. With `pricing`, the run's executions are priced from their
    histories."""
    from decimal import Decimal

    import boto3

    import purchase_workflow
    from card_validation import Card
    from offline.dynamodb_engine import ENGINE
    from purchase_outcomes import SHOW_BUSY, SOLD, SOLD_OUT
    from show_catalog import ShowSpec
    from tools import show as show_command

    scale = deployment.scale if deployment else SCALE
    with stack(scale):
        dynamodb = boto3.client("dynamodb")
        spec = ShowSpec(SHOW, Decimal(50), stock)
        # As `make show` lays out a new show: with the stack's per-buyer cap on its item.
        cap = show_command.template_max_per_buyer()
        show_command.set_stock(dynamodb, show_command.LOCAL_TABLES, spec, buckets, cap)
        faults = inject() if inject else ""
        tally = _Tally()
        started = time.monotonic()
        if deployment:
            # The throttle's and the function's seconds are DynamoDB's: the clock runs `scale`
            # times slower here.
            throttle = TokenBucket(deployment.api_limits, lambda: time.monotonic() / scale)
            function = ConcurrencyLimit("purchase", deployment.concurrency)
            unmodelled_wait_s = unmodelled_s() * scale
        come_back = come_back_answers()

        def purchase(sale: purchase_workflow.Sale) -> str:
            try:
                result = purchase_workflow.run_purchase(
                    sale, purchase_workflow.attempt_id(sale, None)
                )
                return str(result.outcome_metric)
            except purchase_workflow.RetryableError as retryable:
                return str(retryable.outcome.metric)
            except purchase_workflow.WorkflowError as error:
                # "execution ... ended TIMED_OUT: ...": how it ended is the error's kind.
                return "error: " + str(error).split(" ended ", 1)[-1].split(":", 1)[0]
            except Exception as error:
                return f"error: {type(error).__name__}"

        def request(sale: purchase_workflow.Sale) -> str:
            """One request's answer, through the deployment's path when there is one."""
            if not deployment:
                return purchase(sale)
            if not throttle.take():
                return API_THROTTLED
            try:
                function.acquire()
            except LambdaThrottledError:
                return FUNCTION_THROTTLED
            try:
                with tally.invocation():
                    time.sleep(unmodelled_wait_s)
                    return purchase(sale)
            finally:
                function.release()

        def buy(number: int, quantity: int, rush: bool = True) -> str:
            sale = purchase_workflow.Sale(f"fan{number}", SHOW, quantity, Card("visa", "1111"))
            outcome = request(sale)
            tally.answered(outcome)
            for attempt in range(RETRIES if deployment else 0):
                if outcome not in come_back:
                    break
                time.sleep(backoff_s(attempt, come_back[outcome]) * scale)
                outcome = request(sale)
                tally.answered(outcome)
            tally.add(outcome, quantity, tickets_left(SHOW)[0], time.monotonic() - started, rush)
            return outcome

        measured_rate = rate_per_s / scale
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
        cost = rush_cost(pricing, scale) if pricing else None

    outcomes = tally.outcomes
    sales = [entry for entry in outcomes if entry[0] == SOLD.metric]
    sales_per_s, tickets_per_s = steady_rates(sales, stock, scale)
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
        selling_s=max(0.0, tally.last_rush_sale - tally.first_rush_sale) / scale,
        faults=faults,
        fault_hits=fault_hits,
        conflicts=counts.get("transaction_conflicts", 0) + counts.get("write_conflicts", 0),
        throttles=sum(count for name, count in counts.items() if name.endswith("_throttles")),
        answers=tuple(Counter(outcome for outcome, *_ in outcomes).most_common()),
        sales_per_s=sales_per_s,
        tickets_per_s=tickets_per_s,
        deployment=deployment.name if deployment else "",
        api_limits=deployment.api_limits if deployment else None,
        concurrency=deployment.concurrency if deployment else 0,
        requests=tuple(tally.requests.most_common()),
        peak_concurrency=tally.peak_in_flight,
        cost=cost,
    )


def steady_rates(
    sales: Sequence[tuple[str, int, int, float]], stock: int, scale: float
) -> tuple[float, float]:
    """Sales and tickets a second from the first sale until 90% of the stock was sold: the rate
    the show sells at while its buckets have stock. The last tickets lie in fewer and fewer
    buckets, and sell at fewer and fewer hold windows at once; the whole run's rate is reported
    beside it."""
    ordered = sorted(sales, key=lambda sale: sale[3])
    sold = 0
    for count, (_, quantity, _, at) in enumerate(ordered, start=1):
        sold += quantity
        if sold >= 0.9 * stock and count > 1:
            seconds = (at - ordered[0][3]) / scale
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
    deployment: str = ""  # one of deployments(): through that path; "": the workflow alone

    @property
    def label(self) -> str:
        layout = "one item" if self.buckets == 1 else f"{self.buckets} buckets"
        return (
            layout
            + (", faults" if self.faults else "")
            + (f", {self.deployment}" if self.deployment else "")
        )


# What `make flash-sale` runs, about 40 minutes on two cores (41 measured). The one-item control
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
    # As deployed: the headline's show (27 tickets a bucket) and rush, through each path.
    *(
        Scenario(stock=1200, buyers=800, rate_per_s=800, buckets=44, deployment=name)
        for name in (AS_SHIPPED, NEW_ACCOUNT, ON_SALE)
    ),
)


def sweep(scenarios: Sequence[Scenario], pricing: Pricing | None = None) -> list[Run]:
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
            deployment=(
                deployments(scenario.rate_per_s)[scenario.deployment]
                if scenario.deployment
                else None
            ),
            pricing=pricing,
        )
        print(f"flash-sale: {run.summary()}", file=sys.stderr, flush=True)
        runs.append(run)
    return runs


def headline(runs: Sequence[Run]) -> Run:
    """The bucketed show's run at the highest rate with the most tickets a bucket, no faults."""
    plain = [run for run in runs if not run.faults and run.buckets > 1 and not run.deployment]
    return max(plain, key=lambda run: (run.offered_per_s, run.stock / run.buckets))


# The last columns of both tables: the rules' counts and what the run's sales cost.
RULE_COLUMNS = ("oversold", "lost", "stranded", "$ per million sales")


def rule_cells(run: Run) -> list[Any]:
    cost = f"${run.cost.per_million_sales:.2f}" if run.cost else "not priced"
    return [run.oversold, run.lost, run.left, cost]


def section(runs: Sequence[Run], pricing: Pricing | None = None) -> str:
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
            *rule_cells(run),
        ]
        for run in runs
        if not run.deployment
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
            " the target rate (issue 21's run). Rerun it with `make flash-sale` (about 40"
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
                    *RULE_COLUMNS,
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
            *contended_part(bucketed, pricing),
            *deployed_part([run for run in runs if run.deployment]),
        ]
    )


def contended_part(run: Run, pricing: Pricing | None) -> list[str]:
    """The headline rush's sales priced from their executions, beside the same sale alone."""
    if not run.cost or not pricing:
        return []
    alone = pricing.uncontended
    cost = run.cost
    return [
        "",
        "### A hot show's cost under contention",
        "",
        f"The headline run's {cost.executions:,} executions, each priced as deployed from its own"
        " history (bench/cost_model.py: its states, DynamoDB calls and their request units,"
        " failed ones included, Retry's waits on Express and on the waiting function, its log"
        " events):",
        "",
        table(
            ["", "$ per million sales", "states", "failed DynamoDB calls", "retry wait"],
            [
                [
                    "a sale from a bucket, alone (Cost model)",
                    f"${pricing.uncontended_per_million:.2f}",
                    alone.path.states_entered,
                    0,
                    "0 ms",
                ],
                [
                    f"a sale in the rush ({run.label} at {run.offered_per_s:g}/s), mean",
                    f"${cost.sale_per_million:.2f}",
                    f"{cost.states_per_sale:.1f}",
                    f"{cost.failed_calls_per_sale:.2f}",
                    f"{cost.retry_wait_ms_per_sale:.0f} ms",
                ],
                [
                    "the whole run per sale (sold out, 503 and the last buyers too)",
                    f"${cost.per_million_sales:.2f}",
                    "",
                    "",
                    "",
                ],
            ],
        ),
        "",
        "A contended sale pays for its cancelled commits (billed as committed: bench/"
        "assumptions.json), the reads of its walk over other buckets and its retry waits; the"
        " whole run adds the executions of the buyers it told sold out or to come back, each a"
        " read, a claim and its release at least. Requests the stage throttle or the function's"
        " concurrency refused start nothing and are left out.",
    ]


def gave_up(run: Run) -> int:
    """Buyers whose last answer still told them to come back: they stopped after RETRIES."""
    answers = dict(run.answers)
    return sum(answers.get(answer, 0) for answer in come_back_answers())


def deployed_part(runs: Sequence[Run]) -> list[str]:
    """The same rush through each path in front of the workflow, side by side."""
    if not runs:
        return []
    from purchase_outcomes import SHOW_BUSY
    from tools import preflight

    on_sale = [run for run in runs if run.deployment == ON_SALE]
    # A 500 is only acceptable past a ceiling the preflight tells the operator to raise.
    warned = [
        run for run in runs if run.concurrency < preflight.concurrency_needed(run.offered_per_s)
    ]
    unwarned_500 = [run for run in runs if run not in warned and run.server_errors]
    rows = [
        [
            run.deployment,
            f"{run.api_limits.rate_per_second:g}/s, {run.api_limits.burst}"
            if run.api_limits
            else "",
            run.concurrency,
            f"{run.offered_per_s:g}",
            run.buyers,
            run.sold,
            f"{run.tickets_per_s:,.0f}",
            f"{run.sales_per_s:,.0f}",
            sum(count for _, count in run.requests),
            run.requests_answered(API_THROTTLED),
            run.requests_answered(FUNCTION_THROTTLED),
            run.requests_answered(SHOW_BUSY.metric),
            run.server_errors - run.requests_answered(FUNCTION_THROTTLED),
            gave_up(run),
            run.peak_concurrency,
            run.false_sold_out,
            *rule_cells(run),
        ]
        for run in runs
    ]
    best = max(on_sale or runs, key=lambda run: run.tickets_per_s)
    return [
        "",
        "### As deployed",
        "",
        __doc__.strip().split("\n\n")[2].replace("\n", " "),
        "",
        f"Each path sells the same show ({runs[0].stock} tickets in {runs[0].buckets} buckets) to"
        f" the same rush ({runs[0].buyers} buyers at {runs[0].offered_per_s:g} a second, then"
        " single-ticket buyers until sold out). As shipped: the template's stage throttle and an"
        f" account's {ACCOUNT_CONCURRENCY:,} concurrent executions; a new account: Lambda's"
        f" quota of {NEW_ACCOUNT_CONCURRENCY}; on-sale settings: what `make preflight"
        f" RATE={runs[0].offered_per_s:g}` asks for (throttle rate and burst at the rate,"
        f" concurrency for {preflight.EXECUTION_SECONDS:g} s a purchase). Each invocation holds"
        f" its function for the workflow plus {unmodelled_s() * 1000:.0f} ms the engine does not"
        " stretch (handler, StartSyncExecution's round trip, four DynamoDB calls' latency:"
        " bench/assumptions.json). Buyers told to come back (429, API Gateway's 500 for a"
        f" throttled function, 503) try again up to {RETRIES} times after a full-jitter backoff"
        f" (base {BACKOFF_BASE_S:g} s, at most {BACKOFF_CAP_S:g} s, never before Retry-After).",
        "",
        f"**Target: the on-sale settings sell {TARGET_TICKETS_PER_S:,} tickets a second or more"
        f" end to end**: {best.tickets_per_s:,.0f} with {best.deployment},"
        f" {verdict(bool(on_sale) and best.tickets_per_s >= TARGET_TICKETS_PER_S)}.",
        "",
        "**No 500 before a ceiling the operator was told about** (`make preflight` asks for"
        " concurrency of rate x"
        f" {preflight.EXECUTION_SECONDS:g} s; API Gateway answers a throttled function with a"
        f" 500): {verdict(not unwarned_500)}"
        + "".join(
            f"; {run.server_errors} with {run.deployment}, whose"
            f" {run.concurrency} concurrent executions the preflight flags"
            for run in warned
            if run.server_errors
        )
        + "".join(f"; {run.server_errors} unwarned with {run.deployment}" for run in unwarned_500)
        + ".",
        "",
        f"![tickets/s of each path, and its answers]({DEPLOYED_PICTURE.as_posix()})",
        "",
        table(
            [
                "path",
                "stage throttle",
                "function concurrency",
                "offered/s",
                "buyers",
                "tickets",
                "tickets/s",
                "sales/s",
                "requests",
                "429",
                "500 throttled function",
                "503",
                "other 500",
                "gave up",
                "peak concurrency",
                "false sold out",
                *RULE_COLUMNS,
            ],
            rows,
        ),
        "",
        "Tickets/s and sales/s as above (first sale until 90% of the stock), at DynamoDB's time"
        " scale. Requests count every try; gave up: buyers still told to come back after"
        f" {RETRIES} tries. Peak concurrency: the most invocations running at once. The stage"
        " throttle's burst sells its tokens' worth at once, so a rush of a few hundred buyers"
        " sees more than its steady rate.",
    ]


def deployed_svg(runs: Sequence[Run]) -> str:
    """Tickets a second of each path (bars) against the target, with the answers that sent
    buyers back."""
    from purchase_outcomes import SHOW_BUSY

    width, height, pad, bar = 640, 360, 60, 90
    y_max = max(TARGET_TICKETS_PER_S, *(run.tickets_per_s for run in runs)) * 1.15

    def y(value: float) -> float:
        return height - pad - value / y_max * (height - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{pad}" y1="{y(TARGET_TICKETS_PER_S):.1f}" x2="{width - pad}" '
        f'y2="{y(TARGET_TICKETS_PER_S):.1f}" stroke="grey" stroke-dasharray="4,4"/>',
        f'<text x="{width - pad}" y="{y(TARGET_TICKETS_PER_S):.1f}" dy="-4" text-anchor="end">'
        f"target {TARGET_TICKETS_PER_S:,} tickets/s</text>",
        f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
        'text-anchor="middle">tickets a second, end to end</text>',
    ]
    step = (width - 2 * pad) / len(runs)
    for index, run in enumerate(runs):
        left = pad + index * step + (step - bar) / 2
        middle = left + bar / 2
        parts += [
            f'<rect x="{left:.1f}" y="{y(run.tickets_per_s):.1f}" width="{bar}" '
            f'height="{y(0) - y(run.tickets_per_s):.1f}" fill="#1f77b4"/>',
            f'<text x="{middle:.1f}" y="{y(run.tickets_per_s):.1f}" dy="-4" '
            f'text-anchor="middle">{run.tickets_per_s:,.0f}</text>',
            f'<text x="{middle:.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">'
            f"{run.deployment}</text>",
            f'<text x="{middle:.1f}" y="{y(0) + 32:.1f}" text-anchor="middle" fill="#555">'
            f"429: {run.requests_answered(API_THROTTLED):,}, 500: {run.server_errors:,}, "
            f"503: {run.requests_answered(SHOW_BUSY.metric):,}</text>",
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg(runs: Sequence[Run]) -> str:
    """Sales/s (solid) and the share of buyers answered an error (dashed) against offered
    buyers/s, one colour per layout, in multiples of one item's ceiling: the runs without faults
    whose buckets hold 5 tickets or more, enough for a rate (the endgame runs sell out at once)."""
    from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS

    ceiling = 1000 / DEFAULT_TRANSACTION_MS
    plain = [
        run
        for run in runs
        if not run.faults and run.stock >= 5 * run.buckets and not run.deployment
    ]
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
        pricing = Pricing.as_deployed()
        runs = sweep(SWEEP, pricing)
        (ROOT / PICTURE).write_text(svg(runs), encoding="utf-8")
        deployed = [run for run in runs if run.deployment]
        (ROOT / DEPLOYED_PICTURE).write_text(deployed_svg(deployed), encoding="utf-8")
        report_path = ROOT / REPORT
        report = (
            report_path.read_text(encoding="utf-8") if report_path.is_file() else "# Benchmarks\n"
        )
        report_path.write_text(
            scrub(splice(report, section(runs, pricing)), ROOT), encoding="utf-8"
        )
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
