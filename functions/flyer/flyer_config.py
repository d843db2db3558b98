"""Database settings of the catalog functions, read once from the environment."""

from __future__ import annotations

import ipaddress
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
# How DB_USER logs in: `iam` (an RDS IAM authentication token, signed at each connection, the
# only way on AWS) or `password` (DB_PASSWORD: a local MariaDB and the tests).
DB_AUTH = "DB_AUTH"
DB_PASSWORD = "DB_PASSWORD"  # noqa: S105 - the variable's name, not a password
# A PEM CA bundle: TLS is then required, and the server's certificate and host name verified
# against it. A relative path is read from the function's own folder, where the build puts the
# RDS bundle (template.yaml). Optional only for a server on this machine's loopback.
DB_SSL_CA = "DB_SSL_CA"
# Set by the Lambda runtime: the region an IAM authentication token is signed for.
AWS_REGION = "AWS_REGION"

AUTH_IAM = "iam"
AUTH_PASSWORD = "password"  # noqa: S105 - a mode's name, not a password
FUNCTION_DIR = Path(__file__).resolve().parent
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
    # None: log in with an RDS IAM authentication token for `user`, signed in `region` when the
    # connection opens (tokens last 15 minutes).
    password: str | None = field(default=None, repr=False)
    ssl_ca: Path | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        # Every login crosses a network only over TLS that authenticates the server: a token or
        # password sent to an impostor is a credential lost.
        if self.ssl_ca is None and not is_loopback(self.host):
            raise ConfigError(
                f"{DB_SSL_CA} is required for a database at {self.host}: the server must be"
                " authenticated (only a loopback server may go without)"
            )
        if self.password is None and (self.ssl_ca is None or not self.region):
            raise ConfigError(f"IAM authentication needs {DB_SSL_CA} and {AWS_REGION}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DbSettings:
        """Read DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_AUTH, DB_SSL_CA and what DB_AUTH needs:
        DB_PASSWORD (may be empty: a local server's passwordless root) or AWS_REGION.

        A missing variable raises ConfigError naming it.
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
        ssl_ca = FUNCTION_DIR / ssl_ca_text if ssl_ca_text else None
        if ssl_ca is not None and not ssl_ca.is_file():
            raise ConfigError(f"{DB_SSL_CA} names a file that does not exist: {ssl_ca_text}")

        auth = required(DB_AUTH)
        if auth == AUTH_PASSWORD:
            password: str | None = required(DB_PASSWORD, allow_empty=True)
            region = None
        elif auth == AUTH_IAM:
            if DB_PASSWORD in environ:
                raise ConfigError(f"{DB_PASSWORD} must not be set with {DB_AUTH}={AUTH_IAM}")
            password, region = None, required(AWS_REGION)
        else:
            raise ConfigError(f"{DB_AUTH} must be {AUTH_IAM} or {AUTH_PASSWORD}, not {auth!r}")

        return cls(
            host=required(DB_HOST),
            port=port,
            name=required(DB_NAME),
            user=required(DB_USER),
            password=password,
            ssl_ca=ssl_ca,
            region=region,
        )


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: `localhost` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def db_environ_from_url(url: str) -> dict[str, str]:
    """The DB_* variables equivalent to a `mysql://user:password@host:port/db` URL.

    Tests and the local stack configure the database as one DATABASE_URL, logging in with a
    password; the function itself only reads the DB_* variables, which is what the template
    provides on AWS. The optional query parameter `ssl_ca` becomes DB_SSL_CA. User and password
    are percent-decoded.
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
        DB_AUTH: AUTH_PASSWORD,
        DB_PASSWORD: unquote(parts.password or ""),
    }
    if query.get("ssl_ca"):
        environ[DB_SSL_CA] = query["ssl_ca"][-1]
    return environ
