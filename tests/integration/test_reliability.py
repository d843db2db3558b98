"""The sale's rules under real concurrency, through the whole local stack, judged from the tables.

The stack runs on the offline DynamoDB engine, which behaves as DynamoDB does under contention
(transactions holding their items, conflicts, throughput ceilings): every test runs at the
engine's default transaction hold window and at ten times it. The oracle is proved in the same
run: a naive read-then-write decrement on the same engine oversells, so a green "never
oversold" here means something.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from card_numbers import find_card_numbers
from offline.dynamodb_engine import DEFAULT_TRANSACTION_MS
from offline.local_stack import connect_catalog
from show_catalog import ShowSpec
from tests import reliability
from tests.local_stack_process import RunningStack, ports, post_json
from tools import show as show_command

VISA = "4111 1111 1111 1111"
SOLD_OUT = "Tickets are sold out or purchase already processed."
IN_PROGRESS = "Purchase already in progress."
BUSY = "Too many buyers right now: try again shortly."
SHOWS = {"Stadium": 100, "Naive Control": 50, "One User": 50, "One Key": 50, "Dropped Key": 50}
LIMIT = "Ticket limit per buyer reached for this show."
# One buyer's rush on a capped show: `make reliability` sends 1,000 requests a show, `make test`
# a fifth of that (the same interleavings, in less time).
ONE_BUYER_REQUESTS = 1000 if reliability.REPORTING else 200
ONE_BUYER_CAP = 7
# Requests in flight at once. The stack's purchase function runs at most LOCAL_LAMBDA_CONCURRENCY
# of them, as on Lambda, and throttles the rest (tests/integration/test_throttling.py): these
# runs are about the sale, so they stay within it (one more for a retry while ten still run).
AT_ONCE = 10
FUNCTION_CONCURRENCY = AT_ONCE + 1
# The engine's default hold window, and ten times it: a slower DynamoDB must not break a rule.
WINDOWS_MS = (DEFAULT_TRANSACTION_MS, 10 * DEFAULT_TRANSACTION_MS)


@dataclass
class Stack:
    process: RunningStack
    api: str
    aws: str
    window: str  # the report's column: the engine's hold window

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def post(self, body: dict[str, Any], key: str | None = None) -> tuple[int, dict[str, Any]]:
        status, _, answer = self.exchange(body, key)
        return status, answer

    def exchange(
        self, body: dict[str, Any], key: str | None = None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {"Idempotency-Key": key} if key else {}
        return post_json(f"{self.api}/purchases", body, headers, timeout=120)

    def buy_until_answered(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], int]:
        """As a well-behaved client buys: a 503 is retried after its Retry-After, with jitter
        so that the buyers who collided do not come back together. Returns the final answer
        and how many 503s it took."""
        busy = 0
        while True:
            status, headers, answer = self.exchange(body)
            if status != 503:
                return status, answer, busy
            assert answer["message"] == BUSY
            busy += 1
            time.sleep(float(headers["Retry-After"]) * random.uniform(1, 2))

    def tickets_left(self, show: str) -> int:
        item = self.client("dynamodb").get_item(
            TableName="ShowTickets", Key={"showId": {"S": show}}, ConsistentRead=True
        )
        return int(item["Item"]["ticketsAvailable"]["N"])

    def sales(self, show: str) -> list[dict[str, Any]]:
        paginator = self.client("dynamodb").get_paginator("query")
        return [
            item
            for key in show_command.sales_keys(show)
            for page in paginator.paginate(
                TableName="TicketSales",
                KeyConditionExpression="showId = :show",
                ExpressionAttributeValues={":show": {"S": key}},
            )
            for item in page["Items"]
        ]


@pytest.fixture(scope="module", params=WINDOWS_MS, ids=lambda window: f"{window:g}ms")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    window_ms: float = request.param
    shows = tmp_path_factory.mktemp("reliability") / "shows.json"
    shows.write_text(
        json.dumps(
            [{"name": n, "ticketPrice": 10, "ticketsAvailable": t} for n, t in SHOWS.items()]
        ),
        encoding="utf-8",
    )
    env = {
        **ports(),
        "SHOWS_FILE": str(shows),
        "LOCAL_LAMBDA_CONCURRENCY": str(FUNCTION_CONCURRENCY),
        # An on-sale's raised stage throttle: the door's ceilings are test_throttling.py's.
        "API_RATE_LIMIT": "10000",
        "API_BURST_LIMIT": "10000",
        "LOCAL_DYNAMODB_TRANSACTION_MS": f"{window_ms:g}",
        # About the sale under contention, not the buyer (tests/integration/test_buyer_auth.py).
        "BUYER_AUTH": "none",
    }
    process = RunningStack(env)
    process.wait_ready()
    running = Stack(
        process,
        api=f"http://127.0.0.1:{env['LOCAL_API_PORT']}",
        aws=f"http://127.0.0.1:{env['LOCAL_AWS_PORT']}",
        window=f"{window_ms:g} ms",
    )
    try:
        yield running
        # Last, over everything the module's runs wrote: no card number anywhere.
        scanned = everything_written(running)
        assert find_card_numbers(scanned) == []
        reliability.add("pan_scanned_bytes", len(scanned.encode()))
    finally:
        process.stop()
    assert process.processes_left() == []


def everything_written(stack: Stack) -> str:
    """Everything the stack logged while serving, every table item, every execution's input,
    output and history, and the events catalog."""
    # The banner before "Ready." is the stack's own help, whose example uses a test card.
    served_log = stack.process.text.split("\nReady.\n", 1)[1]
    parts: list[Any] = [served_log]
    dynamodb = stack.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            parts.extend(page["Items"])
    sfn = stack.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine["stateMachineArn"]
        )
        arns = [e["executionArn"] for page in pages for e in page["executions"]]
        with ThreadPoolExecutor(max_workers=8) as pool:
            parts.extend(pool.map(lambda arn: execution_record(sfn, arn), arns))
    parts.append(catalog_rows(stack))
    return json.dumps(parts, default=str)


def execution_record(sfn: Any, arn: str) -> list[Any]:
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [sfn.describe_execution(executionArn=arn), history]


def catalog_rows(stack: Stack) -> list[Any]:
    url = stack.process.text.split("events catalog", 1)[1].split()[0]
    with contextlib.closing(connect_catalog(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM events")
        return list(cursor.fetchall())


def commit_conflicts(stack: Stack, since: datetime) -> int:
    """Commits cancelled for a transaction conflict in executions started since `since`."""
    sfn = stack.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=machine["stateMachineArn"]
    )
    arns = [
        e["executionArn"] for page in pages for e in page["executions"] if e["startDate"] >= since
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        histories = pool.map(
            lambda arn: sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"], arns
        )
        return sum(
            1
            for events in histories
            for event in events
            if event["type"] == "TaskFailed"
            and "TransactionConflict" in event["taskFailedEventDetails"].get("cause", "")
        )


def confirmations_without_sale(stack: Stack, answers: list[tuple[int, dict[str, Any]]]) -> int:
    """The oracle of rule 7: 200 answers whose buyer, show and quantity no sale record holds."""
    sales = {
        (sale["userId"]["S"], sale["show"]["S"], int(sale["quantity"]["N"]))
        for show in {body["showId"] for status, body in answers if status == 200}
        for sale in stack.sales(show)
    }
    return sum(
        1
        for status, body in answers
        if status == 200
        and (
            body["executionId"].removesuffix(f"-{body['showId']}"),
            body["showId"],
            body["quantity"],
        )
        not in sales
    )


def test_reliability_500_buyers_for_100_tickets_sell_exactly_100(stack: Stack) -> None:
    # GIVEN 500 buyers of 1 to 4 tickets (mostly 1) for a show with 100
    started = datetime.now().astimezone()
    quantities = [(1, 1, 1, 2, 3, 4)[n % 6] for n in range(500)]
    bodies = [
        {"userId": f"buyer{n}", "showId": "Stadium", "cardNumber": VISA, "quantity": q}
        for n, q in enumerate(quantities)
    ]
    # WHEN they all buy at once, retrying a 503 as a client would
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(stack.buy_until_answered, bodies))
    # THEN, from the tables: exactly the stock sold, never below zero, sales add up
    sales = stack.sales("Stadium")
    sold = sum(int(sale["quantity"]["N"]) for sale in sales)
    assert stack.tickets_left("Stadium") == 0
    assert sold == 100
    assert len(sales) == sum(1 for status, _, _ in answers if status == 200)
    # ...and every final answer is a sale or the contract's sold-out answer: no 500, and no
    # "sold out" while tickets remained (the stock is 0 and all 100 sold)
    assert {(s, b["message"]) for s, b, _ in answers} <= {
        (200, "Purchase completed."),
        (400, SOLD_OUT),
    }
    sold_in_answers = sum(b["quantity"] for s, b, _ in answers if s == 200)
    assert sold_in_answers == sold
    unconfirmed = confirmations_without_sale(stack, [(s, b) for s, b, _ in answers])
    assert unconfirmed == 0
    column = stack.window
    reliability.add("confirmations_checked", len(sales), column)
    reliability.add("confirmations_without_sale", unconfirmed, column)
    reliability.record("buyers", len(bodies), column)
    reliability.record("tickets", SHOWS["Stadium"], column)
    reliability.record("sold", sold, column)
    reliability.record("oversold", sold - SHOWS["Stadium"], column)
    reliability.add("server_errors", sum(1 for s, _, _ in answers if s >= 500), column)
    reliability.record("busy_answers", sum(busy for _, _, busy in answers), column)
    reliability.record("commit_conflicts", commit_conflicts(stack, started), column)


def test_reliability_naive_read_then_write_oversells_on_the_same_engine(stack: Stack) -> None:
    # GIVEN the oracle's engine and the seed's naive algorithm: read the stock, then write it
    dynamodb = stack.client("dynamodb")
    show = {"showId": {"S": "Naive Control"}}
    sold = Counter[str]()
    lock = threading.Lock()

    def naive_buy(buyer: int) -> None:
        left = int(
            dynamodb.get_item(TableName="ShowTickets", Key=show)["Item"]["ticketsAvailable"]["N"]
        )
        if left < 1:
            return
        time.sleep(0.001)  # the work a handler does between its read and its write
        dynamodb.update_item(
            TableName="ShowTickets",
            Key=show,
            UpdateExpression="SET ticketsAvailable = :left",
            ExpressionAttributeValues={":left": {"N": str(left - 1)}},
        )
        with lock:
            sold["tickets"] += 1

    # WHEN 200 buyers race for 50 tickets
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(naive_buy, range(200)))
    # THEN it sells more than it has: the engine can show an oversell
    assert sold["tickets"] > SHOWS["Naive Control"]
    reliability.record("naive_stock", SHOWS["Naive Control"], stack.window)
    reliability.record("naive_sold", sold["tickets"], stack.window)


def test_reliability_one_user_sells_one_purchase_at_a_time(stack: Stack) -> None:
    # GIVEN 10 concurrent requests of one user for one show
    started = datetime.now().astimezone()
    body = {"userId": "eager", "showId": "One User", "cardNumber": VISA}
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(lambda _: stack.post(body), range(10)))
    # THEN each is a sale or "in progress", sales match the answers...
    assert {(s, b["message"]) for s, b in answers} <= {
        (200, "Purchase completed."),
        (400, IN_PROGRESS),
    }
    completed = sum(1 for s, _ in answers if s == 200)
    assert completed >= 1
    assert len([s for s in stack.sales("One User") if s["userId"]["S"] == "eager"]) == completed
    # ...and no two of the user's sales were ever in flight together: for each successful
    # execution, the span from its claim being taken to its commit starting lies inside its
    # exclusive window, so two such spans must never overlap.
    sfn = stack.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=machine["stateMachineArn"], statusFilter="SUCCEEDED"
    )
    spans = []
    for execution in (e for page in pages for e in page["executions"]):
        if execution["startDate"] < started:
            continue
        arn = execution["executionArn"]
        if json.loads(sfn.describe_execution(executionArn=arn)["input"])["userId"] != "eager":
            continue
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        # The claim is the workflow's first update (the show's read comes before it).
        claimed = next(
            e["timestamp"]
            for e in events
            if e["type"] == "TaskSucceeded"
            and e["taskSucceededEventDetails"]["resource"] == "updateItem"
        )
        committing = next(
            e["timestamp"]
            for e in events
            if e["type"] == "TaskStarted"
            and e["taskStartedEventDetails"]["resource"] == "transactWriteItems"
        )
        spans.append((claimed, committing))
    spans.sort()
    assert len(spans) == completed
    overlaps = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    assert overlaps == 0
    reliability.record("same_user_requests", len(answers), stack.window)
    reliability.record("same_user_overlapping_sales", overlaps, stack.window)


def test_reliability_concurrent_repeats_of_one_key_sell_once(stack: Stack) -> None:
    # GIVEN 10 concurrent repeats of one request with one Idempotency-Key
    key = f"order-{uuid.uuid4()}"
    body = {"userId": "careful", "showId": "One Key", "cardNumber": VISA, "quantity": 2}
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(lambda _: stack.post(body, key), range(10)))
    # THEN one sale: the others replay it or hear it is in progress
    sales = [s for s in stack.sales("One Key") if s["userId"]["S"] == "careful"]
    assert len(sales) == 1
    assert stack.tickets_left("One Key") == SHOWS["One Key"] - 2
    successes = [b for s, b in answers if s == 200]
    assert successes and all(b == successes[0] for b in successes)
    assert all(b["message"] == IN_PROGRESS for s, b in answers if s != 200)
    # AND a repeat after it finished replays the same answer, which its sale backs
    assert stack.post(body, key) == (200, successes[0])
    assert confirmations_without_sale(stack, [(s, b) for s, b in answers]) == 0
    reliability.add("confirmations_checked", len(successes), stack.window)
    reliability.record("idempotent_repeats", len(answers), stack.window)
    reliability.record("idempotent_sales", len(sales), stack.window)


def send_and_hang_up(stack: Stack, body: dict[str, Any], key: str) -> None:
    """Send the whole request, then drop the connection without reading the answer."""
    payload = json.dumps(body).encode()
    host, port = stack.api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(
            b"POST /purchases HTTP/1.1\r\n"
            + f"Host: {host}\r\nIdempotency-Key: {key}\r\n".encode()
            + f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )


def test_reliability_repeats_of_one_key_with_the_connection_dropped_sell_once(
    stack: Stack,
) -> None:
    # GIVEN 10 concurrent repeats of one request with one Idempotency-Key, each client hanging
    # up right after sending it (the answers are lost on the way back)
    key = f"order-{uuid.uuid4()}"
    body = {"userId": "unlucky", "showId": "Dropped Key", "cardNumber": VISA, "quantity": 3}
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        list(pool.map(lambda _: send_and_hang_up(stack, body, key), range(10)))
    # WHEN the client tries once more with the key, until the first attempt has finished
    deadline = time.monotonic() + 60
    status, answer = stack.post(body, key)
    while status != 200 and time.monotonic() < deadline:
        assert answer["message"] == IN_PROGRESS
        time.sleep(0.5)
        status, answer = stack.post(body, key)
    # THEN it hears of the one sale that was made
    assert (status, answer["quantity"]) == (200, 3)
    sales = [s for s in stack.sales("Dropped Key") if s["userId"]["S"] == "unlucky"]
    assert len(sales) == 1
    assert stack.tickets_left("Dropped Key") == SHOWS["Dropped Key"] - 3
    reliability.record("dropped_repeats", 10, stack.window)
    reliability.record("dropped_sales", len(sales), stack.window)


@pytest.mark.parametrize("buckets", [1, 4], ids=["one-item", "bucketed"])
def test_reliability_one_buyer_over_five_keys_takes_at_most_the_cap(
    stack: Stack, buckets: int
) -> None:
    # GIVEN a show of 200 tickets capped at 7 a buyer, laid out as make show does
    show = f"Capped {buckets}"
    spec = ShowSpec(show, Decimal(10), 200)
    show_command.set_stock(
        stack.client("dynamodb"), show_command.LOCAL_TABLES, spec, buckets, ONE_BUYER_CAP
    )
    # WHEN one buyer sends many requests at once over 5 Idempotency-Keys and mixed quantities
    # (each key's requests ask for the same quantity, as a client's retries do)
    keys = [f"rush-{uuid.uuid4()}" for _ in range(5)]
    requests = [(keys[n % 5], 1 + (n % 5) % 4) for n in range(ONE_BUYER_REQUESTS)]
    body = {"userId": "hoarder", "showId": show, "cardNumber": VISA}
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(lambda r: stack.post({**body, "quantity": r[1]}, r[0]), requests))
    # THEN the buyer holds at most the cap, every 200 has its sale, nothing else was answered
    sales = stack.sales(show)
    bought = sum(int(sale["quantity"]["N"]) for sale in sales)
    assert 1 <= bought <= ONE_BUYER_CAP, Counter((s, a["message"]) for s, a in answers)
    assert {(status, answer["message"]) for status, answer in answers} <= {
        (200, "Purchase completed."),
        (400, IN_PROGRESS),
        (409, LIMIT),
        (503, BUSY),
    }
    unconfirmed = confirmations_without_sale(stack, answers)
    assert unconfirmed == 0
    column = stack.window
    reliability.add("one_buyer_requests", len(answers), column)
    reliability.record("one_buyer_cap", ONE_BUYER_CAP, column)
    previous = reliability.FIGURES["one_buyer_most_bought", column]
    reliability.record("one_buyer_most_bought", max(previous, bought), column)
    reliability.add("confirmations_checked", sum(1 for s, _ in answers if s == 200), column)
    reliability.add("confirmations_without_sale", unconfirmed, column)


def test_reliability_report_lists_the_figures_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reliability, "FIGURES", reliability.Counter())
    reliability.record("sold", 100, "180 ms")
    reliability.record("sold", 99, "18 ms")
    reliability.record("fuzz_cases", 650)
    reliability.write_report(tmp_path / "RELIABILITY.md", passed=True)
    report = (tmp_path / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "| figure | value | 18 ms | 180 ms | meaning |" in report
    assert "| sold |  | 99 | 100 |" in report
    assert "| fuzz_cases | 650 |  |  |" in report
