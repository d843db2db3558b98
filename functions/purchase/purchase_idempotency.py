"""Client idempotency: a repeated Idempotency-Key returns the first answer without selling again.

Records live 24 hours in the IdempotencyRecords table (Powertools Idempotency). The record's key
digests the buyer and the header as one JSON list, so that no two buyers' keys collide, whatever
characters they hold; the record is checked
against the request (user, show, quantity, card brand and last 4: never the card number), so
the same key with a different request is refused. Only final answers are kept; a retry after any
other runs the same attempt again, which finds the first attempt's sale if it made one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from purchase_outcomes import IN_PROGRESS
from purchase_request import FieldError, InvalidRequestError, id_problem
from purchase_workflow import RetryableError, Sale, SaleResult

HEADER = "idempotency-key"
RECORD_SECONDS = 24 * 3600
_VISIBLE_ASCII = frozenset(chr(code) for code in range(0x21, 0x7F))
_MAX_KEY_LENGTH = 128
# What the record is keyed on: a JMESPath list, which Powertools digests as JSON, where no
# separator can be forged.
RECORD_KEY_JMESPATH = "[buyer, key]"

# Sells `sale` as the attempt of an Idempotency-Key (the user's key, None without one).
Sell = Callable[[Sale, str | None], SaleResult]


@dataclass(frozen=True, slots=True)
class KeyedSale:
    """What the idempotency record is keyed on (`buyer` and `key`) and checked against
    (`request`)."""

    buyer: str
    key: str
    request: Sale


def idempotency_key(headers: dict[str, str]) -> str | None:
    """The request's Idempotency-Key, None without one; a malformed key is an invalid request."""
    key = next((value for name, value in headers.items() if name.lower() == HEADER), None)
    if key is None:
        return None
    if not (0 < len(key) <= _MAX_KEY_LENGTH and _VISIBLE_ASCII.issuperset(key)):
        raise InvalidRequestError(
            [FieldError("Idempotency-Key", "must be 1 to 128 visible ASCII characters")]
        )
    problem = id_problem(key)
    if problem is not None:
        raise InvalidRequestError([FieldError("Idempotency-Key", problem)])
    return key


def _replayed(response: Any, idempotent_data: Any) -> Any:
    """Powertools' hook for an answer served from the record: mark it as a replay."""
    return dataclasses.replace(response, replayed=True)


@cache
def _once(sell: Sell) -> tuple[Any, Callable[..., SaleResult]]:
    """The idempotency configuration and `sell` wrapped by Powertools, built on first use.

    Imported here, not at module load: requests without the header (most) never pay for the
    idempotency utility's import or its DynamoDB client, on a cold start or otherwise.
    """
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.dataclass import (
        DataclassSerializer,
    )

    config = IdempotencyConfig(
        event_key_jmespath=RECORD_KEY_JMESPATH,
        payload_validation_jmespath="request",
        expires_after_seconds=RECORD_SECONDS,
        response_hook=_replayed,
    )
    persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])

    def sell_once(attempt: KeyedSale) -> SaleResult:
        return sell(attempt.request, attempt.key)

    once: Callable[..., SaleResult] = idempotent_function(
        sell_once,
        data_keyword_argument="attempt",
        persistence_store=persistence,
        config=config,
        output_serializer=DataclassSerializer(SaleResult),
    )
    return config, once


def answer_once(key: str, sale: Sale, sell: Sell, context: LambdaContext) -> SaleResult:
    """`sell(sale, user_key)`'s result the first time `key` is seen; the stored result afterwards.

    `sell` is a module-level function. Raises RetryableError while the first is still running and
    InvalidRequestError if the key was used for another request. When `sell` raises, nothing is
    stored, so a retry runs again.
    """
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config, once = _once(sell)
    # Lets an IN_PROGRESS record expire with the invocation if the function dies mid-sale.
    config.register_lambda_context(context)
    try:
        return once(attempt=KeyedSale(buyer=sale.user_id, key=key, request=sale))
    except IdempotencyAlreadyInProgressError:
        raise RetryableError(IN_PROGRESS) from None
    except IdempotencyValidationError:
        raise InvalidRequestError(
            [FieldError("Idempotency-Key", "was already used for a different request")]
        ) from None
