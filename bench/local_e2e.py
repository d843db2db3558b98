"""Local end to end: purchases per second through `python -m offline`, next to raw decrements.

The local stack runs as `make local` does, in a process group of its own, on free ports, with a
shows file of one show that cannot sell out. After a warm-up that starts every execution
environment, each load level (1, 8 and 32 concurrent clients) sends the same number of
purchases over HTTP (one keep-alive connection per client, a distinct userId per request, so no
claim waits for another), then the same number of raw conditional decrements of
`ShowTickets.ticketsAvailable` on the stack's own AWS endpoint. The ratio of the two is what
the whole sale (HTTP API, Lambda worker, state machine, its DynamoDB calls) costs over the one
write that matters, on the same engine: moto, with DynamoDB serialised.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench.measurement import BenchContext, Headline, Section, scrub, table, verdict

HOST = "127.0.0.1"
REGION = "us-east-1"
CONCURRENCY_LEVELS = (1, 8, 32)
# 200 would be better for p99, but at about 10 purchases/s on 2 cores it takes too long.
REQUESTS_PER_LEVEL = 120
# At least one request per execution environment, sent as concurrently as there are
# environments, so that none starts during a timed level.
WARM_UP_REQUESTS = 20
LAMBDA_CONCURRENCY = 8
SHOW = "Bench Arena"
# Far more than the run sells: every purchase and every decrement succeeds.
TICKETS = 1_000_000
VISA = "4111 1111 1111 1111"
READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 30
LEFTOVER_TIMEOUT_SECONDS = 10
REQUEST_TIMEOUT_SECONDS = 60
OUTPUT_LINES_KEPT = 40

# One call: None when it succeeded, else a short name for what went wrong.
Call = Callable[[int], str | None]


class StackError(Exception):
    """The local stack did not start, or stopped early: the report says why instead of figures."""


@dataclass(frozen=True)
class Stack:
    process: subprocess.Popen[str]
    output: deque[str]
    api_port: int
    aws_url: str

    def last_line(self) -> str:
        return next((line.strip() for line in reversed(self.output) if line.strip()), "no output")

    def check_running(self) -> None:
        if self.process.poll() is None:
            return
        if "Stopping..." in self.output:
            # What it prints on SIGINT or SIGTERM: not this measurement's, which stops it last.
            raise StackError("python -m offline was stopped by a signal from elsewhere")
        raise StackError(
            f"python -m offline exited (status {self.process.returncode}); its last line: "
            f"{self.last_line()}"
        )


@dataclass(frozen=True)
class LoadRun:
    """One kind of call at one concurrency: every call's latency, wall time and failures."""

    clients: int
    seconds: float
    latencies: tuple[float, ...]
    failures: Counter[str]

    @property
    def succeeded(self) -> int:
        return len(self.latencies) - sum(self.failures.values())

    @property
    def per_second(self) -> float:
        return self.succeeded / self.seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[98]


@dataclass(frozen=True)
class Level:
    purchases: LoadRun
    decrements: LoadRun


def measure(context: BenchContext) -> Section:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-local-e2e-") as temporary:
        shows_file = Path(temporary) / "shows.json"
        shows_file.write_text(
            json.dumps([{"name": SHOW, "ticketPrice": 10, "ticketsAvailable": TICKETS}]),
            encoding="utf-8",
        )
        try:
            with _local_stack(context.root, shows_file) as stack:
                levels, stock_problem = _measure_levels(stack)
        except StackError as error:
            return _not_measured(scrub(str(error), context.root))
    return _section(levels, stock_problem, time.monotonic() - started)


def _measure_levels(stack: Stack) -> tuple[list[Level], str | None]:
    dynamodb = _dynamodb_clients(stack.aws_url, max(CONCURRENCY_LEVELS))
    decrement = _decrementers(dynamodb)

    def drive(clients: int, total: int, make_call: Callable[[int], Call]) -> LoadRun:
        try:
            run = _drive(clients, total, make_call)
        except StackError:
            # Most likely the stack is on its way out: if so, that is the news.
            with contextlib.suppress(subprocess.TimeoutExpired):
                stack.process.wait(timeout=LEFTOVER_TIMEOUT_SECONDS)
            stack.check_running()
            raise
        stack.check_running()
        return run

    runs = [
        drive(LAMBDA_CONCURRENCY, WARM_UP_REQUESTS, _buyers(stack.api_port, "warm-up")),
        drive(LAMBDA_CONCURRENCY, WARM_UP_REQUESTS, decrement),
    ]
    levels = []
    for clients in CONCURRENCY_LEVELS:
        levels.append(
            Level(
                drive(clients, REQUESTS_PER_LEVEL, _buyers(stack.api_port, f"c{clients}")),
                drive(clients, REQUESTS_PER_LEVEL, decrement),
            )
        )
        runs += [levels[-1].purchases, levels[-1].decrements]
    sold = sum(run.succeeded for run in runs)
    gone = TICKETS - _tickets_left(dynamodb[0])
    problem = None if gone == sold else f"{gone:,} tickets gone, {sold:,} calls answered as sold"
    return levels, problem


# ------------------------------------------------------------------------------- the stack


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _local_stack(root: Path, shows_file: Path) -> Iterator[Stack]:
    """`python -m offline` in a process group of its own, ready; stopped with Ctrl-C's SIGINT."""
    api_port, aws_port = _free_port(), _free_port()
    environ = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOCAL_API_PORT": str(api_port),
        "LOCAL_AWS_PORT": str(aws_port),
        "LOCAL_LAMBDA_CONCURRENCY": str(LAMBDA_CONCURRENCY),
        "SHOWS_FILE": str(shows_file),
    }
    # The embedded catalog: the bench's show must not land in a database someone configured.
    environ.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "offline"],
        cwd=root,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: deque[str] = deque(maxlen=OUTPUT_LINES_KEPT)
    ready = threading.Event()
    reader = threading.Thread(target=_read, args=(process, output, ready), daemon=True)
    reader.start()
    stack = Stack(process, output, api_port, f"http://{HOST}:{aws_port}")
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready.wait(0.1):
            stack.check_running()
            if time.monotonic() > deadline:
                raise StackError(f"python -m offline was not ready in time: {stack.last_line()}")
        yield stack
    finally:
        _stop(process)
        reader.join(timeout=LEFTOVER_TIMEOUT_SECONDS)


def _read(process: subprocess.Popen[str], output: deque[str], ready: threading.Event) -> None:
    # Read to the end, so that the stack and its workers never block on a full pipe.
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line.rstrip("\n"))
        if line.strip() == "Ready.":
            ready.set()


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGINT to the group, as Ctrl-C; SIGKILL if the stack hangs or leaves a process behind."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        process.wait()
    # Workers leave within a second of the stack; a group still alive after that gets SIGKILL.
    deadline = time.monotonic() + LEFTOVER_TIMEOUT_SECONDS
    while _group_alive(group):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            break
        time.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------------- the load


def _drive(clients: int, total: int, make_call: Callable[[int], Call]) -> LoadRun:
    """`total` calls spread over `clients` threads, each with a connection of its own, timed
    from the moment every client is ready to the last answer."""
    indexes = itertools.count()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    cannot_start: list[OSError] = []

    def client(number: int) -> None:
        try:
            call = make_call(number)
        except OSError as error:
            cannot_start.append(error)
            start.abort()  # releases the other clients and the caller
            return
        try:
            start.wait()
        except threading.BrokenBarrierError:
            return
        while True:
            with lock:
                index = next(indexes)
            if index >= total:
                return
            began = time.perf_counter()
            failure = call(index)
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                if failure is not None:
                    failures[failure] += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join()
        raise StackError(f"a client could not connect: {cannot_start[0]}") from None
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return LoadRun(clients, time.perf_counter() - began, tuple(latencies), failures)


def _buyers(api_port: int, label: str) -> Callable[[int], Call]:
    """Clients that each buy one ticket per call on a keep-alive HTTP connection of their own,
    every call for a userId of its own."""

    def make_call(_: int) -> Call:
        connection = http.client.HTTPConnection(HOST, api_port, timeout=REQUEST_TIMEOUT_SECONDS)
        connection.connect()

        def buy(index: int) -> str | None:
            body = {"userId": f"bench-{label}-{index}", "showId": SHOW, "cardNumber": VISA}
            try:
                connection.request(
                    "POST", "/purchases", json.dumps(body), {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()  # the next request connects again
                return type(error).__name__
            return None if response.status == 200 else f"HTTP {response.status}"

        return buy

    return make_call


def _dynamodb_clients(aws_url: str, count: int) -> list[Any]:
    """One client per load thread, made here one after the other: boto3 sessions are not
    thread-safe, and one session loads the service model once for all of them."""
    session = boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any credentials
        region_name=REGION,
    )
    # proxies={}: straight to the loopback endpoint, whatever proxy the environment names.
    config = Config(proxies={})
    return [session.client("dynamodb", endpoint_url=aws_url, config=config) for _ in range(count)]


def _decrementers(dynamodb_clients: Sequence[Any]) -> Callable[[int], Call]:
    """Clients that each take one ticket per call with a conditional UpdateItem."""

    def make_call(number: int) -> Call:
        dynamodb = dynamodb_clients[number]

        def decrement(_: int) -> str | None:
            try:
                dynamodb.update_item(
                    TableName="ShowTickets",
                    Key={"showId": {"S": SHOW}},
                    UpdateExpression="SET ticketsAvailable = ticketsAvailable - :one",
                    ConditionExpression="ticketsAvailable >= :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
            except ClientError as error:
                return str(error.response.get("Error", {}).get("Code", "ClientError"))
            except BotoCoreError as error:
                return type(error).__name__
            return None

        return decrement

    return make_call


def _tickets_left(dynamodb: Any) -> int:
    item = dynamodb.get_item(
        TableName="ShowTickets", Key={"showId": {"S": SHOW}}, ConsistentRead=True
    )
    return int(item["Item"]["ticketsAvailable"]["N"])


# ------------------------------------------------------------------------------- the report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _failures(run: LoadRun) -> str:
    if not run.failures:
        return "0"
    details = ", ".join(f"{count} {name}" for name, count in run.failures.most_common())
    return f"**{sum(run.failures.values())}** ({details})"


def _section(levels: Sequence[Level], stock_problem: str | None, seconds: float) -> Section:
    rows = []
    for level in levels:
        purchases, decrements = level.purchases, level.decrements
        rows.append(
            [
                level.purchases.clients,
                f"{purchases.per_second:.1f}",
                _ms(purchases.p50),
                _ms(purchases.p99),
                _failures(purchases),
                f"{decrements.per_second:.0f}",
                _ms(decrements.p50),
                _ms(decrements.p99),
                _failures(decrements),
                f"{decrements.per_second / purchases.per_second:.0f}x",
                f"{purchases.p50 / decrements.p50:.0f}x",
            ]
        )
    failed = sum(sum(level.purchases.failures.values()) for level in levels)
    sent = sum(len(level.purchases.latencies) for level in levels)
    clients = " / ".join(str(level.purchases.clients) for level in levels)
    stock = (
        "The stock left at the end matches, to the ticket, the purchases and decrements that "
        "succeeded (warm-up included)."
        if stock_problem is None
        else f"**The stock left at the end does not match what succeeded: {stock_problem}.**"
    )
    body = "\n".join(
        [
            "**The local engine is moto with DynamoDB serialised (one request at a time, as "
            "`make local` runs it): these figures measure the offline stack on this machine, not "
            "AWS.** They show how much load `make local` takes and where the sale's own work "
            "goes next to the single write it protects; they say nothing about DynamoDB or Step "
            "Functions throughput on AWS.",
            "",
            f"`python -m offline` with {LAMBDA_CONCURRENCY} purchase execution environments "
            f"(`LOCAL_LAMBDA_CONCURRENCY`) and one show of {TICKETS:,} tickets, so every call "
            f"sells. After {WARM_UP_REQUESTS} warm-up calls of each kind at {LAMBDA_CONCURRENCY} "
            f"clients, each level sends {REQUESTS_PER_LEVEL} calls of each kind: purchases first "
            "(`POST /purchases`, one ticket, a distinct userId each, one keep-alive HTTP "
            "connection per client), then raw decrements (boto3 `update_item` on `ShowTickets` "
            "through the stack's AWS endpoint: `SET ticketsAvailable = ticketsAvailable - :one` "
            "if `ticketsAvailable >= :one`, a client per thread). Throughput counts successful "
            "calls from the moment every client is connected to the last answer; latency is one "
            "call as its client sees it, queueing for a free execution environment included. "
            "The clients run in the bench's own process and share the machine's cores with the "
            "stack. A purchase is the HTTP API, a Lambda worker process running the real "
            "handler, `StartSyncExecution`, and the real state machine (claim, one transaction, "
            "a read back), its DynamoDB calls behind the same lock as the raw decrements. One "
            "run per level, not a median of rounds: on a busy machine with few cores the rates and "
            "the ratios alike move by a third or more from one run to the next.",
            "",
            table(
                [
                    "clients",
                    "purchases/s",
                    "purchase p50 ms",
                    "purchase p99 ms",
                    "purchases not 200",
                    "decrements/s",
                    "decrement p50 ms",
                    "decrement p99 ms",
                    "decrements failed",
                    "decrements/s / purchases/s",
                    "purchase p50 / decrement p50",
                ],
                rows,
            ),
            "",
            "The ratio decrements/s / purchases/s is our overhead: how many raw decrements "
            "the same engine does in the time it takes to sell one ticket. More clients than "
            f"execution environments only queue: the {LAMBDA_CONCURRENCY} workers, moto and the "
            "clients share the machine's cores.",
            "",
            f"{stock} Measured in {seconds:.0f} s, the stack's start and stop included.",
        ]
    )
    headlines = [
        Headline(
            f"Local purchases/s at {clients} clients (moto, not AWS)",
            " / ".join(f"{level.purchases.per_second:.1f}" for level in levels),
        ),
        Headline(
            f"Local overhead, raw decrements/s / purchases/s at {clients} clients",
            " / ".join(
                f"{level.decrements.per_second / level.purchases.per_second:.0f}x"
                for level in levels
            ),
        ),
        Headline(
            "Local purchases answered other than 200",
            f"{failed} of {sent}",
            "0",
            verdict(failed == 0),
        ),
    ]
    if stock_problem is not None:
        headlines.append(Headline("Local stock check", stock_problem, "exact", verdict(False)))
    return Section("Local end to end", body, tuple(headlines))


def _not_measured(reason: str) -> Section:
    headline = Headline("Local purchases/s (moto, not AWS)", "not measured: see its section")
    return Section("Local end to end", f"Not measured: {reason}", (headline,))
