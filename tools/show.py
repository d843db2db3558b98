"""`make show`: create or update a show in the MySQL catalog and its stock in ShowTickets.

    make show NAME="Rock in Rio" PRICE=50 TICKETS=1000                  # against `make local`
    make show NAME="Rock in Rio" PRICE=50 TICKETS=1000 STACK=ticketera  # against AWS
    make show NAME="Rock in Rio" PRICE=50 TICKETS=50000 BUCKETS=16      # a show for a rush
    make show NAME="Rock in Rio" PRICE=50 TICKETS=1000 MAX_PER_BUYER=4  # 4 tickets a buyer
    make show-availability NAME="Rock in Rio"                           # what is left, where

BUCKETS spreads the stock over that many ShowTickets items, so that the show sells faster than
one item allows (docs/design.md, A hot show); without it a show keeps the layout it has (one
item for a new show).

MAX_PER_BUYER caps the tickets one buyer may hold of the show, all their purchases together; the
sale checks it in its own transaction. Without it a show keeps its cap; a new show gets the
stack's MaxTicketsPerBuyer (the template's default for `make local`).

TICKETS is how many tickets the show has in all, sold ones included. The stock left to sell
(ShowTickets' ticketsAvailable, summed over the buckets) becomes TICKETS minus what TicketSales
records as sold, written with a condition on the stock read, so that a sale landing meanwhile
makes the command read again rather than lose or resell a ticket. Fewer TICKETS than already
sold is an error that writes nothing. Running the same command twice changes nothing.

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
from catalog_users import SHOWS_USER
from flyer_config import ConfigError, DbSettings, db_environ_from_url
from show_catalog import InvalidShowError, ShowSpec, parse_show, write_show

LOCAL_AWS_ENDPOINT = "http://127.0.0.1:4566"
# Tries when sales keep landing between reading the stock and writing it.
STOCK_WRITE_ATTEMPTS = 10
# The organiser writes the show's item and all its buckets in one transaction (at most 100 items).
BUCKETS_MAX = 99
MAX_PER_BUYER_MAX = 10_000
# The show's sale records are spread over this many TicketSales keys: purchase_workflow.SALE_SHARDS
# (a test keeps the two equal).
SALE_SHARDS = 32


class ShowCommandError(Exception):
    """The command could not do what was asked; the message is the one line to print."""


@dataclass(frozen=True)
class Tables:
    show_tickets: str
    ticket_sales: str


LOCAL_TABLES = Tables("ShowTickets", "TicketSales")


@dataclass(frozen=True)
class StockChange:
    """What the command did to the show's ShowTickets items."""

    outcome: str  # created | updated | unchanged
    sold: int
    tickets_available: int
    buckets: int
    max_per_buyer: int | None


@dataclass(frozen=True)
class Stock:
    """What ShowTickets holds for one show: its own item and, for a bucketed show, the levels of
    its bucket items `<show>#<i>`. The show's own item then holds the pool of leftovers that
    sales moved out of buckets too small for their quantity."""

    item: dict[str, Any]
    bucket_levels: tuple[int, ...]

    @property
    def max_per_buyer(self) -> int | None:
        """The show's own per-buyer cap; None: the stack's MaxTicketsPerBuyer applies."""
        cap = self.item.get("maxPerBuyer", {}).get("N")
        return None if cap is None else int(cap)

    @property
    def buckets(self) -> int:
        return max(1, len(self.bucket_levels))

    @property
    def pool(self) -> int:
        return int(self.item["ticketsAvailable"]["N"])

    @property
    def available(self) -> int:
        return self.pool + sum(self.bucket_levels)

    @property
    def price(self) -> Decimal | None:
        price = self.item.get("ticketPrice", {}).get("N")
        return None if price is None else Decimal(price)


def bucket_key(show_id: str, index: int) -> str:
    """The ShowTickets key of a show's bucket `index`."""
    return f"{show_id}#{index}"


def sales_keys(show_id: str) -> list[str]:
    """Every TicketSales partition key the show's sale records may have."""
    return [f"{show_id}#s{shard:02d}" for shard in range(SALE_SHARDS)]


def parse_buckets(value: object) -> int | None:
    """BUCKETS as given: None (keep the show's, 1 for a new show) or a whole number 1-99."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= BUCKETS_MAX:
        raise InvalidShowError(f"buckets {value!r} must be a whole number from 1 to {BUCKETS_MAX}")
    return int(text)


def parse_max_per_buyer(value: object) -> int | None:
    """MAX_PER_BUYER as given: None (keep the show's) or a whole number 1-10,000."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PER_BUYER_MAX:
        raise InvalidShowError(
            f"max per buyer {value!r} must be a whole number from 1 to {MAX_PER_BUYER_MAX:,}"
        )
    return int(text)


def read_stock(dynamodb: Any, tables: Tables, show_id: str) -> Stock | None:
    """The show's stock, read consistently; None when the show has no item."""
    item = _get(dynamodb, tables, show_id)
    if item is None:
        return None
    if "bucketOf" in item:
        raise InvalidShowError(
            f"{show_id!r} is a stock bucket of the show {item['bucketOf']['S']!r}, not a show"
        )
    levels = []
    for index in range(int(item.get("buckets", {}).get("N", "0"))):
        bucket = _get(dynamodb, tables, bucket_key(show_id, index))
        if bucket is None:
            raise ShowCommandError(f"{show_id!r} has no bucket {index}: its stock is damaged")
        levels.append(int(bucket["ticketsAvailable"]["N"]))
    return Stock(item, tuple(levels))


def _get(dynamodb: Any, tables: Tables, key: str) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=tables.show_tickets, Key={"showId": {"S": key}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def tickets_sold(dynamodb: Any, tables: Tables, show_id: str) -> int:
    """Tickets of the show's completed sales, from TicketSales (consistent reads of each of its
    sale keys)."""
    sold = 0
    paginator = dynamodb.get_paginator("query")
    for key in sales_keys(show_id):
        pages = paginator.paginate(
            TableName=tables.ticket_sales,
            KeyConditionExpression="showId = :show",
            ExpressionAttributeValues={":show": {"S": key}},
            ProjectionExpression="quantity",
            ConsistentRead=True,
        )
        for page in pages:
            sold += sum(int(sale["quantity"]["N"]) for sale in page["Items"])
    return sold


def set_stock(
    dynamodb: Any,
    tables: Tables,
    show: ShowSpec,
    buckets: int | None = None,
    max_per_buyer: int | None = None,
    new_show_max_per_buyer: int | None = None,
) -> StockChange:
    """Make ShowTickets hold `show`'s price and its unsold tickets, show.tickets - sold, in
    `buckets` items (None: as many as the show has now, 1 for a new show), with the per-buyer
    cap `max_per_buyer` (None: the show's own, else `new_show_max_per_buyer`, else none: the
    stack's MaxTicketsPerBuyer applies at the sale).

    The sale keeps tickets left + sold equal to the show's tickets at every moment (every
    decrement commits with its TicketSales record). The items are read first, then the sales;
    one transaction writes them all, each on condition that it is still what was read, so a sale
    in between cancels the write and the command reads everything again. The unsold tickets are
    spread evenly over the buckets, the pool emptied.
    """
    for _ in range(STOCK_WRITE_ATTEMPTS):
        current = read_stock(dynamodb, tables, show.name)
        sold = tickets_sold(dynamodb, tables, show.name)
        if show.tickets < sold:
            raise InvalidShowError(
                f"{show.name!r} has already sold {sold} tickets: it cannot have {show.tickets}"
            )
        available = show.tickets - sold
        wanted = buckets or (current.buckets if current else 1)
        own = current.max_per_buyer if current else None
        cap = max_per_buyer or own or new_show_max_per_buyer
        if current is not None and (
            current.buckets,
            current.available,
            current.price,
            current.max_per_buyer,
        ) == (wanted, available, show.ticket_price, cap):
            return StockChange("unchanged", sold, available, wanted, cap)
        writes = stock_writes(dynamodb, tables, show, wanted, available, current, cap)
        try:
            dynamodb.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            continue  # a sale (or another organiser) changed an item after it was read
        outcome = "created" if current is None else "updated"
        return StockChange(outcome, sold, available, wanted, cap)
    raise ShowCommandError(
        f"the stock of {show.name!r} kept changing while it was set; run the command again"
    )


def stock_writes(
    dynamodb: Any,
    tables: Tables,
    show: ShowSpec,
    buckets: int,
    available: int,
    current: Stock | None,
    max_per_buyer: int | None = None,
) -> list[dict[str, Any]]:
    """The transaction that lays the show out afresh, each item conditioned on what was read.

    Buckets the show stops using are kept at 0 rather than deleted: a sale that read the old
    bucket count passes over an empty bucket, where a missing one would be a failure.
    """
    table = tables.show_tickets
    item: dict[str, Any] = {
        "showId": {"S": show.name},
        "ticketPrice": {"N": str(show.ticket_price)},
        "ticketsAvailable": {"N": str(available if buckets == 1 else 0)},
    }
    if buckets > 1:
        item["buckets"] = {"N": str(buckets)}
    if max_per_buyer is not None:
        item["maxPerBuyer"] = {"N": str(max_per_buyer)}
    show_write: dict[str, Any]
    if current is None:
        show_write = {
            "Put": {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(showId)",
            }
        }
    else:
        read_buckets = current.item.get("buckets")
        show_write = {
            "Put": {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "ticketsAvailable = :read AND "
                + ("buckets = :buckets" if read_buckets else "attribute_not_exists(buckets)"),
                "ExpressionAttributeValues": {
                    ":read": current.item["ticketsAvailable"],
                    **({":buckets": read_buckets} if read_buckets else {}),
                },
            }
        }
    old_levels = current.bucket_levels if current else ()
    used = buckets if buckets > 1 else 0
    writes = [show_write]
    for index in range(max(used, len(old_levels))):
        level = available // used + (index < available % used) if index < used else 0
        key = bucket_key(show.name, index)
        bucket = {
            "showId": {"S": key},
            "ticketsAvailable": {"N": str(level)},
            "bucketOf": {"S": show.name},
        }
        if index < len(old_levels):
            condition = "ticketsAvailable = :read"
            values = {":read": {"N": str(old_levels[index])}}
        else:
            taken = _get(dynamodb, tables, key)
            if taken is not None and taken.get("bucketOf", {}).get("S") != show.name:
                raise InvalidShowError(
                    f"{show.name!r} cannot have {buckets} buckets: {key!r} is another show"
                )
            # Absent, or an empty bucket this show stopped using earlier.
            condition = "attribute_not_exists(showId) OR ticketsAvailable = :read"
            values = {":read": {"N": "0"}}
        writes.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": bucket,
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            }
        )
    return writes


def availability(dynamodb: Any, tables: Tables, show_id: str) -> str:
    """One line: what the show has left to sell, where, and what it sold."""
    stock = read_stock(dynamodb, tables, show_id)
    if stock is None:
        raise ShowCommandError(f"no show {show_id!r} in ShowTickets")
    sold = tickets_sold(dynamodb, tables, show_id)
    where = (
        "in its one item"
        if not stock.bucket_levels
        else f"in {stock.buckets} buckets {list(stock.bucket_levels)} and {stock.pool} in the pool"
    )
    return (
        f"{show_id}: {stock.available} tickets left to sell {where}; {sold} sold;"
        f" {stock.available + sold} in all"
    )


# ------------------------------------------------------------------------ where it writes


@dataclass(frozen=True)
class Target:
    """The stores one run writes: ShowTickets (and TicketSales to read) and the catalog."""

    tables: Tables
    dynamodb: Any
    write_catalog: Callable[[ShowSpec], str]
    # The stack's MaxTicketsPerBuyer: the cap a new show is written with unless given one.
    max_per_buyer: int


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
    return Target(
        LOCAL_TABLES,
        local_dynamodb(environ),
        lambda show: write_show(settings, show).value,
        template_max_per_buyer(),
    )


def template_max_per_buyer(template: Mapping[str, Any] | None = None) -> int:
    """MaxTicketsPerBuyer's default in template.yaml (or in `template`): what `make local`
    runs with."""
    from offline import cfn_template

    default = cfn_template.parameter_default(
        cfn_template.load_template() if template is None else template, "MaxTicketsPerBuyer"
    )
    if default is None:
        raise ShowCommandError("template.yaml has no default for MaxTicketsPerBuyer")
    return int(default)


def local_dynamodb(environ: Mapping[str, str]) -> Any:
    """A client of `make local`'s AWS endpoint."""
    return boto3.client(
        "dynamodb",
        endpoint_url=environ.get("AWS_ENDPOINT_URL") or LOCAL_AWS_ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
    )


def stack_target(stack: str) -> Target:
    """A deployed stack, found by name with the caller's AWS credentials and region."""
    session = boto3.session.Session()
    try:
        (described,) = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        raise ShowCommandError(f"stack {stack!r}: {error.response['Error']['Message']}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
    if "MaxTicketsPerBuyer" not in parameters:
        raise ShowCommandError(f"stack {stack!r} has no parameter MaxTicketsPerBuyer: update it")
    needed = (
        "ShowCatalogFunctionName",
        "ShowTicketsTableName",
        "TicketSalesTableName",
        "DatabaseEndpoint",
        "DatabasePort",
    )
    missing = [name for name in needed if name not in outputs]
    if missing:
        raise ShowCommandError(f"stack {stack!r} has no output {', '.join(missing)}")
    lambda_client = session.client("lambda")
    rds_client = session.client("rds")
    function_name = outputs["ShowCatalogFunctionName"]
    host, port = outputs["DatabaseEndpoint"], int(outputs["DatabasePort"])

    def write_catalog(show: ShowSpec) -> str:
        # Signed here with the organiser's credentials (rds-db:connect on the shows user, the
        # organiser's policy): the catalog function has no database permission of its own.
        token = rds_client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=SHOWS_USER)
        return invoke_catalog_function(lambda_client, function_name, show, token)

    return Target(
        Tables(outputs["ShowTicketsTableName"], outputs["TicketSalesTableName"]),
        session.client("dynamodb"),
        write_catalog,
        int(parameters["MaxTicketsPerBuyer"]),
    )


def invoke_catalog_function(
    lambda_client: Any, function_name: str, show: ShowSpec, database_token: str
) -> str:
    """The show into the private catalog, by invoking the stack's ShowCatalogFunction with a
    database token for the shows user."""
    payload = {
        "name": show.name,
        "ticketPrice": str(show.ticket_price),
        "tickets": show.tickets,
        "databaseToken": database_token,
    }
    response = lambda_client.invoke(
        FunctionName=function_name, Payload=json.dumps(payload).encode()
    )
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else answer
        raise ShowCommandError(f"the catalog function failed: {message}")
    return str(answer["catalog"])


def apply_show(
    show: ShowSpec, target: Target, buckets: int | None = None, max_per_buyer: int | None = None
) -> str:
    """The stock, then the catalog row; the line to print.

    Stock first: that is where "fewer tickets than sold" is found, before anything is written.
    Should the catalog then fail, running the same command again finishes the job.
    """
    stock = set_stock(
        target.dynamodb, target.tables, show, buckets, max_per_buyer, target.max_per_buyer
    )
    try:
        catalog = target.write_catalog(show)
    except (pymysql.err.Error, BotoCoreError, ClientError, ShowCommandError) as error:
        raise ShowCommandError(
            f"ShowTickets is {stock.outcome} but the catalog was not written ({error});"
            " run the same command again to finish"
        ) from error
    return (
        f"{show.name}: ShowTickets {stock.outcome} ({stock.tickets_available} of"
        f" {show.tickets} tickets left to sell, {stock.sold} sold, price {show.ticket_price},"
        f" {stock.buckets} bucket{'s' if stock.buckets > 1 else ''},"
        f" at most {stock.max_per_buyer} a buyer);"
        f" catalog {catalog}"
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make show", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="", help="the show's name, which is also its showId")
    parser.add_argument("--price", default="", help="ticket price, e.g. 50 or 49.90")
    parser.add_argument("--tickets", default="", help="tickets the show has, sold ones included")
    parser.add_argument(
        "--buckets", default="", help="stock items to sell from (1-99); empty: keep the show's"
    )
    parser.add_argument(
        "--max-per-buyer",
        default="",
        help="tickets one buyer may hold of the show (1-10,000); empty: keep the show's",
    )
    parser.add_argument("--stack", default="", help="a deployed stack; empty: make local")
    parser.add_argument(
        "--availability", action="store_true", help="print what the show has left; change nothing"
    )
    arguments = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        if arguments.availability:
            if not arguments.name:
                raise InvalidShowError("name is missing: give the show's name (its showId)")
            if arguments.stack:
                stack = stack_target(arguments.stack)
                print(availability(stack.dynamodb, stack.tables, arguments.name))
            else:
                print(availability(local_dynamodb(environ), LOCAL_TABLES, arguments.name))
            return 0
        show = parse_show(arguments.name or None, arguments.price, arguments.tickets)
        buckets = parse_buckets(arguments.buckets)
        max_per_buyer = parse_max_per_buyer(arguments.max_per_buyer)
        target = stack_target(arguments.stack) if arguments.stack else local_target(environ)
        print(apply_show(show, target, buckets, max_per_buyer))
    except (InvalidShowError, ShowCommandError) as error:
        print(f"make show: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"make show: AWS refused: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
