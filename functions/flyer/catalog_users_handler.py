"""Deployment step, in the VPC: create the catalog's database users and migrate its schema.

Invoked only by catalog_users_provider, on behalf of CloudFormation, with the master user and
password in the invocation's payload: they are in no function's environment and never logged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from catalog_users import migrator_settings, set_up_catalog
from flyer_config import DbSettings

logger = Logger(service="catalog-users")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    """`{"masterUser", "masterPassword"}` -> the users set up, `{"migrationsApplied": [...]}`."""
    # DB_USER is the migrations user, which signs in with an IAM token like the others.
    migrator = migrator_settings(DbSettings.from_env())
    master = replace(migrator, user=event["masterUser"], password=event["masterPassword"])
    applied = set_up_catalog(master, migrator)
    logger.info("Catalog users and schema set up", extra={"migrations_applied": applied})
    return {"migrationsApplied": applied}
