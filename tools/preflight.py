"""`make preflight STACK=... RATE=...`: before an on-sale, what binds first at a target rate.

    make preflight RATE=800                   # against `make local`
    make preflight STACK=ticketera RATE=800   # against a deployed stack and its account

Reads the account's quotas through their APIs (Lambda's account settings, Service Quotas for API
Gateway and Step Functions, DynamoDB's limits and each table's warm throughput), the stack's own
throttle (its ApiRateLimit and ApiBurstLimit) and each hot show's bucket count (ShowTickets items
with `buckets`), and prints, for RATE buyers a second, what binds first, what to raise and to
what, and which settings already suffice. A quota an endpoint does not answer is one line saying
so, never a guess.

`plan` is the arithmetic, on plain values; the `read_*` functions are the AWS calls.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from offline.throttle import ThrottleSettingError

LOCAL_AWS_ENDPOINT = "http://127.0.0.1:4566"

# How long the purchase function holds its instance: the whole synchronous execution, 0.2-0.5 s
# (BENCHMARKS.md); the upper end, so that the concurrency asked for is enough on a slow day.
EXECUTION_SECONDS = 0.5
# One item takes one transaction at a time, held this long (docs/design.md, A hot show), and a
# show needs ceil(sales a second x hold window x 3) buckets.
HOLD_WINDOW_SECONDS = 0.018
BUCKET_HEADROOM = 3
BUCKETS_MAX = 99
# Every buyer reads the show's item consistently (1 read unit); a partition serves 3,000 a second.
PARTITION_READ_UNITS = 3000
# Write units a sale bills on each table: the claim (1) and its COMPLETED mark in the transaction
# (2), the stock's decrement (2), the sale record (2) (docs/cost.md).
WRITE_UNITS_PER_SALE = {"LambdaExecutionLog": 3, "ShowTickets": 2, "TicketSales": 2}
# Service Quotas: Lambda's concurrent executions, named in the advice to raise it.
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"


@dataclass(frozen=True)
class Readings:
    """What the account and the stack say; None: not read (`unread` says why)."""

    api_rate_limit: float | None = None
    api_burst_limit: float | None = None
    # The account's concurrency the purchase function may use (it reserves none).
    lambda_concurrency: int | None = None
    # API Gateway's account-level throttle in the region, requests a second.
    account_api_rate: float | None = None
    # Step Functions' Express start rate (StartSyncExecution's refill), a second.
    express_start_rate: float | None = None
    # DynamoDB's per-table ceiling on write units a second (on-demand tables included).
    table_max_write_units: float | None = None
    # Each table's warm write throughput (what it takes at once without scaling), by table role.
    warm_write_units: Mapping[str, float] = field(default_factory=dict)
    # Bucket count of each show laid out for a rush (1: one item).
    show_buckets: Mapping[str, int] = field(default_factory=dict)
    unread: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One ceiling on the path: its value now, the value the target rate needs, the buyers a
    second it serves as set, and how to raise it."""

    setting: str
    current: float | None
    needed: float
    serves: float | None
    how: str

    @property
    def enough(self) -> bool:
        return self.current is not None and self.current >= self.needed


def buckets_for(rate: float) -> int:
    """The bucket count a show selling `rate` a second needs (docs/design.md, Choosing N)."""
    return max(1, math.ceil(rate * HOLD_WINDOW_SECONDS * BUCKET_HEADROOM))


def concurrency_needed(rate: float) -> int:
    """The purchase function's instances `rate` buyers a second keep busy."""
    return math.ceil(rate * EXECUTION_SECONDS)


def plan(readings: Readings, rate: float) -> list[Check]:
    """Every ceiling of the purchase path at `rate` buyers a second, each one a sale at most."""
    concurrency = concurrency_needed(rate)
    checks = [
        Check(
            "stage throttle ApiRateLimit",
            readings.api_rate_limit,
            rate,
            readings.api_rate_limit,
            f"sam deploy --parameter-overrides ApiRateLimit={rate:g}",
        ),
        Check(
            "stage throttle ApiBurstLimit",
            readings.api_burst_limit,
            rate,
            readings.api_burst_limit,
            f"sam deploy --parameter-overrides ApiBurstLimit={rate:g} (a second's buyers at once)",
        ),
        Check(
            "Lambda concurrent executions",
            readings.lambda_concurrency,
            concurrency,
            None
            if readings.lambda_concurrency is None
            else readings.lambda_concurrency / EXECUTION_SECONDS,
            f"Service Quotas, Lambda, Concurrent executions ({LAMBDA_CONCURRENCY_QUOTA}):"
            f" at least {concurrency} ({rate:g}/s x {EXECUTION_SECONDS:g} s a purchase)",
        ),
        Check(
            "API Gateway account throttle",
            readings.account_api_rate,
            rate,
            readings.account_api_rate,
            "Service Quotas, API Gateway, Throttle rate",
        ),
        Check(
            "Step Functions Express start rate",
            readings.express_start_rate,
            rate,
            readings.express_start_rate,
            "Service Quotas, Step Functions, StartSyncExecution's refill rate",
        ),
    ]
    busiest = max(WRITE_UNITS_PER_SALE.values())
    table_max = readings.table_max_write_units
    checks.append(
        Check(
            "DynamoDB write units per table",
            table_max,
            rate * busiest,
            None if table_max is None else table_max / busiest,
            "Service Quotas, DynamoDB, Table-level write throughput limit",
        )
    )
    for table, warm in sorted(readings.warm_write_units.items()):
        units = WRITE_UNITS_PER_SALE.get(table, busiest)
        checks.append(
            Check(
                f"DynamoDB warm writes of {table}",
                warm,
                rate * units,
                warm / units,
                f"aws dynamodb update-table --table-name <{table}>"
                f" --warm-throughput WriteUnitsPerSecond={math.ceil(rate * units)}",
            )
        )
    needed_buckets = buckets_for(rate)
    # A bucket sells one transaction per hold window at most; N carries 3 times that headroom.
    per_bucket = 1 / HOLD_WINDOW_SECONDS
    for show, buckets in sorted(readings.show_buckets.items()):
        fix = (
            f"make show NAME={show!r} BUCKETS={needed_buckets} (and the other fields it has)"
            if needed_buckets <= BUCKETS_MAX
            else f"beyond {BUCKETS_MAX} buckets: sell it in several shows"
        )
        checks.append(
            Check(f"buckets of {show!r}", buckets, needed_buckets, buckets * per_bucket, fix)
        )
    checks.append(
        Check(
            "reads of one show's item",
            PARTITION_READ_UNITS,
            rate,
            PARTITION_READ_UNITS,
            "not adjustable: a partition's 3,000 reads a second (docs/design.md, A hot show)",
        )
    )
    return checks


def binding(checks: Sequence[Check]) -> Check | None:
    """The ceiling that binds first: of those short of the target, the one serving fewest."""
    short = [c for c in checks if c.serves is not None and not c.enough]
    return min(short, key=lambda c: c.serves or 0.0, default=None)


def report(readings: Readings, rate: float) -> str:
    checks = plan(readings, rate)
    first = binding(checks)
    lines = [f"Preflight for {rate:g} buyers a second"]
    if first is None:
        lines.append("  binds first: nothing read binds below this rate")
    else:
        lines.append(
            f"  binds first: {first.setting} = {_figure(first.current)}"
            f" (serves about {_figure(first.serves)} buyers a second)"
        )
    raise_lines = [c for c in checks if c.current is not None and not c.enough]
    lines.append("Raise:" if raise_lines else "Raise: nothing read")
    for check in raise_lines:
        lines.append(
            f"  {check.setting}: {_figure(check.current)} -> {_figure(check.needed)}: {check.how}"
        )
    lines.append("Already enough:")
    for check in checks:
        if check.enough:
            lines.append(
                f"  {check.setting}: {_figure(check.current)} (needs {_figure(check.needed)})"
            )
    unknown = [c for c in checks if c.current is None]
    if unknown or readings.unread:
        lines.append("Not read (check these by hand):")
        for check in unknown:
            lines.append(f"  {check.setting}: needs {_figure(check.needed)}; {check.how}")
        for what, why in readings.unread.items():
            lines.append(f"  {what}: {why}")
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


# ------------------------------------------------------------------ reading


def _why(error: Exception) -> str:
    """One short line: the AWS error's code and message."""
    if isinstance(error, ClientError):
        failure = error.response.get("Error", {})
        message = " ".join(str(failure.get("Message", "")).split())
        # An endpoint without the API (moto, for some) may answer with an HTML error page.
        if message.startswith("<"):
            message = "an error page, not an AWS answer"
        return f"{failure.get('Code', '?')}: {message[:160]}"
    return " ".join(str(error).split())[:160] or type(error).__name__


def _read(unread: dict[str, str], what: str, reader: Callable[[], Any]) -> Any:
    """The reader's value, or None with one line in `unread` when the endpoint refuses it."""
    try:
        return reader()
    except (ClientError, BotoCoreError, KeyError) as error:
        unread[what] = f"not answered here ({_why(error)})"
        return None


def read_quota(quotas: Any, service: str, words: Sequence[str]) -> float:
    """The value of the service's quota whose name holds all `words` (Service Quotas names them;
    the codes are not documented for every service)."""
    paginator = quotas.get_paginator("list_service_quotas")
    for page in paginator.paginate(ServiceCode=service):
        for quota in page["Quotas"]:
            name = quota["QuotaName"].lower()
            if all(word.lower() in name for word in words):
                return float(quota["Value"])
    raise KeyError(f"no {service} quota named with {' '.join(words)}")


def read_show_buckets(dynamodb: Any, table: str) -> dict[str, int]:
    """Each show laid out in buckets: its item's `buckets`."""
    shows: dict[str, int] = {}
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression="showId, buckets",
        FilterExpression="attribute_exists(buckets)",
    )
    for page in pages:
        for item in page["Items"]:
            shows[item["showId"]["S"]] = int(item["buckets"]["N"])
    return shows


def _warm_writes(dynamodb: Any, table: str) -> Callable[[], float]:
    def reader() -> float:
        described = dynamodb.describe_table(TableName=table)["Table"]
        return float(described["WarmThroughput"]["WriteUnitsPerSecond"])

    return reader


def read(
    clients: Callable[[str], Any], tables: Mapping[str, str], limits: tuple[float, float]
) -> Readings:
    """Everything `plan` needs, from the clients' endpoint; `tables` maps each table's role
    (LambdaExecutionLog, ShowTickets, TicketSales) to its name."""
    unread: dict[str, str] = {}
    lambda_ = clients("lambda")
    concurrency = _read(
        unread,
        "Lambda GetAccountSettings",
        lambda: lambda_.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"],
    )
    quotas = clients("service-quotas")
    account_api = _read(
        unread,
        "Service Quotas, API Gateway",
        lambda: read_quota(quotas, "apigateway", ["throttle", "rate"]),
    )
    express = _read(
        unread,
        "Service Quotas, Step Functions",
        lambda: read_quota(quotas, "states", ["startsyncexecution", "refill"]),
    )
    dynamodb = clients("dynamodb")
    table_max = _read(
        unread,
        "DynamoDB DescribeLimits",
        lambda: float(dynamodb.describe_limits()["TableMaxWriteCapacityUnits"]),
    )
    warm: dict[str, float] = {}
    for role, name in tables.items():
        units = _read(unread, f"DynamoDB warm throughput of {name}", _warm_writes(dynamodb, name))
        if units is not None:
            warm[role] = units
    buckets = _read(
        unread, "ShowTickets", lambda: read_show_buckets(dynamodb, tables["ShowTickets"])
    )
    return Readings(
        api_rate_limit=limits[0],
        api_burst_limit=limits[1],
        lambda_concurrency=None if concurrency is None else int(concurrency),
        account_api_rate=account_api,
        express_start_rate=express,
        table_max_write_units=table_max,
        warm_write_units=warm,
        show_buckets=buckets or {},
        unread=unread,
    )


class PreflightError(Exception):
    """The stack could not be read; the message is the one line to print."""


def stack_settings(cloudformation: Any, stack: str) -> tuple[dict[str, str], tuple[float, float]]:
    """A deployed stack's table names (by role) and its stage throttle, from its description."""
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise PreflightError(f"stack {stack!r}: {_why(error)}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
    names = {
        "LambdaExecutionLog": "ExecutionLogTableName",
        "ShowTickets": "ShowTicketsTableName",
        "TicketSales": "TicketSalesTableName",
    }
    missing = [o for o in names.values() if o not in outputs]
    missing += [p for p in ("ApiRateLimit", "ApiBurstLimit") if p not in parameters]
    if missing:
        raise PreflightError(f"stack {stack!r} has no {', '.join(missing)}: update it")
    tables = {role: outputs[output] for role, output in names.items()}
    return tables, (float(parameters["ApiRateLimit"]), float(parameters["ApiBurstLimit"]))


def local_settings(environ: Mapping[str, str]) -> tuple[dict[str, str], tuple[float, float]]:
    """`make local`: the template's table names and its stage throttle as the stack runs it."""
    from offline import cfn_template
    from offline.throttle import stage_limits

    limits = stage_limits(cfn_template.load_template(), environ)
    tables = {role: role for role in WRITE_UNITS_PER_SALE}
    return tables, (limits.rate_per_second, float(limits.burst))


def local_clients(environ: Mapping[str, str]) -> Callable[[str], Any]:
    endpoint = environ.get("AWS_ENDPOINT_URL") or LOCAL_AWS_ENDPOINT

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
        )

    return client


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="make preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", required=True, help="target buyers a second")
    parser.add_argument("--stack", default="", help="a deployed stack's name; none: make local")
    args = parser.parse_args(argv)
    try:
        rate = float(args.rate)
    except ValueError:
        rate = -1
    if not 0 < rate < math.inf:
        print(f"make preflight: RATE must be a positive number, not {args.rate!r}", file=sys.stderr)
        return 2
    try:
        if args.stack:
            session = boto3.session.Session()
            tables, limits = stack_settings(session.client("cloudformation"), args.stack)
            clients: Callable[[str], Any] = session.client
        else:
            tables, limits = local_settings(environ)
            clients = local_clients(environ)
        readings = read(clients, tables, limits)
    except (PreflightError, ThrottleSettingError) as error:
        print(f"make preflight: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"make preflight: {_why(error)}", file=sys.stderr)
        return 2
    print(report(readings, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
