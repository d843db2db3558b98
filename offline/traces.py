"""Execution traces, as the Step Functions console shows them: each state entered and exited,
in order, with durations, rendered inputs and outputs, and any error and cause.

    python -m offline.traces              # the recent executions
    python -m offline.traces NAME         # one execution's trace (name or ARN)
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import boto3

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
STATE_MACHINE_NAME = "PurchaseStateMachine"


@dataclass
class StateStep:
    name: str
    kind: str
    entered: datetime
    input: str
    exited: datetime | None = None
    output: str | None = None
    resource: str | None = None
    parameters: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Trace:
    name: str
    arn: str
    status: str
    started: datetime
    stopped: datetime | None
    input: str
    output: str | None
    error: str | None
    cause: str | None
    steps: list[StateStep]


def build_trace(execution: dict[str, Any], events: list[dict[str, Any]]) -> Trace:
    """Pair each *StateEntered event with its *StateExited, attaching task details and errors."""
    steps: list[StateStep] = []
    for event in events:
        kind = event["type"]
        at = event["timestamp"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            steps.append(
                StateStep(details["name"], kind.removesuffix("StateEntered"), at, details["input"])
            )
        elif kind.endswith("StateExited") and steps:
            steps[-1].exited = at
            steps[-1].output = event["stateExitedEventDetails"].get("output")
        elif kind == "TaskScheduled" and steps:
            details = event["taskScheduledEventDetails"]
            steps[-1].resource = f"{details['resourceType']}:{details['resource']}"
            steps[-1].parameters = details.get("parameters")
        elif kind.endswith("Failed") and kind != "ExecutionFailed" and steps:
            details = next(v for k, v in event.items() if k.endswith("EventDetails"))
            steps[-1].errors.append((details.get("error", ""), details.get("cause", "")))
    stopped = execution.get("stopDate")
    if steps and steps[-1].exited is None:
        steps[-1].exited = stopped
    return Trace(
        name=execution["name"],
        arn=execution["executionArn"],
        status=execution["status"],
        started=execution["startDate"],
        stopped=stopped,
        input=execution.get("input", ""),
        output=execution.get("output"),
        error=execution.get("error"),
        cause=execution.get("cause"),
        steps=steps,
    )


class Executions:
    """Reads executions of the local purchase state machine."""

    def __init__(self, endpoint_url: str = DEFAULT_ENDPOINT) -> None:
        self.client = boto3.client(
            "stepfunctions",
            endpoint_url=endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        )

    def state_machine_arn(self) -> str:
        machines = self.client.list_state_machines()["stateMachines"]
        arn: str = next(m["stateMachineArn"] for m in machines if m["name"] == STATE_MACHINE_NAME)
        return arn

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        executions: list[dict[str, Any]] = self.client.list_executions(
            stateMachineArn=self.state_machine_arn()
        )["executions"]
        return sorted(executions, key=lambda e: e["startDate"], reverse=True)[:limit]

    def trace(self, name_or_arn: str) -> Trace:
        arn = name_or_arn
        if not arn.startswith("arn:"):
            machine = self.state_machine_arn()
            arn = machine.replace(":stateMachine:", ":execution:") + f":{name_or_arn}"
        execution = self.client.describe_execution(executionArn=arn)
        events = self.client.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return build_trace(execution, events)


def _ms(start: datetime, end: datetime | None) -> str:
    """How long from `start` to `end`; "running" when it has not ended."""
    return "running" if end is None else f"{(end - start).total_seconds() * 1000:.0f} ms"


def _pretty(text: str | None) -> str:
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def render_list(executions: list[dict[str, Any]]) -> str:
    lines = [f"{'started':26} {'status':10} name"]
    for execution in executions:
        started = execution["startDate"].isoformat(timespec="milliseconds")
        lines.append(f"{started:26} {execution['status']:10} {execution['name']}")
    return "\n".join(lines)


def render_text(trace: Trace) -> str:
    outcome = f" {trace.error}: {trace.cause}" if trace.error else ""
    lines = [
        f"Execution {trace.name}: {trace.status}{outcome} ({_ms(trace.started, trace.stopped)})",
        f"  input:  {_pretty(trace.input)}",
    ]
    if trace.output:
        lines.append(f"  output: {_pretty(trace.output)}")
    for number, step in enumerate(trace.steps, 1):
        offset = (step.entered - trace.started).total_seconds() * 1000
        task = f" {step.resource}" if step.resource else ""
        took = _ms(step.entered, step.exited)
        lines.append(f"{number:3}. {step.name} [{step.kind}{task}] +{offset:.0f} ms, {took}")
        lines.append(f"       input:      {_pretty(step.input)}")
        if step.parameters:
            lines.append(f"       parameters: {_pretty(step.parameters)}")
        for error, cause in step.errors:
            lines.append(f"       error:      {error}: {cause}")
        if step.output is not None:
            lines.append(f"       output:     {_pretty(step.output)}")
    return "\n".join(lines)


def render_html_list(executions: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(e['startDate']))}</td><td>{html.escape(e['status'])}</td>"
        f"<td><a href='/_local/traces/{quote(e['name'])}'>{html.escape(e['name'])}</a></td></tr>"
        for e in executions
    )
    return _page(
        "Recent executions",
        f"<table><tr><th>started</th><th>status</th><th>execution</th></tr>{rows}</table>",
    )


def render_html(trace: Trace) -> str:
    outcome = f" - {trace.error}: {trace.cause}" if trace.error else ""
    outcome += f" in {_ms(trace.started, trace.stopped)}"
    items = []
    for number, step in enumerate(trace.steps, 1):
        task = f" <code>{html.escape(step.resource)}</code>" if step.resource else ""
        errors = "".join(
            f"<p class='error'>{html.escape(e)}: {html.escape(c)}</p>" for e, c in step.errors
        )
        parts = [("input", step.input), ("parameters", step.parameters), ("output", step.output)]
        blocks = "".join(
            f"<h4>{label}</h4><pre>{html.escape(_pretty(text))}</pre>"
            for label, text in parts
            if text is not None
        )
        items.append(
            f"<li><details><summary>{number}. <b>{html.escape(step.name)}</b> "
            f"[{html.escape(step.kind)}{task}] {_ms(step.entered, step.exited)}</summary>"
            f"{errors}{blocks}</details></li>"
        )
    body = (
        f"<p>{html.escape(trace.status)}{html.escape(outcome)}</p>"
        f"<h4>input</h4><pre>{html.escape(_pretty(trace.input))}</pre>"
        f"<ol>{''.join(items)}</ol><p><a href='/_local/traces'>all executions</a></p>"
    )
    return _page(f"Execution {trace.name}", body)


def _page(title: str, body: str) -> str:
    style = (
        "body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:.5em;"
        "white-space:pre-wrap}td,th{padding:.2em 1em;text-align:left}.error{color:#b00}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("execution", nargs="?", help="execution name or ARN; omit to list")
    parser.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    parser.add_argument("--limit", type=int, default=20)
    arguments = parser.parse_args(argv)
    executions = Executions(arguments.endpoint_url)
    try:
        if arguments.execution:
            print(render_text(executions.trace(arguments.execution)))
        else:
            print(render_list(executions.recent(arguments.limit)))
    # A command line answers in one line, whatever went wrong.
    except Exception as error:
        print(f"traces: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
