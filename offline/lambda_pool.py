"""Runs a Lambda handler the way the Lambda service does: in separate execution environments
(worker processes), each serving one invocation at a time and keeping its warm state, and at
most the function's concurrency at once: an invocation beyond it is throttled, not queued."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

_handler: Any = None
_function_name = ""


@dataclass
class LocalLambdaContext:
    """The attributes of the runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _exit_with_parent(parent: int) -> None:
    # A worker must not outlive the local stack, even one killed without a chance to clean up.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _start_environment(environ: dict[str, str], paths: list[str], handler: str, name: str) -> None:
    global _handler, _function_name
    # Ctrl-C reaches the whole process group; only the local stack itself should react to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    os.environ.update(environ)
    sys.path[:0] = paths
    module_name, _, function = handler.rpartition(".")
    _handler = getattr(importlib.import_module(module_name), function)
    _function_name = name


def _invoke(event: dict[str, Any], memory_mb: int, timeout_seconds: float) -> Any:
    context = LocalLambdaContext(
        function_name=_function_name,
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{_function_name}",
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + timeout_seconds,
    )
    return _handler(event, context)


def _warm() -> int:
    return os.getpid()


class LambdaThrottledError(Exception):
    """Lambda's TooManyRequestsException: every execution environment the function may have is
    busy. A synchronous invocation is refused at once; the function never runs
    (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html, Errors)."""


class ConcurrencyLimit:
    """A function's concurrency: at most `concurrency` invocations at once. `acquire` takes a slot
    or raises LambdaThrottledError at once, as Lambda refuses a synchronous invocation beyond it
    (it never queues one)."""

    def __init__(self, name: str, concurrency: int) -> None:
        self.name = name
        self._slots = threading.BoundedSemaphore(concurrency)

    def acquire(self) -> None:
        if not self._slots.acquire(blocking=False):
            raise LambdaThrottledError(self.name)

    def release(self) -> None:
        self._slots.release()


class LambdaPool:
    """A function's execution environments, at most `concurrency` of them: `invoke` runs the
    handler in a free one, or raises LambdaThrottledError when none is free."""

    def __init__(
        self,
        name: str,
        handler: str,
        paths: list[str],
        environ: dict[str, str],
        *,
        concurrency: int,
        memory_mb: int,
        timeout_seconds: float,
    ) -> None:
        self.name = name
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        # One slot per execution environment, held from the invocation until the environment is
        # free again (after a timeout, the handler may still be running).
        self.limit = ConcurrencyLimit(name, concurrency)
        # spawn, not fork: the parent runs server threads that a fork would copy mid-flight.
        self._executor = ProcessPoolExecutor(
            max_workers=concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_environment,
            initargs=(environ, paths, handler, name),
        )

    def warm_up(self, environments: int) -> None:
        """Start this many execution environments now; the rest start on demand."""
        for future in [self._executor.submit(_warm) for _ in range(environments)]:
            future.result()

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's return value; raises what the handler raised, TimeoutError, or
        LambdaThrottledError when `concurrency` invocations are already running."""
        self.limit.acquire()
        future = self._executor.submit(_invoke, event, self.memory_mb, self.timeout_seconds)
        try:
            return future.result(timeout=self.timeout_seconds)
        finally:
            # Freed here, before the caller answers, so that a client's next request never
            # finds its own finished invocation still counted.
            if future.done():
                self.limit.release()
            else:
                future.add_done_callback(lambda _: self.limit.release())

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
