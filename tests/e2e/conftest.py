"""The stack `make e2e` tests, chosen from the environment: E2E_STACK, a deployed stack's name;
else E2E_START_LOCAL=1, a `make local` of the suite's own on free ports (what `make test` runs);
else a running `make local` (LOCAL_API_PORT, LOCAL_AWS_PORT, DATABASE_URL).

Run with `--confcutdir tests/e2e` (the Makefile does): tests/conftest.py replaces the AWS
credentials with fakes, which a deployed stack refuses.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import pytest

from tests.e2e.e2e_stack import FINDINGS, E2EConfigError, E2EStack, deployed_stack, local_stack
from tests.local_stack_process import RunningStack, ports


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """What only AWS can settle is deselected (not skipped) against `make local`."""
    if os.environ.get("E2E_STACK"):
        return
    aws_only = [item for item in items if item.get_closest_marker("aws_only")]
    if aws_only:
        config.hook.pytest_deselected(items=aws_only)
        items[:] = [item for item in items if item not in aws_only]


@pytest.fixture(scope="session")
def stack() -> Iterator[E2EStack]:
    with contextlib.ExitStack() as started:
        try:
            target = _target(started)
        except E2EConfigError as error:
            pytest.fail(f"make e2e: {error}", pytrace=False)
        with target.cleanup:
            yield target


def _target(started: contextlib.ExitStack) -> E2EStack:
    name = os.environ.get("E2E_STACK")
    if name:
        return deployed_stack(name)
    if not os.environ.get("E2E_START_LOCAL"):
        return local_stack(os.environ)
    environment = ports()
    running = RunningStack(environment)
    started.callback(running.stop)
    running.wait_ready()
    # The catalog URL the banner gives `make show`, as a user would copy it.
    match = re.search(r"DATABASE_URL='(mysql://[^']+)'", running.text)
    if match is None:
        message = f"make local started without a catalog (no MariaDB):\n{running.text}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return local_stack({**environment, "DATABASE_URL": match.group(1)})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FINDINGS:
        terminalreporter.section("what AWS answered")
        for finding in FINDINGS:
            terminalreporter.write_line(finding)
