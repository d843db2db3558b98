"""JSONata for moto's ASL interpreter: evaluated with jsonata-python, with the functions Step
Functions adds, failing as Step Functions does.

moto's interpreter (a vendored copy of LocalStack's) parses JSONata states and writes each
expression as one text: the `$states` it reads and every Assign'd variable declared in front of
it, `($states:={...};$price:=50;<expression>)`. LocalStack evaluates that text with the Java
implementation (jsonata-java, through a JVM); moto leaves the evaluator unset. jsonata-python is a
port of the same Java implementation. A state's expressions are evaluated here with their values
bound to the expression parsed once (`_eval_jsonata_string`); the text form is what moto's other
callers get (`evaluate`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from jsonata import Jsonata
from jsonata.functions import Functions
from jsonata.utils import Utils
from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.string.string_expression import (
    StringJSONata,
)
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as moto_functions
from moto.stepfunctions.parser.asl.eval import states, variable_store
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

# The functions Step Functions adds to JSONata, as its guide documents them ("JSONata functions
# provided by Step Functions",
# https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html). moto declares
# them as JSONata text in front of each expression instead: $hash and $uuid there return the text
# "... is currently not supported", $random takes no seed ($randomSeeded, a name AWS does not
# have, does), $parse runs $eval, which accepts any JSONata, not only JSON, $partition ends
# some arrays with an empty chunk ($partition([1..8], 3)) and $range of one number returns the
# number, not an array of it.
HASH_ALGORITHMS = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


class StepFunctionsFunctionError(ValueError):
    """A Step Functions JSONata function called with arguments it does not take."""


def _hash(data: Any, algorithm: Any) -> str:
    if not isinstance(data, str):
        raise StepFunctionsFunctionError(f"$hash hashes a string, not {data!r}")
    if algorithm not in HASH_ALGORITHMS:
        raise StepFunctionsFunctionError(
            f"$hash algorithm {algorithm!r} is not one of {', '.join(HASH_ALGORITHMS)}"
        )
    return hashlib.new(HASH_ALGORITHMS[algorithm], data.encode()).hexdigest()


def _random(seed: Any = None) -> float:
    # In [0, 1); one seed, one number. AWS's generator is not documented: a seed gives the same
    # number every time here too, not AWS's number.
    if seed is None:
        return random.random()  # noqa: S311 - JSONata's $random, not a secret
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StepFunctionsFunctionError(f"$random takes an integer seed, not {seed!r}")
    return random.Random(seed).random()  # noqa: S311 - JSONata's $random, not a secret


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        raise StepFunctionsFunctionError(f"$parse parses a JSON string, not {text!r}")
    return json.loads(text)


def _partition(array: Any, chunk_size: Any) -> list[Any]:
    if not isinstance(array, list):
        array = [array]
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise StepFunctionsFunctionError(
            f"$partition takes a positive chunk size, not {chunk_size!r}"
        )
    return [list(array[start : start + chunk_size]) for start in range(0, len(array), chunk_size)]


def _range(first: Any, last: Any, step: Any) -> list[Any]:
    # Both ends included, as States.ArrayRange: $range(0, 10, 2) is [0, 2, 4, 6, 8, 10].
    numbers = (first, last, step)
    if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers) or step == 0:
        raise StepFunctionsFunctionError(
            f"$range takes integers and a step other than 0: {numbers}"
        )
    return list(range(first, last + (1 if step > 0 else -1), step))


def _eval_unavailable(*_: Any) -> Any:
    raise StepFunctionsFunctionError("$eval is not available in Step Functions: use $parse")


STEP_FUNCTIONS_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
    "partition": _partition,
    "range": _range,
    "eval": _eval_unavailable,
}
_BINDINGS = {name: Jsonata.JLambda(function) for name, function in STEP_FUNCTIONS_FUNCTIONS.items()}


def evaluate(expression: str) -> Any:
    """The value of a JSONata `expression` with no input, as plain JSON values: None for both
    null and undefined, as moto's Java path returns them (moto tells them apart with $exists)."""
    try:
        result = Jsonata(expression).evaluate(None, _BINDINGS)
    except Exception as error:
        # As moto's Java path: whatever the evaluation raises (jsonata-python raises its own
        # JException and also plain ValueError, TypeError, ...) is the expression's failure, which
        # StringJSONata below turns into AWS's States.QueryEvaluationError.
        raise moto_jsonata.JSONataException(type(error).__name__, str(error)) from error
    # Through JSON text, as the Java path does with Jackson: no jsonata-python sequence, null
    # sentinel or function object leaves the evaluator.
    return json.loads(json.dumps(result, cls=Functions.Encoder))


def encode_variable_declarations(bindings: dict[str, Any]) -> str:
    """`$name:=<value>;` for each binding, each value a JSONata literal.

    moto writes a string value between double quotes unescaped (a `"` in a buyer's name breaks the
    expression or, worse, becomes code) and escapes every other non-ASCII character as JSON does,
    an emoji as two \\u surrogates that jsonata-python reads as two broken characters. JSON text
    with the characters themselves is a JSONata literal of the same value.
    """
    return "".join(
        f"{name}:={json.dumps(value, ensure_ascii=False, default=str, separators=(',', ':'))};"
        for name, value in bindings.items()
    )


@functools.lru_cache(maxsize=4096)
def _compiled(expression: str) -> Jsonata:
    """An expression of the state machine, parsed once: its values come in as bindings. A parsed
    expression keeps no state of an evaluation (each gets a frame of its own)."""
    compiled = Jsonata(expression)
    # None is undefined, Utils.NULL_VALUE is null: the two must stay apart here.
    compiled.set_output_convert_nulls(False)
    return compiled


def _as_jsonata_value(value: Any) -> Any:
    """A JSON value as jsonata-python binds it: its nulls as JSONata's null, not undefined."""
    if value is None:
        return Utils.NULL_VALUE
    if isinstance(value, dict):
        return {key: _as_jsonata_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_jsonata_value(item) for item in value]
    return value


def _query_evaluation_failure(env: Environment, cause: str) -> FailureEventException:
    """AWS's States.QueryEvaluationError, which a Catch can take, its EvaluationFailed event
    recorded."""
    name = StatesErrorName(typ=StatesErrorNameType.StatesQueryEvaluationError)
    details = EvaluationFailedEventDetails(error=name.error_name, cause=cause)
    failure = FailureEvent(
        env=env,
        error_name=name,
        event_type=HistoryEventType.EvaluationFailed,
        # moto's EventDetails declares every kind of details required; one is given.
        event_details=EventDetails(evaluationFailedEventDetails=details),  # type: ignore[typeddict-item]
    )
    exception = FailureEventException(failure_event=failure)
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.EvaluationFailed,
        event_details=EventDetails(  # type: ignore[typeddict-item]
            evaluationFailedEventDetails=exception.get_evaluation_failed_event_details()
        ),
    )
    return exception


def _eval_jsonata_string(self: StringJSONata, env: Environment) -> None:
    # moto writes $states and every variable as JSONata text in front of the expression and
    # parses the whole text for each evaluation, then evaluates it again to check a null or a
    # string result; parsing dominates, and a pure-Python parser made a sale's execution several
    # times slower. The same values are bound to the expression parsed once instead. AWS fails a
    # state whose expression raises, or evaluates to nothing, with States.QueryEvaluationError,
    # which a Catch can take; moto let the exception through as States.Runtime, which none takes.
    # Illegal references ($$, $eval, ...) are refused as moto refuses them.
    moto_jsonata.extract_jsonata_variable_references(self.expression)
    # Where moto's own declarations read them from: the variables of the outer and inner scope,
    # and $states.
    store = env.variable_store
    variables = {**store._outer_scope, **store._inner_scope}
    bindings = {
        **{name: _as_jsonata_value(value) for name, value in variables.items()},
        "states": _as_jsonata_value(env.states._states_data),
        **_BINDINGS,
    }
    try:
        result = _compiled(self.expression).evaluate(None, bindings)
    except Exception as error:
        raise _query_evaluation_failure(
            env, f"The JSONata expression '{self.expression}' failed: {error}"
        ) from error
    if result is None:
        raise _query_evaluation_failure(
            env, f"The JSONata expression '{self.expression}' returned nothing (undefined)."
        )
    # Through JSON text, as moto's Java path does with Jackson: no jsonata-python sequence, null
    # sentinel or function object leaves the evaluator.
    env.stack.append(json.loads(json.dumps(result, cls=Functions.Encoder)))


def install() -> None:
    """Give moto's interpreter its JSONata evaluator (idempotent)."""
    moto_jsonata._eval_jsonata = evaluate
    for module in (moto_jsonata, states, variable_store):
        module.encode_jsonata_variable_declarations = encode_variable_declarations  # type: ignore[attr-defined]
    # The Step Functions functions are bound by evaluate(); moto's declarations would shadow them.
    moto_functions._DECLARATION_BY_VARIABLE_REFERENCE.clear()
    StringJSONata._eval_body = _eval_jsonata_string  # type: ignore[method-assign]
