"""`make show` on AWS: one show into the private MySQL catalog, invoked by the organiser."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from flyer_config import DbSettings
from show_catalog import parse_show, write_show

logger = Logger(service="show-catalog")


class MissingDatabaseTokenError(PermissionError):
    """The invocation carries no database token: the caller cannot prove it may write shows."""


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Create or update the show `{"name", "ticketPrice", "tickets", "databaseToken"}`; say what
    changed.

    The function has no database permission of its own: it logs in with the caller's token
    (`generate_db_auth_token` for the shows user, which only the organiser's policy allows), so
    an invocation by anyone else writes nothing. Invalid input raises InvalidShowError before
    the database is touched: the invocation fails with that message, which the command prints.
    The connection is closed before returning. The token is never logged.
    """
    show = parse_show(event.get("name"), event.get("ticketPrice"), event.get("tickets"))
    token = event.get("databaseToken")
    if not isinstance(token, str) or not token:
        raise MissingDatabaseTokenError("databaseToken is missing: run make show STACK=...")
    outcome = write_show(replace(DbSettings.from_env(), password=token), show)
    logger.info("Show written to the catalog", extra={"show": show.name, "outcome": outcome.value})
    return {"name": show.name, "catalog": outcome.value}
