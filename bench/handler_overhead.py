"""Handler overhead: CPU time per request inside the purchase handler, next to a bare handler.

The real `purchase_handler.lambda_handler` runs on a sample API event with the Step Functions
client replaced by an in-memory fake that answers SUCCEEDED at once, so what is measured is the
handler's own work (Powertools resolver, logger, metrics, request parsing, card check, JSON).
The bare handler does only the JSON work: json.loads of the body, json.dumps of a similar
answer. Rounds alternate between the two.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bench.cost_model import ASSUMPTIONS, api_function
from bench.lambda_layout import add_code_to_path, function_named
from bench.measurement import BenchContext, Headline, Section, median, table

REQUESTS_PER_ROUND = 200
WARM_UP_REQUESTS = 50
SAMPLE_EVENT = "purchase_visa"
# On top of the function's variables from the template: offline values.
ENVIRONMENT = {
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:PurchaseStateMachine",
    "LEASE_SECONDS": "60",
    "POWERTOOLS_METRICS_NAMESPACE": "Ticketera",
    "POWERTOOLS_SERVICE_NAME": "purchase",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Lambda gives a function CPU in proportion to its memory: a full vCPU at 1,769 MB.
FULL_VCPU_MEMORY_MB = 1769
FUNCTION_MEMORY_MB = 128

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "PurchaseFunction"
    memory_limit_in_mb: int = FUNCTION_MEMORY_MB
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:PurchaseFunction"
    aws_request_id: str = "5b7e9a3c-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class SucceedingStepFunctions:
    """StartSyncExecution that succeeds at once, answering what the state machine would."""

    def start_sync_execution(self, **request: Any) -> dict[str, Any]:
        execution = json.loads(request["input"])
        output = {
            "executionId": execution["executionId"],
            "showId": execution["showId"],
            "quantity": execution["quantity"],
            "ticketsAvailable": 98,
            "card": execution["card"],
        }
        return {
            "executionArn": f"{request['stateMachineArn']}:{request['name']}",
            "status": "SUCCEEDED",
            "output": json.dumps(output),
        }


def bare_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The same JSON work as the purchase handler and nothing else."""
    request = json.loads(event["body"])
    body = {
        "message": "Purchase completed.",
        "executionId": f"{request['userId']}-{request['showId']}",
        "showId": request["showId"],
        "quantity": request.get("quantity", 1),
        "ticketsAvailable": 98,
        "card": {"brand": "visa", "last4": request["cardNumber"][-4:]},
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def measure(context: BenchContext) -> Section:
    from tests.events import load_event

    add_code_to_path(context.template)
    event = load_event(SAMPLE_EVENT)
    function = function_named(context.template, api_function(context.template)[0])
    environment = {**function.environment, **ENVIRONMENT}
    with _purchase_environment(environment), silenced_output():
        import purchase_handler

        real: Handler = purchase_handler.lambda_handler
        answer = real(event, FakeLambdaContext())
        if answer["statusCode"] != 200:
            raise RuntimeError(f"the purchase handler did not sell: {answer}")
        for handler in (real, bare_handler):
            _cpu_seconds_per_request(handler, event, WARM_UP_REQUESTS)
        samples: dict[str, list[float]] = {"purchase": [], "bare": []}
        for round_index in range(context.runs):
            order = [("purchase", real), ("bare", bare_handler)]
            if round_index % 2:
                order.reverse()
            for name, handler in order:
                samples[name].append(_cpu_seconds_per_request(handler, event, REQUESTS_PER_ROUND))
    return _section(context, samples)


def _cpu_seconds_per_request(handler: Handler, event: dict[str, Any], requests: int) -> float:
    lambda_context = FakeLambdaContext()
    started = time.process_time()
    for _ in range(requests):
        handler(event, lambda_context)
    return (time.process_time() - started) / requests


@contextlib.contextmanager
def _purchase_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """The function's variables and a fake Step Functions client, restored afterwards."""
    import purchase_workflow

    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    purchase_workflow.settings.cache_clear()
    real_client = purchase_workflow.sfn_client
    fake = SucceedingStepFunctions()
    purchase_workflow.sfn_client = lambda: fake  # type: ignore[assignment]
    try:
        yield
    finally:
        purchase_workflow.sfn_client = real_client
        purchase_workflow.settings.cache_clear()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def silenced_output() -> Iterator[io.StringIO]:
    """EMF metrics go to stdout and Powertools' logger to the stream it bound at import: both
    into one buffer while measuring."""
    import purchase_handler

    buffer = io.StringIO()
    handler = purchase_handler.logger.registered_handler
    stream_handler = handler if isinstance(handler, logging.StreamHandler) else None
    previous = stream_handler.setStream(buffer) if stream_handler else None
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        if stream_handler is not None and previous is not None:
            stream_handler.setStream(previous)


def _section(context: BenchContext, samples: Mapping[str, list[float]]) -> Section:
    purchase_us = median(samples["purchase"]) * 1e6
    bare_us = median(samples["bare"]) * 1e6
    ratio = purchase_us / bare_us
    share = FULL_VCPU_MEMORY_MB / FUNCTION_MEMORY_MB
    rows = [
        ["purchase handler (Step Functions faked)", f"{purchase_us:.0f}", f"{ratio:.1f}x"],
        ["bare handler (json.loads + json.dumps)", f"{bare_us:.1f}", "1.0x"],
    ]
    body = "\n".join(
        [
            f"CPU time (`time.process_time`) per request, median of {context.runs} rounds of "
            f"{REQUESTS_PER_ROUND} requests each, the two handlers alternating, after "
            f"{WARM_UP_REQUESTS} warm-up requests. Event: `events/{SAMPLE_EVENT}.json`. The "
            "purchase handler runs for real with `purchase_workflow.sfn_client` replaced by an "
            "in-memory fake answering SUCCEEDED; EMF metrics and logs go to a buffer.",
            "",
            table(["handler", "CPU µs per request", "ratio to bare"], rows),
            "",
            f"At {FUNCTION_MEMORY_MB} MB a function gets about 1/{share:.0f} of a vCPU, so "
            f"{purchase_us:.0f} µs here is roughly {purchase_us * share / 1000:.1f} ms of billed "
            "time on AWS (a different CPU, so an order of magnitude, not a figure); the cost "
            f"model assumes {ASSUMPTIONS.handler_ms:.0f} ms for the handler's own work, X-Ray "
            "included.",
        ]
    )
    headline = Headline(
        "Handler CPU per request, purchase vs bare",
        f"{purchase_us:.0f} µs vs {bare_us:.1f} µs ({ratio:.0f}x)",
    )
    return Section("Handler overhead", body, (headline,))
