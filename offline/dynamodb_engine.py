"""DynamoDB as it behaves under contention, in front of moto's DynamoDB.

moto answers one request correctly but knows nothing of what happens when requests meet. This
engine adds what DynamoDB does then, so that the sale is judged on the behaviour it meets on AWS
(sources in docs/dynamodb-engine.md):
- a TransactWriteItems holds its items from prepare to commit; another transaction reaching a
  held item is cancelled with reason TransactionConflict, and a PutItem, UpdateItem or DeleteItem
  on it fails with TransactionConflictException; a GetItem never conflicts;
- each item takes at most ITEM_WCU write units and ITEM_RCU read units a second (a hot item sits
  alone on its partition at best); beyond that a request is throttled: a single-item request with
  ProvisionedThroughputExceededException (ThrottlingReasons Table*KeyRangeThroughputExceeded), a
  transaction with a cancellation reason ThrottlingError;
- ClientRequestToken: a repeat within 10 minutes of a committed transaction succeeds without
  writing again, a repeat while it runs fails with TransactionInProgressException, the same token
  with another request fails with IdempotentParameterMismatchException;
- faults (errors, lost answers, delays) are switched on through `ENGINE.faults`.

moto itself runs one request at a time (it has no locks: concurrent requests lose acknowledged
writes); the hold window is spent outside that lock, so transactions really overlap.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.responses import DynamoHandler

# Published uncontended latency from Lambda: TransactWriteItems p50 25.3 ms, PutItem p50 7.55 ms.
# The difference is what the two-phase protocol adds, the time its items are held.
DEFAULT_TRANSACTION_MS = 18.0
# One partition's ceiling; adaptive capacity can give a hot item a partition of its own, no more.
DEFAULT_ITEM_WCU = 1000
DEFAULT_ITEM_RCU = 3000
TOKEN_SECONDS = 600
_PREFIX = "com.amazonaws.dynamodb.v20120810#"
# The API actions the engine models, and the names of moto's handler methods for them.
_ACTION_NAMES = {
    "TransactWriteItems": "transact_write_items",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "GetItem": "get_item",
}
_ENGINE_ACTIONS = tuple(_ACTION_NAMES.values())


class SettingError(ValueError):
    """An engine setting in the environment is not a number it can use."""


@dataclass(frozen=True)
class Settings:
    transaction_seconds: float
    item_wcu: float
    item_rcu: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            transaction_seconds=_number(
                environ, "LOCAL_DYNAMODB_TRANSACTION_MS", DEFAULT_TRANSACTION_MS
            )
            / 1000,
            item_wcu=_number(environ, "LOCAL_DYNAMODB_ITEM_WCU", DEFAULT_ITEM_WCU, positive=True),
            item_rcu=_number(environ, "LOCAL_DYNAMODB_ITEM_RCU", DEFAULT_ITEM_RCU, positive=True),
        )


def _number(
    environ: Mapping[str, str], name: str, default: float, *, positive: bool = False
) -> float:
    text = environ.get(name) or str(default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "a number > 0" if positive else "a number >= 0"
        raise SettingError(f"{name} must be {kind}, not {text!r}")
    return value


@dataclass
class Fault:
    """A failure the engine injects into matching requests.

    `action` is the API name (PutItem, TransactWriteItems...); `table` None matches any table
    (a transaction matches when any of its items is in the table). `error` is the code to fail
    with (TransactionConflict: a transaction cancelled by a conflict on each of its items);
    `after` applies the request first, so only the answer is lost. `delay_seconds` stalls the
    call. `hook` runs where the fault strikes, before the call or (`after`) once it is applied:
    a test may stop a workflow there. The first `skip` matching calls pass untouched, the next
    `times` are hit.
    """

    action: str
    table: str | None = None
    error: str | None = None
    after: bool = False
    delay_seconds: float = 0.0
    hook: Callable[[], None] | None = None
    skip: int = 0
    times: int = 1_000_000
    seen: int = 0
    hits: int = 0


@dataclass
class _TokenBucket:
    rate: float
    level: float
    at: float

    def take(self, units: float, now: float) -> bool:
        self.level = min(self.rate, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level < units:
            return False
        self.level -= units
        return True


@dataclass
class _Token:
    digest: str
    committed: bool
    at: float
    result: Any = None


ItemRef = tuple[str, str]


def _error(code: str, message: str, status: int = 400, **fields: Any) -> JsonRESTError:
    error = JsonRESTError(_PREFIX + code, message)
    error.code = status
    error.description = json.dumps({"__type": _PREFIX + code, "message": message, **fields})
    return error


@dataclass
class Engine:
    # The published defaults until `reset` reads the environment (a bad value then fails there,
    # not at import).
    settings: Settings = field(default_factory=lambda: Settings.from_env({}))
    faults: list[Fault] = field(default_factory=list)
    # What the engine did: conflicts, throttles, replays... (tests and benchmarks read it).
    counts: Counter[str] = field(default_factory=Counter)
    moto_lock: threading.RLock = field(default_factory=threading.RLock)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _held: dict[ItemRef, str] = field(default_factory=dict)
    _buckets: dict[tuple[ItemRef, str], _TokenBucket] = field(default_factory=dict)
    _tokens: dict[str, _Token] = field(default_factory=dict)

    def reset(self, settings: Settings | None = None) -> None:
        """Forget faults, counts, holds, capacity and tokens (a fresh account)."""
        with self._lock:
            self.settings = settings or Settings.from_env()
            self.faults.clear()
            self.counts.clear()
            self._held.clear()
            self._buckets.clear()
            self._tokens.clear()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    # ------------------------------------------------------------------ dispatch
    def handle(
        self, action: str, request: dict[str, Any], backend: Any, run: Callable[[], Any]
    ) -> Any:
        refs = _item_refs(action, request, backend)
        fault = self._matching_fault(action, {table for table, _ in refs})
        if fault is None:
            return self._handle(action, request, refs, run)
        if fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        result = self._handle(action, request, refs, run) if fault.after else None
        if fault.hook:
            fault.hook()
        if fault.error:
            raise _fault_error(fault.error, len(refs))
        return result if fault.after else self._handle(action, request, refs, run)

    def _handle(
        self, action: str, request: dict[str, Any], refs: list[ItemRef], run: Callable[[], Any]
    ) -> Any:
        if action == "transact_write_items":
            return self._transact(request, refs, run)
        if action == "get_item":
            units = _size_units(request.get("Key", {}), 4096) * (
                1.0 if request.get("ConsistentRead") else 0.5
            )
            self._take_single(refs[0], "read", units)
            with self.moto_lock:
                return run()
        units = _size_units(request.get("Item") or request.get("Key", {}), 1024)
        with self.moto_lock:
            with self._lock:
                if refs[0] in self._held:
                    self.counts["write_conflicts"] += 1
                    raise _error(
                        "TransactionConflictException",
                        "Transaction is ongoing for the item",
                    )
            self._take_single(refs[0], "write", units)
            return run()

    def _matching_fault(self, action: str, tables: set[str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                name = _ACTION_NAMES.get(fault.action, fault.action)
                if name != action or (fault.table is not None and fault.table not in tables):
                    continue
                fault.seen += 1
                if fault.skip < fault.seen and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    # ------------------------------------------------------------------ capacity
    def _take(self, ref: ItemRef, kind: str, units: float, now: float) -> bool:
        rate = self.settings.item_wcu if kind == "write" else self.settings.item_rcu
        bucket = self._buckets.setdefault((ref, kind), _TokenBucket(rate, rate, now))
        return bucket.take(units, now)

    def _take_single(self, ref: ItemRef, kind: str, units: float) -> None:
        with self._lock:
            taken = self._take(ref, kind, units, time.monotonic())
            if not taken:
                self.counts[f"{kind}_throttles"] += 1
        if not taken:
            reason = (
                "TableWriteKeyRangeThroughputExceeded"
                if kind == "write"
                else ("TableReadKeyRangeThroughputExceeded")
            )
            raise _error(
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
                ThrottlingReasons=[{"reason": reason, "resource": f"table/{ref[0]}"}],
            )

    # ------------------------------------------------------------------ transactions
    def _transact(
        self, request: dict[str, Any], refs: list[ItemRef], run: Callable[[], Any]
    ) -> Any:
        token = request.get("ClientRequestToken")
        digest = _digest(request)
        transaction = uuid.uuid4().hex
        with self.moto_lock:
            with self._lock:
                now = time.monotonic()
                if token:
                    replay = self._check_token(token, digest, now)
                    if replay is not None:
                        return replay.result
                self._hold(request, refs, transaction, now)
                if token:
                    self._tokens[token] = _Token(digest, committed=False, at=now)
            try:
                # Conditions are checked and the writes made where the hold begins (a held item
                # can change for no one else, so this is the same as checking at prepare).
                result = run()
            except BaseException:
                self._release(refs, transaction, token)
                raise
        # The rest of the two-phase protocol, outside moto's lock: the items stay held.
        time.sleep(self.settings.transaction_seconds)
        self._release(refs, transaction)
        with self._lock:
            self.counts["transactions_committed"] += 1
            if token:
                self._tokens[token] = _Token(
                    digest, committed=True, at=time.monotonic(), result=result
                )
        return result

    def _hold(
        self, request: dict[str, Any], refs: list[ItemRef], transaction: str, now: float
    ) -> None:
        """Take the transaction's items, or cancel it: throttled or conflicting, per item."""
        # Each item costs 2 write units per KB (prepare and commit), cancelled or not.
        units = [
            2 * _size_units(_transact_payload(action), 1024) for action in request["TransactItems"]
        ]
        throttled = [
            not self._take(ref, "write", n, now) for ref, n in zip(refs, units, strict=True)
        ]
        conflicts = [ref in self._held for ref in refs]
        if any(throttled) or any(conflicts):
            self.counts["transaction_throttles" if any(throttled) else "transaction_conflicts"] += 1
            raise TransactionCanceledException(
                [
                    (
                        "ThrottlingError",
                        "Throughput exceeds the current capacity of your table or index.",
                        None,
                    )
                    if throttle
                    else ("TransactionConflict", "Transaction is ongoing for the item", None)
                    if conflict
                    else (None, None, None)
                    for throttle, conflict in zip(throttled, conflicts, strict=True)
                ]
            )
        for ref in refs:
            self._held[ref] = transaction

    def _release(self, refs: list[ItemRef], transaction: str, token: str | None = None) -> None:
        """Free the transaction's items; with the token of a cancelled one, forget the token."""
        with self._lock:
            for ref in refs:
                if self._held.get(ref) == transaction:
                    del self._held[ref]
            if token:
                self._tokens.pop(token, None)

    def _check_token(self, token: str, digest: str, now: float) -> _Token | None:
        """The committed transaction a repeated token replays; raises if it cannot be replayed."""
        known = self._tokens.get(token)
        if known is None or now - known.at > TOKEN_SECONDS:
            return None
        if known.digest != digest:
            self.counts["token_mismatches"] += 1
            raise _error(
                "IdempotentParameterMismatchException",
                "Request parameters do not match the previous request with this ClientRequestToken",
            )
        if not known.committed:
            self.counts["token_in_progress"] += 1
            raise _error(
                "TransactionInProgressException",
                "The transaction with the given request token is already in progress.",
            )
        self.counts["token_replays"] += 1
        return known


def _fault_error(code: str, items: int) -> Exception:
    if code == "TransactionConflict":
        return TransactionCanceledException([(code, "injected conflict", None)] * items)
    status = 500 if code == "InternalServerError" else 400
    return _error(code, f"injected {code}", status)


def _digest(request: dict[str, Any]) -> str:
    fields = {name: value for name, value in request.items() if name != "ClientRequestToken"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _size_units(attributes: dict[str, Any], unit_bytes: int) -> int:
    return max(1, math.ceil(len(json.dumps(attributes)) / unit_bytes))


def _transact_payload(action: dict[str, Any]) -> dict[str, Any]:
    (operation,) = action.values()
    payload: dict[str, Any] = operation.get("Item") or operation.get("Key", {})
    return payload


def _item_refs(action: str, request: dict[str, Any], backend: Any) -> list[ItemRef]:
    if action == "transact_write_items":
        operations = [next(iter(item.values())) for item in request["TransactItems"]]
    else:
        operations = [request]
    return [_ref(operation, backend) for operation in operations]


def _ref(operation: dict[str, Any], backend: Any) -> ItemRef:
    table_name = operation["TableName"]
    table = backend.get_table(table_name)
    attributes = operation.get("Key") or operation.get("Item", {})
    key_names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
    key = {name: attributes.get(name) for name in key_names}
    return table_name, json.dumps(key, sort_keys=True)


ENGINE = Engine()
_installed = False


def install() -> Engine:
    """Put the engine in front of moto's DynamoDB in this process (idempotent)."""
    global _installed
    if _installed:
        return ENGINE
    moto_call_action = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        # Operations the engine does not model run one at a time, as all of moto must.
        if _action_of(self) in _ENGINE_ACTIONS:
            return moto_call_action(self)
        with ENGINE.moto_lock:
            return moto_call_action(self)

    for action in _ENGINE_ACTIONS:
        setattr(DynamoHandler, action, _through_engine(action, getattr(DynamoHandler, action)))
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _installed = True
    return ENGINE


def _action_of(handler: DynamoHandler) -> str:
    target = str(handler.headers.get("X-Amz-Target", ""))
    return _ACTION_NAMES.get(target.rpartition(".")[2], "")


def _through_engine(action: str, moto_method: Callable[[DynamoHandler], Any]) -> Callable[..., Any]:
    def method(self: DynamoHandler) -> Any:
        return ENGINE.handle(action, self.body, self.dynamodb_backend, lambda: moto_method(self))

    return method
