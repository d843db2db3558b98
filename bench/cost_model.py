"""Cost per million purchases, the idle bill and the monthly bill, from template.yaml and the ASL.

Pure and deterministic: no clock, no network. Prices and billing rules come from
bench/prices.json; what the workflow writes and reads is counted by walking the state machine's
own states; durations are modelled (`Assumptions`) and printed next to every figure in
BENCHMARKS.md. Execution log volume is an input (`ObservedExecution`): bench.execution_logs
measures it on the offline stack.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline.cfn_template import as_deployed, function_logging_config

PRICES_PATH = Path(__file__).with_name("prices.json")

# The cost design's targets, in one place: the report and tests/unit/test_cost_model.py use these.
TARGET_PER_MILLION_SALES = 7.00
TARGET_IDLE_PER_MONTH = 1.00
TARGET_MONTHLY_AT_10K_SALES = 1.50
NAIVE_MIN_RATIO = 15.0

HOURS_PER_MONTH = 730
MILLION = 1_000_000
# AWS bills Lambda memory, Express memory and log volume in binary units (128 MB = 0.125 GB).
MB = 1024**2
GB = 1024**3

# Kinds of line item: the report totals a breakdown with and without each one.
REQUEST_PATH = "request path"
EXECUTION_LOGS = "execution logs"
FUNCTION_LOGS = "function logs"
TRACING = "tracing"
ACCESS_LOGS = "access logs"
COLD_STARTS = "cold starts"

SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
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

LOG_LEVELS = ("ALL", "ERROR", "FATAL", "OFF")
# Which execution history events each level sends to CloudWatch Logs
# (https://docs.aws.amazon.com/step-functions/latest/dg/cloudwatch-log-level.html): ERROR logs
# every failure, abort and time-out event plus FailStateEntered; FATAL only the execution's end.
_ERROR_EVENT_SUFFIXES = ("Failed", "TimedOut", "Aborted")
_ERROR_EVENT_TYPES = frozenset({"FailStateEntered"})
_FATAL_EVENT_TYPES = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
# What IncludeExecutionData: false leaves out of each event's details.
_EXECUTION_DATA_FIELDS = frozenset({"input", "output", "parameters"})

# API event types of a SAM function, and the API Gateway flavour each one creates.
_API_EVENT_TYPES = {"HttpApi": "HTTP", "Api": "REST"}
_API_PRICE_KEYS = {
    "HTTP": "api_gateway_http_per_million_requests",
    "REST": "api_gateway_rest_per_million_requests",
}
# Without a throttling limit in the template, X-Ray sampling is modelled at this request rate.
DEFAULT_REQUEST_RATE_PER_SECOND = 100.0
# RDS's own default when a template leaves AllocatedStorage out.
DEFAULT_RDS_STORAGE_GB = 20.0

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
    """The template, the ASL or the price table does not say what the model needs."""


# ---------------------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class PriceLine:
    """One dated line of bench/prices.json."""

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
        try:
            return self.prices[key].value
        except KeyError:
            raise CostModelError(f"bench/prices.json has no price {key!r}") from None

    def rule(self, key: str) -> float:
        try:
            return self.rules[key].value
        except KeyError:
            raise CostModelError(f"bench/prices.json has no billing rule {key!r}") from None


def load_prices(path: Path = PRICES_PATH) -> PriceTable:
    """The price table kept in the repository."""
    document = json.loads(path.read_text(encoding="utf-8"))

    def lines(section: str) -> dict[str, PriceLine]:
        return {
            key: PriceLine(key, float(line["value"]), line["unit"], line["as_of"], line["source"])
            for key, line in document[section].items()
        }

    return PriceTable(
        document["region"], document["notes"], lines("prices"), lines("billing_rules")
    )


# ----------------------------------------------------------------------------------- assumptions


@dataclass(frozen=True)
class Assumptions:
    """Modelled inputs: what the price table and the ASL cannot say. Each has a reason."""

    item_size_kb: float = field(
        default=0.5,
        metadata={
            "unit": "KB",
            "why": "Every item the workflow writes or reads (claim, stock, sale) is a few hundred "
            "bytes: one request unit each. A 256-character non-ASCII show name could push the "
            "claim and sale items past 1 KB (2 units each).",
        },
    )
    cancelled_transaction_units_per_item: float = field(
        default=2.0,
        metadata={
            "unit": "WRU per item",
            "why": "A cancelled TransactWriteItems is assumed billed like a committed one (2 WRU "
            "per item). AWS documents that a write whose condition fails still consumes write "
            "capacity (developerguide/read-write-operations.html) and that a transaction does two "
            "writes per item (developerguide/transaction-apis.html), but not what a cancelled "
            "transaction bills, and its response carries no ConsumedCapacity. This is the upper "
            "bound; prepare-only billing (1 WRU per item) would lower a sold-out rejection by "
            "3 WRU ($1.88 per million). Check ConsumedWriteCapacityUnits on a deployed stack.",
        },
    )
    dynamodb_task_ms: float = field(
        default=25.0,
        metadata={
            "unit": "ms",
            "why": "One DynamoDB service integration call, seen from Step Functions.",
        },
    )
    workflow_overhead_ms: float = field(
        default=10.0,
        metadata={
            "unit": "ms",
            "why": "Start, Pass and Choice states and the end of an Express execution.",
        },
    )
    execution_data_kb: float = field(
        default=2.0,
        metadata={
            "unit": "KB",
            "why": "Payload an execution holds (input about 0.4 KB plus results); with the "
            "definition size and AWS's 50 MB base it sets the Express memory chunk.",
        },
    )
    handler_ms: float = field(
        default=30.0,
        metadata={
            "unit": "ms",
            "why": "The purchase handler's own work at 128 MB (about 1/14 of a vCPU): parsing, "
            "card check, Powertools, X-Ray segments. See the handler overhead measurement.",
        },
    )
    sync_call_overhead_ms: float = field(
        default=15.0,
        metadata={
            "unit": "ms",
            "why": "StartSyncExecution's round trip beyond the execution itself. The Lambda's "
            "billed duration is handler + round trip + the execution.",
        },
    )
    lambda_step_ms: float = field(
        default=50.0,
        metadata={
            "unit": "ms",
            "why": "Naive design: billed duration of one Lambda per task (SDK call to DynamoDB "
            "plus invocation overhead).",
        },
    )
    standard_transition_ms: float = field(
        default=20.0,
        metadata={
            "unit": "ms",
            "why": "Naive design: latency Step Functions Standard adds per state entered.",
        },
    )
    poll_wait_ms: float = field(
        default=50.0,
        metadata={
            "unit": "ms",
            "why": "Naive design: Standard has no synchronous start, so the API Lambda polls "
            "DescribeExecution and waits on average half a 100 ms polling interval more.",
        },
    )
    idempotency_write_units: float = field(
        default=2.0,
        metadata={
            "unit": "WRU per request with an Idempotency-Key",
            "why": "Powertools Idempotency writes its record twice on a first request (a "
            "conditional PutItem IN_PROGRESS, then an UpdateItem COMPLETED with the answer, "
            "under 1 KB); a replay reads it instead. Only requests carrying the header pay it, "
            "so it is shown apart from the totals.",
        },
    )
    lambda_platform_log_bytes: int = field(
        default=len(LAMBDA_PLATFORM_LOG_LINES.encode()),
        metadata={
            "unit": "bytes per invocation",
            "why": "START, END, REPORT and XRAY lines Lambda writes to the function's log "
            "group, on top of what the handler prints (measured offline: EMF metrics and log "
            "lines).",
        },
    )

    purchase_init_ms: float = field(
        default=400.0,
        metadata={
            "unit": "ms per cold start",
            "why": "INIT of the purchase function at 128 MB (runtime, boto3, Powertools, the "
            "layer), billed since 1 August 2025. The cold start proxy measures the imports "
            "at about 160 ms on a faster CPU; 400 ms allows for a Graviton at 1/14 of a vCPU.",
        },
    )
    busy_cold_start_fraction: float = field(
        default=0.01,
        metadata={
            "unit": "of invocations",
            "why": "Share of cold starts once requests keep environments warm (above one a "
            "second): AWS's analysis of production workloads puts it under 1%. Below one "
            "request a second every invocation is counted cold, an upper bound.",
        },
    )
    aurora_storage_gb: float = field(
        default=1.0,
        metadata={
            "unit": "GB",
            "why": "Aurora storage the catalog uses: a few thousand rows of a few hundred bytes "
            "plus the engine's own tables. Aurora bills what is used, rounded here up to 1 GB.",
        },
    )
    aurora_awake_acu: float = field(
        default=0.5,
        metadata={
            "unit": "ACU",
            "why": "Capacity of a resumed instance serving a few flyer UPDATEs: the smallest "
            "non-zero step of Serverless v2.",
        },
    )
    aurora_resume_seconds: float = field(
        default=15.0,
        metadata={
            "unit": "s",
            "why": "Typical resume after a pause (Aurora user guide; up to about 30 s after a "
            "day paused). The first flyer function of a burst waits it out, billed.",
        },
    )
    flyer_uploads_per_burst: int = field(
        default=10,
        metadata={
            "unit": "uploads",
            "why": "An organiser uploads a season's flyers, or runs `make show` for a few shows, "
            "in one sitting: one resume, then the cluster pauses again.",
        },
    )
    flyer_bursts_per_month: int = field(
        default=30,
        metadata={
            "unit": "bursts a month",
            "why": "One sitting a day: each wakes the catalog and keeps it up for the auto-pause "
            "delay after its last connection.",
        },
    )
    flyer_invocation_ms: float = field(
        default=100.0,
        metadata={
            "unit": "ms",
            "why": "A flyer invocation once the catalog is awake: connect over TLS, one "
            "UPDATE, close.",
        },
    )
    flyer_init_ms: float = field(
        default=300.0,
        metadata={
            "unit": "ms per cold start",
            "why": "INIT of the flyer function (Powertools, PyMySQL); one per burst.",
        },
    )
    aurora_io_per_upload: float = field(
        default=20.0,
        metadata={
            "unit": "I/O requests",
            "why": "Storage reads and writes of one flyer UPDATE and its index, generously.",
        },
    )


ASSUMPTIONS = Assumptions()


# -------------------------------------------------------------------------------- the design


@dataclass(frozen=True)
class Logging:
    """A state machine's logging configuration."""

    level: str
    include_execution_data: bool

    def __post_init__(self) -> None:
        if self.level not in LOG_LEVELS:
            raise CostModelError(f"unknown log level {self.level!r}: expected one of {LOG_LEVELS}")

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

    def with_logging(self, logging: Logging) -> Design:
        return dataclasses.replace(self, logging=logging)

    def at_monthly_volume(self, purchases: int) -> Design:
        """The design at the steady request rate of `purchases` a month."""
        return dataclasses.replace(self, request_rate_per_second=purchases / SECONDS_PER_MONTH)


def design_from_template(template: Mapping[str, Any]) -> Design:
    """The purchase path's design as template.yaml declares it."""
    logical_id, function = api_function(template)
    properties = function["Properties"]
    defaults = template.get("Globals", {}).get("Function", {})
    api_event = next(
        event for event in properties["Events"].values() if event["Type"] in _API_EVENT_TYPES
    )
    machine = _state_machine_resource(template)[1]["Properties"]
    logging = machine.get("Logging", {})
    architectures = properties.get("Architectures") or defaults.get("Architectures") or ["x86_64"]
    return Design(
        name="template",
        api=_API_EVENT_TYPES[api_event["Type"]],
        architecture=str(architectures[0]),
        memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
        workflow=str(machine.get("Type", "STANDARD")),
        logging=Logging(
            str(_parameter_value(template, logging.get("Level", "OFF"))),
            bool(logging.get("IncludeExecutionData", False)),
        ),
        tracing=properties.get("Tracing", defaults.get("Tracing")) == "Active"
        or bool(machine.get("Tracing", {}).get("Enabled", False)),
        request_rate_per_second=_api_rate_limit(template, api_event),
        lambda_system_logs=_system_log_level(template, logical_id) in ("DEBUG", "INFO"),
        access_log_line_bytes=_access_log_line_bytes(template, api_event),
    )


def _access_log_line_bytes(template: Mapping[str, Any], api_event: Mapping[str, Any]) -> int:
    """Bytes of one access log line of the API the function's event belongs to."""
    api_ref = api_event.get("Properties", {}).get("ApiId", {})
    api_id = api_ref.get("Ref") if isinstance(api_ref, Mapping) else None
    api = template["Resources"].get(api_id, {}) if api_id else {}
    log_format = api.get("Properties", {}).get("AccessLogSettings", {}).get("Format")
    if not log_format:
        return 0
    line = re.sub(
        r"\$context\.[A-Za-z.]+",
        lambda found: ACCESS_LOG_SAMPLE_VALUES.get(found.group(0), UNKNOWN_CONTEXT_VALUE),
        str(log_format),
    )
    return len(line.encode()) + 1  # and its newline


def tables_the_function_writes(template: Mapping[str, Any]) -> list[str]:
    """DynamoDB tables the API function reaches itself (named in its environment), outside the
    state machine: the idempotency records."""
    variables = api_function(template)[1]["Properties"].get("Environment", {}).get("Variables", {})
    tables = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    return [
        value["Ref"]
        for value in variables.values()
        if isinstance(value, Mapping) and value.get("Ref") in tables
    ]


def _system_log_level(template: Mapping[str, Any], logical_id: str) -> str:
    """The level of the Lambda lines a function writes: INFO unless a JSON LoggingConfig (in
    the function or Globals) says otherwise."""
    config = function_logging_config(template, logical_id)
    if config.get("LogFormat") != "JSON":
        return "INFO"
    return str(config.get("SystemLogLevel", "INFO"))


def naive_design(design: Design) -> Design:
    """The same sale built the obvious way, for comparison: REST API, an x86 Lambda at 512 MB and
    a Standard workflow with one Lambda (x86, 512 MB) per task, Lambda's default text logs; same
    execution logging and tracing."""
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
    )


def api_function(template: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The function behind the API (logical id, resource): the purchase function."""
    functions = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(
            event["Type"] in _API_EVENT_TYPES
            for event in resource["Properties"].get("Events", {}).values()
        )
    ]
    if len(functions) != 1:
        raise CostModelError(f"expected one function behind an API, found {len(functions)}")
    return functions[0]


def _state_machine_resource(template: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    machines = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    ]
    if len(machines) != 1:
        raise CostModelError(f"expected one state machine, found {len(machines)}")
    return machines[0]


def _parameter_value(template: Mapping[str, Any], value: Any) -> Any:
    """A literal, or the default of the parameter a !Ref names."""
    if isinstance(value, Mapping) and "Ref" in value:
        parameter = template.get("Parameters", {}).get(value["Ref"], {})
        return parameter.get("Default")
    return value


def _api_rate_limit(template: Mapping[str, Any], api_event: Mapping[str, Any]) -> float:
    api_ref = api_event.get("Properties", {}).get("ApiId", {})
    api_id = api_ref.get("Ref") if isinstance(api_ref, Mapping) else None
    api = template["Resources"].get(api_id, {}) if api_id else {}
    settings = api.get("Properties", {}).get("DefaultRouteSettings", {})
    rate = _parameter_value(template, settings.get("ThrottlingRateLimit"))
    return float(rate) if rate is not None else DEFAULT_REQUEST_RATE_PER_SECOND


# --------------------------------------------------------------------- walking the state machine


@dataclass(frozen=True)
class StateMachine:
    """The ASL as deployed (substitutions applied) and its size."""

    logical_id: str
    definition: Mapping[str, Any]
    definition_bytes: int


def state_machine_from_text(logical_id: str, definition_text: str) -> StateMachine:
    return StateMachine(logical_id, json.loads(definition_text), len(definition_text.encode()))


@dataclass(frozen=True)
class Outcome:
    """Which way an execution goes: the error each failing task ends with (a Catch must handle
    it) and the state each Choice picks (it must be one of that Choice's targets). Every task not
    named succeeds."""

    name: str
    task_errors: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, str] = field(default_factory=dict)


SALE = Outcome("sale", choices={"IsShowKnown": "ReadStockLevel", "IsSoldOut": "SellTickets"})
# A sold-out buyer is answered from the stock read, without a transaction.
SOLD_OUT = Outcome("sold out", choices={"IsShowKnown": "ReadStockLevel", "IsSoldOut": "SoldOut"})
OUTCOMES = (SALE, SOLD_OUT)
# A sale of a bucketed show (docs/design.md, A hot show) whose first bucket drawn has enough:
# one more consistent read and the bucket's states. Priced beside SALE by bench/flash_sale.py.
BUCKET_SALE = Outcome(
    "sale from a bucket",
    choices={
        "IsShowKnown": "PickBucket",
        "WrapBucket": "CheckBucket",
        "IsBucketReadable": "ReadBucketLevel",
        "IsBucketEnough": "SellTickets",
    },
)


@dataclass(frozen=True)
class StateVisit:
    """One state entered on the way, with the DynamoDB request units it bills."""

    name: str
    type: str
    api: str | None
    error: str | None
    write_units: float
    read_units: float


@dataclass(frozen=True)
class ExecutionPath:
    outcome: Outcome
    visits: tuple[StateVisit, ...]

    @property
    def write_units(self) -> float:
        return sum(visit.write_units for visit in self.visits)

    @property
    def read_units(self) -> float:
        return sum(visit.read_units for visit in self.visits)

    @property
    def task_count(self) -> int:
        return sum(1 for visit in self.visits if visit.type == "Task")

    @property
    def states_entered(self) -> int:
        return len(self.visits)


def walk(
    machine: StateMachine,
    outcome: Outcome,
    prices: PriceTable,
    assumptions: Assumptions = ASSUMPTIONS,
) -> ExecutionPath:
    """Follow the ASL from StartAt to its end the way `outcome` says, counting request units."""
    states = machine.definition["States"]
    name = machine.definition["StartAt"]
    visits: list[StateVisit] = []
    unused_errors, unused_choices = set(outcome.task_errors), set(outcome.choices)
    while name is not None:
        if len(visits) > len(states) * 10:
            raise CostModelError(f"{outcome.name}: the walk loops ({name} again and again)")
        state = states[name]
        kind = state["Type"]
        error = outcome.task_errors.get(name) if kind == "Task" else None
        api: str | None = None
        write_units = read_units = 0.0
        if kind == "Task":
            api = state["Resource"].rsplit(":", 1)[-1]
            write_units, read_units = _request_units(state, error, prices, assumptions)
            next_name = _catch_target(name, state, error) if error else _next(state)
            unused_errors.discard(name)
        elif kind == "Choice":
            next_name = _choice_target(name, state, outcome)
            unused_choices.discard(name)
        elif kind in ("Pass", "Wait"):
            next_name = _next(state)
        elif kind in ("Succeed", "Fail"):
            next_name = None
        else:
            raise CostModelError(f"state {name}: the model does not walk {kind} states")
        visits.append(StateVisit(name, kind, api, error, write_units, read_units))
        name = next_name
    if unused_errors or unused_choices:
        raise CostModelError(
            f"{outcome.name}: never reached {sorted(unused_errors | unused_choices)}; "
            "the outcome no longer matches the ASL"
        )
    return ExecutionPath(outcome, tuple(visits))


def _next(state: Mapping[str, Any]) -> str | None:
    return None if state.get("End") else str(state["Next"])


def _catch_target(name: str, state: Mapping[str, Any], error: str) -> str:
    for catcher in state.get("Catch", []):
        if error in catcher["ErrorEquals"] or "States.ALL" in catcher["ErrorEquals"]:
            return str(catcher["Next"])
    raise CostModelError(f"state {name}: no Catch handles {error}")


def _choice_target(name: str, state: Mapping[str, Any], outcome: Outcome) -> str:
    if name not in outcome.choices:
        raise CostModelError(f"{outcome.name}: the outcome does not say which way {name} goes")
    target = outcome.choices[name]
    targets = {choice["Next"] for choice in state["Choices"]} | {state.get("Default")}
    if target not in targets:
        raise CostModelError(f"state {name}: {target} is not one of its targets {targets}")
    return target


def _request_units(
    state: Mapping[str, Any], error: str | None, prices: PriceTable, assumptions: Assumptions
) -> tuple[float, float]:
    """Write and read request units one DynamoDB task bills, retries left out."""
    resource = state["Resource"]
    api = resource.rsplit(":", 1)[-1]
    parameters = state.get("Parameters", {})
    units_per_write = math.ceil(assumptions.item_size_kb / prices.rule("dynamodb_write_unit_kb"))
    if resource.startswith("arn:aws:states:::dynamodb:") and api in (
        "putItem",
        "updateItem",
        "deleteItem",
    ):
        # A write whose condition fails still consumes write capacity.
        return float(units_per_write), 0.0
    if resource.startswith("arn:aws:states:::dynamodb:") and api == "getItem":
        read_unit_kb = prices.rule("dynamodb_strongly_consistent_read_unit_kb")
        strong = math.ceil(assumptions.item_size_kb / read_unit_kb)
        return 0.0, float(strong if parameters.get("ConsistentRead") else strong / 2)
    if resource == "arn:aws:states:::aws-sdk:dynamodb:transactWriteItems":
        per_item = (
            assumptions.cancelled_transaction_units_per_item
            if error
            else prices.rule("dynamodb_transactional_write_units_per_item")
        )
        return per_item * units_per_write * len(parameters["TransactItems"]), 0.0
    raise CostModelError(f"no request-unit rule for {resource}")


# ---------------------------------------------------------------------------- execution logs


@dataclass(frozen=True)
class ObservedExecution:
    """What one offline run of an outcome produced: the execution's log records (its history in
    the shape CloudWatch Logs receives) and what the purchase function printed."""

    log_records: tuple[Mapping[str, Any], ...]
    function_output_bytes: int


def log_records_from_history(
    events: Iterable[Mapping[str, Any]], execution_arn: str
) -> tuple[dict[str, Any], ...]:
    """GetExecutionHistory events reshaped as Step Functions' CloudWatch log records."""
    records = []
    for event in events:
        details: Mapping[str, Any] = next(
            (value for key, value in event.items() if key.endswith("EventDetails")), {}
        )
        timestamp = event["timestamp"]
        if isinstance(timestamp, datetime.datetime):
            timestamp = int(timestamp.timestamp() * 1000)
        records.append(
            {
                "id": str(event["id"]),
                "type": event["type"],
                "details": details,
                "previous_event_id": str(event.get("previousEventId", 0)),
                "event_timestamp": str(timestamp),
                "execution_arn": execution_arn,
                "redrive_count": "0",
            }
        )
    return tuple(records)


def is_logged(event_type: str, level: str) -> bool:
    """Whether a state machine logging at `level` sends this history event type."""
    if level == "ALL":
        return True
    if level == "ERROR":
        return event_type.endswith(_ERROR_EVENT_SUFFIXES) or event_type in _ERROR_EVENT_TYPES
    if level == "FATAL":
        return event_type in _FATAL_EVENT_TYPES
    return False


def execution_log_bytes(records: Iterable[Mapping[str, Any]], logging: Logging) -> int:
    """Bytes one execution sends to CloudWatch Logs under `logging`."""
    total = 0
    for record in records:
        if not is_logged(str(record["type"]), logging.level):
            continue
        if not logging.include_execution_data:
            details = {
                key: value
                for key, value in record["details"].items()
                if key not in _EXECUTION_DATA_FIELDS
            }
            record = {**record, "details": details}
        total += len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    return total


# ------------------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class LineItem:
    label: str
    quantity: str
    usd_per_million: float
    kind: str


@dataclass(frozen=True)
class CostBreakdown:
    """What one million purchases of one outcome cost under one design."""

    design: Design
    path: ExecutionPath
    items: tuple[LineItem, ...]

    @property
    def total(self) -> float:
        return sum(item.usd_per_million for item in self.items)

    def total_without(self, *kinds: str) -> float:
        return sum(item.usd_per_million for item in self.items if item.kind not in kinds)

    def kind_total(self, kind: str) -> float:
        return sum(item.usd_per_million for item in self.items if item.kind == kind)


def workflow_duration_ms(design: Design, path: ExecutionPath, assumptions: Assumptions) -> float:
    """Modelled wall time of one execution."""
    if design.lambda_per_step:
        return (
            path.task_count * assumptions.lambda_step_ms
            + path.states_entered * assumptions.standard_transition_ms
        )
    return path.task_count * assumptions.dynamodb_task_ms + assumptions.workflow_overhead_ms


def express_billed_memory_mb(
    machine: StateMachine, prices: PriceTable, assumptions: Assumptions
) -> float:
    """AWS's estimate (50 MB + definition + data), rounded up to the 64 MB billing chunk."""
    used_mb = (
        prices.rule("sfn_express_base_memory_mb")
        + machine.definition_bytes / MB
        + assumptions.execution_data_kb / 1024
    )
    return _round_up(used_mb, prices.rule("sfn_express_memory_chunk_mb"))


def xray_sampled_fraction(request_rate_per_second: float, prices: PriceTable) -> float:
    """Share of requests X-Ray's default rule traces at a steady request rate."""
    reservoir = prices.rule("xray_default_sampling_reservoir_per_second")
    rate = prices.rule("xray_default_sampling_rate")
    if request_rate_per_second <= reservoir:
        return 1.0
    traced = reservoir + rate * (request_rate_per_second - reservoir)
    return traced / request_rate_per_second


def cold_start_fraction(request_rate_per_second: float, assumptions: Assumptions) -> float:
    """Share of invocations that start an execution environment at a steady request rate."""
    return 1.0 if request_rate_per_second <= 1.0 else assumptions.busy_cold_start_fraction


def cost_per_million(
    design: Design,
    machine: StateMachine,
    outcome: Outcome,
    observed: ObservedExecution,
    prices: PriceTable,
    assumptions: Assumptions = ASSUMPTIONS,
) -> CostBreakdown:
    """Line items of one million purchases ending in `outcome` (free tiers left out)."""
    path = walk(machine, outcome, prices, assumptions)
    items: list[LineItem] = []

    def add(label: str, quantity: str, usd: float, kind: str = REQUEST_PATH) -> None:
        items.append(LineItem(label, quantity, usd, kind))

    add(
        f"API Gateway {design.api} API",
        "1 request",
        prices.price(_API_PRICE_KEYS[design.api]),
    )
    execution_ms = workflow_duration_ms(design, path, assumptions)
    waiting_ms = (
        assumptions.poll_wait_ms
        if design.workflow == "STANDARD"
        else assumptions.sync_call_overhead_ms
    )
    lambda_ms = _round_up(
        assumptions.handler_ms + waiting_ms + execution_ms,
        prices.rule("lambda_duration_rounding_ms"),
    )
    per_gb_second = prices.price(f"lambda_{design.architecture}_per_gb_second")
    add("Lambda requests", "1 invocation", prices.price("lambda_per_million_requests"))
    add(
        "Lambda duration",
        f"{lambda_ms:.0f} ms x {design.memory_mb} MB {design.architecture}",
        design.memory_mb / 1024 * lambda_ms / 1000 * per_gb_second * MILLION,
    )
    if design.workflow == "EXPRESS":
        billed_ms = _round_up(execution_ms, prices.rule("sfn_express_duration_rounding_ms"))
        memory_mb = express_billed_memory_mb(machine, prices, assumptions)
        add("Express requests", "1 execution", prices.price("sfn_express_per_million_requests"))
        add(
            "Express duration",
            f"{billed_ms:.0f} ms (modelled {execution_ms:.0f}) x {memory_mb:.0f} MB",
            memory_mb
            / 1024
            * billed_ms
            / 1000
            * prices.price("sfn_express_per_gb_second")
            * MILLION,
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
            f"{path.task_count} x {assumptions.lambda_step_ms:.0f} ms x "
            f"{design.step_memory_mb} MB {design.architecture}",
            path.task_count
            * design.step_memory_mb
            / 1024
            * assumptions.lambda_step_ms
            / 1000
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
    per_gb_logged = prices.price("cloudwatch_logs_ingestion_per_gb")
    log_bytes = execution_log_bytes(observed.log_records, design.logging)
    add(
        f"Execution logs ({design.logging.label})",
        f"{log_bytes:,} bytes",
        log_bytes / GB * per_gb_logged * MILLION,
        EXECUTION_LOGS,
    )
    platform_bytes = assumptions.lambda_platform_log_bytes if design.lambda_system_logs else 0
    function_bytes = invocations * platform_bytes + observed.function_output_bytes
    add(
        "Function logs (Lambda lines, EMF metrics, log lines)"
        if design.lambda_system_logs
        else "Function logs (EMF metrics, log lines; Lambda lines left out)",
        f"{function_bytes:,} bytes",
        function_bytes / GB * per_gb_logged * MILLION,
        FUNCTION_LOGS,
    )
    if design.access_log_line_bytes:
        add(
            f"{design.api} API access logs",
            f"{design.access_log_line_bytes} bytes",
            design.access_log_line_bytes / GB * per_gb_logged * MILLION,
            ACCESS_LOGS,
        )
    if prices.rule("lambda_init_billed"):
        cold = cold_start_fraction(design.request_rate_per_second, assumptions)
        init_gb_seconds = design.memory_mb / 1024 * assumptions.purchase_init_ms / 1000
        add(
            "Lambda INIT (cold starts)",
            f"{cold:.0%} of invocations x {assumptions.purchase_init_ms:.0f} ms",
            invocations * cold * init_gb_seconds * per_gb_second * MILLION,
            COLD_STARTS,
        )
    if design.tracing:
        fraction = xray_sampled_fraction(design.request_rate_per_second, prices)
        add(
            "X-Ray traces recorded",
            f"{fraction:.2%} sampled at {design.request_rate_per_second:g} requests/s",
            fraction * prices.price("xray_per_million_traces_recorded"),
            TRACING,
        )
    return CostBreakdown(design, path, tuple(items))


def _round_up(value: float, step: float) -> float:
    return math.ceil(round(value / step, 9)) * step


# -------------------------------------------------------------------------------------- idle


@dataclass(frozen=True)
class IdleItem:
    """A monthly charge that runs with no traffic. usd_per_month None: the resource bills while
    idle but bench/prices.json has no line for it."""

    label: str
    detail: str
    usd_per_month: float | None


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


def idle_monthly_cost(
    deployed: Mapping[str, Any], prices: PriceTable, assumptions: Assumptions = ASSUMPTIONS
) -> tuple[IdleItem, ...]:
    """What a deployed template (see `deployed_with_catalog`) bills a month with no traffic."""
    items: list[IdleItem] = []
    for logical_id, resource in deployed["Resources"].items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::RDS::DBCluster":
            items.extend(_aurora_idle_cost(deployed, logical_id, prices, assumptions))
        elif kind == "AWS::RDS::DBInstance" and "DBClusterIdentifier" not in properties:
            items.extend(_database_idle_cost(logical_id, properties, prices))
        elif kind == "AWS::EC2::VPCEndpoint" and properties.get("VpcEndpointType") in (
            None,
            "Gateway",
        ):
            continue  # gateway endpoints (the default type) are free
        elif kind in IDLE_BILLED_TYPES:
            items.append(IdleItem(logical_id, IDLE_BILLED_TYPES[kind], None))
        elif kind == "AWS::Serverless::Function" and properties.get("ProvisionedConcurrencyConfig"):
            items.append(IdleItem(logical_id, "provisioned concurrency: billed per hour", None))
        elif kind == "AWS::DynamoDB::Table" and properties.get("BillingMode") != "PAY_PER_REQUEST":
            items.append(IdleItem(logical_id, "provisioned capacity: billed per hour", None))
    return tuple(items)


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
    deployed: Mapping[str, Any], logical_id: str, prices: PriceTable, assumptions: Assumptions
) -> list[IdleItem]:
    cluster = deployed["Resources"][logical_id]["Properties"]
    storage = IdleItem(
        f"{logical_id}: storage",
        f"{assumptions.aurora_storage_gb:g} GB Aurora Standard x "
        f"${prices.price('aurora_standard_storage_per_gb_month'):.2f}/GB-month",
        assumptions.aurora_storage_gb * prices.price("aurora_standard_storage_per_gb_month"),
    )
    per_acu_hour = prices.price("aurora_serverless_v2_per_acu_hour")
    blockers = pause_blockers(deployed, logical_id)
    if not blockers:
        pause = cluster["ServerlessV2ScalingConfiguration"].get("SecondsUntilAutoPause", 300)
        compute = IdleItem(
            f"{logical_id}: capacity (Serverless v2)",
            f"0 ACU: pauses {pause} s after its last connection",
            0.0,
        )
    else:
        scaling = cluster.get("ServerlessV2ScalingConfiguration", {})
        acu = max(float(scaling.get("MinCapacity", 0.5)), assumptions.aurora_awake_acu)
        compute = IdleItem(
            f"{logical_id}: capacity (Serverless v2)",
            f"never pauses ({', '.join(blockers)}): {acu:g} ACU x {HOURS_PER_MONTH} h x "
            f"${per_acu_hour:.2f}",
            acu * HOURS_PER_MONTH * per_acu_hour,
        )
    return [compute, storage]


def _database_idle_cost(
    logical_id: str, properties: Mapping[str, Any], prices: PriceTable
) -> list[IdleItem]:
    instance_class = str(properties["DBInstanceClass"])
    engine = str(properties["Engine"])
    copies = 2 if str(properties.get("MultiAZ", "false")).lower() == "true" else 1
    multi_az = " x 2 (Multi-AZ)" if copies == 2 else ""
    hourly = prices.price(f"rds_{engine}_{instance_class.replace('.', '_')}_per_hour")
    storage_gb = float(properties.get("AllocatedStorage", DEFAULT_RDS_STORAGE_GB))
    storage_type = str(properties.get("StorageType", "gp2"))
    per_gb_month = prices.price(f"rds_{storage_type}_storage_per_gb_month")
    return [
        IdleItem(
            f"{logical_id}: {instance_class} ({engine})",
            f"{HOURS_PER_MONTH} h x ${hourly:.3f}/h{multi_az}",
            hourly * HOURS_PER_MONTH * copies,
        ),
        IdleItem(
            f"{logical_id}: storage",
            f"{storage_gb:g} GB {storage_type} x ${per_gb_month:.3f}/GB-month{multi_az}",
            storage_gb * per_gb_month * copies,
        ),
    ]


def idle_total(items: Sequence[IdleItem]) -> float:
    return sum(item.usd_per_month or 0.0 for item in items)


# ---------------------------------------------------------------------- bursts and the month


@dataclass(frozen=True)
class MonthlyItem:
    label: str
    detail: str
    usd_per_month: float


def flyer_burst_cost(
    deployed: Mapping[str, Any], prices: PriceTable, assumptions: Assumptions = ASSUMPTIONS
) -> tuple[MonthlyItem, ...]:
    """What one burst of flyer uploads costs: the catalog waking for it, I/O and the function."""
    items: list[MonthlyItem] = []
    uploads = assumptions.flyer_uploads_per_burst
    resume_wait_s = 0.0
    for logical_id, resource in deployed["Resources"].items():
        if resource["Type"] != "AWS::RDS::DBCluster" or pause_blockers(deployed, logical_id):
            continue  # an instance that never pauses bills nothing more for a burst
        pause = resource["Properties"]["ServerlessV2ScalingConfiguration"].get(
            "SecondsUntilAutoPause", 300
        )
        resume_wait_s = assumptions.aurora_resume_seconds
        awake_s = resume_wait_s + uploads * assumptions.flyer_invocation_ms / 1000 + pause
        items.append(
            MonthlyItem(
                f"{logical_id}: awake for the burst",
                f"{assumptions.aurora_awake_acu:g} ACU x {awake_s:.0f} s (resume, "
                f"{uploads} uploads, {pause} s until it pauses again)",
                assumptions.aurora_awake_acu
                * awake_s
                / 3600
                * prices.price("aurora_serverless_v2_per_acu_hour"),
            )
        )
        ios = uploads * assumptions.aurora_io_per_upload
        items.append(
            MonthlyItem(
                f"{logical_id}: I/O",
                f"{ios:g} requests",
                ios / MILLION * prices.price("aurora_standard_per_million_io_requests"),
            )
        )
    flyer = deployed["Resources"]["FlyerFunction"]["Properties"]
    defaults = deployed.get("Globals", {}).get("Function", {})
    memory_gb = int(flyer.get("MemorySize", defaults.get("MemorySize", 128))) / 1024
    architecture = str((flyer.get("Architectures") or defaults.get("Architectures"))[0])
    billed_ms = (
        resume_wait_s * 1000
        + uploads * assumptions.flyer_invocation_ms
        + prices.rule("lambda_init_billed") * assumptions.flyer_init_ms
    )
    items.append(
        MonthlyItem(
            "FlyerFunction",
            f"{uploads} invocations, {billed_ms / 1000:.1f} s billed (INIT and the resume "
            "wait included)",
            uploads * prices.price("lambda_per_million_requests") / MILLION
            + memory_gb * billed_ms / 1000 * prices.price(f"lambda_{architecture}_per_gb_second"),
        )
    )
    return tuple(items)


@dataclass(frozen=True)
class MonthlyBill:
    """The whole bill of a month with `sales` purchases, all of them sales."""

    catalog: str
    sales: int
    items: tuple[MonthlyItem, ...]

    @property
    def total(self) -> float:
        return sum(item.usd_per_month for item in self.items)


def monthly_bill(
    template: Mapping[str, Any],
    catalog: str,
    sales: int,
    machine: StateMachine,
    observed_sale: ObservedExecution,
    prices: PriceTable,
    assumptions: Assumptions = ASSUMPTIONS,
) -> MonthlyBill:
    """Idle bill + `sales` sales at their steady monthly rate + the month's flyer bursts.

    X-Ray is counted after its perpetual free tier (100,000 traces a month); every other
    free tier is left out, since an account may spend it on something else.
    """
    deployed = deployed_with_catalog(template, catalog)
    items = [
        MonthlyItem(item.label, item.detail, item.usd_per_month or 0.0)
        for item in idle_monthly_cost(deployed, prices, assumptions)
    ]
    design = design_from_template(deployed).at_monthly_volume(sales)
    per_million = cost_per_million(design, machine, SALE, observed_sale, prices, assumptions)
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
    burst = sum(item.usd_per_month for item in flyer_burst_cost(deployed, prices, assumptions))
    items.append(
        MonthlyItem(
            "flyer bursts",
            f"{assumptions.flyer_bursts_per_month} x ${burst:.4f}",
            assumptions.flyer_bursts_per_month * burst,
        )
    )
    return MonthlyBill(catalog, sales, tuple(items))
