"""Versioned schema of the events catalog: apply pending SQL migrations in order, once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymysql.constants import ER
from pymysql.err import ProgrammingError

# Inside the function's package, so that the deployed function carries its own schema.
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"(?P<version>\d{3,})_[a-z0-9_]+\.sql")
# Statements end with a semicolon at the end of a line; comment lines start with `--`.
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
# Below the function timeout: a cold start waiting for another one to migrate must not time out.
_LOCK_SECONDS = 20


class MigrationError(Exception):
    """The migrations folder or the schema_migrations table is not in a usable state."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version (the file name without `.sql`) and its statements."""

    version: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    """The statements of a migration file, without comment lines."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    chunks = _STATEMENT_END.split("\n".join(lines))
    return tuple(chunk.strip() for chunk in chunks if chunk.strip())


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every `NNN_name.sql` file of `directory`, in version order."""
    migrations: list[tuple[int, Migration]] = []
    for path in directory.glob("*.sql"):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"Migration file name must look like 001_name.sql: {path.name}")
        statements = split_statements(path.read_text(encoding="utf-8"))
        if not statements:
            raise MigrationError(f"Migration has no statements: {path.name}")
        migrations.append((int(match["version"]), Migration(path.stem, statements)))
    migrations.sort(key=lambda numbered: numbered[0])
    numbers = [number for number, _ in migrations]
    if len(set(numbers)) != len(numbers):
        raise MigrationError("Two migration files share a version number")
    return [migration for _, migration in migrations]


def apply_migrations(connection: Any, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations `connection`'s database lacks, in order; return their versions.

    Cheap when the schema is up to date: one SELECT. Otherwise a named lock serialises concurrent
    appliers (several cold starts at once) and each applied version is recorded in
    schema_migrations. `connection` is an autocommit PyMySQL connection to the target database.
    """
    migrations = load_migrations(directory)
    with connection.cursor() as cursor:
        if not _pending(migrations, _applied_versions(cursor)):
            return []
        lock_name = schema_lock_name(_current_database(cursor))
        cursor.execute("SELECT GET_LOCK(%s, %s)", (lock_name, _LOCK_SECONDS))
        (locked,) = cursor.fetchone()
        if locked != 1:
            raise MigrationError(f"Another process held the schema lock for {_LOCK_SECONDS} s")
        try:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,"
                " applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
                ") ENGINE = InnoDB"
            )
            # Read again under the lock: another applier may have finished meanwhile.
            applied: list[str] = []
            for migration in _pending(migrations, _applied_versions(cursor)):
                for statement in migration.statements:
                    cursor.execute(statement)
                cursor.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,)
                )
                applied.append(migration.version)
            return applied
        finally:
            cursor.execute("SELECT RELEASE_LOCK(%s)", (lock_name,))


def schema_lock_name(database: str) -> str:
    """The GET_LOCK name that serialises migrations of `database`.

    MySQL refuses lock names over 64 characters (MariaDB does not), and a database name alone
    may be 64: the name is hashed to stay within the limit on every server.
    """
    digest = hashlib.sha256(database.encode()).hexdigest()[:40]
    return f"schema_migrations:{digest}"


def _pending(migrations: list[Migration], applied: set[str]) -> list[Migration]:
    return [migration for migration in migrations if migration.version not in applied]


def _applied_versions(cursor: Any) -> set[str]:
    try:
        cursor.execute("SELECT version FROM schema_migrations")
    except ProgrammingError as error:
        if error.args[0] == ER.NO_SUCH_TABLE:
            return set()
        raise
    return {str(version) for (version,) in cursor.fetchall()}


def _current_database(cursor: Any) -> str:
    cursor.execute("SELECT DATABASE()")
    (name,) = cursor.fetchone()
    if name is None:
        raise MigrationError("The connection has no database selected")
    return str(name)
