"""The cost model: request units walked from the ASL, the naive comparison, the cost ceilings."""

from __future__ import annotations

import datetime
import math

import pytest

from bench import cost_model
from bench.cost_model import (
    NAIVE_MIN_RATIO,
    SALE,
    SOLD_OUT,
    CostModelError,
    Logging,
    ObservedExecution,
    Outcome,
)
from bench.cost_report import load_state_machine
from bench.execution_logs import run_offline_purchases
from offline import cfn_template

TEMPLATE = cfn_template.load_template()
PRICES = cost_model.load_prices()
MACHINE = load_state_machine(TEMPLATE)
DESIGN = cost_model.design_from_template(TEMPLATE)
NO_EXECUTION_LOGS = Logging("OFF", False)

# What a million sales cost with the template's own logging (ALL, without execution data):
# $11.584 when this was set, rounded up to the cent (it was $10.60 before the stock check moved
# ahead of the commit: three more states logged per sale, while a sold-out answer fell from
# $13.47 to $8.61, no longer paying for a cancelled transaction). Not a target (that is
# TARGET_PER_MILLION_SALES): a tripwire for regressions that reach the bill, such as a bigger
# execution payload, an extra state or write, or a price change. Raise it only on purpose,
# with BENCHMARKS.md regenerated (make bench).
CEILING_PER_MILLION_SALES_WITH_TEMPLATE_LOGGING = 11.59
# The same tripwire with execution logs off: $7.418 when this was set, rounded up to the cent.
# The cost design's target ($7.00) is not met even so: requests and request units alone are
# $6.70 (docs/cost.md says why the claim's COMPLETED stays in the transaction). Lower
# this when the design gets cheaper.
CEILING_PER_MILLION_SALES_WITHOUT_EXECUTION_LOGS = 7.42


@pytest.fixture(scope="module")
def observed() -> dict[str, ObservedExecution]:
    """One sold-out rejection and one sale through the offline stack: their execution logs."""
    return {name: run.observed for name, run in run_offline_purchases(TEMPLATE).items()}


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


def test_cost_model_sale_path_bills_seven_write_units_and_one_read_unit() -> None:
    # GIVEN the ASL WHEN a sale walks it
    path = cost_model.walk(MACHINE, SALE, PRICES)

    # THEN claim (1 WRU) + the stock check's consistent read (1 RRU) + a 3-item transaction
    # (2 WRU each)
    assert [visit.name for visit in path.visits if visit.type == "Task"] == [
        "ClaimExecution",
        "CheckStock",
        "SellTickets",
    ]
    assert (path.write_units, path.read_units) == (7, 1)


def test_cost_model_sold_out_path_bills_two_write_units_and_one_read_unit() -> None:
    # GIVEN the ASL WHEN a sold-out rejection walks it (answered from the stock check)
    path = cost_model.walk(MACHINE, SOLD_OUT, PRICES)

    # THEN claim (1) + mark failed (1), and the stock check's consistent read: no transaction
    assert [visit.name for visit in path.visits if visit.type == "Task"] == [
        "ClaimExecution",
        "CheckStock",
        "MarkExecutionFailed",
    ]
    assert (path.write_units, path.read_units) == (2, 1)
    assert path.visits[-1].name == "PurchaseFailed"


def test_cost_model_walk_refuses_an_outcome_the_asl_does_not_allow() -> None:
    # GIVEN an outcome whose Choice goes somewhere the Choice cannot go
    wrong = Outcome("wrong", choices={"IsShowKnown": "PurchaseCompleted", "IsSoldOut": "SoldOut"})

    # WHEN walked THEN the model says so rather than count a path that cannot happen
    with pytest.raises(CostModelError, match="IsShowKnown"):
        cost_model.walk(MACHINE, wrong, PRICES)


def test_cost_model_error_level_logs_nothing_for_a_sale_and_the_failure_for_a_rejection(
    observed: dict[str, ObservedExecution],
) -> None:
    # GIVEN the execution log records of a sale and of a sold-out rejection
    def logged(outcome: str, level: str, data: bool) -> int:
        return cost_model.execution_log_bytes(observed[outcome].log_records, Logging(level, data))

    # THEN ERROR logs nothing for a sale, something (less than ALL) for a rejection, OFF nothing,
    # and leaving execution data out makes ALL smaller
    assert logged("sale", "ERROR", True) == 0
    assert 0 < logged("sold out", "ERROR", True) < logged("sold out", "ALL", True)
    assert logged("sold out", "OFF", False) == 0
    assert 0 < logged("sale", "ALL", False) < logged("sale", "ALL", True)


def test_cost_model_naive_design_costs_at_least_15_times_more_without_execution_logs(
    observed: dict[str, ObservedExecution],
) -> None:
    # GIVEN both designs without execution logs
    ours = DESIGN.with_logging(NO_EXECUTION_LOGS)
    naive = cost_model.naive_design(DESIGN).with_logging(NO_EXECUTION_LOGS)

    # WHEN a million sales are priced
    our_cost = cost_model.cost_per_million(ours, MACHINE, SALE, observed["sale"], PRICES)
    naive_cost = cost_model.cost_per_million(naive, MACHINE, SALE, observed["sale"], PRICES)

    # THEN the naive design costs at least NAIVE_MIN_RATIO times more
    assert naive_cost.total >= NAIVE_MIN_RATIO * our_cost.total


def test_cost_model_sale_without_execution_logs_stays_under_ceiling(
    observed: dict[str, ObservedExecution],
) -> None:
    # GIVEN the template's design with execution logs off
    design = DESIGN.with_logging(NO_EXECUTION_LOGS)

    # WHEN a million sales are priced
    cost = cost_model.cost_per_million(design, MACHINE, SALE, observed["sale"], PRICES)

    # THEN they stay under today's figure: the target itself is missed (docs/cost.md)
    assert cost.total <= CEILING_PER_MILLION_SALES_WITHOUT_EXECUTION_LOGS


def test_cost_model_sale_with_template_logging_stays_under_ceiling(
    observed: dict[str, ObservedExecution],
) -> None:
    # GIVEN the template's design, logging as it declares
    # WHEN a million sales are priced
    cost = cost_model.cost_per_million(DESIGN, MACHINE, SALE, observed["sale"], PRICES)

    # THEN the total stays under the documented ceiling
    assert cost.total <= CEILING_PER_MILLION_SALES_WITH_TEMPLATE_LOGGING


def test_cost_model_idle_cost_is_the_database_alone() -> None:
    # GIVEN the template WHEN its idle bill is computed
    items = cost_model.idle_monthly_cost(TEMPLATE, PRICES)

    # THEN only the database instance and its storage bill with no traffic
    assert [item.label for item in items] == [
        "Database: db.t4g.micro (mysql)",
        "Database: storage",
    ]
    assert cost_model.idle_total(items) == pytest.approx(730 * 0.016 + 20 * 0.115)


def test_prices_every_line_is_dated_and_sourced() -> None:
    # GIVEN bench/prices.json THEN every price and billing rule has a date and a source
    for line in [*PRICES.prices.values(), *PRICES.rules.values()]:
        datetime.date.fromisoformat(line.as_of)
        assert line.source.startswith("https://"), line.key
        assert line.value > 0 and math.isfinite(line.value), line.key
