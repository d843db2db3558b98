"""Database settings of the flyer function, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Passed to Powertools explicitly rather than through POWERTOOLS_SERVICE_NAME: tests and the
# local stack run both functions' handlers in one process, where that variable is shared.
SERVICE_NAME = "flyer"

DB_HOST = "DB_HOST"
DB_PORT = "DB_PORT"
DB_NAME = "DB_NAME"
DB_USER = "DB_USER"
DB_PASSWORD = "DB_PASSWORD"  # noqa: S105 - the variable's name, not a password
# Optional: a PEM CA bundle; when set, TLS is required and the server's certificate and host
# name are verified against it.
DB_SSL_CA = "DB_SSL_CA"

_DEFAULT_PORT = 3306


class ConfigError(Exception):
    """The environment does not describe a usable database connection."""


@dataclass(frozen=True)
class DbSettings:
    """Where the events catalog lives and how to log in to it."""

    host: str
    port: int
    name: str
    user: str
    password: str = field(repr=False)
    ssl_ca: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DbSettings:
        """Read DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD and the optional DB_SSL_CA.

        A missing variable raises ConfigError naming it. DB_PASSWORD may be empty (a local
        server's passwordless root) but must be present, so that forgetting it is not silent.
        """

        def required(name: str, *, allow_empty: bool = False) -> str:
            value = environ.get(name)
            if value is None or (not value and not allow_empty):
                raise ConfigError(f"Missing environment variable {name}")
            return value

        port_text = required(DB_PORT)
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"{DB_PORT} must be a port number, not {port_text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"{DB_PORT} must be a port number, not {port_text!r}")

        ssl_ca_text = environ.get(DB_SSL_CA, "")
        ssl_ca = Path(ssl_ca_text) if ssl_ca_text else None
        if ssl_ca is not None and not ssl_ca.is_file():
            raise ConfigError(f"{DB_SSL_CA} names a file that does not exist: {ssl_ca_text}")

        return cls(
            host=required(DB_HOST),
            port=port,
            name=required(DB_NAME),
            user=required(DB_USER),
            password=required(DB_PASSWORD, allow_empty=True),
            ssl_ca=ssl_ca,
        )


def db_environ_from_url(url: str) -> dict[str, str]:
    """The DB_* variables equivalent to a `mysql://user:password@host:port/db` URL.

    Tests and the local stack configure the database as one DATABASE_URL; the function itself
    only reads the DB_* variables, which is what the template provides on AWS. The optional query
    parameter `ssl_ca` becomes DB_SSL_CA. User and password are percent-decoded.
    """
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise ConfigError("DATABASE_URL must start with mysql://")
    if not parts.hostname:
        raise ConfigError("DATABASE_URL has no host")
    if not parts.username:
        raise ConfigError("DATABASE_URL has no user")
    database = unquote(parts.path.removeprefix("/"))
    if not database or "/" in database:
        raise ConfigError("DATABASE_URL must name one database: mysql://user@host:port/db")
    try:
        port = parts.port or _DEFAULT_PORT
    except ValueError:
        raise ConfigError("DATABASE_URL has an invalid port") from None

    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"ssl_ca"})
    if unknown:
        raise ConfigError(f"DATABASE_URL has unsupported parameters: {', '.join(unknown)}")

    environ = {
        DB_HOST: parts.hostname,
        DB_PORT: str(port),
        DB_NAME: database,
        DB_USER: unquote(parts.username),
        DB_PASSWORD: unquote(parts.password or ""),
    }
    if query.get("ssl_ca"):
        environ[DB_SSL_CA] = query["ssl_ca"][-1]
    return environ
