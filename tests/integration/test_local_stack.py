"""`make local` as a user runs it: started with make, driven over HTTP and the AWS endpoint."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from offline.local_stack import connect_catalog
from offline.mariadb_server import free_port
from offline.token import fetch_token
from tests.integration.conftest import Server
from tests.local_stack_process import ROOT, RunningStack, ports, post_json, stack_environment

API = "http://127.0.0.1:3000"
AWS = "http://127.0.0.1:4566"
SHOW = "Rock en el Parque"
SOLD_OUT = "Agotado Fest"
VISA = "4111 1111 1111 1111"


def post(body: Any, path: str = "/purchases", api: str = API) -> tuple[int, dict[str, Any]]:
    """POST as a buyer would: with a token of the stack's issuer for the body's userId."""
    buyer = body.get("userId") if isinstance(body, dict) else None
    token = fetch_token(buyer if isinstance(buyer, str) else "u", api.rsplit(":", 1)[1])
    status, _, answer = post_json(f"{api}{path}", body, {"Authorization": f"Bearer {token}"})
    return status, answer


def aws(service: str, endpoint_url: str = AWS) -> Any:
    """A client of the local AWS endpoint: any credentials do."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="anything",
        aws_secret_access_key="anything",
    )


def put_claim(execution_id: str, status: str) -> None:
    aws("dynamodb").put_item(
        TableName="LambdaExecutionLog",
        Item={
            "executionId": {"S": execution_id},
            "attemptId": {"S": "another-attempt"},
            "status": {"S": status},
            "timestamp": {"S": "2026-11-29T10:00:00.000Z"},
            "leaseExpiresAt": {"N": str(int(time.time()) + 60)},
        },
    )


def tickets_left(show: str) -> int:
    item = aws("dynamodb").get_item(TableName="ShowTickets", Key={"showId": {"S": show}})
    return int(item["Item"]["ticketsAvailable"]["N"])


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`make local` with its defaults: ports 3000 and 4566, its own MariaDB, the demo shows."""
    stack = RunningStack({})
    stack.wait_ready()
    yield stack
    stack.stop()
    assert "Stopping..." in stack.text
    assert stack.processes_left() == []


def test_local_stack_banner_says_where_everything_is(local_stack: RunningStack) -> None:
    for expected in (API, AWS, "ShowTickets", "LambdaExecutionLog", "s3://", "/_local/traces"):
        assert expected in local_stack.text


def test_local_stack_readme_quick_start_commands_work_as_printed(
    local_stack: RunningStack,
) -> None:
    # GIVEN the README's quick start block
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    curls = [line for line in section.splitlines() if line.startswith("curl ")]
    assert len(curls) == 2
    # WHEN each curl runs exactly as printed, with the token the block's first line gets
    (get_token,) = [line for line in section.splitlines() if line.startswith("export TOKEN=")]
    answers = [
        json.loads(
            subprocess.run(
                f"{get_token} && {c}",
                shell=True,
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            ).stdout
        )
        for c in curls
    ]
    # THEN one sells and one is sold out, and the banner printed the same commands
    assert [a["message"] for a in answers] == [
        "Purchase completed.",
        "Tickets are sold out or purchase already processed.",
    ]
    assert all(line in local_stack.text for line in (get_token, *curls))


def test_local_stack_seed_scenarios_over_http(local_stack: RunningStack) -> None:
    # No `-` in the user id: its claim key is the seed's plain `userId-showId`.
    user = f"seed{uuid.uuid4().hex[:8]}"
    body = {"userId": user, "showId": SHOW, "cardNumber": VISA}
    before = tickets_left(SHOW)
    # Seed scenario 1, new buyer: no claim yet -> sold
    assert post(body)[0] == 200
    # Scenario 3, buy again after a sale: COMPLETED -> a new purchase is allowed
    assert post(body)[0] == 200
    # Scenario 2, purchase in progress: an unexpired IN_PROGRESS claim blocks the buyer
    put_claim(f"{user}-{SHOW}", "IN_PROGRESS")
    assert post(body) == (400, {"message": "Purchase already in progress."})
    # Scenario 4, retry after a failure: FAILED -> allowed again
    put_claim(f"{user}-{SHOW}", "FAILED")
    assert post(body)[0] == 200
    assert tickets_left(SHOW) == before - 3


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"userId": "u", "showId": SHOW, "cardNumber": "4111 1111 1111 1112"},
            400,
            "Invalid credit card.",
        ),
        (
            {"userId": "u", "showId": SHOW, "cardNumber": "378282246310005"},
            400,
            "Invalid credit card.",
        ),
        (
            {"userId": "u", "showId": SOLD_OUT, "cardNumber": VISA},
            400,
            "Tickets are sold out or purchase already processed.",
        ),
        ({"userId": "u", "showId": "No Such Show", "cardNumber": VISA}, 404, "Show not found."),
        (
            {"userId": "u", "showId": SHOW, "cardNumber": VISA, "quantity": 11},
            400,
            "Invalid request.",
        ),
        ({"showId": SHOW}, 400, "Invalid request."),
        (b'{"userId": "u", ', 400, "Invalid request."),
    ],
    ids=["luhn", "amex", "sold-out", "unknown-show", "quantity", "missing", "malformed"],
)
def test_local_stack_contract_errors_over_http(
    local_stack: RunningStack, body: Any, status: int, message: str
) -> None:
    answer_status, answer = post(body)
    assert (answer_status, answer["message"]) == (status, message)
    if message == "Invalid request.":
        assert answer["errors"]


def test_local_stack_unknown_route_answers_like_api_gateway(local_stack: RunningStack) -> None:
    assert post({}, "/refunds") == (404, {"message": "Not Found"})


def catalog_url(stack: RunningStack) -> str:
    match = re.search(r"events catalog\s+(mysql://\S+)", stack.text)
    assert match, stack.text
    return match.group(1)


def flyer_of(url: str, name: str) -> str | None:
    with contextlib.closing(connect_catalog(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT flyer FROM events WHERE name = %s", (name,))
        row = cursor.fetchone()
    return None if row is None else row[0]


def wait_for_flyer(url: str, name: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flyer = flyer_of(url, name)
        if flyer:
            return flyer
        time.sleep(0.05)
    return None


def test_local_stack_flyer_upload_lands_in_the_catalog_within_2_seconds(
    local_stack: RunningStack,
) -> None:
    # GIVEN the bucket the banner names
    match = re.search(r"flyers bucket\s+s3://(\S+)", local_stack.text)
    assert match
    key = "posters/2026/Clásico de Fútbol.png"
    # WHEN a flyer is put through the AWS endpoint
    aws("s3").put_object(Bucket=match.group(1), Key=key, Body=b"\x89PNG\r\n")
    # THEN the real flyer handler stores it on the event within 2 seconds
    flyer = wait_for_flyer(catalog_url(local_stack), "Clásico de Fútbol", timeout=2)
    assert flyer == f"s3://{match.group(1)}/{key}"


def test_local_stack_execution_trace_from_the_command_and_the_page(
    local_stack: RunningStack,
) -> None:
    post({"userId": "tracer", "showId": SOLD_OUT, "cardNumber": VISA})
    listing = subprocess.run(
        ["make", "--no-print-directory", "traces"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = [line.split()[-1] for line in listing.splitlines() if " FAILED " in line]
    assert failed
    trace = subprocess.run(
        ["make", "--no-print-directory", "traces", f"EXECUTION={failed[0]}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = re.findall(r"^\s*\d+\. (\w+) \[", trace, re.MULTILINE)
    # A sold-out buyer is answered from the stock check, without a transaction.
    assert states[:3] == ["CheckStock", "IsShowKnown", "ClaimExecution"]
    assert "SellTickets" not in states
    assert states[-2:] == ["MarkExecutionFailed", "PurchaseFailed"]
    assert "FAILED SoldOut" in trace.replace(":", "")
    with urllib.request.urlopen(f"{API}/_local/traces/{failed[0]}", timeout=10) as page:
        html = page.read().decode()
    assert all(state in html for state in states)
    assert "4111" not in trace and "4111" not in html


def run_to_exit(env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run(
        ["make", "--no-print-directory", "local"],
        cwd=ROOT,
        env={**stack_environment(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr


def test_local_stack_port_taken_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = run_to_exit({**ports(), "LOCAL_API_PORT": str(port)})
    assert code != 0
    assert f"make local: port {port} on 127.0.0.1 is already in use" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not valid JSON"),
        ("{}", "must be a non-empty JSON list"),
        (
            '[{"name": "X", "ticketPrice": 1}]',
            "needs exactly name, ticketPrice and ticketsAvailable",
        ),
        ('[{"name": "X", "ticketPrice": 1, "ticketsAvailable": -2}]', "ticketsAvailable must be"),
        ('[{"name": "X", "ticketPrice": "free", "ticketsAvailable": 2}]', "ticketPrice must be"),
    ],
)
def test_local_stack_malformed_shows_file_is_one_clear_line(
    tmp_path: Path, content: str, message: str
) -> None:
    shows = tmp_path / "shows.json"
    shows.write_text(content, encoding="utf-8")
    code, stderr = run_to_exit({**ports(), "SHOWS_FILE": str(shows)})
    assert code != 0
    assert message in stderr and "Traceback" not in stderr


def test_local_stack_unreachable_database_is_one_clear_line() -> None:
    url = f"mysql://user:secret@127.0.0.1:{free_port()}/catalog"
    code, stderr = run_to_exit({**ports(), "DATABASE_URL": url})
    assert code != 0
    assert "make local: DATABASE_URL: cannot connect to 127.0.0.1" in stderr
    assert "Traceback" not in stderr and "secret" not in stderr


def test_local_stack_bad_dynamodb_engine_setting_is_one_clear_line() -> None:
    code, stderr = run_to_exit({**ports(), "LOCAL_DYNAMODB_ITEM_WCU": "lots"})
    assert code != 0
    assert "make local: LOCAL_DYNAMODB_ITEM_WCU must be a number > 0, not 'lots'" in stderr
    assert "Traceback" not in stderr


def test_local_stack_on_mysql_stores_flyers_answers_500_and_stops_cleanly(
    mysql_server: Server, tmp_path: Path
) -> None:
    # GIVEN the stack on a real MySQL catalog named by DATABASE_URL and a shows file of ours
    database = f"local_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(mysql_server.connect()) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    shows = tmp_path / "shows.json"
    shows.write_text(
        json.dumps([{"name": "Café del Mar 🎸", "ticketPrice": 12.5, "ticketsAvailable": 3}]),
        encoding="utf-8",
    )
    env = {
        **ports(),
        "DATABASE_URL": mysql_server.url(database),
        "SHOWS_FILE": str(shows),
        # About the catalog and the workflow, not the buyer: the seed's anonymous contract.
        "BUYER_AUTH": "none",
    }
    stack = RunningStack(env)
    try:
        stack.wait_ready()
        aws_url = f"http://127.0.0.1:{env['LOCAL_AWS_PORT']}"
        s3 = aws("s3", aws_url)
        bucket = re.search(r"flyers bucket\s+s3://(\S+)", stack.text)
        assert bucket
        s3.put_object(Bucket=bucket.group(1), Key="Café del Mar 🎸.webp", Body=b"RIFF")
        assert wait_for_flyer(mysql_server.url(database), "Café del Mar 🎸", timeout=2)
        # WHEN the state machine is gone, a purchase is an internal error, not a stack trace
        sfn = aws("stepfunctions", aws_url)
        for machine in sfn.list_state_machines()["stateMachines"]:
            sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
        request = urllib.request.Request(
            f"http://127.0.0.1:{env['LOCAL_API_PORT']}/purchases",
            data=json.dumps(
                {"userId": "u", "showId": "Café del Mar 🎸", "cardNumber": VISA}
            ).encode(),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=30)
        assert answer.value.code == 500
        assert json.loads(answer.value.read()) == {"message": "Internal server error."}
    finally:
        # THEN Ctrl-C stops everything it started
        stack.stop()
    assert "Stopping..." in stack.text
    assert stack.processes_left() == []


def test_local_stack_without_mariadb_sells_and_says_flyer_ingestion_is_off(tmp_path: Path) -> None:
    # GIVEN no DATABASE_URL and no mariadbd where make local is told to look for it
    env = {**ports(), "DATABASE_URL": "", "MARIADB_BIN_DIR": str(tmp_path)}
    stack = RunningStack(env)
    try:
        stack.wait_ready()
        # THEN it says how to get one, and the banner says flyers are not ingested
        assert "make local: flyer ingestion is off: no mariadbd found in MARIADB_BIN_DIR" in (
            stack.text
        )
        assert "apt-get install mariadb-server" in stack.text
        assert re.search(r"events catalog\s+none: flyer ingestion is off", stack.text)
        assert "s3 cp flyer.png" not in stack.text
        # AND a purchase still sells
        body = {"userId": "no-db", "showId": SHOW, "cardNumber": VISA}
        status, answer = post(body, api=f"http://127.0.0.1:{env['LOCAL_API_PORT']}")
        assert (status, answer["message"]) == (200, "Purchase completed.")
    finally:
        stack.stop()
    assert stack.processes_left() == []
