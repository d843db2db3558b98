"""Shared test setup: an offline AWS account, a Lambda context, and the purchase stack on moto."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from card_numbers import find_card_numbers
from show_catalog import ShowSpec
from tests import reliability
from tests.events import FakeLambdaContext
from tools import show as show_command

# Before any handler module is imported: these are read at import or first use.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    # Offline endpoints have no sync-<host> to prefix StartSyncExecution with.
    AWS_DISABLE_HOST_PREFIX_INJECTION="true",
    POWERTOOLS_METRICS_NAMESPACE="Ticketera",
    POWERTOOLS_SERVICE_NAME="purchase",
    LEASE_SECONDS="60",
    # The seed's anonymous contract (userId in the body) unless a test signs its buyer in.
    BUYER_AUTH="none",
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        reliability.write_report(Path(target), passed=exitstatus == 0)


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def purchase_logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Everything the purchase function logs (JSON lines), as the Lambda runtime would see it."""
    import purchase_handler

    # Powertools binds its handler to the stdout of import time, which pytest does not capture
    # per test: point it at a buffer instead.
    buffer = io.StringIO()
    monkeypatch.setattr(purchase_handler.logger.registered_handler, "stream", buffer)
    return buffer


@dataclass
class PurchaseStack:
    """The purchase path on moto: tables and state machine created from template.yaml."""

    dynamodb: Any
    stepfunctions: Any
    state_machine_arn: str

    def add_show(
        self, show_id: str, tickets: int, buckets: int = 1, max_per_buyer: int | None = None
    ) -> None:
        """A show of `tickets`: in its one item, or spread over `buckets` as `make show` does;
        with a per-buyer cap of its own, or (None) the stack's."""
        if buckets == 1:
            item = {"showId": {"S": show_id}, "ticketsAvailable": {"N": str(tickets)}}
            if max_per_buyer is not None:
                item["maxPerBuyer"] = {"N": str(max_per_buyer)}
            self.dynamodb.put_item(TableName="ShowTickets", Item=item)
            return
        spec = ShowSpec(show_id, Decimal(10), tickets)
        show_command.set_stock(
            self.dynamodb, show_command.LOCAL_TABLES, spec, buckets, max_per_buyer
        )

    def tickets_left(self, show_id: str) -> int:
        """Every ticket the show has left: its item's, or its buckets' and its pool's."""
        stock = show_command.read_stock(self.dynamodb, show_command.LOCAL_TABLES, show_id)
        assert stock is not None, f"no show {show_id!r}"
        return stock.available

    def bucket_levels(self, show_id: str) -> tuple[int, ...]:
        stock = show_command.read_stock(self.dynamodb, show_command.LOCAL_TABLES, show_id)
        assert stock is not None, f"no show {show_id!r}"
        return stock.bucket_levels

    def claim(self, execution_id: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName="LambdaExecutionLog", Key={"executionId": {"S": execution_id}}
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def sales(self, show_id: str) -> list[dict[str, Any]]:
        """The show's sale records, from every one of its TicketSales keys."""
        items: list[dict[str, Any]] = []
        for key in show_command.sales_keys(show_id):
            response = self.dynamodb.query(
                TableName="TicketSales",
                KeyConditionExpression="showId = :show",
                ExpressionAttributeValues={":show": {"S": key}},
                ConsistentRead=True,
            )
            items += response["Items"]
        return items

    def tickets_sold(self, show_id: str) -> int:
        return sum(int(sale["quantity"]["N"]) for sale in self.sales(show_id))

    def everything_stored(self) -> str:
        """Every table item, execution input, output and history event, as one text."""
        parts: list[Any] = []
        for table in self.dynamodb.list_tables()["TableNames"]:
            parts.extend(self.dynamodb.scan(TableName=table)["Items"])
        executions = self.stepfunctions.list_executions(stateMachineArn=self.state_machine_arn)
        for execution in executions["executions"]:
            arn = execution["executionArn"]
            parts.append(self.stepfunctions.describe_execution(executionArn=arn))
            parts.append(self.stepfunctions.get_execution_history(executionArn=arn)["events"])
        return json.dumps(parts, default=str)


@pytest.fixture
def purchase_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[PurchaseStack]:
    """moto with Step Functions really executing the ASL, plus StartSyncExecution, behind the
    DynamoDB contention engine at its default settings."""
    import purchase_idempotency
    import purchase_workflow
    from offline import cfn_template, moto_server

    with moto_server.in_process(cfn_template.load_template()) as arn:
        dynamodb = boto3.client("dynamodb")
        stepfunctions = boto3.client("stepfunctions")
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "IdempotencyRecords")
        # Settings and clients are cached per execution environment: start each test afresh.
        caches = (
            purchase_workflow.settings,
            purchase_workflow.sfn_client,
            purchase_idempotency._once,
        )
        for cached in caches:
            cached.cache_clear()
        stack = PurchaseStack(dynamodb, stepfunctions, arn)
        yield stack
        for cached in caches:
            cached.cache_clear()
        # Whatever the test did, no card number may have reached a table or an execution.
        stored = stack.everything_stored()
        assert find_card_numbers(stored) == []
        reliability.add("pan_scanned_bytes", len(stored.encode()))
