"""The cost model: paths from execution histories, the naive comparison, the cost ceilings."""

from __future__ import annotations

import ast
import copy
import dataclasses
import datetime
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import cost_model
from bench.cost_model import (
    NAIVE_MIN_RATIO,
    TARGET_IDLE_PER_MONTH,
    TARGET_MONTHLY_AT_10K_SALES,
    CostBreakdown,
    CostModelError,
    Design,
    ExecutionPath,
    Logging,
)
from bench.execution_logs import (
    BUCKET_SALE,
    SALE,
    SOLD_OUT,
    OfflineRun,
    run_offline_purchases,
)
from offline import cfn_template

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

TEMPLATE = cfn_template.load_template()
PRICES = cost_model.load_prices()
MACHINE = cost_model.load_state_machine(TEMPLATE)
DESIGN = cost_model.design_from_template(TEMPLATE)
NO_EXECUTION_LOGS = Logging("OFF", False)

# What a million sales cost with the template's own logging (ALL, without execution data):
# $11.678 when this was set, rounded up to the cent: API access logs and Lambda INIT counted,
# and the stock checked before the commit (three more states logged per sale, while a sold-out
# answer no longer pays a cancelled transaction). Not a target (that is
# TARGET_PER_MILLION_SALES): a tripwire for regressions that reach the bill, such as a bigger
# execution payload, an extra state or write, or a price change. Raise it only on purpose, with
# the cost section of BENCHMARKS.md regenerated. Raised from $11.68 to $12.02 ($12.012) by
# trust at the door: the show is read before the claim, so that an unknown show costs a read and
# no write, which enters IsShowKnown once more per sale (two log events); the per-buyer cap
# rides on the claim and the sale's transaction, neither a write unit nor a state more. Lowered
# to $9.45 ($9.4496) by the workflow in JSONata (5 states a sale instead of 8) and its logs in
# the Infrequent Access class (half the ingestion price): under the $10 the redesign aimed at.
CEILING_PER_MILLION_SALES_WITH_TEMPLATE_LOGGING = 9.45
# The same tripwire with execution logs off: $7.513 when this was set, rounded up to the cent.
# The cost design's target ($7.00) is not met even so: requests and request units alone are
# $6.70 (docs/cost.md says why the claim's COMPLETED stays in the transaction). Lower this when
# the design gets cheaper.
CEILING_PER_MILLION_SALES_WITHOUT_EXECUTION_LOGS = 7.52
# A sale from a bucketed show whose first drawn bucket has enough, priced the same two ways:
# $13.773 and $7.784 when this was set, rounded up to the cent. It pays the bucket's read, the
# extra task's duration and the extra states' log events on top of a one-item sale; a tripwire
# like the two above. Raised from $13.78 to $14.11 ($14.107) by the read before the claim;
# lowered to $10.38 ($10.370) by JSONata (7 states instead of 12) and the log class.
CEILING_PER_MILLION_BUCKET_SALES_WITH_TEMPLATE_LOGGING = 10.38
CEILING_PER_MILLION_BUCKET_SALES_WITHOUT_EXECUTION_LOGS = 7.79
# The whole bill of a month with a million sales on the default catalog: $17.20 when this was
# set, most of it the sales themselves and X-Ray ($4.50: below one request a second every
# purchase is traced), $0.40 the alarms. A tripwire, like the two above; raised by the sale's
# own tripwire (the read before the claim) to $17.54 ($17.535), then to $18.06 ($18.057) by the
# functions' custom metrics, which the month used to leave out ($0.52 at any volume); lowered
# to $15.50 ($15.494) by the sale's own ($9.45).
CEILING_MONTHLY_AT_1M_SALES = 15.50
# One burst of flyer uploads waking the default catalog: $0.0053 when this was set.
CEILING_FLYER_BURST = 0.01
DEFAULT_CATALOG, OTHER_CATALOG = cost_model.catalog_choices(TEMPLATE)


@pytest.fixture(scope="module")
def runs() -> dict[str, OfflineRun]:
    """A sold-out rejection, a sale and a sale from a bucket through the offline stack."""
    return run_offline_purchases(TEMPLATE)


def _per_million(design: Design, run: OfflineRun) -> CostBreakdown:
    """A million purchases under `design` whose executions go as `run`'s did."""
    return cost_model.cost_per_million(design, MACHINE, run.path, run.observed, PRICES)


def test_cost_model_reads_the_design_from_the_template() -> None:
    # GIVEN template.yaml
    # WHEN the model reads it
    # THEN it sees the cost design the template declares
    assert DESIGN.api == "HTTP"
    assert DESIGN.architecture == "arm64"
    assert DESIGN.memory_mb == 128
    assert DESIGN.workflow == "EXPRESS"
    assert DESIGN.logging == Logging("ALL", False)
    assert DESIGN.tracing
    assert DESIGN.request_rate_per_second == 100
    assert not DESIGN.lambda_system_logs  # JSON logs, Lambda's own lines at WARN


def test_cost_model_lambda_lines_count_unless_the_template_filters_them() -> None:
    # GIVEN the template with Lambda's default text logs
    template = {**TEMPLATE, "Globals": {"Function": {"Runtime": "python3.13"}}}
    # WHEN the model reads it THEN START, END and REPORT lines are billed again
    assert cost_model.design_from_template(template).lambda_system_logs


# A history as boto3's get_execution_history returns it: each event's type, id, timestamp and
# details, oldest first. Only what ExecutionPath.from_history reads is written out.
STARTED = datetime.datetime(2026, 12, 5, 18, 0, tzinfo=datetime.UTC)


def _history(*events: tuple[int, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Events from (milliseconds after the start, type, the event's details by their key)."""
    return [
        {"id": number, "type": kind, "timestamp": STARTED + datetime.timedelta(milliseconds=ms)}
        | details
        for number, (ms, kind, details) in enumerate(events, start=1)
    ]


def _entered(ms: int, kind: str, name: str) -> tuple[int, str, dict[str, Any]]:
    return ms, f"{kind}StateEntered", {"stateEnteredEventDetails": {"name": name}}


def _call(
    ms: int, resource_type: str, resource: str, parameters: dict[str, Any], error: str = ""
) -> list[tuple[int, str, dict[str, Any]]]:
    """One DynamoDB call: scheduled at `ms`, ended 5 ms later, failed with `error` if given."""
    scheduled = {
        "resourceType": resource_type,
        "resource": resource,
        "region": "us-east-1",
        "parameters": json.dumps(parameters),
    }
    task = {"resourceType": resource_type, "resource": resource}
    ending = (
        ("TaskFailed", {"taskFailedEventDetails": {**task, "error": error, "cause": "..."}})
        if error
        else ("TaskSucceeded", {"taskSucceededEventDetails": {**task, "output": "{}"}})
    )
    return [
        (ms, "TaskScheduled", {"taskScheduledEventDetails": scheduled}),
        (ms, "TaskStarted", {"taskStartedEventDetails": task}),
        (ms + 5, *ending),
    ]


KEY = {"TableName": "Shows", "Key": {"showId": {"S": "Rock"}}}
THREE_ITEMS = {"TransactItems": [{"Put": KEY}, {"Update": KEY}, {"Update": KEY}]}
CANCELLED = "DynamoDb.TransactionCanceledException"


def test_cost_model_history_of_a_sale_bills_seven_write_units_and_one_read_unit() -> None:
    # GIVEN a sale's history: a consistent read, a choice, a conditional update, a 3-item
    # transaction, then a Pass that ends it
    events = _history(
        (0, "ExecutionStarted", {"executionStartedEventDetails": {"input": "{}"}}),
        _entered(1, "Task", "ReadShow"),
        *_call(2, "dynamodb", "getItem", {**KEY, "ConsistentRead": True}),
        _entered(10, "Choice", "IsThereStock"),
        _entered(11, "Task", "Claim"),
        *_call(12, "dynamodb", "updateItem", KEY),
        _entered(20, "Task", "Sell"),
        *_call(21, "aws-sdk:dynamodb", "transactWriteItems", THREE_ITEMS),
        _entered(30, "Pass", "Done"),
        (31, "ExecutionSucceeded", {"executionSucceededEventDetails": {"output": "{}"}}),
    )

    # WHEN its path is counted
    path = ExecutionPath.from_history(events, PRICES)

    # THEN 1 RRU + 1 WRU + 2 WRU for each of 3 items, five states, three calls and no wait
    assert (path.write_units, path.read_units) == (7, 1)
    assert [(visit.name, visit.type, visit.calls) for visit in path.visits] == [
        ("ReadShow", "Task", 1),
        ("IsThereStock", "Choice", 0),
        ("Claim", "Task", 1),
        ("Sell", "Task", 1),
        ("Done", "Pass", 0),
    ]
    assert (path.states_entered, path.task_count, path.retry_wait_ms) == (5, 3, 0)


def test_cost_model_history_of_a_retried_transaction_counts_both_calls_and_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a cancelled transaction billed 1 WRU per item, unlike a committed one (2)
    monkeypatch.setitem(cost_model.ASSUMPTIONS, "cancelled_transaction_units_per_item", 1.0)
    # and the history of a run 64 times slower than AWS: a 3-item transaction cancelled, retried
    # 640 ms after its failure, then committed
    events = _history(
        _entered(0, "Task", "Sell"),
        *_call(10, "aws-sdk:dynamodb", "transactWriteItems", THREE_ITEMS, CANCELLED),
        *_call(655, "aws-sdk:dynamodb", "transactWriteItems", THREE_ITEMS),
        (700, "ExecutionSucceeded", {"executionSucceededEventDetails": {"output": "{}"}}),
    )

    # WHEN its path is counted at that time scale
    path = ExecutionPath.from_history(events, PRICES, time_scale=64)

    # THEN both calls bill their units (3 x 1 cancelled, then 3 x 2), in one state entered, and
    # the wait is Retry's 640 ms at AWS's time scale
    assert (path.write_units, path.read_units) == (9, 0)
    assert (path.states_entered, path.task_count) == (1, 2)
    assert path.retry_wait_ms == 10


def test_cost_model_history_of_a_caught_failure_bills_the_call_and_waits_for_no_retry() -> None:
    # GIVEN an eventually consistent read that fails, a Catch that marks the claim failed 300 ms
    # later, and a Fail state
    events = _history(
        _entered(0, "Task", "ReadShow"),
        *_call(1, "dynamodb", "getItem", KEY, "DynamoDB.InternalServerErrorException"),
        _entered(306, "Task", "MarkFailed"),
        *_call(307, "dynamodb", "updateItem", KEY),
        _entered(320, "Fail", "Failed"),
        (321, "ExecutionFailed", {"executionFailedEventDetails": {"error": "Unreadable"}}),
    )

    # WHEN its path is counted
    path = ExecutionPath.from_history(events, PRICES)

    # THEN the failed read bills half a unit and the update one; the time to the next call was
    # another state's, not a retry's
    assert (path.write_units, path.read_units) == (1, 0.5)
    assert [visit.type for visit in path.visits] == ["Task", "Task", "Fail"]
    assert (path.states_entered, path.task_count, path.retry_wait_ms) == (3, 2, 0)


def test_cost_model_history_of_a_state_failing_before_its_call_bills_nothing_for_it() -> None:
    # GIVEN a read, then a task that failed before calling anything (its Arguments, or the
    # execution stopped meanwhile): a TaskFailed with no TaskScheduled of its own
    events = _history(
        _entered(0, "Task", "ReadShow"),
        *_call(1, "dynamodb", "getItem", KEY),
        _entered(20, "Task", "Claim"),
        (21, "TaskFailed", {"taskFailedEventDetails": {"error": "States.QueryEvaluationError"}}),
    )

    # WHEN its path is counted
    path = ExecutionPath.from_history(events, PRICES)

    # THEN only the read is billed and counted
    assert (path.write_units, path.read_units) == (0, 0.5)
    assert (path.states_entered, path.task_count) == (2, 1)


def test_cost_model_history_with_a_call_the_model_cannot_price_is_refused() -> None:
    # GIVEN a task that invokes a Lambda function
    events = _history(
        _entered(0, "Task", "Invoke"),
        *_call(1, "lambda", "invoke", {"FunctionName": "f"}),
    )

    # WHEN its path is counted THEN the model says so rather than bill it nothing
    with pytest.raises(CostModelError, match="arn:aws:states:::lambda:invoke"):
        ExecutionPath.from_history(events, PRICES)


@pytest.mark.parametrize(
    ("outcome", "units", "calls"),
    [(SALE, (7, 1), 3), (BUCKET_SALE, (7, 2), 4), (SOLD_OUT, (2, 1), 3)],
)
def test_cost_model_offline_runs_bill_the_units_of_their_outcome(
    runs: dict[str, OfflineRun], outcome: str, units: tuple[float, float], calls: int
) -> None:
    # GIVEN each outcome run on the offline stack (the real ASL)
    path = runs[outcome].path

    # THEN a sale: the stock check's consistent read, the claim and a 3-item transaction; from a
    # bucket, the bucket's consistent read on top; sold out: the claim marked failed instead of
    # the transaction. No call retried, no wait.
    assert (path.write_units, path.read_units) == units
    assert path.task_count == calls
    assert path.retry_wait_ms == 0


def test_cost_model_error_level_logs_nothing_for_a_sale_and_the_failure_for_a_rejection(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the execution log records of a sale and of a sold-out rejection
    def logged(outcome: str, level: str, data: bool) -> int:
        records = runs[outcome].observed.log_records
        return cost_model.execution_log_bytes(records, Logging(level, data))

    # THEN ERROR logs nothing for a sale, something (less than ALL) for a rejection, OFF nothing,
    # and leaving execution data out makes ALL smaller
    assert logged(SALE, "ERROR", True) == 0
    assert 0 < logged(SOLD_OUT, "ERROR", True) < logged(SOLD_OUT, "ALL", True)
    assert logged(SOLD_OUT, "OFF", False) == 0
    assert 0 < logged(SALE, "ALL", False) < logged(SALE, "ALL", True)


def test_cost_model_naive_design_costs_at_least_15_times_more_without_execution_logs(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN both designs without execution logs
    ours = DESIGN.with_logging(NO_EXECUTION_LOGS)
    naive = cost_model.naive_design(DESIGN).with_logging(NO_EXECUTION_LOGS)

    # WHEN a million sales are priced
    our_cost = _per_million(ours, runs[SALE])
    naive_cost = _per_million(naive, runs[SALE])

    # THEN the naive design costs at least NAIVE_MIN_RATIO times more
    assert naive_cost.total >= NAIVE_MIN_RATIO * our_cost.total


def test_cost_model_infrequent_access_halves_the_execution_logs_and_nothing_else(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the template's design, whose execution logs go to an Infrequent Access log group,
    # and the same design with a Standard one
    assert DESIGN.execution_log_class == "INFREQUENT_ACCESS"
    standard = dataclasses.replace(DESIGN, execution_log_class="STANDARD")

    # WHEN a million sales are priced both ways
    infrequent = {item.label: item.usd for item in _per_million(DESIGN, runs[SALE]).items}
    full = {item.label: item.usd for item in _per_million(standard, runs[SALE]).items}

    # THEN the execution logs cost half (vended logs: $0.25 a GB, not $0.50), the rest the same
    (logs,) = [label for label in infrequent if label.startswith("Execution logs")]
    assert "Infrequent Access" in logs
    (standard_logs,) = [label for label in full if label.startswith("Execution logs")]
    assert infrequent[logs] == pytest.approx(full[standard_logs] / 2)
    assert {k: v for k, v in infrequent.items() if k != logs} == {
        k: v for k, v in full.items() if k != standard_logs
    }


def test_cost_model_sale_without_execution_logs_stays_under_ceiling(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the template's design with execution logs off
    design = DESIGN.with_logging(NO_EXECUTION_LOGS)

    # WHEN a million sales are priced
    cost = _per_million(design, runs[SALE])

    # THEN they stay under today's figure: the target itself is missed (README, Cost design)
    assert cost.total <= CEILING_PER_MILLION_SALES_WITHOUT_EXECUTION_LOGS


def test_cost_model_sale_with_template_logging_stays_under_ceiling(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the template's design, logging as it declares
    # WHEN a million sales are priced
    cost = _per_million(DESIGN, runs[SALE])

    # THEN the total stays under the documented ceiling
    assert cost.total <= CEILING_PER_MILLION_SALES_WITH_TEMPLATE_LOGGING


@pytest.mark.parametrize(
    ("logging", "ceiling"),
    [
        (DESIGN.logging, CEILING_PER_MILLION_BUCKET_SALES_WITH_TEMPLATE_LOGGING),
        (NO_EXECUTION_LOGS, CEILING_PER_MILLION_BUCKET_SALES_WITHOUT_EXECUTION_LOGS),
    ],
)
def test_cost_model_bucket_sale_stays_under_ceiling_and_costs_more_than_a_one_item_sale(
    runs: dict[str, OfflineRun], logging: Logging, ceiling: float
) -> None:
    # GIVEN the template's design, as deployed or with execution logs off
    design = DESIGN.with_logging(logging)

    # WHEN a million sales from a bucket and a million one-item sales are priced
    bucket = _per_million(design, runs[BUCKET_SALE])
    one_item = _per_million(design, runs[SALE])

    # THEN the bucketed sale stays under its ceiling, and pays more than the one-item sale
    assert bucket.total <= ceiling
    assert bucket.total > one_item.total


def test_cost_model_idle_rds_catalog_is_the_instance_and_its_storage() -> None:
    # GIVEN the template deployed with the always-on RDS instance
    deployed = cost_model.deployed_with_catalog(TEMPLATE, OTHER_CATALOG)

    # WHEN its idle bill is computed THEN the instance and its storage bill, and the watch
    items = cost_model.idle_monthly_cost(deployed, PRICES)
    assert [item.label for item in items] == [
        "BuyerUserPool",
        "Database: db.t4g.micro (mysql)",
        "Database: storage",
        *WATCH_LABELS,
    ]
    assert cost_model.monthly_total(items) == pytest.approx(730 * 0.016 + 20 * 0.115 + WATCH_USD)


def test_cost_model_idle_default_catalog_pauses_and_bills_storage_only() -> None:
    # GIVEN the template as deployed by default (Aurora Serverless v2)
    assert DEFAULT_CATALOG == "aurora-serverless-v2"
    deployed = cost_model.deployed_with_catalog(TEMPLATE, DEFAULT_CATALOG)

    # WHEN its idle bill is computed
    items = cost_model.idle_monthly_cost(deployed, PRICES)

    # THEN the buyers' user pool bills nothing without buyers, and the cluster no capacity
    # while paused, only its storage; with the alarms and the budget, within the target
    assert [(item.label, item.usd) for item in items] == [
        ("BuyerUserPool", 0.0),
        ("AuroraCatalog: capacity (Serverless v2)", 0.0),
        ("AuroraCatalog: storage", pytest.approx(0.10)),
        *zip(WATCH_LABELS, WATCH_ITEM_USD, strict=True),
    ]
    assert cost_model.monthly_total(items) == pytest.approx(0.10 + WATCH_USD)
    assert cost_model.monthly_total(items) <= TARGET_IDLE_PER_MONTH


# The alarms bill $0.10 per metric they read; the budget is one of an account's two free ones.
WATCH_LABELS = [
    "FlyerDeadLetterAlarm: alarm",
    "FailedPurchasesAlarm: alarm",
    "RequestRateAlarm: alarm",
    "MonthlyBudget: budget",
]
WATCH_ITEM_USD = [pytest.approx(0.10), pytest.approx(0.20), pytest.approx(0.10), 0.0]
WATCH_USD = 0.40


def test_cost_model_budget_beyond_the_accounts_two_free_costs_two_cents_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an account that already has two budgets
    monkeypatch.setitem(cost_model.ASSUMPTIONS, "account_other_budgets", 2)
    deployed = cost_model.deployed_with_catalog(TEMPLATE, DEFAULT_CATALOG)

    # WHEN the idle bill is computed THEN the stack's budget costs $0.02 a day
    items = cost_model.idle_monthly_cost(deployed, PRICES)
    (budget,) = (item for item in items if item.label == "MonthlyBudget: budget")
    assert budget.usd == pytest.approx(0.02 * 730 / 24)


def _default_deployed() -> dict[str, Any]:
    return copy.deepcopy(cost_model.deployed_with_catalog(TEMPLATE, DEFAULT_CATALOG))


def _keep_awake_with_min_capacity(resources: dict[str, Any]) -> None:
    scaling = resources["AuroraCatalog"]["Properties"]["ServerlessV2ScalingConfiguration"]
    scaling["MinCapacity"] = 0.5


def _keep_awake_with_a_proxy(resources: dict[str, Any]) -> None:
    resources["CatalogProxy"] = {"Type": "AWS::RDS::DBProxy", "Properties": {}}


def _keep_awake_with_a_binlog(resources: dict[str, Any]) -> None:
    parameters = resources["AuroraCatalogClusterParameters"]["Properties"]["Parameters"]
    parameters["binlog_format"] = "ROW"


def _keep_awake_with_enhanced_monitoring(resources: dict[str, Any]) -> None:
    resources["AuroraCatalogWriter"]["Properties"]["MonitoringInterval"] = 60


def _keep_awake_with_performance_insights(resources: dict[str, Any]) -> None:
    resources["AuroraCatalogWriter"]["Properties"]["EnablePerformanceInsights"] = True


def _keep_awake_with_log_exports(resources: dict[str, Any]) -> None:
    resources["AuroraCatalog"]["Properties"]["EnableCloudwatchLogsExports"] = ["error"]


@pytest.mark.parametrize(
    "keep_awake",
    [
        _keep_awake_with_min_capacity,
        _keep_awake_with_a_proxy,
        _keep_awake_with_a_binlog,
        _keep_awake_with_enhanced_monitoring,
        _keep_awake_with_performance_insights,
        _keep_awake_with_log_exports,
    ],
)
def test_cost_model_anything_that_keeps_the_catalog_awake_breaks_the_idle_target(
    keep_awake: Any,
) -> None:
    # GIVEN the default template with one thing added that stops Aurora from pausing
    deployed = _default_deployed()
    keep_awake(deployed["Resources"])

    # WHEN its idle bill is computed THEN the cluster bills capacity all month: target missed
    items = cost_model.idle_monthly_cost(deployed, PRICES)
    assert cost_model.monthly_total(items) >= 0.5 * 730 * 0.12
    assert cost_model.monthly_total(items) > TARGET_IDLE_PER_MONTH


def test_cost_model_monthly_bill_at_10k_sales_meets_the_target(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the default template WHEN a month of 10,000 sales is priced, flyer bursts included
    bill = cost_model.monthly_bill(
        TEMPLATE, DEFAULT_CATALOG, 10_000, MACHINE, runs[SALE].path, runs[SALE].observed, PRICES
    )
    # THEN the whole bill is within the target, and X-Ray is inside its free tier
    assert cost_model.monthly_total(bill) <= TARGET_MONTHLY_AT_10K_SALES
    xray = next(item for item in bill if item.label == "sales: X-Ray traces")
    assert xray.usd == 0.0


def test_cost_model_monthly_bill_at_1m_sales_stays_under_ceiling_and_traces_every_sale(
    runs: dict[str, OfflineRun],
) -> None:
    bill = cost_model.monthly_bill(
        TEMPLATE, DEFAULT_CATALOG, 1_000_000, MACHINE, runs[SALE].path, runs[SALE].observed, PRICES
    )
    assert cost_model.monthly_total(bill) <= CEILING_MONTHLY_AT_1M_SALES
    # A million a month is 0.38 requests a second: below X-Ray's reservoir of one a second,
    # so every purchase is traced; the first 100,000 are free.
    xray = next(item for item in bill if item.label == "sales: X-Ray traces")
    assert xray.usd == pytest.approx(0.9 * 5.00)


def test_cost_model_rds_catalog_misses_the_idle_and_monthly_targets(
    runs: dict[str, OfflineRun],
) -> None:
    # The alternative exists for accounts whose RDS free tier covers it; priced without it.
    bill = cost_model.monthly_bill(
        TEMPLATE, OTHER_CATALOG, 10_000, MACHINE, runs[SALE].path, runs[SALE].observed, PRICES
    )
    assert cost_model.monthly_total(bill) > TARGET_MONTHLY_AT_10K_SALES


def test_cost_model_flyer_burst_wakes_the_catalog_for_cents() -> None:
    deployed = cost_model.deployed_with_catalog(TEMPLATE, DEFAULT_CATALOG)
    items = cost_model.flyer_burst_cost(deployed, PRICES)
    labels = [item.label for item in items]
    assert labels == ["AuroraCatalog: awake for the burst", "AuroraCatalog: I/O", "FlyerFunction"]
    assert 0 < cost_model.monthly_total(items) <= CEILING_FLYER_BURST


def test_cost_model_counts_access_logs_and_lambda_init(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the template's API access log format WHEN a million sales are priced
    cost = _per_million(DESIGN, runs[SALE])
    by_label = {item.label: item for item in cost.items}

    # THEN its lines (about 190 bytes) cost about $0.09, and cold starts are billed too
    assert 150 < DESIGN.access_log_line_bytes < 250
    assert by_label["HTTP API access logs"].usd == pytest.approx(0.09, abs=0.01)
    assert by_label["Lambda INIT (cold starts)"].usd > 0
    # Below one request a second every invocation starts cold, and every request is traced
    quiet = _per_million(DESIGN.at_monthly_volume(10_000), runs[SALE])
    quiet_items = {item.label: item for item in quiet.items}
    assert quiet_items["Lambda INIT (cold starts)"].usd > (
        50 * by_label["Lambda INIT (cold starts)"].usd
    )
    assert quiet_items["X-Ray traces recorded"].usd == pytest.approx(5.00)


def test_prices_every_line_is_dated_and_sourced() -> None:
    # GIVEN bench/prices.json THEN every price and billing rule has a date and a source
    for line in [*PRICES.prices.values(), *PRICES.rules.values()]:
        datetime.date.fromisoformat(line.as_of)
        assert line.source.startswith("https://"), line.key
        assert line.value > 0 and math.isfinite(line.value), line.key


def test_cost_model_user_pool_bills_per_active_user_only_and_only_lite_is_priced() -> None:
    # GIVEN the buyers' user pool as the template declares it (Lite tier)
    pool = TEMPLATE["Resources"]["BuyerUserPool"]["Properties"]
    (item,) = cost_model.idle_monthly_cost(
        {"Resources": {"Pool": {"Type": "AWS::Cognito::UserPool", "Properties": pool}}}, PRICES
    )
    # THEN idle it bills nothing; another tier is listed as unpriced, not as free
    assert (item.usd, "beyond 10,000" in item.detail) == (0.0, True)
    essentials = {**pool, "UserPoolTier": "ESSENTIALS"}
    (item,) = cost_model.idle_monthly_cost(
        {"Resources": {"Pool": {"Type": "AWS::Cognito::UserPool", "Properties": essentials}}},
        PRICES,
    )
    assert item.usd is None


def _literal_metric_names(folder: Path) -> set[str]:
    """The string literals a function's code passes to add_metric as the name, directly or
    through a variable assigned in the same module (`metric = "PurchaseReplayed" if ...`)."""
    names: set[str] = set()
    for module in folder.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        assigned = {
            target.id: node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_metric"):
                continue
            for keyword in node.keywords:
                if keyword.arg != "name":
                    continue
                value = keyword.value
                if isinstance(value, ast.Name) and value.id in assigned:
                    value = assigned[value.id]
                names |= {
                    constant.value
                    for constant in ast.walk(value)
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str)
                }
    return names


def test_cost_model_custom_metrics_are_every_name_the_functions_can_emit() -> None:
    # GIVEN the functions' own tables of metric names and the literals they pass to add_metric
    import flyer_config
    import flyer_handler
    import purchase_outcomes

    purchase = {outcome.metric for outcome in purchase_outcomes.OUTCOMES}
    purchase |= _literal_metric_names(FUNCTIONS / "purchase")
    flyer = set(flyer_handler._METRIC_NAMES.values()) | _literal_metric_names(FUNCTIONS / "flyer")
    # The service dimension each function's Powertools Metrics adds
    function = TEMPLATE["Resources"]["PurchaseFunction"]["Properties"]
    purchase_service = function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]

    # THEN the model prices exactly those, under those services, each name once
    assert {service: sorted(names) for service, names in cost_model.CUSTOM_METRICS.items()} == {
        purchase_service: sorted(purchase),
        flyer_config.SERVICE_NAME: sorted(flyer),
    }
    # and no other function publishes a metric
    publishers = {
        folder.name
        for folder in FUNCTIONS.iterdir()
        if folder.is_dir() and "add_metric" in _source(folder)
    }
    assert publishers == {"purchase", "flyer"}


def _source(folder: Path) -> str:
    return "".join(module.read_text(encoding="utf-8") for module in folder.glob("*.py"))


def test_cost_model_custom_metric_published_every_hour_bills_a_full_month() -> None:
    # GIVEN 10,000 sales a month (13.7 an hour) and a month with 100
    busy, quiet = (cost_model.custom_metric_hours(sales) for sales in (10_000, 100))

    # THEN the sale's metric bills every hour of the first month, at most 100 of the second
    assert busy[cost_model.SALE_METRIC] == cost_model.HOURS_PER_MONTH
    assert quiet[cost_model.SALE_METRIC] == 100
    # a stored flyer's, one hour per burst; every other metric its assumed hours
    assert busy[cost_model.STORED_FLYER_METRIC] == 30
    others = set(busy) - {cost_model.SALE_METRIC, cost_model.STORED_FLYER_METRIC}
    assert len(others) == 17
    assert {busy[metric] for metric in others} == {30}
    # and the month's line is $0.30 a metric-month: one full month plus 18 x 30 hours
    item = cost_model.custom_metrics_cost(10_000, PRICES)
    assert item.usd == pytest.approx(0.30 * (1 + 18 * 30 / 730))


def test_cost_model_monthly_bill_counts_the_custom_metrics(
    runs: dict[str, OfflineRun],
) -> None:
    # GIVEN the default template WHEN a month of 10,000 sales is priced
    bill = cost_model.monthly_bill(
        TEMPLATE, DEFAULT_CATALOG, 10_000, MACHINE, runs[SALE].path, runs[SALE].observed, PRICES
    )
    # THEN the custom metrics are one of its lines, priced as above
    (metrics,) = (item for item in bill if item.label == "custom metrics (EMF)")
    assert metrics.usd == pytest.approx(cost_model.custom_metrics_cost(10_000, PRICES).usd)
