"""The ceilings of the door, enforced by the local stack as AWS enforces them: the stage throttle
answers HTTP API's 429, and a purchase function at its concurrency limit is throttled as Lambda
throttles it, which HTTP API answers with a 500. Neither loses or oversells a ticket."""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from offline.http_api import HttpApi
from offline.lambda_pool import LambdaPool
from offline.mariadb_server import free_port
from show_catalog import ShowSpec
from tests.local_stack_process import ROOT, RunningStack, ports, post_json, stack_environment
from tools import show as show_command

VISA = "4111 1111 1111 1111"
TOO_MANY = (429, "Too Many Requests")
THROTTLED_FUNCTION = (500, "Internal Server Error")
SOLD_OUT = (400, "Tickets are sold out or purchase already processed.")
BUSY = (503, "Too many buyers right now: try again shortly.")
COMPLETED = (200, "Purchase completed.")

# A handler that holds its execution environment until the test lets it go.
HOLDING_HANDLER = textwrap.dedent(
    """
    import os, time
    from pathlib import Path

    def handler(event, context):
        folder = Path(os.environ["HOLD_FOLDER"])
        (folder / f"started-{os.getpid()}-{time.monotonic_ns()}").touch()
        while not (folder / "release").exists():
            time.sleep(0.01)
        return {"statusCode": 200, "body": '{"message": "done"}'}
    """
)


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, answer = post_json(url, body)
    return status, answer


def no_local_pages(request: Request) -> Response:
    return Response(status=404)


@pytest.fixture
def holding_api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The local HTTP API in front of a function of concurrency 1 whose handler holds."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "holding.py").write_text(HOLDING_HANDLER, encoding="utf-8")
    pool = LambdaPool(
        "HoldingFunction",
        "holding.handler",
        [str(code)],
        {"HOLD_FOLDER": str(tmp_path)},
        concurrency=1,
        memory_mb=128,
        timeout_seconds=60,
    )
    pool.warm_up(1)
    port = free_port()
    app = HttpApi({("POST", "/x"): pool}, no_local_pages)  # type: ignore[dict-item]
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/x", tmp_path
    finally:
        (tmp_path / "release").touch()
        server.shutdown()
        server.server_close()
        pool.close()


def test_function_at_its_concurrency_limit_is_throttled_with_api_gateways_500(
    holding_api: tuple[str, Path],
) -> None:
    url, folder = holding_api
    # GIVEN the function's one execution environment busy with a first request
    with ThreadPoolExecutor(max_workers=1) as first_client:
        first = first_client.submit(post, url, {})
        deadline = time.monotonic() + 30
        while not list(folder.glob("started-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(list(folder.glob("started-*"))) == 1
        # WHEN a second request arrives, THEN Lambda refuses it and HTTP API answers its 500,
        # at once: the function never ran for it
        assert post(url, {}) == (500, {"message": "Internal Server Error"})
        assert len(list(folder.glob("started-*"))) == 1
        # AND once the first has finished, the environment takes the next request
        (folder / "release").touch()
        assert first.result(timeout=30) == (200, {"message": "done"})
    assert post(url, {}) == (200, {"message": "done"})
    assert len(list(folder.glob("started-*"))) == 2


RUSH_STOCK = 10
RUSH_BUYERS = 40
# The bucket refills one token a second: however slowly a loaded machine serves the 40 requests
# (within half a minute), more of them than the burst and the refill can pass arrive.
RUSH_LIMITS = {"API_RATE_LIMIT": "1", "API_BURST_LIMIT": "10", "LOCAL_LAMBDA_CONCURRENCY": "2"}


@pytest.fixture(scope="module")
def throttled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make local` with a low stage throttle and a purchase function of concurrency 2."""
    shows = tmp_path_factory.mktemp("throttling") / "shows.json"
    rush = [{"name": "Rush", "ticketPrice": 10, "ticketsAvailable": RUSH_STOCK}]
    shows.write_text(json.dumps(rush), encoding="utf-8")
    env = {**ports(), "SHOWS_FILE": str(shows), "BUYER_AUTH": "none", **RUSH_LIMITS}
    process = RunningStack(env)
    process.wait_ready()
    try:
        yield env
    finally:
        process.stop()
    assert process.processes_left() == []


def test_rush_beyond_both_ceilings_gets_the_documented_answers_and_loses_nothing(
    throttled_stack: dict[str, str],
) -> None:
    api = f"http://127.0.0.1:{throttled_stack['LOCAL_API_PORT']}/purchases"
    # GIVEN a show of 10 tickets behind a throttle of 1 a second (burst 10) and 2 functions
    # WHEN 40 buyers send their purchase at once
    bodies = [
        {"userId": f"fan{n}", "showId": "Rush", "cardNumber": VISA} for n in range(RUSH_BUYERS)
    ]
    with ThreadPoolExecutor(max_workers=RUSH_BUYERS) as pool:
        answers = list(pool.map(lambda body: post(api, body), bodies))
    outcomes = Counter((status, answer["message"]) for status, answer in answers)
    # THEN each hears the contract's answer, the stage throttle's 429 or the throttled
    # function's 500, and both ceilings were reached
    assert set(outcomes) <= {COMPLETED, SOLD_OUT, BUSY, TOO_MANY, THROTTLED_FUNCTION}, outcomes
    assert outcomes[TOO_MANY] >= 1, outcomes
    assert outcomes[THROTTLED_FUNCTION] >= 1, outcomes
    # AND from the tables: every 200 has its sale, nothing oversold, no ticket lost
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{throttled_stack['LOCAL_AWS_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    left = int(
        dynamodb.get_item(
            TableName="ShowTickets", Key={"showId": {"S": "Rush"}}, ConsistentRead=True
        )["Item"]["ticketsAvailable"]["N"]
    )
    sales = [
        item
        for key in show_command.sales_keys("Rush")
        for item in dynamodb.query(
            TableName="TicketSales",
            KeyConditionExpression="showId = :key",
            ExpressionAttributeValues={":key": {"S": key}},
        )["Items"]
    ]
    assert len(sales) == outcomes[COMPLETED]
    assert {sale["userId"]["S"] for sale in sales} == {
        answer["executionId"].removesuffix("-Rush") for status, answer in answers if status == 200
    }
    assert left >= 0
    assert left + len(sales) == RUSH_STOCK


def test_preflight_against_the_local_endpoint_reads_what_moto_answers(
    throttled_stack: dict[str, str],
) -> None:
    # GIVEN the running stack, with a show laid out in 4 buckets
    aws = f"http://127.0.0.1:{throttled_stack['LOCAL_AWS_PORT']}"
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=aws,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    spec = ShowSpec("Preflight Fest", Decimal(10), 400)
    show_command.set_stock(dynamodb, show_command.LOCAL_TABLES, spec, 4)
    # WHEN make preflight runs against it at 800 buyers a second, in the stack's environment
    answer = subprocess.run(
        ["make", "-s", "--no-print-directory", "preflight", "RATE=800"],
        cwd=ROOT,
        env={**stack_environment(), **throttled_stack, "AWS_ENDPOINT_URL": aws},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN it prints its plan from what the endpoint answered: the stack's throttle binds first
    assert answer.returncode == 0, answer.stderr
    text = answer.stdout
    rate = RUSH_LIMITS["API_RATE_LIMIT"]
    assert (
        f"binds first: stage throttle ApiRateLimit = {rate} (serves about {rate} buyers a second)"
        in text
    )
    assert (
        "buckets of 'Preflight Fest': 4 -> 44: make show NAME='Preflight Fest' BUCKETS=44" in text
    )
    # moto answers DynamoDB's limits (its own figures, not AWS's 40,000)...
    assert "DynamoDB write units per table: 10,000 (needs 2,400)" in text
    assert "DynamoDB warm writes of LambdaExecutionLog: 4,000 (needs 2,400)" in text
    # ...and not Lambda's account settings nor Service Quotas: one line each, no stack trace
    assert "Lambda GetAccountSettings: not answered here (404: an error page" in text
    assert "Service Quotas, API Gateway: not answered here (500: an error page" in text
    assert "Service Quotas, Step Functions: not answered here (500: an error page" in text
    assert "Traceback" not in text + answer.stderr
