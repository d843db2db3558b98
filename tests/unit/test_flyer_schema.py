"""Reading the versioned migrations of the events catalog (applying them is an integration test)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from events_schema import MIGRATIONS_DIR, MigrationError, load_migrations, split_statements


def test_split_statements_comments_and_semicolons_removed() -> None:
    sql = (
        "-- A comment; with a semicolon\n"
        "CREATE TABLE t (\n"
        "    -- a column comment\n"
        "    a INT\n"
        ");\n"
        "\n"
        "ALTER TABLE t ADD COLUMN b INT;  \n"
    )

    assert split_statements(sql) == (
        "CREATE TABLE t (\n    a INT\n)",
        "ALTER TABLE t ADD COLUMN b INT",
    )


def test_load_migrations_versions_in_numeric_order(tmp_path: Path) -> None:
    for name in ("010_later.sql", "002_second.sql", "001_first.sql"):
        (tmp_path / name).write_text("SELECT 1;\n", encoding="utf-8")

    versions = [migration.version for migration in load_migrations(tmp_path)]

    assert versions == ["001_first", "002_second", "010_later"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_short.sql": "SELECT 1;"}, "must look like"),
        ({"001_Upper.sql": "SELECT 1;"}, "must look like"),
        ({"001_empty.sql": "-- nothing\n"}, "no statements"),
        ({"001_a.sql": "SELECT 1;", "001_b.sql": "SELECT 2;"}, "share a version"),
    ],
    ids=["short-number", "upper-case", "empty", "duplicate"],
)
def test_load_migrations_bad_folder_raises(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, sql in files.items():
        (tmp_path / name).write_text(sql, encoding="utf-8")

    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_load_migrations_shipped_schema_creates_events_table() -> None:
    [first, *_] = load_migrations(MIGRATIONS_DIR)

    assert first.version == "001_events"
    assert first.statements[0].startswith("CREATE TABLE IF NOT EXISTS events")
    assert MIGRATIONS_DIR.parent.name == "flyer"


# What differs between MySQL 8.0 (Aurora MySQL 3), 8.4 (RDS) and MariaDB (tests, make local):
# each pattern, if a migration or a query used it, would work on one and fail or warn on another.
NOT_PORTABLE = {
    r"\bVALUES\s*\(\s*\w+\s*\)": "VALUES(col) in ON DUPLICATE KEY UPDATE: deprecated in 8.0.20",
    r"\bAS\s+\w+\s+ON\s+DUPLICATE\b": "a row alias before ON DUPLICATE KEY: MariaDB lacks it",
    r"\butf8(mb3)?\b(?!mb4)": "utf8/utf8mb3: an alias whose meaning is changing",
    r"\b(TINY|SMALL|MEDIUM|BIG)?INT\s*\(\s*\d+\s*\)": "integer display width: deprecated",
    r"\bZEROFILL\b": "ZEROFILL: deprecated",
    r"\b(FLOAT|DOUBLE)\s*\(\s*\d+\s*,": "FLOAT(M,D)/DOUBLE(M,D): deprecated",
    r"\bmysql_native_password\b": "mysql_native_password: disabled by default in 8.4",
    r"\butf8mb4_0900_\w+": "a MySQL 8 collation MariaDB does not have",
    r"\b(SQL_CALC_FOUND_ROWS|FOUND_ROWS\s*\()": "deprecated in 8.0.17",
    # Reserved in 8.4 (new) or 8.0 but not in MariaDB: unquoted identifiers break.
    r"\b(MANUAL|PARALLEL|QUALIFY|TABLESAMPLE|RANK|GROUPS|LATERAL|MEMBER|SYSTEM|WINDOW)\b": (
        "a word reserved in MySQL 8.0 or 8.4"
    ),
}
FLYER_SOURCES = sorted(Path(MIGRATIONS_DIR).parent.glob("*.py"))


def sql_of(path: Path) -> str:
    """A migration's text, or the SQL string literals of a Python module."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".sql":
        return text
    literals = [
        node.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    statement = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|SHOW)\b", re.I)
    return "\n".join(literal for literal in literals if statement.match(literal))


@pytest.mark.parametrize(
    "path",
    [*sorted(MIGRATIONS_DIR.glob("*.sql")), *FLYER_SOURCES],
    ids=lambda path: path.name,
)
def test_schema_sql_runs_alike_on_mysql_80_84_and_mariadb(path: Path) -> None:
    sql = sql_of(path)
    found = {reason for pattern, reason in NOT_PORTABLE.items() if re.search(pattern, sql, re.I)}
    assert found == set(), f"{path.name}: {sorted(found)}"


def test_schema_portability_check_catches_what_it_lists() -> None:
    # The patterns themselves: each one finds the construct it names.
    sql = "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)"
    assert any(re.search(pattern, sql, re.I) for pattern in NOT_PORTABLE)
    assert not any(
        re.search(p, "CREATE TABLE t (a INT) CHARSET utf8mb4", re.I) for p in NOT_PORTABLE
    )
    assert any(re.search(p, "CREATE TABLE t (a INT(11)) CHARSET utf8", re.I) for p in NOT_PORTABLE)


def test_schema_lock_name_fits_mysql_limit_for_the_longest_database_name() -> None:
    from events_schema import schema_lock_name

    # MySQL refuses GET_LOCK names over 64 characters; a database name may be 64 itself.
    assert len(schema_lock_name("d" * 64)) <= 64
    assert schema_lock_name("a") != schema_lock_name("b")
