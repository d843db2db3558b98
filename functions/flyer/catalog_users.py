"""The catalog's database users, each with only what it needs, and the schema they share.

The master user creates them and nothing else; the migrations run as the migrations user. On
AWS every user logs in with an RDS IAM authentication token (AWSAuthenticationPlugin); on a
local MariaDB, which has no such plugin, with a password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from events_db import connect_waiting_out_a_resume
from events_schema import apply_migrations
from flyer_config import DbSettings

FLYER_USER = "flyer_function"
SHOWS_USER = "show_writer"
MIGRATIONS_USER = "schema_migrator"


@dataclass(frozen=True)
class DbUser:
    """A database user and its privileges: (privileges, table; `*` for the whole database)."""

    name: str
    grants: tuple[tuple[str, str], ...]


# The flyer function sets a flyer on an event that exists; `make show` creates and updates
# shows; the migrations create and change tables and record themselves in schema_migrations. A
# migration that needs more (DROP, a data backfill) adds it here in the same change.
MIGRATIONS = DbUser(MIGRATIONS_USER, (("CREATE, ALTER, INDEX, SELECT, INSERT", "*"),))
FLYER = DbUser(FLYER_USER, (("SELECT, UPDATE", "events"),))
SHOWS = DbUser(SHOWS_USER, (("SELECT, INSERT, UPDATE", "events"),))
USERS = (MIGRATIONS, FLYER, SHOWS)

# RDS MySQL and Aurora MySQL: the user logs in with a token IAM checks (RDS user guide,
# "Creating a database account using IAM authentication").
IAM_AUTHENTICATION = "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"


def set_up_catalog(
    master: DbSettings, migrator: DbSettings, passwords: Mapping[str, str] | None = None
) -> list[str]:
    """Create or correct every user, migrate the schema as the migrations user; return the
    migrations applied.

    `passwords` (user -> password) is for a server without IAM authentication; None: IAM.
    Safe to run again: users are created if missing, their login method and privileges set to
    exactly what USERS says. Table privileges are granted once the migrations have created the
    tables (MySQL refuses them on a table that does not exist yet).
    """
    with contextlib.closing(connect_waiting_out_a_resume(master)) as admin:
        for user in USERS:
            _create_or_reset(admin, user.name, passwords)
        _grant(admin, master.name, MIGRATIONS)
        with contextlib.closing(connect_waiting_out_a_resume(migrator)) as connection:
            applied = apply_migrations(connection)
        for user in (FLYER, SHOWS):
            _grant(admin, master.name, user)
    return applied


def migrator_settings(settings: DbSettings, password: str | None = None) -> DbSettings:
    """`settings` for the migrations user."""
    return replace(settings, user=MIGRATIONS_USER, password=password)


def _create_or_reset(admin: Any, name: str, passwords: Mapping[str, str] | None) -> None:
    account = f"'{name}'@'%'"
    identified = (
        IAM_AUTHENTICATION
        if passwords is None
        # DDL takes no placeholders: the password is escaped as a string literal.
        else f"IDENTIFIED BY {admin.escape(passwords[name])}"
    )
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE USER IF NOT EXISTS {account} {identified}")
        # An existing user keeps nothing it had: its login method and privileges are reset.
        cursor.execute(f"ALTER USER {account} {identified}")
        cursor.execute(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}")


def _grant(admin: Any, database: str, user: DbUser) -> None:
    with admin.cursor() as cursor:
        for privileges, table in user.grants:
            target = "*" if table == "*" else f"`{table}`"
            cursor.execute(f"GRANT {privileges} ON `{database}`.{target} TO '{user.name}'@'%'")
