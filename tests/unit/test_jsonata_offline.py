"""The offline interpreter evaluates JSONata as Step Functions documents it: JSONata 2.0's own
semantics (https://docs.jsonata.org), the functions Step Functions adds and its errors
(https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html), for what a
purchase workflow reads and writes."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.intrinsic.jsonata import (
    get_intrinsic_functions_declarations,
)
from moto.stepfunctions.parser.asl.jsonata.jsonata import (
    JSONataException,
    compose_jsonata_expression,
    eval_jsonata_expression,
    extract_jsonata_variable_references,
)

from offline import dynamodb_engine, jsonata_eval, moto_server

ROLE = "arn:aws:iam::123456789012:role/offline"
_machine_numbers = itertools.count()


@pytest.fixture(autouse=True)
def _jsonata_installed() -> None:
    moto_server.install()


def evaluate(expression: str) -> Any:
    """`expression` as moto's interpreter evaluates a JSONata field: the declarations it writes in
    front of the functions the expression calls, then the evaluator."""
    references = extract_jsonata_variable_references(expression)
    declarations = get_intrinsic_functions_declarations(references)
    return eval_jsonata_expression(compose_jsonata_expression(expression, [declarations]))


# ------------------------------------------------------------------- JSONata's own semantics


@pytest.mark.parametrize(
    ("number", "value"), [("12", 12), ("0", 0), ("-1", -1), ("1.5", 1.5), ("100", 100)]
)
def test_number_of_a_dynamodb_n_string_is_that_number(number: str, value: float) -> None:
    result = evaluate(f"$number('{number}')")
    assert result == value
    # An N string rebuilt from it reads the same: "12", never "12.0".
    assert evaluate(f"$string($number('{number}'))") == number


def test_number_of_text_that_is_no_number_fails() -> None:
    # docs.jsonata.org/numeric-functions: "All other values cause an error to be thrown."
    with pytest.raises(JSONataException):
        evaluate("$number('twelve')")


def test_n_strings_compare_as_numbers_only_through_number() -> None:
    # DynamoDB's N strings compared as strings: "9" sorts after "10".
    assert evaluate("$number('9') < $number('10')") is True
    assert evaluate("'9' < '10'") is False
    assert evaluate("$number('10') >= 10 and $number('10') != 11") is True


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("$string(5)", "5"),
        ("$string(1.5)", "1.5"),
        ("$string(10 / 2)", "5"),
        ("$string('Rock')", "Rock"),
        ("$string({'a': [1, true, null]})", '{"a":[1,true,null]}'),
        ("'sale-' & 7", "sale-7"),
    ],
)
def test_string_renders_values_as_jsonata_documents(expression: str, value: str) -> None:
    assert evaluate(expression) == value


def test_exists_tells_a_missing_field_from_null() -> None:
    assert evaluate("$exists({'a': 1}.b)") is False
    assert evaluate("$exists({'a': null}.a)") is True


def test_random_is_at_least_0_and_below_1() -> None:
    draws = [evaluate("$random()") for _ in range(200)]
    assert all(0 <= draw < 1 for draw in draws)
    assert len(set(draws)) > 1


def test_the_asls_bucket_draw_and_walk_reach_every_bucket_and_no_other() -> None:
    # ChooseStock draws $floor($random() * N); IsBucketEnough walks on ($bucket + 1) % N.
    draws = {evaluate("$floor($random() * 4)") for _ in range(400)}
    assert draws == {0, 1, 2, 3}
    walk = [evaluate(f"({bucket} + 1) % 4") for bucket in range(4)]
    assert walk == [1, 2, 3, 0]


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("$floor(2.7)", 2),
        ("$floor(-2.5)", -3),
        # docs.jsonata.org/numeric-functions#round: half to even.
        ("$round(123.456)", 123),
        ("$round(123.456, 2)", 123.46),
        ("$round(123.456, -1)", 120),
        ("$round(11.5)", 12),
        ("$round(12.5)", 12),
        ("$round(125, -1)", 120),
        ("7 % 3", 1),
        ("7 / 2", 3.5),
        ("2 * 3.5", 7),
        ("10 - 12", -2),
    ],
)
def test_arithmetic_and_rounding_follow_jsonata(expression: str, value: float) -> None:
    assert evaluate(expression) == value


def test_conditional_without_else_is_undefined() -> None:
    assert evaluate("1 < 2 ? 'yes' : 'no'") == "yes"
    assert evaluate("$exists(1 > 2 ? 'yes')") is False


def test_object_constructor_leaves_out_a_key_whose_value_is_undefined() -> None:
    # A DynamoDB item built this way has no attribute for a missing field, not a null one.
    assert evaluate("{'showId': {'S': 'Rock'}, 'userId': {}.missing}") == {"showId": {"S": "Rock"}}


def test_array_constructors_and_ranges() -> None:
    assert evaluate("[1..3]") == [1, 2, 3]
    assert evaluate("[{'Put': 1}, {'Update': 2}]") == [{"Put": 1}, {"Update": 2}]
    assert evaluate("$count([1, 2, 3])") == 3


def test_variable_declarations_keep_quotes_backslashes_and_emoji() -> None:
    # Every Assign'd variable reaches an expression as a declaration of this text.
    name = 'Ana "la" \\ Niño 🎸'
    declarations = jsonata_eval.encode_variable_declarations({"$name": name})
    assert evaluate(f"({declarations}$name)") == name
    assert evaluate(f"({declarations}$length($name))") == len(name)


# ------------------------------------------------------ the functions Step Functions adds


def test_partition_splits_into_chunks_the_last_one_shorter() -> None:
    assert evaluate("$partition([1, 2, 3, 4], 2)") == [[1, 2], [3, 4]]
    assert evaluate("$partition([1, 2, 3, 4, 5], 2)") == [[1, 2], [3, 4], [5]]
    assert evaluate("$partition([1, 2, 3, 4, 5, 6, 7, 8], 3)") == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert evaluate("$partition([1], 2)") == [[1]]


def test_range_includes_both_ends() -> None:
    assert evaluate("$range(0, 10, 2)") == [0, 2, 4, 6, 8, 10]
    assert evaluate("$range(5, 1, -2)") == [5, 3, 1]
    assert evaluate("$range(1, 1, 1)") == [1]


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"])
def test_hash_is_the_hex_digest(algorithm: str) -> None:
    expected = hashlib.new(jsonata_eval.HASH_ALGORITHMS[algorithm], b"abc").hexdigest()
    assert evaluate(f"$hash('abc', '{algorithm}')") == expected
    if algorithm == "SHA-256":  # FIPS 180-2's test vector
        assert expected.startswith("ba7816bf8f01cfea414140de5dae2223")


def test_hash_with_an_algorithm_aws_lacks_fails() -> None:
    with pytest.raises(JSONataException):
        evaluate("$hash('abc', 'SHA-3')")


def test_random_with_a_seed_repeats_its_number() -> None:
    assert evaluate("$random(42)") == evaluate("$random(42)")
    assert 0 <= evaluate("$random(42)") < 1


def test_uuid_is_a_version_4_uuid() -> None:
    first, second = evaluate("$uuid()"), evaluate("$uuid()")
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first
    )
    assert first != second


def test_parse_reads_json_and_only_json() -> None:
    assert evaluate("""$parse('{"quantity": 2, "ids": ["a"]}')""") == {"quantity": 2, "ids": ["a"]}
    with pytest.raises(JSONataException):
        evaluate("$parse('1 + 1')")


def test_eval_is_not_available() -> None:
    # "All built-in JSONata functions ... are supported, with one exception: $eval".
    with pytest.raises(JSONataException):
        evaluate("$eval('1 + 1')")


# ----------------------------------------------------------- JSONata states in the interpreter


@pytest.fixture
def run() -> Iterator[Callable[..., dict[str, Any]]]:
    """Runs a JSONata state machine of `states` on moto by StartSyncExecution; its answer."""
    dynamodb_engine.ENGINE.reset()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        stepfunctions = boto3.client("stepfunctions")

        def start(
            states: dict[str, Any], given: Any, name: str | None = "sale-1"
        ) -> dict[str, Any]:
            definition = {
                "QueryLanguage": "JSONata",
                "StartAt": next(iter(states)),
                "States": states,
            }
            arn = stepfunctions.create_state_machine(
                name=f"machine{next(_machine_numbers)}",
                definition=json.dumps(definition),
                roleArn=ROLE,
                type="EXPRESS",
            )["stateMachineArn"]
            named = {"name": name} if name else {}
            result: dict[str, Any] = stepfunctions.start_sync_execution(
                stateMachineArn=arn, input=json.dumps(given), **named
            )
            return result

        yield start


def output(result: dict[str, Any]) -> Any:
    assert result["status"] == "SUCCEEDED", result
    return json.loads(result["output"])


def test_states_input_and_context(run: Callable[..., dict[str, Any]]) -> None:
    result = run(
        {
            "Read": {
                "Type": "Pass",
                "Output": {
                    "quantity": "{% $states.input.quantity %}",
                    "name": "{% $states.context.Execution.Name %}",
                    "startTime": "{% $states.context.Execution.StartTime %}",
                },
                "End": True,
            }
        },
        {"quantity": 2},
    )
    read = output(result)
    assert read["quantity"] == 2
    assert read["name"] == "sale-1"
    # ISO 8601 in UTC to the millisecond, as AWS gives it.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", read["startTime"])


def test_an_unnamed_execution_is_named_with_a_uuid(run: Callable[..., dict[str, Any]]) -> None:
    result = run(
        {"Read": {"Type": "Pass", "Output": "{% $states.context.Execution.Name %}", "End": True}},
        {},
        None,
    )
    assert re.fullmatch(r"[0-9a-f-]{36}", output(result))


def test_assigned_variables_reach_later_states_and_not_their_own_assign(
    run: Callable[..., dict[str, Any]],
) -> None:
    # AWS: every expression of an Assign reads the variables as they were when the state began.
    result = run(
        {
            "First": {"Type": "Pass", "Assign": {"price": 50}, "Next": "Second"},
            "Second": {
                "Type": "Pass",
                "Assign": {
                    "price": 60,
                    "previous": "{% $price %}",
                    "name": "{% $states.input.name %}",
                },
                "Next": "Third",
            },
            "Third": {
                "Type": "Pass",
                "Output": {
                    "price": "{% $price %}",
                    "previous": "{% $previous %}",
                    "name": "{% $name %}",
                },
                "End": True,
            },
        },
        {"name": 'Niño "🎸"'},
    )
    assert output(result) == {"price": 60, "previous": 50, "name": 'Niño "🎸"'}


def test_output_that_is_undefined_fails_with_query_evaluation_error(
    run: Callable[..., dict[str, Any]],
) -> None:
    result = run(
        {"Read": {"Type": "Pass", "Output": {"a": "{% $states.input.missing %}"}, "End": True}}, {}
    )
    assert result["status"] == "FAILED"
    assert result["error"] == "States.QueryEvaluationError"


def _failing_read(arguments_key: str) -> dict[str, Any]:
    """A DynamoDB read of `arguments_key` whose errors the Catch hands on as $states.errorOutput."""
    return {
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Arguments": {"TableName": "NoSuchTable", "Key": {"showId": {"S": arguments_key}}},
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Output": "{% $states.errorOutput %}",
                    "Next": "Caught",
                }
            ],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    }


def test_error_output_holds_the_error_and_its_cause(run: Callable[..., dict[str, Any]]) -> None:
    error_output = output(run(_failing_read("{% $states.input.showId %}"), {"showId": "Rock"}))
    assert set(error_output) == {"Error", "Cause"}
    assert error_output["Error"] == "DynamoDB.ResourceNotFoundException"


@pytest.mark.parametrize(
    "arguments_key",
    [
        "{% $states.input.missing %}",  # undefined
        "{% $string($number($states.input.showId)) %}",  # an evaluation error
    ],
)
def test_task_arguments_that_fail_are_a_query_evaluation_error_a_catch_takes(
    run: Callable[..., dict[str, Any]], arguments_key: str
) -> None:
    error_output = output(run(_failing_read(arguments_key), {"showId": "Rock"}))
    assert error_output["Error"] == "States.QueryEvaluationError"
