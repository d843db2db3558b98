"""`make show` on AWS: one show into the private MySQL catalog, invoked by the organiser."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flyer_config import DbSettings
from show_catalog import parse_show, write_show

logger = Logger(service="show-catalog")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Create or update the show `{"name", "ticketPrice", "tickets"}`; say what changed.

    Invalid input raises InvalidShowError before the database is touched: the invocation fails
    with that message, which the command prints. The connection is closed before returning.
    """
    show = parse_show(event.get("name"), event.get("ticketPrice"), event.get("tickets"))
    outcome = write_show(DbSettings.from_env(), show)
    logger.info("Show written to the catalog", extra={"show": show.name, "outcome": outcome.value})
    return {"name": show.name, "catalog": outcome.value}
