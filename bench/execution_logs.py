"""Each priced outcome run on the offline stack (the real purchase handler, moto executing the real
ASL, tables and state machine from template.yaml): its answer, its path counted from its execution
history, and its log volume."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from unittest import mock

import boto3

from bench import cost_model as cm
from offline import cfn_template, moto_server

# The outcomes priced, by the names the report gives them: a sale of a show in one item (every
# show created without buckets), a sale from a bucketed show whose first bucket drawn has
# enough (docs/design.md, A hot show), and a sold-out answer.
SALE = "sale"
BUCKET_SALE = "sale from a bucket"
SOLD_OUT = "sold out"
OUTCOMES = (SALE, BUCKET_SALE, SOLD_OUT)
# As deployed: a buyer signed in with a token (BuyerAuth's default).
SAMPLE_EVENT = "purchase_signed_in"
# The offline account, on top of the function's variables from the template: fake credentials,
# so that nothing can reach AWS.
OFFLINE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Offline endpoints have no sync-<host> to prefix StartSyncExecution with.
    "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
}
# The bucketed show: every bucket's key as long as any other's (0-3), each holding far more than
# a buyer asks for, so that the first bucket drawn has enough.
BUCKETS = 4
BUCKETED_TICKETS = 1000
# An Express execution's ARN on AWS: express:<CloudFormation-named machine>:<name>:<uuid>.
_CFN_NAME_SUFFIX = "-0123456789AB"
_EXECUTION_UUID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class OfflineRun:
    """One purchase on the offline stack and what it left behind."""

    status_code: int
    message: str
    history_events: int
    history_json_bytes: int
    path: cm.ExecutionPath
    observed: cm.ObservedExecution


def run_offline_purchases(template: Mapping[str, Any]) -> dict[str, OfflineRun]:
    """A sold-out rejection, a sale, then a sale from a bucket, by outcome name: one buyer, one
    show, each run's answer checked against the one the buyer must get."""
    # What tools.show imports: the catalog's code and the card layer that checks show names.
    for folder in ("functions/flyer", "layers/card_validation"):
        code = str(cfn_template.ROOT / folder)
        if code not in sys.path:
            sys.path.insert(0, code)
    from show_catalog import ShowSpec
    from tests.events import FakeLambdaContext, load_event
    from tools import show

    event = load_event(SAMPLE_EVENT)
    body = json.loads(event["body"])
    quantity, show_id = int(body.get("quantity", 1)), str(body["showId"])
    prices = cm.load_prices()
    # Shows as `make show` writes them: each with its own per-buyer cap.
    cap = show.template_max_per_buyer(template)
    runs = {}
    with offline_purchase_stack(template) as (dynamodb, stepfunctions, machine_arn):
        import purchase_outcomes

        for name, tickets, expected in (
            (SOLD_OUT, quantity - 1, purchase_outcomes.SOLD_OUT),
            (SALE, 100, purchase_outcomes.SOLD),
            (BUCKET_SALE, None, purchase_outcomes.SOLD),
        ):
            if tickets is None:
                spec = ShowSpec(show_id, Decimal(50), BUCKETED_TICKETS)
                show.set_stock(dynamodb, show.LOCAL_TABLES, spec, BUCKETS, cap)
            else:
                dynamodb.put_item(
                    TableName="ShowTickets",
                    Item={
                        "showId": {"S": show_id},
                        "ticketsAvailable": {"N": str(tickets)},
                        "maxPerBuyer": {"N": str(cap)},
                    },
                )
            run = _purchase(event, FakeLambdaContext(), stepfunctions, machine_arn, prices)
            if (run.status_code, run.message) != (expected.status, expected.message):
                raise RuntimeError(
                    f"{name}: expected {expected.status} {expected.message!r}, got "
                    f"{run.status_code} {run.message!r}"
                )
            runs[name] = run
    return runs


def _purchase(
    event: dict[str, Any], context: Any, stepfunctions: Any, machine_arn: str, prices: cm.PriceTable
) -> OfflineRun:
    """One purchase by the real handler, and what its execution left behind."""
    known = _execution_arns(stepfunctions, machine_arn)
    answer, output_bytes = _invoke_purchase(event, context)
    (execution_arn,) = _execution_arns(stepfunctions, machine_arn) - known
    events = stepfunctions.get_execution_history(executionArn=execution_arn)["events"]
    return OfflineRun(
        status_code=answer["statusCode"],
        message=json.loads(answer["body"])["message"],
        history_events=len(events),
        history_json_bytes=len(json.dumps(events, default=str).encode()),
        path=cm.ExecutionPath.from_history(events, prices),
        observed=cm.ObservedExecution(
            log_records=cm.log_records_from_history(events, _aws_express_arn(execution_arn)),
            function_output_bytes=output_bytes,
        ),
    )


@contextlib.contextmanager
def offline_purchase_stack(template: Mapping[str, Any]) -> Iterator[tuple[Any, Any, str]]:
    """moto running the template's tables and state machine, the purchase function's code
    importable as the Lambda runtime makes it; environment restored afterwards."""
    deployed = cfn_template.as_deployed(template)
    function = cfn_template.function(deployed, cm.api_function(template)[0], unresolved="")
    for folder in (function.code_dir, *function.layer_dirs):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    import purchase_workflow

    # Settings and clients are cached per execution environment: start afresh, and leave none
    # of this environment's behind.
    caches = [purchase_workflow.settings, purchase_workflow.sfn_client]
    moto_logger = logging.getLogger("moto")
    saved_level = moto_logger.level
    # moto logs every Fail state it runs as an error: expected here.
    moto_logger.setLevel(logging.CRITICAL)
    try:
        with (
            mock.patch.dict(os.environ, {**function.environment, **OFFLINE_ENVIRONMENT}),
            moto_server.in_process(dict(template)) as arn,
        ):
            os.environ["STATE_MACHINE_ARN"] = arn
            # Imported in the function's environment: Powertools reads it at import.
            import purchase_handler

            caches.append(purchase_handler.anonymous_buyers)
            for cached in caches:
                cached.cache_clear()
            yield boto3.client("dynamodb"), boto3.client("stepfunctions"), arn
    finally:
        for cached in caches:
            cached.cache_clear()
        moto_logger.setLevel(saved_level)


def _invoke_purchase(event: dict[str, Any], context: Any) -> tuple[dict[str, Any], int]:
    """The handler's answer and how many bytes it printed (EMF metrics and log lines): EMF goes
    to stdout and Powertools' logger to the stream it bound at import, both into one buffer."""
    import purchase_handler

    buffer = io.StringIO()
    handler = purchase_handler.logger.registered_handler
    stream_handler = handler if isinstance(handler, logging.StreamHandler) else None
    previous = stream_handler.setStream(buffer) if stream_handler else None
    try:
        with contextlib.redirect_stdout(buffer):
            answer: dict[str, Any] = purchase_handler.lambda_handler(event, context)
    finally:
        if stream_handler is not None and previous is not None:
            stream_handler.setStream(previous)
    return answer, len(buffer.getvalue().encode())


def _execution_arns(stepfunctions: Any, machine_arn: str) -> set[str]:
    executions = stepfunctions.list_executions(stateMachineArn=machine_arn)["executions"]
    return {str(execution["executionArn"]) for execution in executions}


def _aws_express_arn(execution_arn: str) -> str:
    """moto's execution ARN in the shape AWS gives an Express execution."""
    prefix, machine, name = execution_arn.rsplit(":", 2)
    account_part = prefix.removesuffix(":execution")
    return f"{account_part}:express:{machine}{_CFN_NAME_SUFFIX}:{name}:{_EXECUTION_UUID}"
