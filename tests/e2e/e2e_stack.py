"""What `make e2e` talks to: a running `make local` (its ports) or a deployed stack (its outputs,
read with CloudFormation's API), behind one interface, so that every scenario runs the same
client code against both: the HTTP API over HTTP, DynamoDB and S3 through boto3 pointed at the
stack's endpoint, shows written by tools/show.py's own functions.

Only where the stacks differ does the code split: the buyer's token (the local issuer, or an
admin-created Cognito user), where a stored flyer shows (the local catalog, or the flyer
function's log group: the deployed catalog is private), and where an execution's trace is read
(`/_local/traces`, or the state machine's log group, where the console reads it).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from card_validation import check_card
from offline import cfn_template, token
from offline.local_stack import connect_catalog, local_resource_name
from purchase_workflow import Sale
from tests.local_stack_process import post_json
from tools import show as show_command

# A card the layer accepts (Visa's test number); only its brand and last 4 are ever stored.
VISA = "4111 1111 1111 1111"
# How long a deployed stack may take: the flyer function resumes a paused catalog (up to about
# 30 s) and CloudWatch Logs delivers within seconds to a minute.
AWS_LOG_WAIT_SECONDS = 120.0
LOCAL_WAIT_SECONDS = 10.0


# What the run learnt that no emulator can say, printed at the end of the run (conftest.py).
FINDINGS: list[str] = []


class E2EConfigError(Exception):
    """The suite cannot tell which stack to test, or the stack lacks what it needs."""


@dataclass(frozen=True)
class Buyer:
    """Who buys: a token's subject, or (a stack with BuyerAuth none) the body's userId."""

    user_id: str
    token: str | None


@dataclass(frozen=True)
class Tables:
    show_tickets: str
    execution_log: str
    ticket_sales: str


@dataclass
class E2EStack:
    """One stack under test, and what the suite made in it, to remove at the end."""

    api_url: str
    client: Callable[[str], Any]
    tables: Tables
    bucket: str
    shows: show_command.Target
    buyer: Buyer
    # The catalog's flyer of a show once the upload of `key` is stored, or None past the wait.
    flyer_stored: Callable[[str, str], str | None]
    # The readable trace of a sale's execution started within (since, until), epoch seconds.
    sale_trace: Callable[[float, float], str]
    # Removes the show's row from the catalog, where the suite can.
    forget_catalog_row: Callable[[str], None]
    state_machine_arn: str
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    # ------------------------------------------------------------------ the HTTP API
    def purchase(
        self, show_id: str, quantity: int, idempotency_key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /purchases as the buyer: the status and the JSON answer."""
        body: dict[str, Any] = {"showId": show_id, "cardNumber": VISA, "quantity": quantity}
        headers = {"Content-Type": "application/json"}
        if self.buyer.token is None:
            body["userId"] = self.buyer.user_id
        else:
            headers["Authorization"] = f"Bearer {self.buyer.token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        # API Gateway gives up after 30 s.
        status, _, answer = post_json(f"{self.api_url}/purchases", body, headers, timeout=35)
        return status, answer

    # ------------------------------------------------------------------ the tables
    def claim_key(self, show_id: str) -> str:
        """The buyer's claim on the show in LambdaExecutionLog (the purchase function's own key)."""
        return Sale(self.buyer.user_id, show_id, 1, check_card(VISA)).claim_key

    def claim(self, show_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = (
            self.client("dynamodb")
            .get_item(
                TableName=self.tables.execution_log,
                Key={"executionId": {"S": self.claim_key(show_id)}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return item

    def put_claim(self, show_id: str, status: str, lease_seconds: float) -> None:
        """A claim as another attempt left it: `status`, its lease ending in `lease_seconds`."""
        now = time.time()
        self.client("dynamodb").put_item(
            TableName=self.tables.execution_log,
            Item={
                "executionId": {"S": self.claim_key(show_id)},
                "attemptId": {"S": f"e2e-other-{secrets.token_hex(4)}"},
                "status": {"S": status},
                "timestamp": {"S": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))},
                "leaseExpiresAt": {"N": str(int(now + lease_seconds))},
            },
        )

    def tickets_left(self, show_id: str) -> int:
        stock = show_command.read_stock(self.shows.dynamodb, self.shows.tables, show_id)
        assert stock is not None, f"{show_id} has no stock item"
        return stock.available

    # ------------------------------------------------------------------ what the suite makes
    def create_show(self, name: str, tickets: int, buckets: int | None = None) -> str:
        """A show of the suite's own, through `make show`'s functions; removed at the end."""
        show = show_command.parse_show(name, "10", str(tickets))
        self.cleanup.callback(self._forget_show, name)
        return show_command.apply_show(show, self.shows, buckets)

    def upload_flyer(self, key: str) -> None:
        self.cleanup.callback(self.client("s3").delete_object, Bucket=self.bucket, Key=key)
        self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=b"\x89PNG\r\n\x1a\n")

    def _forget_show(self, name: str) -> None:
        """The show's stock items, its sale records and the buyer's claim on it."""
        dynamodb = self.client("dynamodb")
        stock = show_command.read_stock(dynamodb, self.shows.tables, name)
        buckets = stock.buckets if stock is not None and stock.buckets > 1 else 0
        for key in [name, *(show_command.bucket_key(name, i) for i in range(buckets))]:
            dynamodb.delete_item(TableName=self.tables.show_tickets, Key={"showId": {"S": key}})
        for sales_key in show_command.sales_keys(name):
            sales = dynamodb.query(
                TableName=self.tables.ticket_sales,
                KeyConditionExpression="showId = :key",
                ExpressionAttributeValues={":key": {"S": sales_key}},
                ProjectionExpression="showId, saleId",
            )["Items"]
            for sale in sales:
                dynamodb.delete_item(TableName=self.tables.ticket_sales, Key=sale)
        dynamodb.delete_item(
            TableName=self.tables.execution_log,
            Key={"executionId": {"S": self.claim_key(name)}},
        )
        self.forget_catalog_row(name)


T = TypeVar("T")


def wait_for(read: Callable[[], T | None], seconds: float) -> T | None:
    """What `read` returns once it returns something, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = read()
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


# ---------------------------------------------------------------------------- make local


def local_stack(environ: Mapping[str, str]) -> E2EStack:
    """A running `make local`: LOCAL_API_PORT and LOCAL_AWS_PORT (3000 and 4566 unless set), and
    the catalog DATABASE_URL its banner prints, as `make show` needs it."""
    api_port = environ.get("LOCAL_API_PORT") or "3000"
    aws_url = f"http://127.0.0.1:{environ.get('LOCAL_AWS_PORT') or '4566'}"
    database_url = environ.get("DATABASE_URL") or ""
    if not database_url:
        raise E2EConfigError(
            "DATABASE_URL is not set: give the events catalog URL `make local` prints"
            " (the suite creates its shows there), or STACK=<name> for a deployed stack"
        )
    api_url = f"http://127.0.0.1:{api_port}"
    template = cfn_template.load_template()

    @functools.cache
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=aws_url,
            region_name=cfn_template.REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    bucket = local_resource_name(template, "AWS::S3::Bucket")

    def catalog_flyer(show: str) -> str | None:
        with (
            contextlib.closing(connect_catalog(database_url)) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT flyer FROM events WHERE name = %s", (show,))
            row = cursor.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def flyer_stored(show: str, key: str) -> str | None:
        expected = f"s3://{bucket}/{key}"
        return wait_for(
            lambda: expected if catalog_flyer(show) == expected else None, LOCAL_WAIT_SECONDS
        )

    def forget_catalog_row(show: str) -> None:
        with (
            contextlib.closing(connect_catalog(database_url)) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM events WHERE name = %s", (show,))
            connection.commit()

    machines = client("stepfunctions").list_state_machines()["stateMachines"]
    (machine_arn,) = (m["stateMachineArn"] for m in machines if m["name"] == "PurchaseStateMachine")

    def sale_trace(since: float, until: float) -> str:
        """The page `/_local/traces/<name>` shows for the sale's execution."""
        executions = client("stepfunctions").list_executions(stateMachineArn=machine_arn)
        names = [
            e["name"]
            for e in executions["executions"]
            if since <= e["startDate"].timestamp() <= until and e["status"] == "SUCCEEDED"
        ]
        assert names, "no execution of the sale in the local state machine's history"
        with urllib.request.urlopen(f"{api_url}/_local/traces/{names[0]}", timeout=10) as page:
            return str(page.read().decode())

    subject = f"e2e-{secrets.token_hex(4)}"
    try:
        buyer = Buyer(subject, token.fetch_token(subject, api_port))
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        buyer = Buyer(subject, None)  # BUYER_AUTH=none: the body's userId is the buyer
    except OSError:
        raise E2EConfigError(
            f"no make local answers on port {api_port} (start it, or set LOCAL_API_PORT)"
        ) from None
    return E2EStack(
        api_url=api_url,
        client=client,
        tables=Tables("ShowTickets", "LambdaExecutionLog", "TicketSales"),
        bucket=bucket,
        shows=show_command.local_target(
            {"DATABASE_URL": database_url, "AWS_ENDPOINT_URL": aws_url}
        ),
        buyer=buyer,
        flyer_stored=flyer_stored,
        sale_trace=sale_trace,
        forget_catalog_row=forget_catalog_row,
        state_machine_arn=machine_arn,
    )


# ---------------------------------------------------------------------------- a deployed stack


def deployed_stack(name: str) -> E2EStack:
    """A deployed stack, found by name with the caller's AWS credentials and region."""
    session = boto3.session.Session()
    cloudformation = session.client("cloudformation")
    try:
        (described,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        raise E2EConfigError(f"stack {name!r}: {error.response['Error']['Message']}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}

    def log_group(logical_id: str) -> str:
        resource = cloudformation.describe_stack_resource(
            StackName=name, LogicalResourceId=logical_id
        )["StackResourceDetail"]
        return str(resource["PhysicalResourceId"])

    flyer_logs, machine_logs = (
        log_group("FlyerFunctionLogGroup"),
        log_group("PurchaseStateMachineLogGroup"),
    )
    bucket = outputs["FlyersBucketName"]
    # TestState and CloudWatch Logs throttle early: botocore's standard retries wait them out.
    retrying = Config(retries={"mode": "standard", "max_attempts": 10})

    @functools.cache
    def client(service: str) -> Any:
        return session.client(service, config=retrying)

    logs = client("logs")

    def flyer_stored(show: str, key: str) -> str | None:
        """The flyer function's "Stored flyer" line for this upload: the catalog is private."""
        expected, since = f"s3://{bucket}/{key}", int((time.time() - 600) * 1000)

        def stored() -> str | None:
            events = logs.filter_log_events(
                logGroupName=flyer_logs,
                startTime=since,
                filterPattern='{ $.message = "Stored flyer" }',
            )["events"]
            for event in events:
                line = json.loads(event["message"])
                if line.get("event_name") == show and line.get("flyer") == expected:
                    return expected
            return None

        return wait_for(stored, AWS_LOG_WAIT_SECONDS)

    def sale_trace(since: float, until: float) -> str:
        """The sale's execution as its log group holds it (the console's Express trace): every
        event of the first succeeded execution started within the window, one JSON a line."""

        def read() -> str | None:
            # The console reads an Express execution through CloudWatch Logs Insights, the one
            # reader an Infrequent Access log group has (no FilterLogEvents): so does this.
            # Clocks differ by a few seconds at most: the window is widened by as much.
            query = logs.start_query(
                logGroupName=machine_logs,
                startTime=int(since - 5),
                endTime=int(until + 65),
                queryString="fields @message | limit 10000",
            )["queryId"]

            def finished() -> dict[str, Any] | None:
                found: dict[str, Any] = logs.get_query_results(queryId=query)
                return found if found["status"] not in ("Scheduled", "Running") else None

            answer = wait_for(finished, AWS_LOG_WAIT_SECONDS)
            assert answer and answer["status"] == "Complete", f"Logs Insights query: {answer}"
            records = [
                json.loads(field["value"])
                for row in answer["results"]
                for field in row
                if field["field"] == "@message"
            ]
            succeeded = [r["execution_arn"] for r in records if r["type"] == "ExecutionSucceeded"]
            if not succeeded:
                return None
            # Log streams interleave: the history's own event ids give its order.
            execution = [r for r in records if r["execution_arn"] == succeeded[0]]
            return "\n".join(json.dumps(r) for r in sorted(execution, key=lambda r: int(r["id"])))

        found = wait_for(read, AWS_LOG_WAIT_SECONDS)
        assert found is not None, f"no succeeded execution in {machine_logs} for the sale"
        return found

    def forget_catalog_row(show: str) -> None:
        # The catalog is private and no function deletes a row: README says so.
        return None

    stack = E2EStack(
        api_url=outputs["ApiUrl"].rstrip("/"),
        client=client,
        tables=Tables(
            outputs["ShowTicketsTableName"],
            outputs["ExecutionLogTableName"],
            outputs["TicketSalesTableName"],
        ),
        bucket=bucket,
        shows=show_command.stack_target(name),
        buyer=Buyer("", None),
        flyer_stored=flyer_stored,
        sale_trace=sale_trace,
        forget_catalog_row=forget_catalog_row,
        state_machine_arn=outputs["PurchaseStateMachineArn"],
    )
    stack.buyer = _deployed_buyer(session, parameters, outputs, stack.cleanup)
    return stack


def _deployed_buyer(
    session: boto3.session.Session,
    parameters: Mapping[str, str],
    outputs: Mapping[str, str],
    cleanup: contextlib.ExitStack,
) -> Buyer:
    """A buyer the stack's authorizer accepts: with BuyerAuth cognito, a test user created and
    confirmed with admin calls and signed in with the app client's USER_PASSWORD_AUTH flow
    (removed at the end); with oidc, E2E_TOKEN, a token of the stack's issuer; with none, a
    userId of the suite's own."""
    mode = parameters.get("BuyerAuth", "cognito")
    if mode == "none":
        return Buyer(f"e2e-{secrets.token_hex(4)}", None)
    if mode == "oidc":
        given = os.environ.get("E2E_TOKEN", "")
        if not given:
            raise E2EConfigError("BuyerAuth is oidc: give E2E_TOKEN, a token of its issuer")
        return Buyer(str(_claims(given)["sub"]), given)
    pool, client_id = outputs["BuyerUserPoolId"], outputs["BuyerAppClientId"]
    cognito = session.client("cognito-idp")
    username = f"e2e-{secrets.token_hex(6)}@example.com"
    password = secrets.token_urlsafe(24)  # the pool asks for 12 characters, nothing else
    cognito.admin_create_user(
        UserPoolId=pool,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": username},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    cleanup.callback(cognito.admin_delete_user, UserPoolId=pool, Username=username)
    # A permanent password confirms the user: no email, no challenge at sign-in.
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=username, Password=password, Permanent=True
    )
    signed_in = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    access_token = str(signed_in["AuthenticationResult"]["AccessToken"])
    return Buyer(str(_claims(access_token)["sub"]), access_token)


def _claims(jwt: str) -> dict[str, Any]:
    """A token's claims, unverified: the authorizer verifies it; the suite needs its subject."""
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims
