"""`make show`: create or update a show in the MySQL catalog and its stock in ShowTickets.

    make show NAME="Rock in Rio" PRICE=50 TICKETS=1000                  # against `make local`
    make show NAME="Rock in Rio" PRICE=50 TICKETS=1000 STACK=ticketera  # against AWS

TICKETS is how many tickets the show has in all, sold ones included. The stock left to sell
(ShowTickets' ticketsAvailable) becomes TICKETS minus what TicketSales records as sold, written
with a condition on the stock read, so that a sale landing meanwhile makes the command read
again rather than lose or resell a ticket. Fewer TICKETS than already sold is an error that
writes nothing. Running the same command twice changes nothing.

Locally the catalog is DATABASE_URL (the URL `make local` prints as its events catalog) and
AWS is the local endpoint. On AWS the stack's outputs name the tables and the function that
writes the catalog from inside the VPC: the database stays private.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pymysql
from botocore.exceptions import BotoCoreError, ClientError

# The flyer function's package (functions/flyer) is on the path, as in the Makefile: the catalog
# is written by the same code locally and in the function on AWS.
from flyer_config import ConfigError, DbSettings, db_environ_from_url
from show_catalog import InvalidShowError, ShowSpec, parse_show, write_show

LOCAL_AWS_ENDPOINT = "http://127.0.0.1:4566"
# Tries when sales keep landing between reading the stock and writing it.
STOCK_WRITE_ATTEMPTS = 10


class ShowCommandError(Exception):
    """The command could not do what was asked; the message is the one line to print."""


@dataclass(frozen=True)
class Tables:
    show_tickets: str
    ticket_sales: str


@dataclass(frozen=True)
class StockChange:
    """What the command did to the show's ShowTickets item."""

    outcome: str  # created | updated | unchanged
    sold: int
    tickets_available: int


def tickets_sold(dynamodb: Any, tables: Tables, show_id: str) -> int:
    """Tickets of the show's completed sales, from TicketSales (a consistent read)."""
    sold = 0
    pages = dynamodb.get_paginator("query").paginate(
        TableName=tables.ticket_sales,
        KeyConditionExpression="showId = :show",
        ExpressionAttributeValues={":show": {"S": show_id}},
        ProjectionExpression="quantity",
        ConsistentRead=True,
    )
    for page in pages:
        sold += sum(int(sale["quantity"]["N"]) for sale in page["Items"])
    return sold


def set_stock(dynamodb: Any, tables: Tables, show: ShowSpec) -> StockChange:
    """Make ShowTickets hold `show`'s price and its unsold tickets: show.tickets - sold.

    The sale keeps ticketsAvailable + sold equal to the show's tickets at every moment (the
    decrement and the TicketSales record commit in one transaction). The item is read first,
    then the sales; the write is conditional on ticketsAvailable being what was read, so a sale
    in between fails the write and the command reads both again.
    """
    key = {"showId": {"S": show.name}}
    for _ in range(STOCK_WRITE_ATTEMPTS):
        item = dynamodb.get_item(TableName=tables.show_tickets, Key=key, ConsistentRead=True)
        current = item.get("Item")
        sold = tickets_sold(dynamodb, tables, show.name)
        if show.tickets < sold:
            raise InvalidShowError(
                f"{show.name!r} has already sold {sold} tickets: it cannot have {show.tickets}"
            )
        available = show.tickets - sold
        values = {
            ":available": {"N": str(available)},
            ":price": {"N": str(show.ticket_price)},
        }
        try:
            if current is None:
                dynamodb.put_item(
                    TableName=tables.show_tickets,
                    Item={
                        **key,
                        "ticketsAvailable": values[":available"],
                        "ticketPrice": values[":price"],
                    },
                    ConditionExpression="attribute_not_exists(showId)",
                )
                return StockChange("created", sold, available)
            price = current.get("ticketPrice", {}).get("N")
            if int(current["ticketsAvailable"]["N"]) == available and (
                price is not None and Decimal(price) == show.ticket_price
            ):
                return StockChange("unchanged", sold, available)
            dynamodb.update_item(
                TableName=tables.show_tickets,
                Key=key,
                UpdateExpression="SET ticketsAvailable = :available, ticketPrice = :price",
                ConditionExpression="ticketsAvailable = :read",
                ExpressionAttributeValues={**values, ":read": current["ticketsAvailable"]},
            )
            return StockChange("updated", sold, available)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # A sale (or another organiser) changed the item after it was read: read again.
    raise ShowCommandError(
        f"the stock of {show.name!r} kept changing while it was set; run the command again"
    )


# ------------------------------------------------------------------------ where it writes


@dataclass(frozen=True)
class Target:
    """The stores one run writes: ShowTickets (and TicketSales to read) and the catalog."""

    tables: Tables
    dynamodb: Any
    write_catalog: Callable[[ShowSpec], str]


def local_target(environ: Mapping[str, str]) -> Target:
    """`make local`: its AWS endpoint, and the catalog DATABASE_URL names (checked here)."""
    database_url = environ.get("DATABASE_URL")
    if not database_url:
        raise ShowCommandError(
            "DATABASE_URL is not set: give the events catalog URL `make local` prints, or"
            " STACK=<name> for a deployed stack"
        )
    try:
        settings = DbSettings.from_env(db_environ_from_url(database_url))
    except ConfigError as error:
        raise ShowCommandError(f"DATABASE_URL: {error}") from None
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=environ.get("AWS_ENDPOINT_URL") or LOCAL_AWS_ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
    )
    return Target(
        Tables("ShowTickets", "TicketSales"),
        dynamodb,
        lambda show: write_show(settings, show).value,
    )


def stack_target(stack: str) -> Target:
    """A deployed stack, found by name with the caller's AWS credentials and region."""
    session = boto3.session.Session()
    try:
        (described,) = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        raise ShowCommandError(f"stack {stack!r}: {error.response['Error']['Message']}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    needed = ("ShowCatalogFunctionName", "ShowTicketsTableName", "TicketSalesTableName")
    missing = [name for name in needed if name not in outputs]
    if missing:
        raise ShowCommandError(f"stack {stack!r} has no output {', '.join(missing)}")
    lambda_client = session.client("lambda")
    function_name = outputs["ShowCatalogFunctionName"]
    return Target(
        Tables(outputs["ShowTicketsTableName"], outputs["TicketSalesTableName"]),
        session.client("dynamodb"),
        lambda show: invoke_catalog_function(lambda_client, function_name, show),
    )


def invoke_catalog_function(lambda_client: Any, function_name: str, show: ShowSpec) -> str:
    """The show into the private catalog, by invoking the stack's ShowCatalogFunction."""
    payload = {"name": show.name, "ticketPrice": str(show.ticket_price), "tickets": show.tickets}
    response = lambda_client.invoke(
        FunctionName=function_name, Payload=json.dumps(payload).encode()
    )
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else answer
        raise ShowCommandError(f"the catalog function failed: {message}")
    return str(answer["catalog"])


def apply_show(show: ShowSpec, target: Target) -> str:
    """The stock, then the catalog row; the line to print.

    Stock first: that is where "fewer tickets than sold" is found, before anything is written.
    Should the catalog then fail, running the same command again finishes the job.
    """
    stock = set_stock(target.dynamodb, target.tables, show)
    try:
        catalog = target.write_catalog(show)
    except (pymysql.err.Error, BotoCoreError, ClientError, ShowCommandError) as error:
        raise ShowCommandError(
            f"ShowTickets is {stock.outcome} but the catalog was not written ({error});"
            " run the same command again to finish"
        ) from error
    return (
        f"{show.name}: ShowTickets {stock.outcome} ({stock.tickets_available} of"
        f" {show.tickets} tickets left to sell, {stock.sold} sold, price {show.ticket_price});"
        f" catalog {catalog}"
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make show", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="", help="the show's name, which is also its showId")
    parser.add_argument("--price", default="", help="ticket price, e.g. 50 or 49.90")
    parser.add_argument("--tickets", default="", help="tickets the show has, sold ones included")
    parser.add_argument("--stack", default="", help="a deployed stack; empty: make local")
    arguments = parser.parse_args(argv)
    try:
        show = parse_show(arguments.name or None, arguments.price, arguments.tickets)
        target = (
            stack_target(arguments.stack)
            if arguments.stack
            else local_target(os.environ if environ is None else environ)
        )
        print(apply_show(show, target))
    except (InvalidShowError, ShowCommandError) as error:
        print(f"make show: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"make show: AWS refused: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
