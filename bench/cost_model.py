"""Cost per million purchases, the idle bill and the monthly bill, from template.yaml and the
executions of the state machine.

Pure and deterministic: prices from bench/prices.json, states entered, DynamoDB calls and request
units counted from an execution's history, durations modelled (bench/assumptions.json), execution
log volume observed offline (bench.execution_logs).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.cfn_template import (
    as_deployed,
    function_logging_config,
    resources_of_type,
    state_machine_definition,
)

# The cost design's targets, in one place: the report and tests/unit/test_cost_model.py use these.
TARGET_PER_MILLION_SALES = 7.00
TARGET_IDLE_PER_MONTH = 1.00
TARGET_MONTHLY_AT_10K_SALES = 1.50
NAIVE_MIN_RATIO = 15.0

HOURS_PER_MONTH = 730
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MILLION = 1_000_000
# AWS bills Lambda memory, Express memory and log volume in binary units (128 MB = 0.125 GB).
MB = 1024**2
GB = 1024**3

# The line items the report totals apart: with and without the execution trace, and X-Ray.
EXECUTION_LOGS = "execution logs"
TRACING = "tracing"

# The template parameter that picks the catalog database; the model prices each of its values.
CATALOG_PARAMETER = "CatalogDatabase"
# What each $context variable of an access log format expands to, for a typical purchase
# (ids and times have fixed lengths); an unknown variable counts as UNKNOWN_CONTEXT_VALUE.
ACCESS_LOG_SAMPLE_VALUES = {
    "$context.requestId": "Ab1CdEfGhIjKlMn=",
    "$context.identity.sourceIp": "203.0.113.10",
    "$context.requestTime": "29/Nov/2026:10:00:00 +0000",
    "$context.routeKey": "POST /purchases",
    "$context.status": "200",
    "$context.responseLength": "170",
    "$context.integrationErrorMessage": "-",
}
UNKNOWN_CONTEXT_VALUE = "x" * 16

# Which execution history events each log level sends to CloudWatch Logs
# (https://docs.aws.amazon.com/step-functions/latest/dg/cloudwatch-log-level.html): ERROR logs
# every failure, abort and time-out event plus FailStateEntered; FATAL only the execution's end.
_ERROR_EVENT_SUFFIXES = ("Failed", "TimedOut", "Aborted")
_FATAL_EVENT_TYPES = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
# What IncludeExecutionData: false leaves out of each event's details.
_EXECUTION_DATA_FIELDS = frozenset({"input", "output", "parameters"})

# API event types of a SAM function, and the API Gateway flavour each one creates.
_API_EVENT_TYPES = {"HttpApi": "HTTP", "Api": "REST"}

# What Lambda itself writes to the function's log group per invocation: START, END, REPORT and,
# with active tracing, XRAY (sample lines; the request and trace ids have fixed lengths).
LAMBDA_PLATFORM_LOG_LINES = (
    "START RequestId: 5b7e9a3c-0000-4000-8000-000000000001 Version: $LATEST\n"
    "END RequestId: 5b7e9a3c-0000-4000-8000-000000000001\n"
    "REPORT RequestId: 5b7e9a3c-0000-4000-8000-000000000001\tDuration: 131.52 ms\t"
    "Billed Duration: 132 ms\tMemory Size: 128 MB\tMax Memory Used: 81 MB\t\n"
    "XRAY TraceId: 1-6763a0f1-0123456789abcdef01234567\tSegmentId: 0123456789abcdef\t"
    "Sampled: true\t\n"
)


class CostModelError(Exception):
    """The template, an execution's history or the price table does not say what the model needs."""


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PriceLine:
    key: str
    value: float
    unit: str
    as_of: str
    source: str


@dataclass(frozen=True)
class PriceTable:
    """List prices and the billing rules that go with them (rounding, chunks, units)."""

    region: str
    notes: str
    prices: Mapping[str, PriceLine]
    rules: Mapping[str, PriceLine]

    def price(self, key: str) -> float:
        return self.prices[key].value

    def rule(self, key: str) -> float:
        return self.rules[key].value


def load_prices() -> PriceTable:
    document = json.loads(Path(__file__).with_name("prices.json").read_text(encoding="utf-8"))
    prices, rules = (
        {
            key: PriceLine(key, float(line["value"]), line["unit"], line["as_of"], line["source"])
            for key, line in document[section].items()
        }
        for section in ("prices", "billing_rules")
    )
    return PriceTable(document["region"], document["notes"], prices, rules)


_ASSUMPTIONS_FILE = json.loads(
    Path(__file__).with_name("assumptions.json").read_text(encoding="utf-8")
)["assumptions"]
# What the price table and the ASL cannot say, by name; bench/assumptions.json gives each one's
# unit and reason (ASSUMPTION_NOTES, in the file's order), printed in BENCHMARKS.md.
ASSUMPTIONS: dict[str, float] = {
    **{name: entry["value"] for name, entry in _ASSUMPTIONS_FILE.items() if "value" in entry},
    "lambda_platform_log_bytes": len(LAMBDA_PLATFORM_LOG_LINES.encode()),
}
ASSUMPTION_NOTES = {
    name: (entry["unit"], entry["why"]) for name, entry in _ASSUMPTIONS_FILE.items()
}


# ------------------------------------------------------------------------------------ the design


@dataclass(frozen=True)
class Logging:
    """A state machine's logging configuration."""

    level: str  # ALL, ERROR, FATAL or OFF
    include_execution_data: bool

    @property
    def label(self) -> str:
        if self.level == "OFF":
            return "OFF"
        data = "with" if self.include_execution_data else "without"
        return f"{self.level}, {data} execution data"


@dataclass(frozen=True)
class Design:
    """What the purchase path is built from, as far as the bill is concerned."""

    name: str
    api: str
    architecture: str
    memory_mb: int
    workflow: str
    logging: Logging
    tracing: bool
    # X-Ray's default rule traces 1 request a second plus 5%: the traced share depends on traffic.
    request_rate_per_second: float
    lambda_per_step: bool = False
    step_memory_mb: int = 0
    # Lambda's START, END and REPORT lines: left out when the system log level is above INFO.
    lambda_system_logs: bool = True
    # One line per request written by the API's access logging, 0 when it is off.
    access_log_line_bytes: int = 0
    # The class of the state machine's log group: Infrequent Access ingests at half the price.
    execution_log_class: str = "STANDARD"

    def with_logging(self, logging: Logging) -> Design:
        return dataclasses.replace(self, logging=logging)

    def at_monthly_volume(self, purchases: int) -> Design:
        """The design at the steady request rate of `purchases` a month."""
        return dataclasses.replace(self, request_rate_per_second=purchases / SECONDS_PER_MONTH)


def design_from_template(template: Mapping[str, Any]) -> Design:
    """The purchase path's design as template.yaml declares it."""
    logical_id, function = api_function(template)
    properties = {**template.get("Globals", {}).get("Function", {}), **function["Properties"]}
    api_event = next(e for e in properties["Events"].values() if e["Type"] in _API_EVENT_TYPES)
    api_id = api_event.get("Properties", {}).get("ApiId", {}).get("Ref")
    api = template["Resources"].get(api_id, {}).get("Properties", {})
    (machine,) = resources_of_type(dict(template), "AWS::Serverless::StateMachine").values()
    machine = machine["Properties"]
    logging = machine.get("Logging", {})
    rate = _parameter_value(template, api["DefaultRouteSettings"]["ThrottlingRateLimit"])
    log_config = function_logging_config(template, logical_id)
    # Lambda writes its own lines at INFO unless a JSON LoggingConfig says otherwise.
    system_level = (
        log_config.get("SystemLogLevel", "INFO")
        if log_config.get("LogFormat") == "JSON"
        else "INFO"
    )
    return Design(
        name="template",
        api=_API_EVENT_TYPES[api_event["Type"]],
        architecture=str((properties.get("Architectures") or ["x86_64"])[0]),
        memory_mb=int(properties.get("MemorySize", 128)),
        workflow=str(machine.get("Type", "STANDARD")),
        logging=Logging(
            str(_parameter_value(template, logging.get("Level", "OFF"))),
            bool(logging.get("IncludeExecutionData", False)),
        ),
        tracing=properties.get("Tracing") == "Active"
        or bool(machine.get("Tracing", {}).get("Enabled", False)),
        # A busy on-sale: X-Ray's traced share depends on the rate.
        request_rate_per_second=float(rate),
        lambda_system_logs=system_level in ("DEBUG", "INFO"),
        access_log_line_bytes=_access_log_line_bytes(
            api.get("AccessLogSettings", {}).get("Format")
        ),
        execution_log_class=_execution_log_class(template, logging),
    )


def _execution_log_class(template: Mapping[str, Any], logging: Mapping[str, Any]) -> str:
    """The log group class of the state machine's log destination (STANDARD unless it says)."""
    destinations = logging.get("Destinations", [])
    if not destinations:
        return "STANDARD"
    arn = destinations[0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    group = template["Resources"][arn["Fn::GetAtt"][0]]["Properties"]
    return str(_parameter_value(template, group.get("LogGroupClass", "STANDARD")))


def _access_log_line_bytes(log_format: str | None) -> int:
    if not log_format:
        return 0  # no access logging
    line = re.sub(
        r"\$context\.[A-Za-z.]+",
        lambda found: ACCESS_LOG_SAMPLE_VALUES.get(found.group(0), UNKNOWN_CONTEXT_VALUE),
        str(log_format),
    )
    return len(line.encode()) + 1  # and its newline


def _parameter_value(template: Mapping[str, Any], value: Any) -> Any:
    """A literal, or the default of the parameter a !Ref names."""
    if isinstance(value, Mapping) and "Ref" in value:
        return template.get("Parameters", {}).get(value["Ref"], {}).get("Default")
    return value


def tables_the_function_writes(template: Mapping[str, Any]) -> list[str]:
    """DynamoDB tables the API function writes itself (its idempotency records)."""
    variables = api_function(template)[1]["Properties"].get("Environment", {}).get("Variables", {})
    tables = resources_of_type(dict(template), "AWS::DynamoDB::Table")
    return [
        value["Ref"]
        for value in variables.values()
        if isinstance(value, Mapping) and value.get("Ref") in tables
    ]


def naive_design(design: Design) -> Design:
    """The same sale built the obvious way (BENCHMARKS.md, Designs compared)."""
    return dataclasses.replace(
        design,
        name="naive",
        api="REST",
        architecture="x86_64",
        memory_mb=512,
        workflow="STANDARD",
        lambda_per_step=True,
        step_memory_mb=512,
        lambda_system_logs=True,
        execution_log_class="STANDARD",
    )


def api_function(template: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The function behind the API (logical id, resource): the purchase function."""
    functions = [
        (logical_id, resource)
        for logical_id, resource in resources_of_type(
            dict(template), "AWS::Serverless::Function"
        ).items()
        if any(
            event["Type"] in _API_EVENT_TYPES
            for event in resource["Properties"].get("Events", {}).values()
        )
    ]
    if len(functions) != 1:
        raise CostModelError(f"expected one function behind an API, found {len(functions)}")
    return functions[0]


# -------------------------------------------------------- an execution's path, from its history


@dataclass(frozen=True)
class StateMachine:
    """The ASL as deployed (substitutions applied) and its size."""

    definition: Mapping[str, Any]
    definition_bytes: int


def load_state_machine(template: Mapping[str, Any]) -> StateMachine:
    (logical_id,) = resources_of_type(dict(template), "AWS::Serverless::StateMachine")
    text = state_machine_definition(dict(template), logical_id)
    return StateMachine(json.loads(text), len(text.encode()))


@dataclass(frozen=True)
class StateVisit:
    """One state an execution entered, the DynamoDB calls its task made there (each retry is
    another call) and the request units they bill."""

    name: str
    type: str  # Task, Choice, Pass, Fail, Succeed, Wait, ...
    calls: int = 0
    write_units: float = 0.0
    read_units: float = 0.0


@dataclass(frozen=True)
class ExecutionPath:
    """What one execution did, as far as the bill is concerned: the states it entered and the
    time it spent waiting to retry a failed call."""

    visits: tuple[StateVisit, ...]
    retry_wait_ms: float = 0.0

    @property
    def write_units(self) -> float:
        return sum(visit.write_units for visit in self.visits)

    @property
    def read_units(self) -> float:
        return sum(visit.read_units for visit in self.visits)

    @property
    def task_count(self) -> int:
        """DynamoDB calls made, retries included."""
        return sum(visit.calls for visit in self.visits)

    @property
    def states_entered(self) -> int:
        return len(self.visits)

    @classmethod
    def from_history(
        cls, events: Iterable[Mapping[str, Any]], prices: PriceTable, *, time_scale: float = 1.0
    ) -> ExecutionPath:
        """The path of the execution whose GetExecutionHistory events (boto3's, oldest first)
        are `events`. A run whose engine stretched every duration `time_scale` times (like
        bench/flash_sale.py's SCALE) has its retry waits divided by it."""
        # The fields read are those AWS's API reference gives HistoryEvent (id, timestamp, type,
        # the type's details) and TaskScheduledEventDetails (resourceType, resource, region,
        # parameters); moto's interpreter writes them the same way.
        visits: list[StateVisit] = []
        scheduled: Mapping[str, Any] = {}
        # The end of the last call if it failed: the time from there to the next call in the
        # same state is Retry's wait. A failure a Catch took leads to another state first.
        failed_at: datetime.datetime | None = None
        waited = datetime.timedelta()
        for event in events:
            kind = str(event["type"])
            if kind.endswith("StateEntered"):
                name = str(event["stateEnteredEventDetails"]["name"])
                visits.append(StateVisit(name, kind.removesuffix("StateEntered")))
                failed_at = None
            elif kind == "TaskScheduled":
                if failed_at is not None:
                    waited += event["timestamp"] - failed_at
                    failed_at = None
                scheduled = event["taskScheduledEventDetails"]
                visits[-1] = dataclasses.replace(visits[-1], calls=visits[-1].calls + 1)
            elif kind in ("TaskSucceeded", "TaskFailed"):
                failed = kind == "TaskFailed"
                failed_at = event["timestamp"] if failed else None
                if not scheduled:
                    # The state failed before it called anything (its Arguments, an execution
                    # stopped meanwhile): no call to bill.
                    continue
                # A call is billed when it ends: only its end says whether it failed.
                write_units, read_units = _request_units(scheduled, failed, prices)
                scheduled = {}
                visits[-1] = dataclasses.replace(
                    visits[-1],
                    write_units=visits[-1].write_units + write_units,
                    read_units=visits[-1].read_units + read_units,
                )
        retry_wait_ms = waited.total_seconds() * 1000 / time_scale
        return cls(tuple(visits), retry_wait_ms)


def _request_units(
    scheduled: Mapping[str, Any], failed: bool, prices: PriceTable
) -> tuple[float, float]:
    """Write and read request units one DynamoDB call bills, from its TaskScheduled details."""
    resource = f"arn:aws:states:::{scheduled['resourceType']}:{scheduled['resource']}"
    api = str(scheduled["resource"])
    parameters = json.loads(scheduled["parameters"])
    item_kb = ASSUMPTIONS["item_size_kb"]
    units_per_write = math.ceil(item_kb / prices.rule("dynamodb_write_unit_kb"))
    direct = resource.startswith("arn:aws:states:::dynamodb:")
    if direct and api in ("putItem", "updateItem", "deleteItem"):
        # A write whose condition fails still consumes write capacity.
        return float(units_per_write), 0.0
    if direct and api == "getItem":
        strong = math.ceil(item_kb / prices.rule("dynamodb_strongly_consistent_read_unit_kb"))
        return 0.0, float(strong if parameters.get("ConsistentRead") else strong / 2)
    if resource == "arn:aws:states:::aws-sdk:dynamodb:transactWriteItems":
        per_item = (
            ASSUMPTIONS["cancelled_transaction_units_per_item"]
            if failed
            else prices.rule("dynamodb_transactional_write_units_per_item")
        )
        return per_item * units_per_write * len(parameters["TransactItems"]), 0.0
    raise CostModelError(f"no request-unit rule for {resource}")


# ------------------------------------------------------------------------------ execution logs


@dataclass(frozen=True)
class ObservedExecution:
    """What one offline run of an outcome produced: the execution's log records (its history in
    the shape CloudWatch Logs receives) and what the purchase function printed."""

    log_records: tuple[Mapping[str, Any], ...]
    function_output_bytes: int


def log_records_from_history(
    events: Iterable[Mapping[str, Any]], execution_arn: str
) -> tuple[dict[str, Any], ...]:
    """GetExecutionHistory events (boto3's) reshaped as Step Functions' CloudWatch log records."""
    return tuple(
        {
            "id": str(event["id"]),
            "type": event["type"],
            "details": next(
                (value for key, value in event.items() if key.endswith("EventDetails")), {}
            ),
            "previous_event_id": str(event.get("previousEventId", 0)),
            "event_timestamp": str(int(event["timestamp"].timestamp() * 1000)),
            "execution_arn": execution_arn,
            "redrive_count": "0",
        }
        for event in events
    )


def is_logged(event_type: str, level: str) -> bool:
    """Whether a state machine logging at `level` sends this history event type."""
    if level == "ERROR":
        return event_type.endswith(_ERROR_EVENT_SUFFIXES) or event_type == "FailStateEntered"
    return level == "ALL" or (level == "FATAL" and event_type in _FATAL_EVENT_TYPES)


def execution_log_bytes(records: Iterable[Mapping[str, Any]], logging: Logging) -> int:
    """Bytes one execution sends to CloudWatch Logs under `logging`."""
    total = 0
    for record in records:
        if not is_logged(str(record["type"]), logging.level):
            continue
        if not logging.include_execution_data:
            details = record["details"].items()
            record = {
                **record,
                "details": {k: v for k, v in details if k not in _EXECUTION_DATA_FIELDS},
            }
        total += len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    return total


# ------------------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class LineItem:
    label: str
    quantity: str
    usd: float  # per million purchases
    kind: str = ""


@dataclass(frozen=True)
class CostBreakdown:
    """What one million purchases of one outcome cost under one design."""

    path: ExecutionPath
    items: tuple[LineItem, ...]

    @property
    def total(self) -> float:
        return sum(item.usd for item in self.items)

    def total_without(self, kind: str) -> float:
        return sum(item.usd for item in self.items if item.kind != kind)


def _gb_seconds(memory_mb: float, ms: float) -> float:
    return memory_mb / 1024 * ms / 1000


def _round_up(value: float, step: float) -> float:
    return math.ceil(round(value / step, 9)) * step


def xray_sampled_fraction(request_rate_per_second: float, prices: PriceTable) -> float:
    """Share of requests X-Ray's default rule traces at a steady request rate."""
    reservoir = prices.rule("xray_default_sampling_reservoir_per_second")
    if request_rate_per_second <= reservoir:
        return 1.0
    rate = prices.rule("xray_default_sampling_rate")
    return (reservoir + rate * (request_rate_per_second - reservoir)) / request_rate_per_second


def cost_per_million(
    design: Design,
    machine: StateMachine,
    path: ExecutionPath,
    observed: ObservedExecution,
    prices: PriceTable,
) -> CostBreakdown:
    """Line items of one million purchases whose executions take `path` (free tiers left out)."""
    a = ASSUMPTIONS
    per_gb_second = prices.price(f"lambda_{design.architecture}_per_gb_second")
    items: list[LineItem] = []

    def add(label: str, quantity: str, usd: float, kind: str = "") -> None:
        items.append(LineItem(label, quantity, usd, kind))

    def add_log(label: str, log_bytes: float, kind: str = "", price: str = "") -> None:
        per_gb = prices.price(price or "cloudwatch_logs_ingestion_per_gb")
        add(label, f"{log_bytes:,.0f} bytes", log_bytes / GB * per_gb * MILLION, kind)

    add(
        f"API Gateway {design.api} API",
        "1 request",
        prices.price(f"api_gateway_{design.api.lower()}_per_million_requests"),
    )
    if design.lambda_per_step:  # a Lambda per task, and the latency Standard adds per state
        execution_ms = (
            path.task_count * a["lambda_step_ms"]
            + path.states_entered * a["standard_transition_ms"]
        )
    else:
        execution_ms = (
            path.task_count * a["dynamodb_task_ms"] + a["workflow_overhead_ms"] + path.retry_wait_ms
        )
    waiting_ms = a["poll_wait_ms"] if design.workflow == "STANDARD" else a["sync_call_overhead_ms"]
    lambda_ms = _round_up(
        a["handler_ms"] + waiting_ms + execution_ms, prices.rule("lambda_duration_rounding_ms")
    )
    add("Lambda requests", "1 invocation", prices.price("lambda_per_million_requests"))
    add(
        "Lambda duration",
        f"{lambda_ms:.0f} ms x {design.memory_mb} MB {design.architecture}",
        _gb_seconds(design.memory_mb, lambda_ms) * per_gb_second * MILLION,
    )
    if design.workflow == "EXPRESS":
        billed_ms = _round_up(execution_ms, prices.rule("sfn_express_duration_rounding_ms"))
        # AWS's estimate (50 MB + definition + data), rounded up to the 64 MB billing chunk.
        used_mb = (
            prices.rule("sfn_express_base_memory_mb")
            + machine.definition_bytes / MB
            + a["execution_data_kb"] / 1024
        )
        memory_mb = _round_up(used_mb, prices.rule("sfn_express_memory_chunk_mb"))
        add("Express requests", "1 execution", prices.price("sfn_express_per_million_requests"))
        add(
            "Express duration",
            f"{billed_ms:.0f} ms (modelled {execution_ms:.0f}) x {memory_mb:.0f} MB",
            _gb_seconds(memory_mb, billed_ms) * prices.price("sfn_express_per_gb_second") * MILLION,
        )
    else:
        add(
            "Standard state transitions",
            f"{path.states_entered} transitions",
            path.states_entered * prices.price("sfn_standard_per_state_transition") * MILLION,
        )
    invocations = 1
    if design.lambda_per_step:
        invocations += path.task_count
        add(
            "Step Lambdas: requests",
            f"{path.task_count} invocations",
            path.task_count * prices.price("lambda_per_million_requests"),
        )
        add(
            "Step Lambdas: duration",
            f"{path.task_count} x {a['lambda_step_ms']:.0f} ms x "
            f"{design.step_memory_mb} MB {design.architecture}",
            path.task_count
            * _gb_seconds(design.step_memory_mb, a["lambda_step_ms"])
            * per_gb_second
            * MILLION,
        )
    add(
        "DynamoDB writes",
        f"{path.write_units:g} WRU",
        path.write_units * prices.price("dynamodb_per_million_write_request_units"),
    )
    add(
        "DynamoDB reads",
        f"{path.read_units:g} RRU",
        path.read_units * prices.price("dynamodb_per_million_read_request_units"),
    )
    infrequent = design.execution_log_class == "INFREQUENT_ACCESS"
    add_log(
        f"Execution logs ({design.logging.label}"
        + (", Infrequent Access log class)" if infrequent else ")"),
        execution_log_bytes(observed.log_records, design.logging),
        EXECUTION_LOGS,
        "cloudwatch_logs_infrequent_access_vended_ingestion_per_gb" if infrequent else "",
    )
    platform_bytes = a["lambda_platform_log_bytes"] if design.lambda_system_logs else 0
    add_log(
        "Function logs (Lambda lines, EMF metrics, log lines)"
        if design.lambda_system_logs
        else "Function logs (EMF metrics, log lines; Lambda lines left out)",
        invocations * platform_bytes + observed.function_output_bytes,
    )
    if design.access_log_line_bytes:
        add_log(f"{design.api} API access logs", design.access_log_line_bytes)
    if prices.rule("lambda_init_billed"):
        # Below one request a second every invocation starts an execution environment.
        cold = 1.0 if design.request_rate_per_second <= 1.0 else a["busy_cold_start_fraction"]
        add(
            "Lambda INIT (cold starts)",
            f"{cold:.0%} of invocations x {a['purchase_init_ms']:.0f} ms",
            invocations
            * cold
            * _gb_seconds(design.memory_mb, a["purchase_init_ms"])
            * per_gb_second
            * MILLION,
        )
    if design.tracing:
        fraction = xray_sampled_fraction(design.request_rate_per_second, prices)
        add(
            "X-Ray traces recorded",
            f"{fraction:.2%} sampled at {design.request_rate_per_second:g} requests/s",
            fraction * prices.price("xray_per_million_traces_recorded"),
            TRACING,
        )
    return CostBreakdown(path, tuple(items))


# --------------------------------------------------------------------------- idle, bursts, month


@dataclass(frozen=True)
class MonthlyItem:
    """A charge of a month. usd None: the resource bills, but bench/prices.json has no line for
    it (the report says so)."""

    label: str
    detail: str
    usd: float | None


# Resource types that bill by the hour or month whatever the traffic, beyond the database.
IDLE_BILLED_TYPES = {
    "AWS::EC2::NatGateway": "NAT gateway: billed per hour",
    "AWS::EC2::VPCEndpoint": "interface endpoint: billed per hour per Availability Zone",
    "AWS::RDS::DBProxy": "RDS Proxy: billed per vCPU-hour of the database",
    "AWS::EC2::EIP": "public IPv4 address: billed per hour",
    "AWS::EC2::Instance": "EC2 instance: billed per hour",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "load balancer: billed per hour",
    "AWS::ElastiCache::CacheCluster": "cache node: billed per hour",
    "AWS::KMS::Key": "customer managed KMS key: billed per month",
    "AWS::SecretsManager::Secret": "secret: billed per month",
}


def catalog_choices(template: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of the template's catalog parameter, its default first."""
    parameter = template["Parameters"][CATALOG_PARAMETER]
    others = [value for value in parameter["AllowedValues"] if value != parameter["Default"]]
    return (str(parameter["Default"]), *others)


def deployed_with_catalog(template: Mapping[str, Any], choice: str) -> dict[str, Any]:
    """The template as deployed with this catalog database (Conditions evaluated)."""
    return as_deployed(template, {CATALOG_PARAMETER: choice})


def idle_monthly_cost(deployed: Mapping[str, Any], prices: PriceTable) -> tuple[MonthlyItem, ...]:
    """What a deployed template (see `deployed_with_catalog`) bills a month with no traffic."""
    items: list[MonthlyItem] = []
    for logical_id, resource in deployed["Resources"].items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::RDS::DBCluster":
            items += _aurora_idle_cost(deployed, logical_id, prices)
        elif kind == "AWS::RDS::DBInstance" and "DBClusterIdentifier" not in properties:
            items += _database_idle_cost(logical_id, properties, prices)
        elif (
            kind == "AWS::EC2::VPCEndpoint"
            and properties.get("VpcEndpointType", "Gateway") == "Gateway"
        ):
            continue  # gateway endpoints (the default type) are free
        elif kind in IDLE_BILLED_TYPES:
            items.append(MonthlyItem(logical_id, IDLE_BILLED_TYPES[kind], None))
        elif kind == "AWS::CloudWatch::Alarm":
            items.append(_alarm_cost(logical_id, properties, prices))
        elif kind == "AWS::Budgets::Budget":
            items.append(_budget_cost(logical_id, prices))
        elif kind == "AWS::Serverless::Function" and properties.get("ProvisionedConcurrencyConfig"):
            items.append(MonthlyItem(logical_id, "provisioned concurrency: billed per hour", None))
        elif kind == "AWS::Cognito::UserPool":
            items.append(_user_pool_idle_cost(logical_id, properties, prices))
        elif kind == "AWS::DynamoDB::Table" and properties.get("BillingMode") != "PAY_PER_REQUEST":
            items.append(MonthlyItem(logical_id, "provisioned capacity: billed per hour", None))
    return tuple(items)


def _user_pool_idle_cost(
    logical_id: str, properties: Mapping[str, Any], prices: PriceTable
) -> MonthlyItem:
    """A user pool bills per monthly active user only: nothing idle, on the tier the model
    prices (Lite); another tier is listed unpriced."""
    tier = str(properties.get("UserPoolTier", "ESSENTIALS"))
    if tier != "LITE":
        return MonthlyItem(logical_id, f"{tier} tier: billed per monthly active user", None)
    free = prices.rule("cognito_free_mau_per_month")
    return MonthlyItem(
        logical_id, f"Lite tier: per monthly active user beyond {free:,.0f} a month", 0.0
    )


def _alarm_cost(logical_id: str, properties: Mapping[str, Any], prices: PriceTable) -> MonthlyItem:
    # A metric math alarm bills each metric it reads, not its expressions.
    metrics = (
        sum(1 for query in properties["Metrics"] if "MetricStat" in query)
        if "Metrics" in properties
        else 1
    )
    per_metric = prices.price("cloudwatch_alarm_per_metric_month")
    return MonthlyItem(
        f"{logical_id}: alarm",
        f"{metrics} metric{'s' if metrics > 1 else ''} x ${per_metric:.2f}",
        metrics * per_metric,
    )


def _budget_cost(logical_id: str, prices: PriceTable) -> MonthlyItem:
    per_month = prices.price("budgets_per_budget_day") * DAYS_PER_MONTH
    free = prices.rule("budgets_free_per_account")
    if ASSUMPTIONS["account_other_budgets"] < free:
        return MonthlyItem(
            f"{logical_id}: budget",
            f"one of the account's first {free:g} budgets, free (${per_month:.2f} if it has"
            f" {free:g} others)",
            0.0,
        )
    return MonthlyItem(f"{logical_id}: budget", f"beyond the free {free:g}", per_month)


def pause_blockers(deployed: Mapping[str, Any], cluster_id: str) -> list[str]:
    """What in the template keeps an Aurora Serverless v2 cluster from pausing at 0 ACU."""
    resources = deployed["Resources"]
    cluster = resources[cluster_id]["Properties"]
    blockers = []
    scaling = cluster.get("ServerlessV2ScalingConfiguration")
    if scaling is None or float(scaling.get("MinCapacity", 0.5)) > 0:
        blockers.append("minimum capacity above 0 ACU")
    if any(resource["Type"] == "AWS::RDS::DBProxy" for resource in resources.values()):
        blockers.append("an RDS Proxy")
    group = cluster.get("DBClusterParameterGroupName")
    if isinstance(group, Mapping) and "Ref" in group:
        parameters = resources[group["Ref"]]["Properties"].get("Parameters", {})
        if str(parameters.get("binlog_format", "OFF")).upper() != "OFF":
            blockers.append("a binary log")
    if cluster.get("EnableCloudwatchLogsExports"):
        blockers.append("log exports")
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if properties.get("DBClusterIdentifier") != {"Ref": cluster_id}:
            continue
        if int(properties.get("MonitoringInterval", 0)):
            blockers.append(f"enhanced monitoring on {logical_id}")
        if properties.get("EnablePerformanceInsights"):
            blockers.append(f"Performance Insights on {logical_id}")
    return blockers


def _aurora_idle_cost(
    deployed: Mapping[str, Any], logical_id: str, prices: PriceTable
) -> list[MonthlyItem]:
    scaling = deployed["Resources"][logical_id]["Properties"].get(
        "ServerlessV2ScalingConfiguration", {}
    )
    per_acu_hour = prices.price("aurora_serverless_v2_per_acu_hour")
    per_gb_month = prices.price("aurora_standard_storage_per_gb_month")
    label = f"{logical_id}: capacity (Serverless v2)"
    blockers = pause_blockers(deployed, logical_id)
    if not blockers:
        pause = scaling.get("SecondsUntilAutoPause", 300)
        compute = MonthlyItem(label, f"0 ACU: pauses {pause} s after its last connection", 0.0)
    else:
        acu = max(float(scaling.get("MinCapacity", 0.5)), ASSUMPTIONS["aurora_awake_acu"])
        compute = MonthlyItem(
            label,
            f"never pauses ({', '.join(blockers)}): {acu:g} ACU x {HOURS_PER_MONTH} h x "
            f"${per_acu_hour:.2f}",
            acu * HOURS_PER_MONTH * per_acu_hour,
        )
    storage_gb = ASSUMPTIONS["aurora_storage_gb"]
    storage = MonthlyItem(
        f"{logical_id}: storage",
        f"{storage_gb:g} GB Aurora Standard x ${per_gb_month:.2f}/GB-month",
        storage_gb * per_gb_month,
    )
    return [compute, storage]


def _database_idle_cost(
    logical_id: str, properties: Mapping[str, Any], prices: PriceTable
) -> list[MonthlyItem]:
    instance_class, engine = str(properties["DBInstanceClass"]), str(properties["Engine"])
    if str(properties.get("MultiAZ", "false")).lower() == "true":
        raise CostModelError(f"{logical_id}: Multi-AZ, not in the model")
    hourly = prices.price(f"rds_{engine}_{instance_class.replace('.', '_')}_per_hour")
    storage_gb = float(properties["AllocatedStorage"])
    storage_type = str(properties.get("StorageType", "gp2"))
    per_gb_month = prices.price(f"rds_{storage_type}_storage_per_gb_month")
    return [
        MonthlyItem(
            f"{logical_id}: {instance_class} ({engine})",
            f"{HOURS_PER_MONTH} h x ${hourly:.3f}/h",
            hourly * HOURS_PER_MONTH,
        ),
        MonthlyItem(
            f"{logical_id}: storage",
            f"{storage_gb:g} GB {storage_type} x ${per_gb_month:.3f}/GB-month",
            storage_gb * per_gb_month,
        ),
    ]


def monthly_total(items: Iterable[MonthlyItem]) -> float:
    """The items' sum, those the price table cannot price left out."""
    return sum(item.usd or 0.0 for item in items)


def flyer_burst_cost(deployed: Mapping[str, Any], prices: PriceTable) -> tuple[MonthlyItem, ...]:
    """One burst of flyer uploads: the catalog waking for it, its I/O and the function."""
    a = ASSUMPTIONS
    items: list[MonthlyItem] = []
    uploads = a["flyer_uploads_per_burst"]
    resume_wait_s = 0.0
    for logical_id, resource in deployed["Resources"].items():
        if resource["Type"] != "AWS::RDS::DBCluster" or pause_blockers(deployed, logical_id):
            continue  # an instance that never pauses bills nothing more for a burst
        scaling = resource["Properties"]["ServerlessV2ScalingConfiguration"]
        pause = scaling.get("SecondsUntilAutoPause", 300)
        resume_wait_s = a["aurora_resume_seconds"]
        awake_s = resume_wait_s + uploads * a["flyer_invocation_ms"] / 1000 + pause
        ios = uploads * a["aurora_io_per_upload"]
        items += [
            MonthlyItem(
                f"{logical_id}: awake for the burst",
                f"{a['aurora_awake_acu']:g} ACU x {awake_s:.0f} s (resume, "
                f"{uploads} uploads, {pause} s until it pauses again)",
                a["aurora_awake_acu"]
                * awake_s
                / 3600
                * prices.price("aurora_serverless_v2_per_acu_hour"),
            ),
            MonthlyItem(
                f"{logical_id}: I/O",
                f"{ios:g} requests",
                ios / MILLION * prices.price("aurora_standard_per_million_io_requests"),
            ),
        ]
    flyer = {
        **deployed.get("Globals", {}).get("Function", {}),
        **deployed["Resources"]["FlyerFunction"]["Properties"],
    }
    billed_ms = (
        resume_wait_s * 1000
        + uploads * a["flyer_invocation_ms"]
        + prices.rule("lambda_init_billed") * a["flyer_init_ms"]
    )
    items.append(
        MonthlyItem(
            "FlyerFunction",
            f"{uploads} invocations, {billed_ms / 1000:.1f} s billed (INIT and the resume "
            "wait included)",
            uploads * prices.price("lambda_per_million_requests") / MILLION
            + int(flyer.get("MemorySize", 128))
            / 1024
            * billed_ms
            / 1000
            * prices.price(f"lambda_{flyer['Architectures'][0]}_per_gb_second"),
        )
    )
    return tuple(items)


# The custom metrics the functions publish with Powertools' embedded metric format, by the one
# dimension Powertools adds (`service`): one CloudWatch metric per name and service.
# tests/unit/test_cost_model.py checks these names against what the functions' code can emit.
CUSTOM_METRICS: Mapping[str, tuple[str, ...]] = {
    "purchase": (
        "PurchaseCompleted",
        "PurchaseReplayed",
        "SoldOut",
        "ShowNotFound",
        "BuyerLimitReached",
        "BuyerMismatch",
        "Unauthorized",
        "PurchaseInProgress",
        "InvalidRequest",
        "InvalidCard",
        "ShowBusy",
        "WorkflowThrottled",
        "PurchaseOutcomeUnknown",
        "PurchaseError",
    ),
    "flyer": (
        "FlyerStored",
        "FlyerUnchanged",
        "FlyerForUnknownEvent",
        "FlyerSkipped",
        "FlyerKeyRefused",
    ),
}
# The metric every sale publishes, and the one every burst of flyer uploads does.
SALE_METRIC = ("purchase", "PurchaseCompleted")
STORED_FLYER_METRIC = ("flyer", "FlyerStored")


def custom_metric_hours(sales: int) -> dict[tuple[str, str], float]:
    """The hours of a month in which each custom metric is published. CloudWatch bills a metric
    for each hour it is published in: a sale's metric, at most one hour per sale (every hour at
    10,000 sales, 13.7 an hour); a stored flyer's, one hour per burst; any other, the assumed
    hours of rejections and odd uploads."""
    hours = {
        (service, name): ASSUMPTIONS["other_metric_hours_per_month"]
        for service, names in CUSTOM_METRICS.items()
        for name in names
    }
    hours[SALE_METRIC] = min(float(HOURS_PER_MONTH), float(sales))
    hours[STORED_FLYER_METRIC] = min(float(HOURS_PER_MONTH), ASSUMPTIONS["flyer_bursts_per_month"])
    return hours


def custom_metrics_cost(sales: int, prices: PriceTable) -> MonthlyItem:
    """A month of the functions' custom metrics, prorated by the hours each is published in."""
    hours = custom_metric_hours(sales)
    metric_months = sum(hours.values()) / HOURS_PER_MONTH
    every_hour = sum(1 for published in hours.values() if published >= HOURS_PER_MONTH)
    per_metric = prices.price("cloudwatch_custom_metric_per_month")
    return MonthlyItem(
        "custom metrics (EMF)",
        f"{len(hours)} metrics, {every_hour} published every hour: {metric_months:.2f} "
        f"metric-months x ${per_metric:.2f}",
        metric_months * per_metric,
    )


def monthly_bill(
    template: Mapping[str, Any],
    catalog: str,
    sales: int,
    machine: StateMachine,
    sale_path: ExecutionPath,
    observed_sale: ObservedExecution,
    prices: PriceTable,
) -> tuple[MonthlyItem, ...]:
    """Idle bill + `sales` sales at their steady monthly rate + the month's flyer bursts + the
    functions' custom metrics. X-Ray is counted after its perpetual free tier; no other free tier
    (an account may spend it)."""
    deployed = deployed_with_catalog(template, catalog)
    items = list(idle_monthly_cost(deployed, prices))
    design = design_from_template(deployed).at_monthly_volume(sales)
    per_million = cost_per_million(design, machine, sale_path, observed_sale, prices)
    items.append(
        MonthlyItem(
            "sales: requests, workflow, DynamoDB, logs, INIT",
            f"{sales:,} x ${per_million.total_without(TRACING):.2f} per million",
            per_million.total_without(TRACING) * sales / MILLION,
        )
    )
    if design.tracing:
        traces = sales * xray_sampled_fraction(design.request_rate_per_second, prices)
        billed = max(0.0, traces - prices.rule("xray_free_traces_per_month"))
        items.append(
            MonthlyItem(
                "sales: X-Ray traces",
                f"{traces:,.0f} traced at {design.request_rate_per_second:.2g} requests/s, "
                f"{billed:,.0f} beyond the free 100,000",
                billed / MILLION * prices.price("xray_per_million_traces_recorded"),
            )
        )
    burst = monthly_total(flyer_burst_cost(deployed, prices))
    bursts = ASSUMPTIONS["flyer_bursts_per_month"]
    items.append(MonthlyItem("flyer bursts", f"{bursts} x ${burst:.4f}", bursts * burst))
    items.append(custom_metrics_cost(sales, prices))
    return tuple(items)
