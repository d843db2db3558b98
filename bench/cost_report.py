"""The cost section of BENCHMARKS.md: the model's line items, paths, log volume and idle bill."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import cost_model as cm
from bench.execution_logs import (
    BUCKET_SALE,
    BUCKETS,
    OUTCOMES,
    SALE,
    SOLD_OUT,
    OfflineRun,
    run_offline_purchases,
)
from bench.measurement import BenchContext, Headline, Section, table, usd, verdict

OFF = cm.Logging("OFF", False)
# The logging configurations the model is evaluated under, besides the template's own.
LOGGING_OPTIONS = (
    cm.Logging("ALL", True),
    cm.Logging("ALL", False),
    cm.Logging("ERROR", True),
    OFF,
)
MONTHLY_SALES = (10_000, 1_000_000)
UNPRICED = "**not in the price table**"
BURST = f"One burst of {cm.ASSUMPTIONS['flyer_uploads_per_burst']:g} flyer uploads"
TITLES = {
    SALE: "successful sales",
    BUCKET_SALE: "sales from a bucket",
    SOLD_OUT: "sold-out rejections",
}
# Priced per (outcome name, logging).
Costs = Mapping[tuple[str, cm.Logging], cm.CostBreakdown]


def measure(context: BenchContext) -> Section:
    template = context.template
    prices = cm.load_prices()
    design = cm.design_from_template(template)
    naive = cm.naive_design(design)
    machine = cm.load_state_machine(template)
    runs = run_offline_purchases(template)
    options = [design.logging, *(o for o in LOGGING_OPTIONS if o != design.logging)]

    def costs(of: cm.Design) -> Costs:
        return {
            (o, log): cm.cost_per_million(
                of.with_logging(log), machine, runs[o].path, runs[o].observed, prices
            )
            for o in OUTCOMES
            for log in options
        }

    ours, theirs = costs(design), costs(naive)
    catalogs = cm.catalog_choices(template)
    default, others = catalogs[0], " / ".join(catalogs[1:])
    deployed = {c: cm.deployed_with_catalog(template, c) for c in catalogs}
    idle = {c: cm.idle_monthly_cost(deployed[c], prices) for c in catalogs}
    bills = {
        (c, n): cm.monthly_bill(
            template, c, n, machine, runs[SALE].path, runs[SALE].observed, prices
        )
        for c in catalogs
        for n in MONTHLY_SALES
    }

    def at_most(title: str, figure: float, target: float, text: str = "") -> Headline:
        return Headline(title, text or usd(figure), f"<= {usd(target)}", verdict(figure <= target))

    def both(of: Costs, outcome: str) -> str:
        return " / ".join(usd(of[(outcome, o)].total) for o in (design.logging, OFF))

    def per_catalog(sales: int) -> str:
        return " / ".join(usd(cm.monthly_total(bills[(c, sales)])) for c in catalogs)

    ratios = {o: theirs[(SALE, o)].total / ours[(SALE, o)].total for o in options}
    template_logging = design.logging.label
    headlines = [
        at_most(
            f"Cost per million sales, template logging ({template_logging})",
            ours[(SALE, design.logging)].total,
            cm.TARGET_PER_MILLION_SALES,
        ),
        at_most(
            "Cost per million sales, execution logs OFF",
            ours[(SALE, OFF)].total,
            cm.TARGET_PER_MILLION_SALES,
        ),
        Headline(
            "Cost per million sales from a bucket, template logging / logs OFF",
            both(ours, BUCKET_SALE),
        ),
        Headline(
            "Cost per million sold-out rejections, template logging / logs OFF",
            both(ours, SOLD_OUT),
        ),
        Headline("Naive design per million sales, template logging / logs OFF", both(theirs, SALE)),
        *(
            Headline(
                f"Naive design / ours per sale, {title}",
                f"{ratios[logging]:.1f}x",
                f">= {cm.NAIVE_MIN_RATIO:.0f}x",
                verdict(ratios[logging] >= cm.NAIVE_MIN_RATIO),
            )
            for title, logging in (
                (f"both logging {template_logging}", design.logging),
                ("both with execution logs OFF", OFF),
            )
        ),
    ]
    headlines += [
        at_most(
            f"Idle monthly cost, catalog {default}",
            cm.monthly_total(idle[default]),
            cm.TARGET_IDLE_PER_MONTH,
        ),
        *(
            Headline(f"Idle monthly cost, catalog {c}", usd(cm.monthly_total(idle[c])))
            for c in catalogs[1:]
        ),
        at_most(
            f"Monthly bill at 10,000 sales, catalog {default} / {others}",
            cm.monthly_total(bills[(default, 10_000)]),
            cm.TARGET_MONTHLY_AT_10K_SALES,
            per_catalog(10_000),
        ),
        Headline(
            f"Monthly bill at 1,000,000 sales, catalog {default} / {others}", per_catalog(1_000_000)
        ),
        Headline(
            f"{BURST}, catalog {default}",
            _usd_fine(cm.monthly_total(cm.flyer_burst_cost(deployed[default], prices))),
        ),
    ]
    function_tables = cm.tables_the_function_writes(template)
    parts = [
        _introduction(design, prices),
        _design_table(design, naive),
        _paths(runs),
        _log_volume(runs, options),
        *(_breakdown(o, ours, options, function_tables, prices) for o in OUTCOMES),
        _naive(design, ours, theirs, ratios),
        _idle(deployed[default], idle),
        _burst(deployed, prices),
        _monthly(bills),
        _assumptions(),
        _prices(prices),
    ]
    return Section("Cost model", "\n\n".join(parts), tuple(headlines))


def _section(title: str, *parts: str) -> str:
    return "\n\n".join([f"### {title}", *parts])


def _introduction(design: cm.Design, prices: cm.PriceTable) -> str:
    return (
        "Variable cost per million purchases from `bench/cost_model.py`: the design is read "
        "from `template.yaml`, the states entered and the DynamoDB calls and request units "
        "are counted from the execution history of an offline run of each outcome, the "
        f"prices from `bench/prices.json` ({prices.region} list prices, first tier, free tiers "
        "left out; every line dated and sourced, see the end of this section). Durations are "
        "modelled (see Assumptions). Execution log volume is measured offline. The template "
        f"logs executions at **{design.logging.label}**; every table shows the totals under "
        "other logging configurations too, so that the price of the execution trace is "
        "visible on its own."
    )


def _design_table(design: cm.Design, naive: cm.Design) -> str:
    def describe(of: cm.Design) -> list[str]:
        steps = (
            f"one {of.architecture} Lambda per task ({of.step_memory_mb} MB)"
            if of.lambda_per_step
            else "direct DynamoDB integrations"
        )
        memory = f"{of.architecture}, {of.memory_mb} MB"
        return [of.name, f"{of.api} API", memory, of.workflow, steps, "on" if of.tracing else "off"]

    return _section(
        "Designs compared",
        table(
            ["design", "API", "purchase Lambda", "workflow", "steps", "X-Ray"],
            [describe(design), describe(naive)],
        ),
        "The naive design is the same sale built the obvious way: REST API, an x86 Lambda at "
        "512 MB, a Standard workflow (which has no synchronous start, so the Lambda polls) "
        "with one Lambda per task. Its state transitions and Lambda invocations are counted "
        "from the same executions' histories (a transition per state entered, a Lambda per "
        "DynamoDB call); its execution log volume is taken equal to ours (a Lambda task logs "
        "as many events as a DynamoDB task).",
    )


def _units(write_units: float, read_units: float) -> str:
    units = [(write_units, "WRU"), (read_units, "RRU")]
    return " + ".join(f"{value:g} {unit}" for value, unit in units if value)


def _paths(runs: Mapping[str, OfflineRun]) -> str:
    rows = []
    for outcome in OUTCOMES:
        path = runs[outcome].path
        states = " → ".join(
            f"{visit.name} ({_units(visit.write_units, visit.read_units)})"
            if visit.write_units or visit.read_units
            else visit.name
            for visit in path.visits
        )
        units = f"{path.write_units:g} WRU + {path.read_units:g} RRU"
        rows.append([outcome, states, path.states_entered, path.task_count, units])
    return _section(
        "DynamoDB request units, counted from each path's execution history",
        table(["outcome", "states entered", "states", "DynamoDB calls", "request units"], rows),
        "The executions are the offline runs below: a state per `...StateEntered` event, a "
        "DynamoDB call per `TaskScheduled` event (a retry is another call, billing its own "
        "units), each call's units from its API and the parameters it was scheduled with. "
        "putItem and updateItem: 1 WRU per item under 1 KB, also when the condition fails. "
        "transactWriteItems: 2 WRU per item (one to prepare, one to commit). getItem with "
        "ConsistentRead: 1 RRU per 4 KB. Pass and Choice states: free. A cancelled "
        "transaction is counted like a committed one (an assumption, see below).",
    )


def _log_volume(runs: Mapping[str, OfflineRun], options: Sequence[cm.Logging]) -> str:
    rows = [
        [
            f"{outcome} ({run.status_code} {run.message})",
            run.history_events,
            f"{run.history_json_bytes:,}",
            *(f"{cm.execution_log_bytes(run.observed.log_records, o):,}" for o in options),
            f"{run.observed.function_output_bytes:,}",
        ]
        for outcome in OUTCOMES
        for run in [runs[outcome]]
    ]
    headers = ["outcome", "history events", "history JSON bytes"]
    headers += [*(f"log bytes: {o.label}" for o in options), "function output bytes"]
    return _section(
        "Execution log volume (measured offline, a proxy)",
        "One sold-out rejection, one sale and one sale from a bucketed show (laid out by "
        f"`make show`'s own code: {BUCKETS} buckets, each with plenty) by the real handler "
        "through the offline stack (moto executing the real ASL, tables and state machine "
        "from `template.yaml`), each checked to answer as its buyer must be answered (the "
        "status and message beside each outcome below); their execution histories give the "
        "paths above. Each execution's `GetExecutionHistory` events are reshaped into the "
        "JSON records Step Functions sends to CloudWatch Logs (id, type, details, previous event, "
        "timestamp, Express execution ARN, redrive count), filtered by log level, with "
        "`input`, `output` and `parameters` dropped when execution data is excluded. This "
        "is a proxy for the bytes CloudWatch Logs ingests, not a reading of them: AWS's "
        "records may differ in layout, and the role ARN and state machine name are longer "
        "once deployed. The function's own output (EMF metrics and log lines) is measured "
        "on the same runs.",
        table(headers, rows),
    )


def _breakdown(
    outcome: str,
    ours: Costs,
    options: Sequence[cm.Logging],
    function_tables: Sequence[str],
    prices: cm.PriceTable,
) -> str:
    breakdowns = [ours[(outcome, o)] for o in options]
    first = breakdowns[0]
    rows = []
    for index, item in enumerate(first.items):
        label, quantities = item.label, item.quantity
        if item.kind == cm.EXECUTION_LOGS:
            label = "Execution logs"
            quantities = " / ".join(b.items[index].quantity for b in breakdowns)
        rows.append([label, quantities, *(usd(b.items[index].usd) for b in breakdowns)])
    rows.append(["**total**", "", *(f"**{usd(b.total)}**" for b in breakdowns)])
    without = [usd(b.total_without(cm.EXECUTION_LOGS)) for b in breakdowns]
    rows.append(["total without execution logs", "", *without])
    title = TITLES[outcome]
    headers = ["line item", "per purchase", *(f"logs {o.label}" for o in options)]
    notes = [table(headers, rows)]
    if outcome == SALE:
        # HTTP API, Lambda and Express requests and the DynamoDB units: the design's floor.
        per_request = ("API Gateway", "Lambda requests", "Express requests", "DynamoDB")
        floor = sum(item.usd for item in first.items if item.label.startswith(per_request))
        off = breakdowns[-1].total
        notes.append(
            f"Target: at most {usd(cm.TARGET_PER_MILLION_SALES)} per million sales. Without "
            f"execution logs the model gives {usd(off)}: "
            f"{verdict(off <= cm.TARGET_PER_MILLION_SALES)}. HTTP API, "
            "Lambda and Express requests and the DynamoDB units alone come to "
            f"{usd(floor)}, before any duration, log line or trace."
        )
    if outcome == BUCKET_SALE:
        notes += _beside_one_item_sale(ours, options[0])
    if function_tables:
        units = cm.ASSUMPTIONS["idempotency_write_units"]
        extra = units * prices.price("dynamodb_per_million_write_request_units")
        notes.append(
            "Not in the totals: a request carrying an `Idempotency-Key` header also writes "
            f"its record in {', '.join(function_tables)} from the Lambda "
            f"({units:g} WRU): +{usd(extra)} per million such requests."
        )
    return _section(f"Cost per million {title}", *notes)


def _beside_one_item_sale(ours: Costs, template_logging: cm.Logging) -> list[str]:
    """What a sale from a bucket adds to a one-item show's sale, line by line."""
    one, bucket = (ours[(o, template_logging)] for o in (SALE, BUCKET_SALE))
    rows = [
        [mine.label, mine.quantity, theirs.quantity, f"+{usd(theirs.usd - mine.usd)}"]
        for mine, theirs in zip(one.items, bucket.items, strict=True)
        if (mine.quantity, mine.usd) != (theirs.quantity, theirs.usd)
    ]
    totals = {}
    for logging in (template_logging, OFF):
        one_total, bucket_total = (ours[(o, logging)].total for o in (SALE, BUCKET_SALE))
        totals[logging] = usd(one_total)
        delta = f"**+{usd(bucket_total - one_total)}**"
        rows.append([f"**total, logs {logging.label}**", usd(one_total), usd(bucket_total), delta])
    return [
        f"Beside a one-item show's sale (logs {template_logging.label} unless said):",
        table(["line item", "one-item sale", "sale from a bucket", "added per million"], rows),
        "A show with N = 1 (the default: every show created without `BUCKETS`) pays the one-item "
        f"sale, {totals[template_logging]} as deployed and {totals[OFF]} with execution logs "
        "OFF: its path through the workflow is unchanged. A bucketed show's item sends the sale "
        "to draw one of its buckets, which is read before the same transaction decrements it "
        "instead of the show's item: "
        f"{bucket.path.states_entered} states instead of {one.path.states_entered}, one task "
        "more, the same write units. What that adds is the bucket's consistent read, the extra "
        f"task's {cm.ASSUMPTIONS['dynamodb_task_ms']:g} ms, which the function waits for and "
        "Express bills in 100 ms steps, and the log events of the extra states (Pass and Choice "
        "states bill nothing else): with execution logs OFF, only the read and the duration. A "
        "buyer whose drawn bucket is short walks on: one more read per bucket, and, only once "
        "no bucket has enough, a 2-item transaction for each short bucket emptied into the pool "
        "(docs/design.md, A hot show); the Flash sale section runs that.",
    ]


def _naive(
    design: cm.Design, ours: Costs, theirs: Costs, ratios: Mapping[cm.Logging, float]
) -> str:
    sale = theirs[(SALE, design.logging)]
    item_rows = [[item.label, item.quantity, usd(item.usd)] for item in sale.items]
    item_rows.append(["**total**", "", f"**{usd(sale.total)}**"])
    ratio_rows = [
        [
            o.label,
            usd(ours[(SALE, o)].total),
            usd(theirs[(SALE, o)].total),
            f"{ratio:.1f}x",
            verdict(ratio >= cm.NAIVE_MIN_RATIO),
        ]
        for o, ratio in ratios.items()
    ]
    return _section(
        f"Naive design, per million sales (logs {design.logging.label})",
        table(["line item", "per purchase", "USD per million"], item_rows),
        f"Naive / ours, both under the same logging (target: at least {cm.NAIVE_MIN_RATIO:.0f}x):",
        table(["execution logs", "ours", "naive", "naive / ours", "target"], ratio_rows),
    )


def _idle(default: Mapping[str, Any], idle: Mapping[str, Sequence[cm.MonthlyItem]]) -> str:
    rows = _item_rows([([choice], items) for choice, items in idle.items()], totals=True)
    billed = {item.label.split(":")[0] for items in idle.values() for item in items}
    pay_per_use = sorted(
        {
            resource["Type"]
            for logical_id, resource in default["Resources"].items()
            if logical_id not in billed
            # An Aurora instance is billed as its cluster's capacity.
            and "DBClusterIdentifier" not in resource.get("Properties", {})
        }
    )
    return _section(
        "Idle monthly cost, per `CatalogDatabase`",
        table(["CatalogDatabase", "what bills with no traffic", "how", "USD per month"], rows),
        "The template is read as deployed with each value (its Conditions evaluated). "
        "Aurora Serverless v2 at 0 ACU bills no capacity while paused; the model counts "
        "it awake all month as soon as anything in the template would stop it pausing (a "
        "minimum above 0 ACU, an RDS Proxy, a binary log, enhanced monitoring, "
        "Performance Insights, log exports). Everything else bills per request or per GB "
        "stored, so nothing while idle beyond a few cents of storage: "
        + ", ".join(f"`{kind}`" for kind in pay_per_use)
        + ". No NAT gateway, interface endpoint, RDS Proxy or provisioned capacity is "
        "declared. Backups are free up to the database's own storage.",
    )


def _item_rows(
    groups: Sequence[tuple[list[str], Sequence[cm.MonthlyItem]]],
    *,
    totals: bool,
    money: Callable[[float], str] = usd,
) -> list[list[str]]:
    """A row per item after its group's columns; with `totals`, then each group's total."""
    rows = [
        [*key, item.label, item.detail, money(item.usd) if item.usd is not None else UNPRICED]
        for key, items in groups
        for item in items
    ]
    if totals:
        for key, items in groups:
            total = f"**{usd(cm.monthly_total(items))}**"
            rows.append([*(f"**{column}**" for column in key), "**total**", "", total])
    return rows


def _usd_fine(value: float) -> str:
    """Dollars to the hundredth of a cent: a burst costs less than a cent."""
    return f"${value:,.4f}"


def _burst(deployed: Mapping[str, Mapping[str, Any]], prices: cm.PriceTable) -> str:
    bursts = [
        ([choice], cm.flyer_burst_cost(template, prices)) for choice, template in deployed.items()
    ]
    rows = _item_rows(bursts, totals=False, money=_usd_fine)
    return _section(
        BURST,
        table(["CatalogDatabase", "line item", "how", "USD"], rows),
        "A paused catalog resumes for the first upload and pauses again once no connection "
        "has been open for its auto-pause delay: the burst pays that delay too. `make show` "
        "wakes it the same way. An always-on instance bills nothing more for a burst.",
    )


def _monthly(bills: Mapping[tuple[str, int], Sequence[cm.MonthlyItem]]) -> str:
    groups = [([catalog, f"{sales:,}"], items) for (catalog, sales), items in bills.items()]
    rows = _item_rows(groups, totals=True)
    return _section(
        "The monthly bill, as deployed",
        table(["CatalogDatabase", "sales a month", "line item", "how", "USD"], rows),
        "Every purchase a sale, at the month's steady rate (10,000 a month is one every "
        "4.4 minutes, a million 0.38 a second): below one request a second every "
        "invocation is counted as a cold start, whose INIT Lambda bills since 1 August "
        "2025, and X-Ray traces every request (its first 100,000 traces a month are "
        f"free). {cm.ASSUMPTIONS['flyer_bursts_per_month']} flyer bursts a month. No other free "
        "tier is applied: an account may spend them elsewhere.",
        _custom_metrics(),
    )


def _custom_metrics() -> str:
    """Which custom metrics the month bills, and which free metrics say the same."""
    names = "; ".join(
        f"`{service}`: " + ", ".join(f"`{name}`" for name in names)
        for service, names in cm.CUSTOM_METRICS.items()
    )
    hours = cm.ASSUMPTIONS["other_metric_hours_per_month"]
    return (
        "Custom metrics (Powertools' embedded metric format, namespace `Ticketera`, one "
        f"`service` dimension): {names}. CloudWatch bills a metric for each hour it is published "
        "in (prorated by the hour), so a metric published at least once an hour is a full "
        f"metric-month: `{cm.SALE_METRIC[1]}` one hour per sale at most (an upper bound), so "
        "every hour from 730 sales a month, "
        f"`{cm.STORED_FLYER_METRIC[1]}` one hour per burst of uploads, each other one {hours:g} "
        "hours (`other_metric_hours_per_month`). Step Functions' and API Gateway's own metrics "
        "are free but say less: `ExecutionsSucceeded` counts what `PurchaseCompleted` does but "
        "for an answer lost after the sale, and a failed execution or a 4xx does not say "
        "whether the buyer met a sold-out show, an unknown show, the cap or a bad card."
    )


def _assumptions() -> str:
    rows = [
        [f"`{name}`", f"{cm.ASSUMPTIONS[name]:g} {unit}", why]
        for name, (unit, why) in cm.ASSUMPTION_NOTES.items()
    ]
    return _section(
        "Assumptions",
        table(["input", "value", "why"], rows),
        "Also: X-Ray records one trace per purchase (the state machine continues the "
        "Lambda's trace) and samples with the default rule (1 request a second, then 5%). "
        "The cost per million is taken at the API's throttling rate from the template, a "
        "busy on-sale; the monthly bill at the month's own rate, where under one request a "
        "second every purchase is traced ($5.00 per million beyond the free 100,000). "
        "Free tiers are otherwise left out. Log volume is billed in binary gigabytes.",
    )


def _plain_number(value: float) -> str:
    """0.0000133334 rather than 1.33334e-05."""
    return f"{value:.10f}".rstrip("0").rstrip(".") if value < 0.01 else f"{value:g}"


def _prices(prices: cm.PriceTable) -> str:
    rows = [
        [f"`{line.key}`", _plain_number(line.value), line.unit, line.as_of, line.source]
        for line in [*prices.prices.values(), *prices.rules.values()]
    ]
    return _section(
        "Price table (`bench/prices.json`)",
        prices.notes,
        table(["line", "value", "unit", "as of", "source"], rows),
    )
