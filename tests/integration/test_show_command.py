"""`make show`: a show into ShowTickets (moto, real state machine) and the catalog (MariaDB)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pymysql
import pytest

import purchase_handler
import show_handler
from catalog_users import SHOWS_USER
from flyer_config import DbSettings, db_environ_from_url
from show_catalog import InvalidShowError, ShowSpec, parse_show, write_show
from tests.conftest import PurchaseStack
from tests.events import load_event, with_body
from tests.integration.conftest import USER_PASSWORDS, Catalog, set_up_users
from tools import show as command

SHOW = "Rock en el Parque"


@pytest.fixture
def target(purchase_stack: PurchaseStack, catalog: Catalog) -> command.Target:
    """What `make show` writes locally: these tables, and this catalog over its own connection."""
    settings = DbSettings.from_env(db_environ_from_url(catalog.url))
    return command.Target(
        command.Tables("ShowTickets", "TicketSales"),
        purchase_stack.dynamodb,
        lambda show: write_show(settings, show).value,
        command.template_max_per_buyer(),
    )


def make_show(target: command.Target, name: object, price: object, tickets: object) -> str:
    return command.apply_show(parse_show(name, price, tickets), target)


def stock_item(stack: PurchaseStack, name: str = SHOW) -> dict[str, Any] | None:
    item: dict[str, Any] | None = stack.dynamodb.get_item(
        TableName="ShowTickets", Key={"showId": {"S": name}}
    ).get("Item")
    return item


def sell(context: Any, user: str, quantity: int) -> None:
    body = {"userId": user, "showId": SHOW, "cardNumber": "4111111111111111", "quantity": quantity}
    response = purchase_handler.lambda_handler(
        with_body(load_event("purchase_visa"), body), context
    )
    assert response["statusCode"] == 200, response["body"]


def test_show_command_new_show_lands_in_both_stores(
    target: command.Target, purchase_stack: PurchaseStack, catalog: Catalog
) -> None:
    # WHEN the organiser creates a show
    message = make_show(target, SHOW, "49.90", "100")

    # THEN ShowTickets sells its 100 tickets at its price, and the catalog knows it
    assert stock_item(purchase_stack) == {
        "showId": {"S": SHOW},
        "ticketsAvailable": {"N": "100"},
        "ticketPrice": {"N": "49.90"},
        "maxPerBuyer": {"N": "10"},
    }
    row = catalog.row(SHOW)
    assert row is not None
    assert (row["ticket_price"], row["tickets_available"], row["flyer"]) == (
        Decimal("49.90"),
        100,
        None,
    )
    assert "ShowTickets created" in message and "catalog created" in message


def test_show_command_run_twice_changes_nothing(
    target: command.Target, purchase_stack: PurchaseStack, catalog: Catalog
) -> None:
    # GIVEN a show created once
    make_show(target, SHOW, "50", "100")
    before = (stock_item(purchase_stack), catalog.rows())

    # WHEN the same command runs again
    message = make_show(target, SHOW, "50", "100")

    # THEN neither store changes
    assert (stock_item(purchase_stack), catalog.rows()) == before
    assert "ShowTickets unchanged" in message and "catalog unchanged" in message


def test_show_command_more_tickets_after_sales_keeps_every_sold_ticket(
    target: command.Target, purchase_stack: PurchaseStack, catalog: Catalog, lambda_context: Any
) -> None:
    # GIVEN a show of 10 tickets of which 2 + 3 were sold through the real purchase path
    make_show(target, SHOW, "50", "10")
    sell(lambda_context, "ana", 2)
    sell(lambda_context, "bob", 3)
    assert purchase_stack.tickets_left(SHOW) == 5

    # WHEN the organiser raises the show to 15 tickets and the price to 55
    make_show(target, SHOW, "55", "15")

    # THEN 10 are left to sell: sold + left is the new total, no ticket lost or sold twice
    assert purchase_stack.tickets_left(SHOW) == 10
    assert purchase_stack.tickets_sold(SHOW) == 5
    item = stock_item(purchase_stack)
    assert item is not None and item["ticketPrice"] == {"N": "55.00"}
    row = catalog.row(SHOW)
    assert row is not None and (row["ticket_price"], row["tickets_available"]) == (
        Decimal("55.00"),
        15,
    )

    # WHEN it lowers the total to exactly what was sold THEN nothing is left to sell
    make_show(target, SHOW, "55", "5")
    assert purchase_stack.tickets_left(SHOW) == 0


def test_show_command_total_below_sold_is_refused_and_writes_nothing(
    target: command.Target, purchase_stack: PurchaseStack, catalog: Catalog, lambda_context: Any
) -> None:
    # GIVEN a show with 4 tickets sold
    make_show(target, SHOW, "50", "10")
    sell(lambda_context, "ana", 4)
    before = (stock_item(purchase_stack), catalog.rows())

    # WHEN the organiser sets its total below that
    with pytest.raises(InvalidShowError, match="already sold 4 tickets: it cannot have 3"):
        make_show(target, SHOW, "60", "3")

    # THEN neither store changed, the price included
    assert (stock_item(purchase_stack), catalog.rows()) == before


def test_show_command_sale_between_read_and_write_is_counted(
    target: command.Target, purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    # GIVEN a show of 10 tickets, and a sale of 2 that lands right after the command has read
    # the stock and the sales (the worst moment)
    make_show(target, SHOW, "50", "10")
    real_query = purchase_stack.dynamodb.get_paginator
    sales_landed = []

    def get_paginator_then_sell(operation: str) -> Any:
        paginator = real_query(operation)

        class SellAfterReading:
            def paginate(self, **kwargs: Any) -> Any:
                pages = list(paginator.paginate(**kwargs))
                if not sales_landed:
                    sales_landed.append(True)
                    sell(lambda_context, "ana", 2)
                return pages

        return SellAfterReading()

    dynamodb = purchase_stack.dynamodb
    dynamodb.get_paginator = get_paginator_then_sell

    # WHEN the organiser raises the show to 20 tickets
    try:
        make_show(target, SHOW, "50", "20")
    finally:
        del dynamodb.get_paginator

    # THEN the conditional write noticed the sale, read again, and counted it
    assert sales_landed == [True]
    assert purchase_stack.tickets_sold(SHOW) == 2
    assert purchase_stack.tickets_left(SHOW) == 18


@pytest.mark.parametrize(
    ("name", "price", "tickets", "error"),
    [
        (None, "50", "10", "name is missing"),
        ("   ", "50", "10", "name is missing"),
        (" Rock", "50", "10", "starts or ends with spaces"),
        ("x" * 256, "50", "10", "at most 255"),
        (SHOW, "-1", "10", "must be zero or more"),
        (SHOW, "", "10", "ticket price is missing"),
        (SHOW, "fifty", "10", "is not a number"),
        (SHOW, "NaN", "10", "must be zero or more"),
        (SHOW, "9.999", "10", "more than 2 decimals"),
        (SHOW, "50", "-5", "must be a whole number"),
        (SHOW, "50", "2.5", "must be a whole number"),
        (SHOW, "50", "", "tickets is missing"),
    ],
)
def test_show_command_bad_input_is_a_clear_error_and_writes_nothing(
    target: command.Target,
    purchase_stack: PurchaseStack,
    catalog: Catalog,
    name: object,
    price: object,
    tickets: object,
    error: str,
) -> None:
    with pytest.raises(InvalidShowError, match=error):
        make_show(target, name, price, tickets)
    assert purchase_stack.dynamodb.scan(TableName="ShowTickets")["Items"] == []
    assert catalog.rows() == []


def test_show_command_line_refuses_bad_input_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The command line checks its input before it looks for any store.
    status = command.main(["--name", SHOW, "--price", "-3", "--tickets", "10"], environ={})
    assert status == 2
    assert "make show: ticket price '-3' must be zero or more" in capsys.readouterr().err


def test_show_command_line_without_a_catalog_says_which_to_give(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = command.main(["--name", SHOW, "--price", "5", "--tickets", "10"], environ={})
    assert status == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err


class InProcessLambda:
    """lambda:Invoke answered by the real show handler in this process (moto cannot run it)."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        try:
            answer: Any = show_handler.lambda_handler(json.loads(Payload), self.context)
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}
        except Exception as error:  # what Lambda does with an unhandled exception
            answer = {"errorMessage": str(error), "errorType": type(error).__name__}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(answer).encode()),
            }


def test_show_command_on_aws_writes_the_catalog_through_the_function(
    purchase_stack: PurchaseStack,
    catalog: Catalog,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the catalog function's environment pointed at the catalog, as the shows user, and
    # the organiser holding that user's credential (on AWS, a token only their policy can sign)
    set_up_users(catalog)
    for variable, value in db_environ_from_url(catalog.url).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("DB_USER", SHOWS_USER)
    monkeypatch.setenv("DB_PASSWORD", "not the shows user's")
    token = USER_PASSWORDS[SHOWS_USER]
    lambda_client = InProcessLambda(lambda_context)
    target = command.Target(
        command.Tables("ShowTickets", "TicketSales"),
        purchase_stack.dynamodb,
        lambda show: command.invoke_catalog_function(lambda_client, "ShowCatalog", show, token),
        command.template_max_per_buyer(),
    )

    # WHEN the organiser creates a show, then runs it again
    first = make_show(target, SHOW, "50", "100")
    second = make_show(target, SHOW, "50", "100")

    # THEN the function created the row once, and closed its connection both times
    assert "catalog created" in first and "catalog unchanged" in second
    assert catalog.row(SHOW) is not None
    assert catalog.connections_left_after_close() == []


def test_show_handler_without_the_callers_token_writes_nothing(
    catalog: Catalog, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function configured for the shows user, whose password it does not hold
    set_up_users(catalog)
    for variable, value in db_environ_from_url(catalog.url).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("DB_USER", SHOWS_USER)
    show = {"name": SHOW, "ticketPrice": "50", "tickets": 100}

    # WHEN someone invokes it without a token, or with a wrong one THEN nothing is written
    with pytest.raises(show_handler.MissingDatabaseTokenError):
        show_handler.lambda_handler(show, lambda_context)
    with pytest.raises(pymysql.err.OperationalError) as error:
        show_handler.lambda_handler(show | {"databaseToken": "forged"}, lambda_context)
    assert error.value.args[0] == 1045  # access denied
    assert catalog.row(SHOW) is None


def test_show_handler_refuses_bad_input_before_touching_the_database(
    lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No DB_* variables at all: a bad show must fail on its own, not on the missing database.
    for variable in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_AUTH", "DB_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(InvalidShowError, match="ticket price"):
        show_handler.lambda_handler({"name": SHOW, "ticketPrice": -1, "tickets": 5}, lambda_context)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Big#3", "'#'"),  # a bucket's key
        ("Big#s01", "'#'"),  # a sale shard's key
        ("Rock\u202e", "format character"),
        ("Rock\u200b Fest", "format character"),
        ("Fest 4111 1111 1111 1111", "card number"),
    ],
)
def test_show_spec_name_that_aliases_a_key_or_holds_a_card_is_refused(
    name: str, reason: str
) -> None:
    with pytest.raises(InvalidShowError, match=reason):
        parse_show(name, "1", "1")


def test_show_command_new_show_gets_the_stacks_cap_and_keeps_the_one_given(
    target: command.Target, purchase_stack: PurchaseStack, catalog: Catalog
) -> None:
    # GIVEN a new show without MAX_PER_BUYER: the stack's MaxTicketsPerBuyer is written
    assert "at most 10 a buyer" in make_show(target, SHOW, "50", "100")
    item = stock_item(purchase_stack)
    assert item is not None and item["maxPerBuyer"] == {"N": "10"}
    # WHEN the organiser sets 4, then runs the command again without it
    show = parse_show(SHOW, "50", "100")
    assert "updated" in command.apply_show(show, target, max_per_buyer=4)
    assert "unchanged" in command.apply_show(show, target)
    # THEN the show keeps 4
    item = stock_item(purchase_stack)
    assert item is not None and item["maxPerBuyer"] == {"N": "4"}


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "10001", "ten"])
def test_show_command_max_per_buyer_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(InvalidShowError, match="max per buyer"):
        command.parse_max_per_buyer(value)


def test_show_spec_name_is_stored_in_nfc_like_flyer_names() -> None:
    assert parse_show("Cafe\u0301", "1", "1") == ShowSpec("Café", Decimal("1.00"), 1)


def test_show_command_buckets_spread_the_stock_and_keep_every_sold_ticket(
    target: command.Target, purchase_stack: PurchaseStack, catalog: Catalog, lambda_context: Any
) -> None:
    # GIVEN a show of 10 tickets in one item, 3 of them sold
    make_show(target, SHOW, "50", "10")
    sell(lambda_context, "ana", 3)

    # WHEN the organiser spreads it over 3 buckets
    message = command.apply_show(parse_show(SHOW, "50", "10"), target, buckets=3)

    # THEN the 7 unsold tickets are in the buckets, the show's item says 3 and holds no pool
    assert "ShowTickets updated" in message and "3 buckets" in message
    assert purchase_stack.bucket_levels(SHOW) == (3, 2, 2)
    item = stock_item(purchase_stack)
    assert item is not None
    assert (item["buckets"], item["ticketsAvailable"]) == ({"N": "3"}, {"N": "0"})

    # WHEN a bucketed sale lands and the organiser goes back to one item
    sell(lambda_context, "bob", 2)
    command.apply_show(parse_show(SHOW, "50", "10"), target, buckets=1)

    # THEN the show is one item again with what was left, the old buckets emptied
    item = stock_item(purchase_stack)
    assert item is not None and "buckets" not in item
    assert item["ticketsAvailable"] == {"N": "5"}
    assert purchase_stack.tickets_sold(SHOW) == 5
    assert stock_item(purchase_stack, command.bucket_key(SHOW, 0)) is not None
    assert (
        int(stock_item(purchase_stack, command.bucket_key(SHOW, 0))["ticketsAvailable"]["N"]) == 0
    )


def test_show_command_run_twice_with_buckets_changes_nothing(
    target: command.Target, purchase_stack: PurchaseStack
) -> None:
    command.apply_show(parse_show(SHOW, "50", "100"), target, buckets=4)
    before = purchase_stack.dynamodb.scan(TableName="ShowTickets")["Items"]
    # Without BUCKETS the show keeps the layout it has.
    message = command.apply_show(parse_show(SHOW, "50", "100"), target)
    assert "ShowTickets unchanged" in message and "4 buckets" in message
    assert purchase_stack.dynamodb.scan(TableName="ShowTickets")["Items"] == before


def test_show_availability_says_what_is_left_where(
    target: command.Target, purchase_stack: PurchaseStack, lambda_context: Any
) -> None:
    command.apply_show(parse_show(SHOW, "50", "9"), target, buckets=3)
    sell(lambda_context, "ana", 2)
    line = command.availability(purchase_stack.dynamodb, command.LOCAL_TABLES, SHOW)
    assert line.startswith(f"{SHOW}: 7 tickets left to sell in 3 buckets [")
    assert line.endswith("and 0 in the pool; 2 sold; 9 in all")
    with pytest.raises(command.ShowCommandError, match="no show 'Nope'"):
        command.availability(purchase_stack.dynamodb, command.LOCAL_TABLES, "Nope")


@pytest.mark.parametrize("buckets", ["0", "100", "two", "-1", "1.5"])
def test_show_command_bad_buckets_is_a_clear_error(buckets: str) -> None:
    with pytest.raises(InvalidShowError, match=r"buckets .* must be a whole number from 1 to 99"):
        command.parse_buckets(buckets)


def test_show_command_buckets_never_take_another_shows_key(
    target: command.Target, purchase_stack: PurchaseStack
) -> None:
    # GIVEN an item whose key is what bucket 1 of SHOW would be called (written before show
    # names refused '#', which no name may now hold)
    with pytest.raises(InvalidShowError, match="'#'"):
        parse_show(command.bucket_key(SHOW, 1), "5", "5")
    purchase_stack.add_show(command.bucket_key(SHOW, 1), 5)
    # WHEN SHOW asks for 2 buckets THEN it is refused, and nothing of SHOW is written
    with pytest.raises(InvalidShowError, match="is another show"):
        command.apply_show(parse_show(SHOW, "50", "10"), target, buckets=2)
    assert stock_item(purchase_stack) is None
    # AND a bucket's key cannot be made a show of its own, even past the name's check
    command.apply_show(parse_show("Other", "50", "10"), target, buckets=2)
    bucket_as_show = ShowSpec(command.bucket_key("Other", 0), Decimal(5), 5)
    with pytest.raises(InvalidShowError, match="is a stock bucket of the show 'Other'"):
        command.apply_show(bucket_as_show, target)
